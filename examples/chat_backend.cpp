// chat_backend: one chat room for every client of the gateway. Shows a
// backend that, besides answering on its event stream, calls the gateway's
// Admin API: every text message is broadcast to everyone, and joins and
// leaves are announced.
//
//   build/wsgateway --backend 127.0.0.1:50053
//   build/examples/chat_backend --listen 127.0.0.1:50053 --admin 127.0.0.1:50051
//
// Broadcasts go out as asynchronous (callback) unary calls, so the event
// stream never waits for them, one at a time, so that clients see them in
// the order the events happened ("* a1b2c3 joined" before "a1b2c3: hi").
//
// Delivery: the stream acknowledges a batch once its broadcasts are queued
// here. They travel outside the stream, so the ack cannot make them atomic
// with it as the echo backend's pushes are: a crash can lose the few still
// queued, and after a stream drop a redelivered batch can repeat some
// (Event.sequence would let us drop those). That is fine for a chat.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "backend_stream.hpp"
#include "serve.hpp"
#include "wsgateway/v1/admin.grpc.pb.h"

namespace {

using wsgateway::v1::Admin;
using wsgateway::v1::BroadcastRequest;
using wsgateway::v1::BroadcastResponse;
using wsgateway::v1::CommandBatch;
using wsgateway::v1::Event;

// Sends text broadcasts through Admin.Broadcast, in order, one call in
// flight at a time. Safe to use from any thread.
class Broadcaster {
 public:
  explicit Broadcaster(const std::shared_ptr<grpc::Channel>& admin) : stub_(Admin::NewStub(admin)) {}

  // Waits for the call in flight: its callback still uses this object.
  ~Broadcaster() {
    std::unique_lock lock(mutex_);
    queue_.clear();
    idle_.wait(lock, [this] { return !in_flight_; });
  }

  Broadcaster(const Broadcaster&) = delete;
  Broadcaster& operator=(const Broadcaster&) = delete;

  void send_text(std::string text) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= kMaxQueued) {
        spdlog::warn("broadcast queue full, dropping: {}", text);
        return;
      }
      queue_.push_back(std::move(text));
      if (in_flight_) return;  // The call in flight sends it when it is done.
      in_flight_ = true;
    }
    send_next();
  }

 private:
  // Everything one asynchronous call needs until its callback has run.
  struct Call {
    grpc::ClientContext context;
    BroadcastRequest request;
    BroadcastResponse response;
  };

  // Bounds memory while the gateway's admin API is unreachable.
  static constexpr std::size_t kMaxQueued = 10'000;
  static constexpr auto kCallTimeout = std::chrono::seconds(5);

  // Starts the call for the oldest queued text; called with in_flight_ set.
  void send_next() {
    auto call = std::make_unique<Call>();
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) {
        in_flight_ = false;
        idle_.notify_all();
        return;
      }
      call->request.mutable_frame()->set_payload(std::move(queue_.front()));
      queue_.pop_front();
    }
    call->request.mutable_frame()->set_opcode(wsgateway::v1::OPCODE_TEXT);
    call->context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);

    Call* started = call.release();  // Owned by the callback from here on.
    stub_->async()->Broadcast(&started->context, &started->request, &started->response,
                              [this, started](const grpc::Status& status) {
                                if (!status.ok()) {
                                  spdlog::warn("Admin.Broadcast failed: {}", status.error_message());
                                }
                                delete started;
                                send_next();
                              });
  }

  std::unique_ptr<Admin::Stub> stub_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::deque<std::string> queue_;
  bool in_flight_ = false;
};

// "…f3a9c1": enough of the id to tell people apart.
std::string short_id(const std::string& connection_id) {
  constexpr std::size_t kLength = 6;
  return connection_id.size() <= kLength ? connection_id : connection_id.substr(connection_id.size() - kLength);
}

// Turns events into chat lines. It sends no commands on the stream: the
// room hears everything through Admin.Broadcast.
struct ChatRoom {
  Broadcaster* broadcaster;

  void operator()(Event& event, CommandBatch& /*commands*/) const {
    const std::string who = short_id(event.connection_id());
    switch (event.kind_case()) {
      case Event::kOpen:
        broadcaster->send_text("* " + who + " joined");
        break;
      case Event::kMessage:
        if (event.message().opcode() == wsgateway::v1::OPCODE_TEXT) {
          broadcaster->send_text(who + ": " + event.message().payload());
        }
        break;
      case Event::kClose:
        broadcaster->send_text("* " + who + " left");
        break;
      case Event::kControlFrame:
      case Event::kCloseFrame:
      case Event::kDisconnect:
      case Event::KIND_NOT_SET:
        break;
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const wsgateway_examples::TerminationSignals signals;
  wsgateway_examples::log_to_stderr("chat_backend");

  CLI::App app{"Chat backend for wsgateway: broadcasts every text message to everyone."};
  std::string listen = "127.0.0.1:50053";
  std::string admin = "127.0.0.1:50051";
  app.add_option("--listen", listen, "HOST:PORT to serve wsgateway.v1.Backend on (port 0: any)")->capture_default_str();
  app.add_option("--admin", admin, "the gateway's admin API (its --admin-listen)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Declared before the service: destroyed after the server has stopped
  // calling the room, and it waits for its own call in flight.
  Broadcaster broadcaster{grpc::CreateChannel(admin, grpc::InsecureChannelCredentials())};
  wsgateway_examples::BackendService<ChatRoom> service{ChatRoom{&broadcaster}};
  return wsgateway_examples::serve_until_signalled("chat backend", listen, service, signals);
}
