#pragma once
// One event loop: an io_context run by one thread, owning the sessions
// accepted onto it. Sessions, the registry and the outgoing event batch are
// touched only by the loop's thread; other threads post work to it.

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "gateway/backend/event_wire.hpp"
#include "gateway/runtime/connection_limits.hpp"
#include "gateway/runtime/drain_pacer.hpp"
#include "gateway/runtime/gateway_context.hpp"
#include "gateway/runtime/loop_socket.hpp"
#include "gateway/websocket/loop_compression.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

class Session;

class EventLoop {
 public:
  using Registry = std::map<std::uint64_t, std::shared_ptr<Session>>;

  EventLoop(std::uint32_t index, const GatewayContext& ctx);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Start();
  // Lets the loop's thread end once its sessions are gone, or at the
  // deadline at the latest, and waits for it.
  void StopAndJoin(std::chrono::milliseconds deadline);

  // Starts a graceful drain of this loop: its connections are closed with
  // 1001, oldest first, `per_second` at most, including any adopted later;
  // connections already closing are left to finish. Any thread.
  void BeginDrain(double per_second);

  // Connections (any state) the loop holds. Any thread.
  std::size_t connection_count() const { return connection_count_.load(std::memory_order_relaxed); }

  std::uint32_t index() const { return index_; }
  // True on the loop's own thread, inside its run (WSG_ASSERT_ON_LOOP).
  bool running_on_loop() const { return executor_.running_in_this_thread(); }
  // Per-message counters; only the loop's thread counts here.
  metrics::LoopCounters& counters() { return counters_; }
  boost::asio::io_context& io_context() { return io_context_; }
  // zlib state shared by the loop's compressed connections.
  LoopCompression& compression() { return compression_; }
  // Where sessions read into: only a partial frame is copied out of it into
  // a session's own buffer, so an idle connection holds no read buffer.
  std::span<char> read_scratch() { return read_scratch_; }

  // Runs `work` on the loop's thread.
  template <typename Work>
  void Post(Work&& work) {
    boost::asio::post(io_context_, std::forward<Work>(work));
  }

  // ---- Loop thread only -----------------------------------------------
  // Takes an accepted connection with its admission under the connection
  // limits (refused ones are answered, then closed).
  void Adopt(LoopSocket&& socket, ConnectionLimits::Admission admission);
  void Unregister(std::uint64_t counter);
  Session* Find(std::uint64_t counter) const;
  const Registry& sessions() const { return sessions_; }

  // Queue events for the backend; the loop hands everything queued to the
  // backend link at once, already in wire form, at the end of the pass or,
  // under load, backend_batch_interval after its previous hand-over.
  // `backend` is the Route::backend_index of the connection.
  void SubmitEvent(std::size_t backend, const v1::Event& event);
  void SubmitOpen(std::size_t backend, std::string_view connection_id, std::uint64_t sequence, std::string_view path,
                  std::string_view query, std::string_view remote_address, std::span<const HeaderField> headers,
                  const OpenNegotiation& negotiated);
  void SubmitMessage(std::size_t backend, std::string_view connection_id, std::uint64_t sequence, v1::Opcode opcode,
                     std::string_view payload);

  // A backend link acknowledged everything it was given: small batches
  // waiting for that go now.
  void OnBackendSettled();

  // Keeps a session whose reads wait for the backend buffer to drain.
  void Park(std::shared_ptr<Session> session);
  void ResumeParked();

  // Keeps a session whose reads wait for its rate limits until `until`,
  // then lets it read on (Session::EndThrottle). One timer per loop.
  void Throttle(std::shared_ptr<Session> session, std::chrono::steady_clock::time_point until);

 private:
  // Hands the backend's queued events over now if one more event of about
  // `event_bytes` would make them too large for one batch.
  void MakeRoom(std::size_t backend, std::size_t event_bytes);
  void ScheduleFlush();
  // Small batches (request/response traffic) skip the interval when the
  // backend owes nothing.
  bool LastBatchWasSmall() const;
  bool BackendsSettledOrWake();
  void FlushEvents();
  void DrainSome();
  // Waits for the earliest throttled session's time.
  void ArmThrottleTimer();
  void EndThrottles();

  const std::uint32_t index_;
  const GatewayContext& ctx_;
  metrics::LoopCounters& counters_;
  boost::asio::io_context io_context_{1};
  const boost::asio::io_context::executor_type executor_ = io_context_.get_executor();
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  // Set once a stop was asked for: fires at the deadline, cancelled as soon
  // as the last session is gone.
  std::unique_ptr<boost::asio::steady_timer> stop_timer_;

  std::uint64_t last_counter_ = 0;
  Registry sessions_;
  std::atomic<std::size_t> connection_count_{0};
  // While draining: the pace, the last session asked to close, and the
  // timer of the next batch.
  std::optional<DrainPacer> drain_pacer_;
  std::uint64_t drain_cursor_ = 0;
  std::unique_ptr<boost::asio::steady_timer> drain_timer_;
  std::vector<std::shared_ptr<Session>> parked_;
  std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<Session>> throttled_;
  boost::asio::steady_timer throttle_timer_;
  // Events queued for each backend link since the last flush.
  std::vector<EventChunk> outboxes_;
  // Events wait for backend_batch_interval after the last flush.
  boost::asio::steady_timer flush_timer_;
  std::chrono::steady_clock::time_point last_flush_;
  std::size_t last_flush_events_ = 0;
  LoopCompression compression_;
  std::vector<char> read_scratch_;
  bool flush_scheduled_ = false;
};

}  // namespace wsgateway
