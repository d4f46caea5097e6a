#include "gateway/backend/backend_stream.hpp"

namespace wsgateway {
namespace {

// The generic stub names the method itself; it must outlive every call.
constexpr char kConnectMethod[] = "/wsgateway.v1.Backend/Connect";

}  // namespace

BackendStream::BackendStream(Listener& listener, BackendStub& stub)
    : listener_(listener), arena_(ArenaOptions(arena_block_)) {
  // Not wait-for-ready: while the backend is unreachable each attempt
  // fails (UNAVAILABLE) and counts in wsgateway_backend_stream_failures_total,
  // so an alert on it fires for a backend that is down from the start;
  // the link's own backoff paces the next attempt.
  context_.set_wait_for_ready(false);
  stub.PrepareBidiStreamingCall(&context_, kConnectMethod, grpc::StubOptions(), this);
  AddHold();
}

void BackendStream::Begin() {
  NextRead();
  StartCall();
}

void BackendStream::OnReadDone(bool ok) {
  listener_.OnStreamRead(this, ok, incoming_);
  if (!ok) return;
  NextRead();
}

void BackendStream::OnDone(const grpc::Status& status) {
  listener_.OnStreamDone(this, status);
  delete this;
}

google::protobuf::ArenaOptions BackendStream::ArenaOptions(char (&block)[kCommandArenaBlock]) {
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = sizeof block;
  return options;
}

void BackendStream::NextRead() {
  arena_.Reset();
  incoming_ = google::protobuf::Arena::CreateMessage<v1::CommandBatch>(&arena_);
  StartRead(incoming_);
}

}  // namespace wsgateway
