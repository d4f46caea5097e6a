// WebSocketSession, the outbound half: what the session decides about a
// frame for the client (whether the connection is open, closing a slow
// consumer) and the writes themselves. The queue's rules (accounting,
// deferral, compression, coalescing, the gather list) are SendQueue's.

#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/runtime/websocket_session.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace net = boost::asio;
using metrics::FrameKind;
using std::chrono::steady_clock;

namespace {

FrameKind ToFrameKind(FrameType type) {
  switch (type) {
    case FrameType::kText:
      return FrameKind::kText;
    case FrameType::kBinary:
      return FrameKind::kBinary;
    case FrameType::kPing:
      return FrameKind::kPing;
    case FrameType::kPong:
      return FrameKind::kPong;
    case FrameType::kClose:
      break;
  }
  return FrameKind::kClose;
}

}  // namespace

WebSocketSession::EnqueueResult WebSocketSession::Enqueue(OutboundFrame frame) {
  if (s_.phase_ != ConnectionPhase::kOpen) return EnqueueResult::kNotActive;
  if (frame.type == FrameType::kClose) {
    RequestClose(frame.close_code, *frame.payload, v1::CLOSED_BY_BACKEND);
    return EnqueueResult::kQueued;
  }
  switch (send_queue_.Enqueue(std::move(frame))) {
    case SendQueue::Result::kQueued:
      break;
    case SendQueue::Result::kQueueFull:
      CloseSlowConsumer();
      return EnqueueResult::kQueueFull;
    case SendQueue::Result::kQueuedReleaseFull:
      // This frame was taken; a message that waited behind it was not.
      CloseSlowConsumer();
      return EnqueueResult::kQueued;
    case SendQueue::Result::kNoMessageToContinue:
      return EnqueueResult::kNoMessageToContinue;
    case SendQueue::Result::kInvalidUtf8:
      return EnqueueResult::kInvalidUtf8;
  }
  DoWrite();
  return EnqueueResult::kQueued;
}

bool WebSocketSession::SendControl(FrameType type, std::string_view payload) {
  if (send_queue_.EnqueueControl(type, payload) == SendQueue::Result::kQueueFull) {
    CloseSlowConsumer();
    return false;
  }
  DoWrite();
  return true;
}

void WebSocketSession::CloseSlowConsumer() {
  s_.ctx_.metrics.slow_consumer_closes().Increment();
  spdlog::debug("closing slow consumer {}: {} bytes queued", s_.id_, send_queue_.unwritten_bytes());
  s_.Abort(1008, "send queue overflow", v1::CLOSED_BY_SERVER);
}

void WebSocketSession::DoWrite() {
  if (s_.writing_ || s_.finished()) return;
  const auto buffers = send_queue_.PrepareWrite();
  if (buffers.empty()) return;
  s_.writing_ = true;
  s_.transport_.With([&](auto& stream) {
    net::async_write(stream, buffers,
                     [self = s_.shared_from_this(), this](beast::error_code ec, std::size_t bytes_written) {
                       OnWrite(ec, bytes_written);
                     });
  });
}

void WebSocketSession::OnWrite(beast::error_code ec, std::size_t) {
  s_.writing_ = false;
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kFrameWrite, ec);
  last_sent_ = steady_clock::now();
  const bool close_written = send_queue_.Complete([this](const OutboundFrame& frame) {
    s_.loop_.counters().Sent(ToFrameKind(frame.type), frame.size());
    if (frame.is_data()) {
      if (frame.fin) ++messages_out_;
      bytes_out_ += frame.size();
    }
  });
  if (close_written) return AfterCloseSent();
  DoWrite();
}

void WebSocketSession::Release() { send_queue_.Clear(); }

}  // namespace wsgateway
