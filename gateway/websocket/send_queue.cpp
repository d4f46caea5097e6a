#include "gateway/websocket/send_queue.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "gateway/websocket/loop_compression.hpp"

namespace wsgateway {

namespace net = boost::asio;

SendQueue::SendQueue(const Options& options) : options_(options) {}

void SendQueue::EnableCompression(LoopCompression& compression, int window_bits) {
  compression_ = &compression;
  window_bits_ = window_bits;
}

SendQueue::Result SendQueue::Enqueue(OutboundFrame frame) {
  assert(frame.type != FrameType::kClose);
  if (frame.is_data()) {
    if (frame.continuation && (!fragment_open_ || frame.type != fragment_type_)) {
      return Result::kNoMessageToContinue;
    }
    if (!frame.continuation && fragment_open_) {
      Defer(std::move(frame));
      return Result::kQueued;
    }
    if (frame.type == FrameType::kText && !ContinuesValidText(frame)) return Result::kInvalidUtf8;
    if (frame.fin && !frame.continuation) MaybeCompress(frame);
  }
  return Admit(std::move(frame));
}

SendQueue::Result SendQueue::Admit(OutboundFrame&& frame) {
  // A frame in flight keeps the queue non-empty: only a client that has
  // taken everything gets a frame past the limit.
  if (!empty() && unwritten_bytes() + frame.size() > options_.max_bytes) return Result::kQueueFull;
  if (frame.is_data()) {
    fragment_open_ = !frame.fin;
    fragment_type_ = frame.type;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!fragment_open_ && !deferred_.empty()) return ReleaseDeferred();
  return Result::kQueued;
}

bool SendQueue::ContinuesValidText(const OutboundFrame& frame) {
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

void SendQueue::Defer(OutboundFrame&& frame) {
  deferred_bytes_ += frame.size();
  deferred_.push_back(std::move(frame));
}

void SendQueue::DropDeferred() {
  deferred_bytes_ = 0;
  // Released rather than cleared: deferral is rare, and an idle connection
  // should not keep the storage of a burst.
  std::vector<OutboundFrame>().swap(deferred_);
}

SendQueue::Result SendQueue::ReleaseDeferred() {
  // Each waiting message goes through Enqueue again, in order: compressed
  // and checked now, counted against the limit with what is queued by
  // then, and deferred anew behind a fragmented one among them.
  std::vector<OutboundFrame> released = std::exchange(deferred_, {});
  deferred_bytes_ = 0;
  for (auto& frame : released) {
    switch (Enqueue(std::move(frame))) {
      case Result::kQueued:
        continue;
      case Result::kQueueFull:
      case Result::kQueuedReleaseFull:
        return Result::kQueuedReleaseFull;
      case Result::kNoMessageToContinue:
      case Result::kInvalidUtf8:
        // Unreachable for frames made by MakeOutboundFrame, which checks a
        // first piece as a prefix; the messages behind it go with it.
        return Result::kQueued;
    }
  }
  return Result::kQueued;
}

void SendQueue::MaybeCompress(OutboundFrame& frame) {
  if (window_bits_ == 0 || frame.compress == CompressMode::kNever || frame.size() == 0) return;
  if (frame.compress == CompressMode::kBySize && frame.size() < options_.compression_threshold) return;
  if (auto compressed = compression_->Compress(frame.payload, window_bits_)) {
    frame.payload = std::move(compressed);
    frame.compressed = true;
  }
}

SendQueue::Result SendQueue::EnqueueControl(FrameType type, std::string_view payload) {
  assert(type == FrameType::kPing || type == FrameType::kPong);
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
    return Result::kQueued;
  }
  OutboundFrame frame;
  frame.type = type;
  frame.payload = std::make_shared<const std::string>(payload);
  return Admit(std::move(frame));
}

std::size_t SendQueue::PongsWaitingAtTheBack() const {
  std::size_t pongs = 0;
  for (std::size_t i = queue_.size(); i > queue_head_ + write_count_ && pongs < kPongsBeforeCoalescing; --i) {
    if (queue_[i - 1].type != FrameType::kPong) break;
    ++pongs;
  }
  return pongs;
}

void SendQueue::QueueClose(OutboundFrame close) {
  assert(close.type == FrameType::kClose);
  queue_.push_back(std::move(close));
}

void SendQueue::DropUnsent() {
  const std::size_t keep = queue_head_ + write_count_;
  for (std::size_t i = keep; i < queue_.size(); ++i) {
    // Close frames were never counted.
    if (queue_[i].type != FrameType::kClose) queued_bytes_ -= queue_[i].size();
  }
  queue_.resize(keep);
  DropDeferred();
}

void SendQueue::Clear() {
  queue_.clear();
  queue_head_ = 0;
  write_count_ = 0;
  queued_bytes_ = 0;
  DropDeferred();
  fragment_open_ = false;
  outbound_text_.Reset();
}

std::span<const net::const_buffer> SendQueue::PrepareWrite() {
  write_count_ = 0;
  write_buffers_.clear();
  if (empty()) {
    queue_.clear();
    queue_head_ = 0;
    if (queue_.capacity() > 16) queue_.shrink_to_fit();
    return {};
  }
  const std::size_t available = std::min(queue_.size() - queue_head_, kMaxFramesPerWrite);
  write_headers_.resize(available * kMaxOutboundHeaderBytes);
  write_buffers_.reserve(available * 2);
  std::size_t bytes = 0;
  while (write_count_ < available && bytes < kMaxBytesPerWrite) {
    const OutboundFrame& frame = queue_[queue_head_ + write_count_];
    std::uint8_t* header = write_headers_.data() + write_count_ * kMaxOutboundHeaderBytes;
    const std::size_t header_size = WriteOutboundHeader(frame, header);
    write_buffers_.emplace_back(header, header_size);
    if (frame.size() > 0) write_buffers_.emplace_back(frame.payload->data(), frame.size());
    bytes += header_size + frame.size();
    ++write_count_;
    if (frame.type == FrameType::kClose) break;
  }
  return write_buffers_;
}

bool SendQueue::ReleaseWritten() {
  bool close_written = false;
  for (std::size_t i = 0; i < write_count_; ++i) {
    OutboundFrame& frame = queue_[queue_head_];
    if (frame.type == FrameType::kClose) {
      close_written = true;
    } else {
      queued_bytes_ -= frame.size();
    }
    frame = OutboundFrame{};
    ++queue_head_;
  }
  write_count_ = 0;
  if (close_written) return true;
  // Storage for a few frames is kept, so a connection answering one message
  // at a time does not allocate per write; what a burst grew is given back.
  if (empty() && write_buffers_.capacity() > 2 * kKeptWriteFrames) {
    std::vector<std::uint8_t>().swap(write_headers_);
    std::vector<net::const_buffer>().swap(write_buffers_);
  }
  return false;
}

}  // namespace wsgateway
