#pragma once
// The gateway's side of the Backend.Connect event stream: the driver that
// keeps an EventLog (event_log.hpp) flowing over one gRPC stream at a time.
//
// Loops hand their events over in chunks (Submit), already encoded as
// EventBatch fields (event_wire.hpp). The log seals them, without copying
// the bytes, into EventBatch messages; the link writes one at a time on the
// current stream (a BackendStream, backend_stream.hpp) and trims what the
// backend acknowledges. A new stream replays the unacknowledged batches, in
// order. Above backend_buffer_bytes held the link reports paused() and
// loops stop reading from their sockets; below half of it they are
// resumed. Events unacknowledged for backend_event_timeout are given up on
// and their connections closed with 1011. The link also reconnects with
// backoff, watches the channel's readiness and carries the unary calls.
//
// Threads: Submit, SettledOrWakeWhenSettled, Handshake and HandleRequest
// run on loop threads; up(), paused() and target() on any thread; the
// stream's reactions on gRPC's threads; Start, Drain, Stop and the timers
// (reconnect, readiness poll, expiry sweep) on the control thread. One
// mutex guards the log and the stream's state; it is never held while
// calling into gRPC, since gRPC may run a reaction inline, nor while
// calling a hook.

#include <absl/base/thread_annotations.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/backend/backend_stream.hpp"
#include "gateway/backend/event_log.hpp"
#include "gateway/backend/event_wire.hpp"
#include "gateway/backend/stream_preamble.hpp"
#include "gateway/config/config.hpp"
#include "metrics/gateway_metrics.hpp"
#include "wsgateway/v1/backend.grpc.pb.h"

namespace wsgateway {

class BackendLink final : private BackendStream::Listener {
 public:
  struct Hooks {
    // Commands from the backend, in order (called on a gRPC thread). The
    // batch lives on the stream's arena until the call returns; payloads may
    // be moved out of it.
    std::function<void(v1::CommandBatch&)> on_commands;
    // The buffer drained below its low watermark: resume paused reads.
    std::function<void()> on_resume;
    // Events of these connections were given up on: close them with 1011.
    std::function<void(std::vector<std::string>&&)> on_events_lost;
    // Every event submitted so far is acknowledged, and a loop asked to
    // hear of it (SettledOrWakeWhenSettled).
    std::function<void()> on_settled;
    // A snapshot is wanted (a stream came up, or the backend asked): every
    // event loop should list the connections it holds for this link and
    // hand them to AddSnapshotPart with this id. Never under the lock.
    std::function<void(std::uint64_t snapshot_id)> on_snapshot;
    // How many AddSnapshotPart calls make a snapshot whole (the loops).
    std::size_t snapshot_parts = 1;
  };

  // `target` is a gRPC target; empty runs without a backend (events are
  // held until they time out, unary calls fail with UNAVAILABLE).
  // `node_id` names this gateway on every event batch.
  BackendLink(std::string target, std::string node_id, const Config& config, metrics::GatewayMetrics& metrics,
              boost::asio::any_io_executor control, Hooks hooks);
  ~BackendLink();
  BackendLink(const BackendLink&) = delete;
  BackendLink& operator=(const BackendLink&) = delete;

  // Control thread. Starts dialing. Without a configured backend the link
  // stays down.
  void Start();
  // Control thread. Waits until every held event is acknowledged, the
  // stream is down, or `deadline` passed.
  void Drain(std::chrono::milliseconds deadline) ABSL_LOCKS_EXCLUDED(mutex_);
  // Control thread (or the destructor). Cancels the stream and waits for it
  // to end.
  void Stop() ABSL_LOCKS_EXCLUDED(mutex_);

  // Loop threads (or any). Takes a chunk of events and writes it if the
  // stream is idle.
  void Submit(EventChunk&& chunk) ABSL_LOCKS_EXCLUDED(mutex_);

  // Loop threads. One loop's part of snapshot `snapshot_id` (on_snapshot):
  // the connections it holds for this link. Dropped if the stream it was
  // for has ended.
  void AddSnapshotPart(std::uint64_t snapshot_id, std::vector<v1::ClientInfo>&& connections)
      ABSL_LOCKS_EXCLUDED(mutex_);

  // Any thread. Later messages name `node_id` (a fenced node rejoining
  // under a new id).
  void Rename(std::string node_id) ABSL_LOCKS_EXCLUDED(mutex_);

  // Any thread. A mark for every event submitted so far, and whether all
  // of them have left the log since (acknowledged by the backend, or given
  // up on after backend_event_timeout).
  std::uint64_t Mark() const ABSL_LOCKS_EXCLUDED(mutex_);
  bool Reached(std::uint64_t mark) const ABSL_LOCKS_EXCLUDED(mutex_);

  // Loop threads, without the lock. True when the backend has acknowledged
  // every event submitted so far. Otherwise asks for on_settled to run once
  // that becomes true and returns false; when it returns true, one spurious
  // on_settled may follow.
  bool SettledOrWakeWhenSettled();

  bool up() const { return up_.load(std::memory_order_relaxed); }
  const std::string& target() const { return target_; }

