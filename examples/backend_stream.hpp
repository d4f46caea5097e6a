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
// Messages live on protobuf arenas that are reset, not freed piece by piece:
// the incoming EventBatch on one, reset before each read, and the command
// batches on two that alternate between "pending" and "being written". A
// command then costs no allocation of its own, only its strings' buffers,
// which the echo moves from the event instead of copying.
//
// Reactions may run concurrently on different gRPC threads (OnReadDone and
// OnWriteDone), so the pending batch and the write state sit behind a mutex;
// the handler runs under it, so keep handlers short. Start* calls are made
// with the mutex released: gRPC may run a reaction inline from inside them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include <google/protobuf/arena.h>
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

// A message of type M on an arena of its own. Reset() frees the message and
// everything in it at once and starts an empty one; the arena keeps its
// first block, so a steady stream allocates nothing for its messages.
template <typename M>
class ArenaMessage {
 public:
  ArenaMessage() : arena_(Options(first_block_)) { message_ = google::protobuf::Arena::CreateMessage<M>(&arena_); }
  ArenaMessage(const ArenaMessage&) = delete;
  ArenaMessage& operator=(const ArenaMessage&) = delete;

  M& get() { return *message_; }
  void Reset() {
    arena_.Reset();
    message_ = google::protobuf::Arena::CreateMessage<M>(&arena_);
  }

 private:
  static constexpr std::size_t kFirstBlock = 64 * 1024;
  static google::protobuf::ArenaOptions Options(char (&block)[kFirstBlock]) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof block;
    return options;
  }

  alignas(std::max_align_t) char first_block_[kFirstBlock];
  google::protobuf::Arena arena_;
  M* message_;
};

// A batch with neither commands nor an ack has nothing worth writing.
inline bool has_content(const CommandBatch& batch) { return batch.ack() != 0 || batch.commands_size() > 0; }

// One gateway's event stream. Deletes itself in OnDone.
template <EventHandler Handler>
class EventStream final : public grpc::ServerBidiReactor<EventBatch, CommandBatch> {
 public:
  EventStream(grpc::CallbackServerContext* context, Handler& handler)
      : context_(context), handler_(handler), peer_(context->peer()) {
    spdlog::info("event stream from {} started", peer_);
    StartRead(&incoming_.get());
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
    bool write = false;
    {
      std::lock_guard lock(mutex_);
      handle_locked(incoming_.get());
      write = claim_write_locked();
    }
    if (write) StartWrite(&outgoing_->get());
    incoming_.Reset();
    StartRead(&incoming_.get());
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
      outgoing_->Reset();
      writing_ = false;
      write_failed_ = write_failed_ || !ok;
      write_next = claim_write_locked();
      finish = !write_next && claim_finish_locked();
    }
    if (write_next) StartWrite(&outgoing_->get());
    if (finish) Finish(grpc::Status::OK);
  }

  void OnCancel() override { spdlog::debug("event stream from {} cancelled", peer_); }

  void OnDone() override {
    spdlog::info("event stream from {} ended", peer_);
    delete this;
  }

 private:
  // Runs the handler on every event of the batch, straight into the pending
  // batch, and acknowledges the batch in it.
  void handle_locked(EventBatch& batch) {
    auto& pending = pending_->get();
    for (auto& event : *batch.mutable_events()) handler_(event, pending);
    pending.set_ack(std::max(pending.ack(), batch.batch_sequence()));
  }

  // If nothing is being written and something is pending, makes the pending
  // batch the outgoing one (the two arenas trade places) and returns true:
  // the caller must start writing it.
  bool claim_write_locked() {
    if (writing_ || write_failed_ || !has_content(pending_->get())) return false;
    std::swap(pending_, outgoing_);
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

  ArenaMessage<EventBatch> incoming_;  // Owned by the outstanding read.

  std::mutex mutex_;
  ArenaMessage<CommandBatch> batches_[2];
  ArenaMessage<CommandBatch>* pending_ = &batches_[0];   // Collected while a write is in flight.
  ArenaMessage<CommandBatch>* outgoing_ = &batches_[1];  // Owned by the write in flight; stable until OnWriteDone.
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
