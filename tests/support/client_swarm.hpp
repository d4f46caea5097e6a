#pragma once
// Many WebSocket clients on one io_context driven by one background thread:
// connects in bounded batches, reads continuously, writes one message at a
// time per client with a queue behind it. For the broadcast, pagination,
// ordering and backend-restart tests.
//
// Thread-safety: every public member may be called from any thread; the
// received messages are guarded by one mutex, and waiting is done on a
// condition variable with a deadline.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace wsgateway::testing {

class ClientSwarm {
 public:
  struct Received {
    bool binary = false;
    std::string payload;
  };

  // What one client has seen; returned by value (a snapshot).
  struct ClientState {
    bool connected = false;
    bool closed = false;              // the read loop ended
    boost::system::error_code error;  // why it ended or failed to connect
    std::uint16_t close_code = 0;     // close frame from the server, if any
    std::chrono::steady_clock::time_point closed_at;  // when the read loop ended
    std::string local_address;
    std::size_t sent = 0;  // messages whose write completed
    std::vector<Received> messages;
  };

  ClientSwarm();
  ~ClientSwarm();
  ClientSwarm(const ClientSwarm&) = delete;
  ClientSwarm& operator=(const ClientSwarm&) = delete;

  // Opens one client per target ("/path?query") against 127.0.0.1:port, at
  // most max_in_flight handshakes at a time. Returns how many connected
  // before the deadline. Clients are numbered in the order of `targets`,
  // starting after any clients connected earlier.
  std::size_t ConnectAll(std::uint16_t port, const std::vector<std::string>& targets, std::size_t max_in_flight,
                         std::chrono::milliseconds timeout);

  std::size_t size() const;

  // Queues a message for client i; writes go out one at a time, in order.
  void Send(std::size_t i, std::string payload, bool binary = false);

  // Closes client i with a close frame.
  void Close(std::size_t i, std::uint16_t code = 1000);

  ClientState State(std::size_t i) const;
  std::size_t TotalReceived() const;

  // Waits until `done` (called under the lock with the total number of
  // messages received by all clients) returns true; false on timeout.
  bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  bool WaitForTotalReceived(std::size_t total, std::chrono::milliseconds timeout);
  // Waits until client i has received at least n messages.
  bool WaitForReceived(std::size_t i, std::size_t n, std::chrono::milliseconds timeout);
  // Waits until client i has had at least n writes complete.
  bool WaitForSent(std::size_t i, std::size_t n, std::chrono::milliseconds timeout);
  bool WaitForClosed(std::size_t i, std::chrono::milliseconds timeout);

  // Direct access to a client's messages under the lock.
  template <typename Fn>
  auto WithMessages(std::size_t i, Fn&& fn) const {
    std::lock_guard lock(mutex_);
    return fn(StateRef(i).messages);
  }

 private:
  class Session;
  friend class Session;

  const ClientState& StateRef(std::size_t i) const;
  void Notify();

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<ClientState>> states_;  // guarded by mutex_
  std::size_t total_received_ = 0;                    // guarded by mutex_
  std::vector<std::shared_ptr<Session>> sessions_;    // touched on the io thread only after creation
};

}  // namespace wsgateway::testing
