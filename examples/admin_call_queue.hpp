// Calls to the gateway's Admin API, made asynchronously (the event stream
// never waits for them) and one at a time, in the order they were asked
// for: clients then see the room's lines in the order the events happened
// ("bob joined" before "bob: hi"), and a connection joins its group before
// the broadcast meant for it goes out.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "wsgateway/v1/admin.grpc.pb.h"

namespace wsgateway_examples {

class AdminCallQueue {
 public:
  explicit AdminCallQueue(const std::shared_ptr<grpc::Channel>& admin);
  // Drops what is queued and waits for the call in flight: its callback
  // still uses this object.
  ~AdminCallQueue();

  AdminCallQueue(const AdminCallQueue&) = delete;
  AdminCallQueue& operator=(const AdminCallQueue&) = delete;

  // Admin.Broadcast of a text message to the members of `group`.
  void BroadcastText(std::string group, std::string text);
  // Admin.JoinGroup.
  void JoinGroup(std::string connection_id, std::string group);

 private:
  // Starts one call; the call runs `done` once it has finished, however it
  // finished.
  using Starter = std::function<void(std::function<void()> done)>;

  // Bounds memory while the gateway's admin API is unreachable.
  static constexpr std::size_t kMaxQueued = 10'000;

  void Enqueue(Starter start);
  // Starts the oldest queued call, or marks the queue idle.
  void StartNext();

  std::unique_ptr<wsgateway::v1::Admin::Stub> stub_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::deque<Starter> queue_;
  bool in_flight_ = false;
};

}  // namespace wsgateway_examples
