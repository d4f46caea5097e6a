#include "admin_call_queue.hpp"

#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

namespace wsgateway_examples {
namespace {

using wsgateway::v1::BroadcastRequest;
using wsgateway::v1::BroadcastResponse;
using wsgateway::v1::JoinGroupRequest;
using wsgateway::v1::JoinGroupResponse;

constexpr auto kCallTimeout = std::chrono::seconds(5);

// Everything one asynchronous call needs until its callback has run.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

// The deadline counts from the start of the call, not from when it was
// queued: a call waiting behind a slow one still gets its full time.
void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

}  // namespace

AdminCallQueue::AdminCallQueue(const std::shared_ptr<grpc::Channel>& admin)
    : stub_(wsgateway::v1::Admin::NewStub(admin)) {}

AdminCallQueue::~AdminCallQueue() {
  std::unique_lock lock(mutex_);
  queue_.clear();
  idle_.wait(lock, [this] { return !in_flight_; });
}

void AdminCallQueue::BroadcastText(std::string group, std::string text) {
  auto call = std::make_shared<Call<BroadcastRequest, BroadcastResponse>>();
  call->request.mutable_frame()->set_opcode(wsgateway::v1::OPCODE_TEXT);
  call->request.mutable_frame()->set_payload(std::move(text));
  call->request.mutable_filter()->set_group(std::move(group));
  Enqueue([this, call](std::function<void()> done) {
    SetDeadline(call->context);
    stub_->async()->Broadcast(&call->context, &call->request, &call->response,
                              [call, done = std::move(done)](const grpc::Status& status) {
                                if (!status.ok()) spdlog::warn("Admin.Broadcast failed: {}", status.error_message());
                                done();
                              });
  });
}

void AdminCallQueue::JoinGroup(std::string connection_id, std::string group) {
  auto call = std::make_shared<Call<JoinGroupRequest, JoinGroupResponse>>();
  call->request.set_connection_id(std::move(connection_id));
  call->request.add_groups(std::move(group));
  Enqueue([this, call](std::function<void()> done) {
    SetDeadline(call->context);
    stub_->async()->JoinGroup(&call->context, &call->request, &call->response,
                              [call, done = std::move(done)](const grpc::Status& status) {
                                // NOT_FOUND or FAILED_PRECONDITION: the client left meanwhile.
                                if (!status.ok()) spdlog::info("Admin.JoinGroup failed: {}", status.error_message());
                                done();
                              });
  });
}

void AdminCallQueue::Enqueue(Starter start) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueued) {
      spdlog::warn("admin call queue full ({} calls): dropping a call", kMaxQueued);
      return;
    }
    queue_.push_back(std::move(start));
    if (in_flight_) return;  // The call in flight starts it when it is done.
    in_flight_ = true;
  }
  StartNext();
}

void AdminCallQueue::StartNext() {
  Starter start;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      in_flight_ = false;
      idle_.notify_all();
      return;
    }
    start = std::move(queue_.front());
    queue_.pop_front();
  }
  // The destructor waits for in_flight_ to clear, which only this chain
  // does, so `this` outlives every callback.
  start([this] { StartNext(); });
}

}  // namespace wsgateway_examples
