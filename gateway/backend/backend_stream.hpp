#pragma once
// One Backend.Connect call, in the style of gRPC's callback examples: the
// reactor owns the stream and reports its reads, its finished writes and
// its end to a Listener (the BackendLink), which decides what to write.
//
// Deleted in exactly one place, OnDone, right after the listener heard of
// it. The listener holds it open (AddHold at construction, RemoveHold once)
// while it may still start writes on it.
//
// Each CommandBatch is parsed onto an arena that is reset after the batch was
// applied: commands and frames cost no allocation of their own.
//
// Threads: reactions run on gRPC's threads; Begin, Cancel, StartWrite and
// RemoveHold are called by the listener from any thread.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>

#include "wsgateway/v1/backend.grpc.pb.h"

namespace wsgateway {

// Generic on the request side: batches are written as the bytes the loops
// encoded. Commands arrive as typed messages.
using BackendStub = grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::CommandBatch>;

class BackendStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, v1::CommandBatch> {
 public:
  class Listener {
   public:
    // A CommandBatch arrived (ok), or the stream can read no more (!ok).
    virtual void OnStreamRead(BackendStream* stream, bool ok, v1::CommandBatch* commands) = 0;
    virtual void OnStreamWriteDone(BackendStream* stream, bool ok) = 0;
    // Last reaction; the stream is deleted when this returns.
    virtual void OnStreamDone(BackendStream* stream, const grpc::Status& status) = 0;

   protected:
    ~Listener() = default;
  };

  BackendStream(Listener& listener, BackendStub& stub);

  // Starts the call and its first read.
  void Begin();
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { listener_.OnStreamWriteDone(this, ok); }
  void OnDone(const grpc::Status& status) override;

  // The listener's bookkeeping, guarded by the listener's mutex (the
  // BackendLink's mutex_).
  bool dead = false;
  bool hold_released = false;
  bool cancel_pending = false;
  std::chrono::steady_clock::time_point ready_at;

 private:
  // Most command batches fit in the arena's first block, which Reset keeps.
  static constexpr std::size_t kCommandArenaBlock = 16 * 1024;

  static google::protobuf::ArenaOptions ArenaOptions(char (&block)[kCommandArenaBlock]);
  void NextRead();

  Listener& listener_;
  grpc::ClientContext context_;
  alignas(std::max_align_t) char arena_block_[kCommandArenaBlock];
  google::protobuf::Arena arena_;
  v1::CommandBatch* incoming_ = nullptr;
};

}  // namespace wsgateway
