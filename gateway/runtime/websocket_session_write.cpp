// WebSocketSession, the outbound half: the send queue, fragmented pushes
// and their deferral, compression, control frames and pong coalescing, and
// gathered writes. Kept in one file so that an I/O-free send queue can
// replace it as a whole.

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/runtime/websocket_session.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace fc = frame_codec;
using metrics::FrameKind;
using std::chrono::steady_clock;

namespace {

// One write carries at most this many frames or bytes, so one busy
// connection cannot hold the loop for long.
constexpr std::size_t kMaxFramesPerWrite = 64;
constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
// Write storage kept between writes, in frames.
constexpr std::size_t kKeptWriteFrames = 4;
// Unwritten pongs queued one per ping before the newest ping's answer
// replaces the last of them.
constexpr std::size_t kPongsBeforeCoalescing = 16;

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

std::uint8_t WireOpcode(const OutboundFrame& frame) {
  switch (frame.type) {
    case FrameType::kText:
      return frame.continuation ? fc::kContinuation : fc::kText;
    case FrameType::kBinary:
      return frame.continuation ? fc::kContinuation : fc::kBinary;
    case FrameType::kPing:
      return fc::kPing;
    case FrameType::kPong:
      return fc::kPong;
    case FrameType::kClose:
      break;
  }
  return fc::kClose;
}

}  // namespace

WebSocketSession::EnqueueResult WebSocketSession::Enqueue(OutboundFrame frame) {
  if (s_.phase_ != ConnectionPhase::kOpen) return EnqueueResult::kNotActive;
  if (frame.type == FrameType::kClose) {
    RequestClose(frame.close_code, *frame.payload, v1::CLOSED_BY_BACKEND);
    return EnqueueResult::kQueued;
  }
  if (frame.is_data()) {
    if (frame.continuation && (!fragment_open_ || frame.type != fragment_type_)) {
      return EnqueueResult::kNoMessageToContinue;
    }
    if (!frame.continuation && fragment_open_) {
      Defer(std::move(frame));
      return EnqueueResult::kQueued;
    }
    if (frame.type == FrameType::kText && !ContinuesValidText(frame)) return EnqueueResult::kInvalidUtf8;
    if (frame.fin && !frame.continuation) MaybeCompress(frame);
  }
  return Admit(std::move(frame));
}

WebSocketSession::EnqueueResult WebSocketSession::Admit(OutboundFrame&& frame) {
  const bool queue_empty = queue_head_ == queue_.size();
  if (!queue_empty && queued_bytes_ + deferred_bytes_ + frame.size() > s_.ctx_.config.send_queue_max_bytes) {
    s_.ctx_.metrics.slow_consumer_closes().Increment();
    spdlog::debug("closing slow consumer {}: {} bytes queued", s_.id_, queued_bytes_ + deferred_bytes_);
    s_.Abort(1008, "send queue overflow", v1::CLOSED_BY_SERVER);
    return EnqueueResult::kQueueFull;
  }
  if (frame.is_data()) {
    fragment_open_ = !frame.fin;
    fragment_type_ = frame.type;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!fragment_open_ && !deferred_.empty()) ReleaseDeferred();
  if (!s_.writing_) DoWrite();
  return EnqueueResult::kQueued;
}

bool WebSocketSession::ContinuesValidText(const OutboundFrame& frame) {
  // A whole message was checked when it was made (MakeOutboundFrame); the
  // pieces of a fragmented one are checked as one message, so a code point
  // split across them is fine and a bad piece is refused before the client
  // sees it, leaving the message open for a good one.
  if (frame.fin && !frame.continuation) return true;
  Utf8Validator next = frame.continuation ? outbound_text_ : Utf8Validator{};
  const std::string_view bytes = frame.payload ? std::string_view(*frame.payload) : std::string_view{};
  if (!next.Feed(bytes) || (frame.fin && !next.Complete())) return false;
  outbound_text_ = next;
  return true;
}

void WebSocketSession::Defer(OutboundFrame&& frame) {
  deferred_bytes_ += frame.size();
  deferred_.push_back(std::move(frame));
}

std::vector<OutboundFrame> WebSocketSession::TakeDeferred() {
  deferred_bytes_ = 0;
  return std::exchange(deferred_, {});
}

void WebSocketSession::ReleaseDeferred() {
  for (auto& frame : TakeDeferred()) {
    if (Enqueue(std::move(frame)) != EnqueueResult::kQueued) return;
  }
}

void WebSocketSession::MaybeCompress(OutboundFrame& frame) {
  if (deflate_window_bits_ == 0 || frame.compress == CompressMode::kNever || frame.size() == 0) return;
  if (frame.compress == CompressMode::kBySize && frame.size() < s_.ctx_.config.compression_threshold) return;
  if (auto compressed = s_.loop_.compression().Compress(frame.payload, deflate_window_bits_)) {
    frame.payload = std::move(compressed);
    frame.compressed = true;
  }
}

