// The admin broadcast trigger: each broadcast is one Admin.Broadcast call
// (admin_client.hpp), whose result arrives on the run's strand.
//
// Admin.Broadcast reaches the connections that are ACTIVE when it runs, and
// the gateway makes a connection ACTIVE a moment after its client has seen
// the upgrade response. So Start lists the ACTIVE connections until all the
// receivers are among them; otherwise the first broadcasts could miss one.

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <utility>

#include "admin_client.hpp"
#include "broadcast_trigger.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace v1 = ::wsgateway::v1;

// How long Start waits for the gateway to list every receiver as ACTIVE.
constexpr auto kReadyTimeout = std::chrono::seconds(10);
// Paces the listings while it waits; the condition decides, not the pause.
constexpr auto kListPause = std::chrono::milliseconds(5);
constexpr std::uint32_t kListPageSize = 1000;  // the API's maximum

// A broadcast's outcome. In cluster mode a node the broadcast did not reach
// is a failure, whatever its receivers report.
TriggerResult BroadcastResult(const grpc::Status& status, const v1::BroadcastResponse& response) {
  if (!status.ok()) return TriggerResult{AdminClient::Describe("Admin.Broadcast", status), std::nullopt};
  std::string failed;
  for (const auto& node : response.failed_nodes()) {
    failed += (failed.empty() ? "Admin.Broadcast did not reach node " : ", node ") + node.node_id() + " (" +
              node.message() + ")";
  }
  return TriggerResult{std::move(failed), response.queued()};
}

class AdminTrigger : public BroadcastTrigger {
 public:
  AdminTrigger(RunStrand strand, const std::string& target, const std::string& path_prefix)
      : admin_(strand, target), path_prefix_(path_prefix), pause_(strand) {}

  void Start(std::uint64_t receivers, Done done) override {
    wanted_ = receivers;
    ready_done_ = std::move(done);
    ready_deadline_ = Clock::now() + kReadyTimeout;
    active_seen_ = 0;
    ListPage("");
  }

  void Send(std::shared_ptr<const std::string> payload, Done done) override {
    v1::BroadcastRequest request;
    request.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
    request.mutable_frame()->set_payload(*payload);
    if (!path_prefix_.empty()) request.mutable_filter()->set_path_prefix(path_prefix_);
    admin_.Broadcast(std::move(request),
                     [done = std::move(done)](const grpc::Status& status, v1::BroadcastResponse& response) {
                       done(BroadcastResult(status, response));
                     });
  }

  // Cancels the calls still in flight and the wait for readiness.
  void Stop() override {
    stopped_ = true;
    pause_.cancel();
    admin_.CancelAll();
  }

 private:
  // ---- Readiness, on the strand ----

  void ListPage(const std::string& page_token) {
    v1::ListConnectionsRequest request;
    request.set_page_size(kListPageSize);
    request.set_page_token(page_token);
    request.mutable_filter()->set_state(v1::CONNECTION_STATE_ACTIVE);
    if (!path_prefix_.empty()) request.mutable_filter()->set_path_prefix(path_prefix_);
    admin_.ListConnections(
        std::move(request), [this](const grpc::Status& status, v1::ListConnectionsResponse& response) {
          OnListed(status.ok() ? std::string{} : AdminClient::Describe("Admin.ListConnections", status),
                   static_cast<std::uint64_t>(response.connections_size()), response.next_page_token());
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

  AdminClient admin_;
  const std::string path_prefix_;

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