  // Unary calls to the backend (the handshake hook, HTTP forwarding),
  // on the stream's channel. `done` runs on a gRPC thread once
  // call->status is set; `call` must stay alive until then.
  template <typename Call>
  void Handshake(std::shared_ptr<Call> call, std::chrono::milliseconds deadline, std::function<void()> done) {
    StartUnary(call, deadline, std::move(done), [this](auto* context, auto* request, auto* response, auto cb) {
      unary_stub_->async()->Handshake(context, request, response, std::move(cb));
    });
  }
  template <typename Call>
  void HandleRequest(std::shared_ptr<Call> call, std::chrono::milliseconds deadline, std::function<void()> done) {
    StartUnary(call, deadline, std::move(done), [this](auto* context, auto* request, auto* response, auto cb) {
      unary_stub_->async()->HandleRequest(context, request, response, std::move(cb));
    });
  }
  bool paused() const { return paused_.load(std::memory_order_relaxed); }

 private:
  // A write chosen under the lock and started after it is released.
  struct PendingWrite {
    BackendStream* stream = nullptr;
    const grpc::ByteBuffer* batch = nullptr;
    void Start() const;
  };

  // What the loops must hear once the lock is released.
  struct Wake {
    bool resume = false;
    bool settled = false;
  };

  // Events given up on (timed out, or in a batch the backend refused),
  // with what the loops must hear.
  struct GivenUp {
    EventLog::GivenUp lost;
    Wake wake;
  };

  template <typename Call, typename Start>
  void StartUnary(std::shared_ptr<Call> call, std::chrono::milliseconds deadline, std::function<void()> done,
                  Start start) {
    if (!unary_stub_) {
      call->status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no backend configured");
      return done();
    }
    call->context.set_deadline(std::chrono::system_clock::now() + deadline);
    start(&call->context, &call->request, &call->response, [call, done = std::move(done)](grpc::Status status) {
      call->status = std::move(status);
      done();
    });
  }

  // Control thread.
  void StartStream() ABSL_LOCKS_EXCLUDED(mutex_);
  void ScheduleReconnect(bool was_up);
  void PollReady() ABSL_LOCKS_EXCLUDED(mutex_);
  void ScheduleSweep();
  void SweepExpired() ABSL_LOCKS_EXCLUDED(mutex_);

  // gRPC threads: reactions of a stream (BackendStream::Listener).
  void OnStreamRead(BackendStream* stream, bool ok, v1::CommandBatch* commands) ABSL_LOCKS_EXCLUDED(mutex_) override;
  void OnStreamWriteDone(BackendStream* stream, bool ok) ABSL_LOCKS_EXCLUDED(mutex_) override;
  void OnStreamDone(BackendStream* stream, const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mutex_) override;
  void OnStreamBroken(BackendStream* stream) ABSL_LOCKS_EXCLUDED(mutex_);
  void OnAcknowledged(std::uint64_t ack) ABSL_LOCKS_EXCLUDED(mutex_);
  // The backend asked for a snapshot (SnapshotCommand).
  void RequestSnapshot() ABSL_LOCKS_EXCLUDED(mutex_);
  v1::EventBatch HelloLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // After the backend refused a batch as too large.
  void GiveUpOversizedBatches(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mutex_);

  PendingWrite TakeNextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // After the log changed: publishes paused(), the settled flag and the
  // gauges, and wakes Drain once the log is empty.
  Wake SyncLocked(bool was_paused) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool ReleasableLocked(BackendStream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Runs the hooks a change asked for; never under the lock.
  void Notify(const Wake& wake) ABSL_LOCKS_EXCLUDED(mutex_);
  // Counts the events lost and closes their connections (1011).
  void ReportGivenUp(GivenUp&& given_up) ABSL_LOCKS_EXCLUDED(mutex_);

  const std::string target_;
  const Config& config_;
  metrics::BackendMetrics backend_metrics_;
  boost::asio::any_io_executor control_;
  Hooks hooks_;
  // Set once by Start; read-only after.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BackendStub> stub_;
  std::unique_ptr<v1::Backend::Stub> unary_stub_;
  // Control thread only.
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer poll_timer_;
  boost::asio::steady_timer sweep_timer_;
  std::chrono::milliseconds backoff_;

  // Written under the mutex, read without it.
  std::atomic<bool> up_{false};
  std::atomic<bool> paused_{false};
  // Written under the mutex, read by loops without it. Sequentially
  // consistent with settle_wanted_: a loop that asks just as the last
  // acknowledgement lands either sees settled_ or is woken.
  std::atomic<bool> settled_{true};
  std::atomic<bool> settle_wanted_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  EventLog log_ ABSL_GUARDED_BY(mutex_);
  // The hello and snapshots, written before the log's batches.
  StreamPreamble preamble_ ABSL_GUARDED_BY(mutex_);
  const std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  // The current stream; a stream ending stays alive until OnDone.
  BackendStream* stream_ ABSL_GUARDED_BY(mutex_) = nullptr;
  // The current stream's channel became ready: writes may start.
  bool ready_ ABSL_GUARDED_BY(mutex_) = false;
  int live_streams_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  // The stream's failure was logged at warn since it was last up; further
  // failed attempts go to debug.
  bool logged_down_ ABSL_GUARDED_BY(mutex_) = false;
  // An acknowledgement past the last batch sent was logged on this stream.
  bool logged_bogus_ack_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace wsgateway