bool WebSocketSession::SendControl(FrameType type, std::string_view payload) {
  // RFC 6455 section 5.5.3 lets an endpoint answer only the latest of
  // several pings. Every ping is answered while a few pongs wait (as the
  // Autobahn suite likes); past that the last waiting pong takes the newer
  // payload, so a client that pings without reading holds a handful of
  // pongs here, not one per ping.
  if (type == FrameType::kPong && PongsWaitingAtTheBack() >= kPongsBeforeCoalescing) {
    OutboundFrame& pending = queue_.back();
    queued_bytes_ -= pending.size();
    pending.payload = std::make_shared<const std::string>(payload);
    queued_bytes_ += pending.size();
    return true;
  }
  OutboundFrame frame;
  frame.type = type;
  frame.payload = std::make_shared<const std::string>(payload);
  // Counted against send_queue_max_bytes like data.
  return Admit(std::move(frame)) == EnqueueResult::kQueued;
}

std::size_t WebSocketSession::PongsWaitingAtTheBack() const {
  std::size_t pongs = 0;
  for (std::size_t i = queue_.size(); i > queue_head_ + write_count_ && pongs < kPongsBeforeCoalescing; --i) {
    if (queue_[i - 1].type != FrameType::kPong) break;
    ++pongs;
  }
  return pongs;
}

void WebSocketSession::DropUnsentFrames() {
  const std::size_t keep = queue_head_ + write_count_;
  for (std::size_t i = keep; i < queue_.size(); ++i) queued_bytes_ -= queue_[i].size();
  queue_.resize(keep);
  TakeDeferred();
}

void WebSocketSession::DoWrite() {
  if (s_.writing_ || s_.finished()) return;
  if (queue_head_ == queue_.size()) {
    queue_.clear();
    queue_head_ = 0;
    if (queue_.capacity() > 16) queue_.shrink_to_fit();
    return;
  }
  const std::size_t available = std::min(queue_.size() - queue_head_, kMaxFramesPerWrite);
  write_headers_.resize(available * fc::kMaxHeaderBytes);
  write_buffers_.clear();
  write_buffers_.reserve(available * 2);
  std::size_t count = 0;
  std::size_t bytes = 0;
  while (count < available && bytes < kMaxBytesPerWrite) {
    const OutboundFrame& frame = queue_[queue_head_ + count];
    auto& header =
        *reinterpret_cast<std::uint8_t(*)[fc::kMaxHeaderBytes]>(write_headers_.data() + count * fc::kMaxHeaderBytes);
    const bool close = frame.type == FrameType::kClose;
    const std::size_t code_bytes = close && frame.close_code != 0 ? 2 : 0;
    std::size_t header_size =
        fc::WriteHeader(frame.fin, frame.compressed, WireOpcode(frame), frame.size() + code_bytes, header);
    if (code_bytes != 0) {
      header[header_size++] = static_cast<std::uint8_t>(frame.close_code >> 8);
      header[header_size++] = static_cast<std::uint8_t>(frame.close_code);
    }
    write_buffers_.emplace_back(header, header_size);
    if (frame.size() > 0) write_buffers_.emplace_back(frame.payload->data(), frame.size());
    bytes += header_size + frame.size();
    ++count;
    if (close) break;
  }
  write_count_ = count;
  s_.writing_ = true;
  s_.transport_.With([&](auto& stream) {
    net::async_write(stream, write_buffers_,
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
  bool close_written = false;
  for (std::size_t i = 0; i < write_count_; ++i) {
    OutboundFrame& frame = queue_[queue_head_];
    if (frame.type == FrameType::kClose) {
      close_written = true;
    } else {
      s_.loop_.counters().Sent(ToFrameKind(frame.type), frame.size());
      if (frame.is_data()) {
        if (frame.fin) ++messages_out_;
        bytes_out_ += frame.size();
      }
      queued_bytes_ -= frame.size();
    }
    frame = OutboundFrame{};
    ++queue_head_;
  }
  write_count_ = 0;
  if (close_written) return AfterCloseSent();
  // Storage for a few frames is kept, so a connection answering one message
  // at a time does not allocate per write; what a burst grew is given back.
  if (queue_head_ == queue_.size() && write_buffers_.capacity() > 2 * kKeptWriteFrames) {
    std::vector<std::uint8_t>().swap(write_headers_);
    std::vector<net::const_buffer>().swap(write_buffers_);
  }
  DoWrite();
}

void WebSocketSession::Release() {
  queue_.clear();
  deferred_.clear();
  queued_bytes_ = 0;
}

}  // namespace wsgateway
