#pragma once
// The gateway's side of the Backend.Connect event stream.
//
// Loops hand their events over in batches (Submit), already encoded as
// EventBatch fields (event_wire.hpp). The link seals them, without copying
// the bytes, into EventBatch messages, writes one at a time on the current stream and
// keeps every batch until the backend acknowledges it, so batches that were
// in flight when a stream broke are sent again, in order, on the next one.
// Everything held counts against backend_buffer_bytes: above it the link
// reports paused() and loops stop reading from their sockets; below half of
// it they are resumed. Events unacknowledged for backend_event_timeout are
// given up on and their connections closed with 1011.
//
// Thread-safety: Submit, up() and paused() may be called from any thread.
// gRPC reactions run on gRPC's threads; timers run on the control executor.
// One mutex guards the log; it is never held while calling into gRPC, since
// gRPC may run a reaction inline.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/backend/event_wire.hpp"
#include "gateway/config/config.hpp"
#include "metrics/gateway_metrics.hpp"
#include "wsgateway/v1/backend.grpc.pb.h"

namespace wsgateway {

class BackendStream;

class BackendLink {
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
  };

  // `target` is a gRPC target; empty runs without a backend (events are
  // held until they time out, unary calls fail with UNAVAILABLE).
  BackendLink(std::string target, const Config& config, metrics::GatewayMetrics& metrics,
              boost::asio::any_io_executor control, Hooks hooks);
  ~BackendLink();
  BackendLink(const BackendLink&) = delete;
  BackendLink& operator=(const BackendLink&) = delete;

  // Starts dialing. Without a configured backend the link stays down.
  void Start();
  // Waits until every held event is acknowledged, the stream is down, or
  // `deadline` passed.
  void Drain(std::chrono::milliseconds deadline);
  // Cancels the stream and waits for it to end.
  void Stop();

  void Submit(EventChunk&& chunk);

  // True when the backend has acknowledged every event submitted so far.
  // Otherwise asks for on_settled to run once that becomes true and returns
  // false; when it returns true, one spurious on_settled may follow.
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
  friend class BackendStream;

  // One EventBatch in wire form: the batch_sequence field followed by the
  // events of the chunks sealed into it, as slices that own their bytes.
  struct HeldBatch {
    std::uint64_t sequence = 0;
    grpc::ByteBuffer batch;
    std::size_t events = 0;
    std::size_t bytes = 0;
    std::chrono::steady_clock::time_point oldest_event_at;
  };

  // A write chosen under the lock and started after it is released.
  struct PendingWrite {
    BackendStream* stream = nullptr;
    const grpc::ByteBuffer* batch = nullptr;
    void Start() const;
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

  void StartStream();
  // After the backend refused a batch as too large.
  void GiveUpOversizedBatches(const grpc::Status& status);
  void ScheduleReconnect(bool was_up);
  void PollReady();
  void SweepExpired();

  // Events given up on (timed out, or in a batch the backend refused):
  // their connections, and what the loops must hear once the lock is free.
  struct GivenUp {
    std::vector<std::string> connections;
    std::size_t events = 0;
    bool resume = false;
    bool settled = false;
  };
  // Takes a batch's events out of the held counts (the caller drops it).
  void GiveUpLocked(const HeldBatch& held, GivenUp& given_up);
  void AfterGivingUpLocked(GivenUp& given_up);
  // Counts the events lost and closes their connections (1011).
  void ReportGivenUp(GivenUp&& given_up);
  void ScheduleSweep();

  // Reactions of the current stream.
  void OnStreamRead(BackendStream* stream, bool ok, v1::CommandBatch* commands);
  void OnStreamWriteDone(BackendStream* stream, bool ok);
  void OnStreamDone(BackendStream* stream, const grpc::Status& status);

  PendingWrite TakeNextWriteLocked();
  void SealLocked();
  void TrimAcknowledgedLocked();
  // Recomputes settled_; true when the caller must run on_settled.
  bool UpdateSettledLocked();
  // True when this call ended a pause: the caller resumes the loops.
  bool UpdatePauseLocked();
  bool ReleasableLocked(BackendStream* stream);
  void PublishGaugesLocked();

  const std::string target_;
  const Config& config_;
  metrics::BackendMetrics backend_metrics_;
  boost::asio::any_io_executor control_;
  Hooks hooks_;
  std::shared_ptr<grpc::Channel> channel_;
  // Generic on the request side: batches are written as the bytes the loops
  // encoded. Commands arrive as typed messages.
  std::unique_ptr<grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::CommandBatch>> stub_;
  std::unique_ptr<v1::Backend::Stub> unary_stub_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer poll_timer_;
  boost::asio::steady_timer sweep_timer_;

  std::atomic<bool> up_{false};
  std::atomic<bool> paused_{false};
  // Written under the mutex, read by loops without it. Sequentially
  // consistent with settle_wanted_: a loop that asks just as the last
  // acknowledgement lands either sees settled_ or is woken.
  std::atomic<bool> settled_{true};
  std::atomic<bool> settle_wanted_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<HeldBatch> log_;
  // Chunks not yet sealed into a batch, with their sizes.
  struct PendingChunk {
    grpc::Slice slice;
    std::size_t events;
  };
  std::vector<PendingChunk> building_;
  std::chrono::steady_clock::time_point building_since_;
  std::size_t held_bytes_ = 0;
  std::size_t held_events_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_send_sequence_ = 1;
  std::uint64_t acknowledged_ = 0;
  BackendStream* stream_ = nullptr;
  bool ready_ = false;
  bool write_in_flight_ = false;
  std::uint64_t in_flight_sequence_ = 0;
  int live_streams_ = 0;
  bool stopping_ = false;
  std::chrono::milliseconds backoff_;
  bool logged_down_ = false;
  // Largest batch sealed: backend_max_message_bytes, or less once the
  // backend refused a batch as too large.
  std::size_t batch_limit_;
};

}  // namespace wsgateway
