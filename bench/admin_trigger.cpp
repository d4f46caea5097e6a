// The admin broadcast trigger: each broadcast is one Admin.Broadcast call
// made with gRPC's callback API. The callback runs on a gRPC thread and only
// posts its result to the run's strand; until it has, a work guard keeps the
// run's io_context from running out of work.
//
// Admin.Broadcast reaches the connections that are ACTIVE when it runs, and
// the gateway makes a connection ACTIVE a moment after its client has seen
// the upgrade response. So Start lists the ACTIVE connections until all the
// receivers are among them; otherwise the first broadcasts could miss one.

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <mutex>
#include <set>
#include <utility>

#include "broadcast_trigger.hpp"
#include "wsgateway/v1/admin.grpc.pb.h"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace v1 = ::wsgateway::v1;

// Generous: a broadcast returns once it is queued on every event loop.
constexpr auto kCallTimeout = std::chrono::seconds(10);
// How long Start waits for the gateway to list every receiver as ACTIVE.
constexpr auto kReadyTimeout = std::chrono::seconds(10);
// Paces the listings while it waits; the condition decides, not the pause.
constexpr auto kListPause = std::chrono::milliseconds(5);
constexpr std::uint32_t kListPageSize = 1000;  // the API's maximum

class AdminTrigger : public BroadcastTrigger {
 public:
  AdminTrigger(RunStrand strand, const std::string& target, const std::string& path_prefix)
      : strand_(std::move(strand)),
        stub_(v1::Admin::NewStub(MakeChannel(target))),
        path_prefix_(path_prefix),
        pause_(strand_) {}

  void Start(std::uint64_t receivers, Done done) override {
    wanted_ = receivers;
    ready_done_ = std::move(done);
    ready_deadline_ = Clock::now() + kReadyTimeout;
    active_seen_ = 0;
    ListPage("");
  }

  void Send(std::shared_ptr<const std::string> payload, Done done) override {
    auto* call = NewCall<v1::BroadcastRequest, v1::BroadcastResponse>();
    call->request.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
    call->request.mutable_frame()->set_payload(*payload);
    if (!path_prefix_.empty()) call->request.mutable_filter()->set_path_prefix(path_prefix_);
    stub_->async()->Broadcast(&call->context, &call->request, &call->response,
                              [this, call, done = std::move(done)](grpc::Status status) mutable {
                                TriggerResult result = status.ok() ? TriggerResult{{}, call->response.queued()}
                                                                   : Failed("Admin.Broadcast", status);
                                Complete(call, [done = std::move(done), result = std::move(result)] { done(result); });
                              });
  }

  // Cancels the calls still in flight and the wait for readiness.
  void Stop() override {
    stopped_ = true;
    pause_.cancel();
    std::lock_guard lock(mutex_);
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  }

 private:
  // Everything one call needs until its callback has run.
  template <typename Request, typename Response>
  struct Call {
    explicit Call(const RunStrand& strand) : work(net::make_work_guard(strand)) {}
    grpc::ClientContext context;
    Request request;
    Response response;
    net::executor_work_guard<RunStrand> work;
  };

  static std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);  // loopback only, whatever the environment says
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }

  static TriggerResult Failed(const char* what, const grpc::Status& status) {
    return TriggerResult{
        std::string{what} + ": " + std::to_string(static_cast<int>(status.error_code())) + " " + status.error_message(),
        std::nullopt};
  }

  template <typename Request, typename Response>
  Call<Request, Response>* NewCall() {
    auto* call = new Call<Request, Response>(strand_);
    call->context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    std::lock_guard lock(mutex_);
    in_flight_.insert(&call->context);
    return call;
  }

  // On a gRPC thread: hands `then` to the strand and frees the call. The
  // work guard goes after the post has added its own work, so the run
  // cannot end (and destroy this trigger) before `then` has run.
  template <typename CallType, typename Then>
  void Complete(CallType* call, Then then) {
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(&call->context);
    }
    net::post(strand_, std::move(then));
    delete call;
  }

  // ---- Readiness, on the strand ----

  void ListPage(const std::string& page_token) {
    auto* call = NewCall<v1::ListConnectionsRequest, v1::ListConnectionsResponse>();
    call->request.set_page_size(kListPageSize);
    call->request.set_page_token(page_token);
    call->request.mutable_filter()->set_state(v1::CONNECTION_STATE_ACTIVE);
    if (!path_prefix_.empty()) call->request.mutable_filter()->set_path_prefix(path_prefix_);
    stub_->async()->ListConnections(&call->context, &call->request, &call->response, [this, call](grpc::Status status) {
      std::string error = status.ok() ? std::string{} : Failed("Admin.ListConnections", status).error;
      const auto listed = static_cast<std::uint64_t>(call->response.connections_size());
      std::string next = call->response.next_page_token();
      Complete(call,
               [this, error = std::move(error), listed, next = std::move(next)] { OnListed(error, listed, next); });
    });
  }

  void OnListed(const std::string& error, std::uint64_t listed, const std::string& next_page_token) {
    if (stopped_) return;
    if (!error.empty()) return Ready(error);
    active_seen_ += listed;
    if (!next_page_token.empty()) return ListPage(next_page_token);
    if (active_seen_ >= wanted_) return Ready("");
    if (Clock::now() >= ready_deadline_) {
      return Ready("the gateway lists " + std::to_string(active_seen_) + " ACTIVE connections" +
                   (path_prefix_.empty() ? "" : " under " + path_prefix_) + ", fewer than the " +
                   std::to_string(wanted_) + " receivers");
    }
    active_seen_ = 0;
    pause_.expires_after(kListPause);
    pause_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !stopped_) ListPage("");
    });
  }

  void Ready(std::string error) { std::exchange(ready_done_, nullptr)(TriggerResult{std::move(error), std::nullopt}); }

  RunStrand strand_;
  std::unique_ptr<v1::Admin::Stub> stub_;
  const std::string path_prefix_;
  std::mutex mutex_;
  std::set<grpc::ClientContext*> in_flight_;  // guarded by mutex_

  // On the strand.
  net::steady_timer pause_;
  Done ready_done_;
  std::uint64_t wanted_ = 0;
  std::uint64_t active_seen_ = 0;
  Clock::time_point ready_deadline_;
  bool stopped_ = false;
};

}  // namespace

std::shared_ptr<BroadcastTrigger> MakeAdminTrigger(RunStrand strand, const std::string& target,
                                                   const std::string& path_prefix) {
  return std::make_shared<AdminTrigger>(std::move(strand), target, path_prefix);
}

}  // namespace wsbench
