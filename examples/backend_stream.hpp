// The server side of wsgateway.v1.Backend/Connect, shared by the examples.
//
// A backend only decides what to do with one event; EventStream does the
// rest, following the rules of the gRPC callback API:
//
//   * one read is always outstanding, so the gateway is never held back
//     while we write;
//   * at most one write is in flight; whatever the events produce meanwhile
//     is collected into ONE pending CommandBatch, written from OnWriteDone.
//     Under load many event batches share a single stream message, which is
//     what keeps the per-event cost low (a stream message costs an order of
//     magnitude more than an event inside it);
//   * every EventBatch is acknowledged in the same CommandBatch as the
//     commands it caused, so the gateway receives both or neither. After a
//     backend restart it resends exactly the batches whose commands never
//     arrived: every event is acted on once.
//
// Reactions may run concurrently on different gRPC threads (OnReadDone and
// OnWriteDone), so the pending batch and the write state sit behind a mutex.
// Start* calls are made with the mutex released: gRPC may run a reaction
// inline from inside them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "wsgateway/v1/backend.grpc.pb.h"

namespace wsgateway_examples {

using wsgateway::v1::CommandBatch;
using wsgateway::v1::Event;
using wsgateway::v1::EventBatch;

// What a backend does with one event: it may append commands to `commands`
// and may move fields out of `event` (it is not looked at again). The same
// handler serves every stream, so it is called concurrently when several
// gateways are connected.
template <typename H>
concept EventHandler = requires(H& handler, Event& event, CommandBatch& commands) {
  handler(event, commands);
};

// A batch with neither commands nor an ack has nothing worth writing.
inline bool has_content(const CommandBatch& batch) { return batch.ack() != 0 || batch.commands_size() > 0; }

// Moves the commands of `from` to the end of `to` without copying them:
// the Command objects change owner, their payloads stay where they are.
inline void move_commands(CommandBatch& from, CommandBatch& to) {
  to.set_ack(std::max(to.ack(), from.ack()));
  if (to.commands_size() == 0) {
    to.mutable_commands()->Swap(from.mutable_commands());
    return;
  }
  auto* source = from.mutable_commands();
  auto* target = to.mutable_commands();
  for (auto& command : *source) {
    target->Add()->Swap(&command);  // O(1): same arena (none), fields swap.
  }
  source->Clear();
}

// One gateway's event stream. Deletes itself in OnDone.
template <EventHandler Handler>
class EventStream final : public grpc::ServerBidiReactor<EventBatch, CommandBatch> {
 public:
  EventStream(grpc::CallbackServerContext* context, Handler& handler)
      : context_(context), handler_(handler), peer_(context->peer()) {
    spdlog::info("event stream from {} started", peer_);
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The gateway closed its side, or the stream broke. Flush what is
      // pending (the write in flight, if any, will pick it up) and finish.
      bool finish = false;
      {
        std::lock_guard lock(mutex_);
        reads_done_ = true;
        finish = claim_finish_locked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    handle(incoming_);
    if (claim_write_after_staging()) StartWrite(&outgoing_);
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The stream is broken. Cancel it so the outstanding read fails too;
      // the gateway resends the unacknowledged batches on its next stream.
      context_->TryCancel();
    }
    bool write_next = false;
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      outgoing_.Clear();  // Keeps the Command objects around for reuse.
      writing_ = false;
      write_failed_ = write_failed_ || !ok;
      write_next = claim_write_locked();
      finish = !write_next && claim_finish_locked();
    }
    if (write_next) StartWrite(&outgoing_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnCancel() override { spdlog::debug("event stream from {} cancelled", peer_); }

  void OnDone() override {
    spdlog::info("event stream from {} ended", peer_);
    delete this;
  }

 private:
  // Runs the handler on every event of the batch, outside the mutex, into
  // `staged_`, which only the (single) outstanding read touches.
  void handle(EventBatch& batch) {
    for (auto& event : *batch.mutable_events()) handler_(event, staged_);
    staged_.set_ack(batch.batch_sequence());
  }

  // Moves the staged commands and ack into the pending batch. Returns true
  // if the caller must start writing it (no write was in flight).
  bool claim_write_after_staging() {
    std::lock_guard lock(mutex_);
    move_commands(staged_, pending_);
    staged_.Clear();
    return claim_write_locked();
  }

  // If nothing is being written and something is pending, hands the pending
  // batch to the write side (a swap, no copy) and returns true.
  bool claim_write_locked() {
    if (writing_ || write_failed_ || !has_content(pending_)) return false;
    outgoing_.Swap(&pending_);
    writing_ = true;
    return true;
  }

  // Returns true exactly once: when no read or write is outstanding any
  // more and the caller must Finish the stream.
  bool claim_finish_locked() {
    if (!reads_done_ || writing_ || finished_) return false;
    finished_ = true;
    return true;
  }

  grpc::CallbackServerContext* const context_;
  Handler& handler_;
  const std::string peer_;

  EventBatch incoming_;  // Owned by the outstanding read.
  CommandBatch staged_;  // Owned by OnReadDone (only one read at a time).

  std::mutex mutex_;
  CommandBatch pending_;   // Collected while a write is in flight.
  CommandBatch outgoing_;  // Owned by the write in flight; stable until OnWriteDone.
  bool writing_ = false;
  bool write_failed_ = false;
  bool reads_done_ = false;
  bool finished_ = false;
};

// wsgateway.v1.Backend served by `Handler`, one EventStream per gateway.
template <EventHandler Handler>
class BackendService final : public wsgateway::v1::Backend::CallbackService {
 public:
  explicit BackendService(Handler handler) : handler_(std::move(handler)) {}

 private:
  grpc::ServerBidiReactor<EventBatch, CommandBatch>* Connect(grpc::CallbackServerContext* context) override {
    return new EventStream<Handler>(context, handler_);
  }

  Handler handler_;
};

}  // namespace wsgateway_examples
