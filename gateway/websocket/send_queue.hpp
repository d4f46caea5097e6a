#pragma once
// The sending half of RFC 6455 (with RFC 7692 compression) for one
// connection: what waits to be written to a client, and the gather list of
// the next write. Like MessageReader it never does I/O, so every rule of the
// outbound side is unit-testable; the session owns the socket, the timers
// and the connection state, and calls in here.
//
// What it decides:
// - byte accounting against send_queue_max_bytes, pings and pongs
//   included, close frames not; an empty queue always takes one frame, so
//   a message larger than the limit still goes out to a reading client;
// - pong coalescing (RFC 6455 section 5.5.3) once 16 unwritten pongs wait;
// - fragmented pushes: messages pushed while a fragmented one is open wait
//   for its last piece, and text pieces are checked as one message's UTF-8;
// - permessage-deflate for whole messages, by size or as the push asked;
// - the gather list: frame headers written here, payloads referenced in
//   place (one broadcast payload serves every recipient).
//
// Loop thread only, like the session that owns it. The gather list stays
// valid, and the frames it refers to stay queued, until Complete, or until
// the next PrepareWrite after a failed write.

#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gateway/websocket/outbound_frame.hpp"
#include "gateway/websocket/utf8_validator.hpp"

namespace wsgateway {

class LoopCompression;

class SendQueue {
 public:
  // One write carries at most this many frames or bytes (the frame that
  // crosses the byte bound included), so one busy connection cannot hold
  // its loop for long.
  static constexpr std::size_t kMaxFramesPerWrite = 64;
  static constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
  // Gather storage kept between writes, in frames.
  static constexpr std::size_t kKeptWriteFrames = 4;
  // Unwritten pongs queued one per ping before the newest ping's answer
  // replaces the last of them.
  static constexpr std::size_t kPongsBeforeCoalescing = 16;

  struct Options {
    // send_queue_max_bytes.
    std::size_t max_bytes = 4 * 1024 * 1024;
    // compression_threshold: messages with CompressMode::kBySize smaller
    // than this go out uncompressed.
    std::size_t compression_threshold = 256;
  };

  enum class Result {
    kQueued,
    // The unwritten bytes would pass max_bytes: the frame is refused and
    // the client is a slow consumer (close with 1008).
    kQueueFull,
    // A continuation frame with no fragmented message open, or of another
    // opcode than the open one.
    kNoMessageToContinue,
    // A piece of a fragmented text message after which the message can no
    // longer be valid UTF-8 (or a last piece that ends inside a character);
    // the message stays open for a valid piece.
    kInvalidUtf8,
    // The frame was queued and ended its fragmented message, but a message
    // that waited for that end did not fit: the client is a slow consumer
    // as with kQueueFull, while the frame itself counts as queued. What
    // waited behind the refused message is dropped.
    kQueuedReleaseFull,
  };

  explicit SendQueue(const Options& options);
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // permessage-deflate was agreed: whole messages are deflated with the
  // loop's deflater for a window of `window_bits` (server_max_window_bits).
  // `compression` must outlive this queue.
  void EnableCompression(LoopCompression& compression, int window_bits);

  // Queues a text, binary, ping or pong frame as pushed (a pong pushed by
  // the backend is never coalesced). A message pushed while a fragmented
  // one is open waits for its end, unchecked against the limit until then.
  // Close frames go through QueueClose.
  Result Enqueue(OutboundFrame frame);

  // Queues the gateway's own ping or pong (answering a ping, heartbeats),
  // counted against max_bytes like data. A pong when kPongsBeforeCoalescing
  // unwritten pongs wait at the back replaces the last one's payload.
  // kQueued or kQueueFull.
  Result EnqueueControl(FrameType type, std::string_view payload);

  // Queues a close frame after everything queued, outside the limit and
  // the accounting. The session drops what must not follow it first
  // (DropDeferred, DropUnsent).
  void QueueClose(OutboundFrame close);

  // Drops the messages waiting for the open fragmented message to end.
  void DropDeferred();
  // Drops every frame not part of the write in flight, and the deferred
  // messages.
  void DropUnsent();
  // Drops everything (the connection is gone). The gather list of a write
  // still in flight stays readable; the frames it refers to are released.
  void Clear();

  // The gather list of the next write: header and payload of each pending
  // frame from the oldest, up to kMaxFramesPerWrite frames or past
  // kMaxBytesPerWrite bytes, ending at a close frame. Empty when nothing is
  // pending (the queue's storage is then compacted). Call again only after
  // Complete, or after the write failed (it then starts over from the
  // oldest unwritten frame).
  std::span<const boost::asio::const_buffer> PrepareWrite();

  // The write of the last gather list finished: calls
  // on_written(const OutboundFrame&) for each frame it carried but a close
  // frame (for the counters), then releases them. True when a close frame
  // was written; nothing after it is written then.
  template <typename OnWritten>
  bool Complete(OnWritten&& on_written) {
    for (std::size_t i = queue_head_; i < queue_head_ + write_count_; ++i) {
      if (queue_[i].type != FrameType::kClose) on_written(static_cast<const OutboundFrame&>(queue_[i]));
    }
    return ReleaseWritten();
  }

  // Frames not yet written (including the write in flight).
  bool empty() const { return queue_head_ == queue_.size(); }
  // Bytes of the queued frames, the write in flight included.
  std::size_t queued_bytes() const { return queued_bytes_; }
  // Bytes of the messages waiting for the open fragmented one to end.
  std::size_t deferred_bytes() const { return deferred_bytes_; }
  // What max_bytes limits, and what ClientInfo.send_queue_bytes reports.
  std::size_t unwritten_bytes() const { return queued_bytes_ + deferred_bytes_; }

 private:
  Result Admit(OutboundFrame&& frame);
  void Defer(OutboundFrame&& frame);
  Result ReleaseDeferred();
  // Checks a text frame as part of its message; false when it must be
  // refused. Keeps the open message's UTF-8 state.
  bool ContinuesValidText(const OutboundFrame& frame);
  void MaybeCompress(OutboundFrame& frame);
  // Unwritten pongs at the end of the queue, not in flight (counted up to
  // kPongsBeforeCoalescing).
  std::size_t PongsWaitingAtTheBack() const;
  bool ReleaseWritten();

  const Options options_;
  LoopCompression* compression_ = nullptr;
  int window_bits_ = 0;  // 0: no compression

  // Frames not yet written; [queue_head_, end) are pending, the first
  // write_count_ of them in the write in flight.
  std::vector<OutboundFrame> queue_;
  std::size_t queue_head_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t write_count_ = 0;
  // Headers and buffers of the write in flight.
  std::vector<std::uint8_t> write_headers_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  // Messages pushed while a fragmented one is open wait here for its end.
  std::vector<OutboundFrame> deferred_;
  std::size_t deferred_bytes_ = 0;
  bool fragment_open_ = false;
  FrameType fragment_type_ = FrameType::kText;
  // UTF-8 state of the fragmented text message open towards the client.
  Utf8Validator outbound_text_;
};

}  // namespace wsgateway
