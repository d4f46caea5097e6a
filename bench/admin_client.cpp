#include "admin_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <utility>

namespace wsbench {

namespace net = boost::asio;
namespace v1 = ::wsgateway::v1;

namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);  // loopback only, whatever the environment says
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

// Everything one call needs until its callback has run.
template <typename Request, typename Response>
struct AdminClient::Call {
  explicit Call(const RunStrand& strand) : work(net::make_work_guard(strand)) {}
  grpc::ClientContext context;
  Request request;
  Response response;
  Done<Response> done;
  net::executor_work_guard<RunStrand> work;
};

AdminClient::AdminClient(RunStrand strand, const std::string& target)
    : strand_(std::move(strand)), stub_(v1::Admin::NewStub(MakeChannel(target))) {}

template <typename Request, typename Response, typename Start>
void AdminClient::Run(Request request, Done<Response> done, Start start) {
  auto* call = new Call<Request, Response>(strand_);
  call->request = std::move(request);
  call->done = std::move(done);
  call->context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  {
    std::lock_guard lock(mutex_);
    in_flight_.insert(&call->context);
  }
  // On a gRPC thread: hands the result to the strand and frees the call. The
  // work guard goes after the post has added its own work, so the run cannot
  // end (and destroy this client) before `done` has run.
  start(&call->context, &call->request, &call->response, [this, call](grpc::Status status) {
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(&call->context);
    }
    net::post(strand_, [status = std::move(status), response = std::move(call->response),
                        done = std::move(call->done)]() mutable { done(status, response); });
    delete call;
  });
}

void AdminClient::Broadcast(v1::BroadcastRequest request, Done<v1::BroadcastResponse> done) {
  Run(std::move(request), std::move(done), [this](auto... args) { stub_->async()->Broadcast(args...); });
}

void AdminClient::Push(v1::PushRequest request, Done<v1::PushResponse> done) {
  Run(std::move(request), std::move(done), [this](auto... args) { stub_->async()->Push(args...); });
}

void AdminClient::ListConnections(v1::ListConnectionsRequest request, Done<v1::ListConnectionsResponse> done) {
  Run(std::move(request), std::move(done), [this](auto... args) { stub_->async()->ListConnections(args...); });
}

void AdminClient::CancelAll() {
  std::lock_guard lock(mutex_);
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
}

std::string AdminClient::Describe(const char* what, const grpc::Status& status) {
  return std::string{what} + ": " + std::to_string(static_cast<int>(status.error_code())) + " " +
         status.error_message();
}

}  // namespace wsbench
