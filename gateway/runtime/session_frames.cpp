// Session, part three: frames. Reading (readiness, the loop's scratch
// buffer, MessageReader items, the client's close and protocol failures) and
// writing (the send queue, fragmented pushes, compression, gathered writes).

#include "gateway/runtime/session.hpp"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/backend/backend_link.hpp"
#include "gateway/runtime/event_loop.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace fc = frame_codec;
using metrics::FrameKind;
using std::chrono::steady_clock;

namespace {

// A partial-frame buffer above this is released once empty.
constexpr std::size_t kKeptBufferBytes = 4 * 1024;
// One write carries at most this many frames or bytes, so one busy
// connection cannot hold the loop for long.
constexpr std::size_t kMaxFramesPerWrite = 64;
constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
// Write storage kept between writes, in frames.
constexpr std::size_t kKeptWriteFrames = 4;
// Unwritten pongs queued one per ping before the newest ping's answer
// replaces the last of them.
constexpr std::size_t kPongsBeforeCoalescing = 16;
// Reads in a row before a busy connection lets the others run.
constexpr int kReadsPerTurn = 4;

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

// ---- Reading ---------------------------------------------------------------

void Session::WaitReadable() {
  if (finished_ || reading_ || paused_ || throttled_) return;
  reading_ = true;
  if (transport_.tls()) return ReadTls();
  socket_.async_wait(net::socket_base::wait_read, beast::bind_front_handler(&Session::OnReadable, shared_from_this()));
}

void Session::OnReadable(beast::error_code ec) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnReadError(ec);
  ReadAvailable();
}

void Session::ReadAvailable() {
  for (int round = 0; round < kReadsPerTurn; ++round) {
    bool into_scratch = false;
    const auto space = ReadSpace(loop_.read_scratch(), into_scratch);
    beast::error_code ec;
    const std::size_t bytes = socket_.read_some(space, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return WaitReadable();
    if (ec) return OnReadError(ec);
    if (!OnBytesRead(static_cast<char*>(space.data()), bytes, into_scratch) || finished_) return;
    // A short read drained the socket: wait rather than read into EAGAIN.
    if (bytes < space.size()) return WaitReadable();
  }
  reading_ = true;
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->reading_ = false;
    if (!self->finished_) self->ReadAvailable();
  });
}

void Session::ReadTls() {
  bool into_own = false;
  const auto space = ReadSpace(transport_.tls_read_buffer(), into_own);
  transport_.tls_stream().async_read_some(
      space, [self = shared_from_this(), into_own](beast::error_code ec, std::size_t bytes) {
        self->OnTlsRead(ec, bytes, into_own);
      });
}

void Session::OnTlsRead(beast::error_code ec, std::size_t bytes, bool into_own_buffer) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnReadError(ec);
  char* data = into_own_buffer ? transport_.tls_read_buffer().data() : nullptr;
  if (!OnBytesRead(data, bytes, into_own_buffer) || finished_) return;
  WaitReadable();
}

net::mutable_buffer Session::ReadSpace(std::span<char> own, bool& into_own) {
  if (discarding_ && buffer_.size() > 0) buffer_ = beast::flat_buffer();
  into_own = buffer_.size() == 0;
  if (into_own) return net::buffer(own.data(), own.size());
  return buffer_.prepare(std::max<std::size_t>(16 * 1024, buffer_.size()));
}

bool Session::OnBytesRead(char* data, std::size_t bytes, bool into_own) {
  // Without into_own the bytes are in buffer_'s prepared space, and `data`
  // is not used.
  last_received_ = steady_clock::now();
  if (discarding_) return true;
  bool go_on = true;
  if (into_own) {
    go_on = ProcessScratch(data, bytes);
  } else {
    buffer_.commit(bytes);
    go_on = ProcessBuffered();
  }
  return AccountPendingBytes() && go_on;
}

bool Session::AccountPendingBytes() {
  if (ctx_.pending_message_bytes == nullptr) return true;
  const std::size_t held = finished_ || discarding_ || !reader_ ? 0 : buffer_.size() + reader_->held_bytes();
  if (held == pending_bytes_) return true;
  auto& total = *ctx_.pending_message_bytes;
  if (held < pending_bytes_) {
    const std::size_t freed = pending_bytes_ - held;
    total.fetch_sub(freed, std::memory_order_relaxed);
    ctx_.metrics.pending_message_bytes().Decrement(static_cast<double>(freed));
    pending_bytes_ = held;
    return true;
  }
  const std::size_t grown = held - pending_bytes_;
  if (total.fetch_add(grown, std::memory_order_relaxed) + grown > ctx_.config.pending_messages_max_bytes) {
    total.fetch_sub(grown, std::memory_order_relaxed);
    ctx_.metrics.pending_messages_closes().Increment();
    spdlog::warn("closing {} with 1013: unfinished messages of all connections would pass pending_messages_max_bytes",
                 id_);
    FailConnection(1013, "too much data in unfinished messages; try again later");
    // Discarding now: gives back what it held.
    AccountPendingBytes();
    return false;
  }
  ctx_.metrics.pending_message_bytes().Increment(static_cast<double>(grown));
  pending_bytes_ = held;
  return true;
}

bool Session::ProcessScratch(char* data, std::size_t size) {
  bool go_on = true;
  const std::size_t consumed = ProcessFrames(data, size, go_on);
  // Keep the start of a frame that has not fully arrived (or input left
  // while reads are paused); never anything after a close.
  if (consumed < size && !finished_ && !discarding_) {
    const auto rest = size - consumed;
    net::buffer_copy(buffer_.prepare(rest), net::buffer(data + consumed, rest));
    buffer_.commit(rest);
  }
  return go_on;
}

bool Session::ProcessBuffered() {
  bool go_on = true;
  const std::size_t consumed = ProcessFrames(static_cast<char*>(buffer_.data().data()), buffer_.size(), go_on);
  buffer_.consume(consumed);
  if (buffer_.size() == 0 && buffer_.capacity() > kKeptBufferBytes) buffer_ = beast::flat_buffer();
  return go_on;
}

std::size_t Session::ProcessFrames(char* data, std::size_t size, bool& go_on) {
  std::size_t offset = 0;
  go_on = true;
  while (go_on && !discarding_) {
    const auto item = reader_->Next(data + offset, size - offset);
    offset += item.consumed;
    if (item.kind == MessageReader::Kind::kNeedMore) break;
    go_on = OnItem(item);
  }
  return offset;
}

bool Session::OnItem(const MessageReader::Item& item) {
  switch (item.kind) {
    case MessageReader::Kind::kMessage:
      return OnMessage(item);
    case MessageReader::Kind::kPing:
      return OnPing(item.payload) && WithinRates(item.payload.size());
    case MessageReader::Kind::kPong:
      loop_.counters().Received(FrameKind::kPong, item.payload.size());
      if (route_->options.forward_pong_frames) EmitControlFrame(v1::OPCODE_PONG, item.payload);
      return WithinRates(item.payload.size());
    case MessageReader::Kind::kClose:
      OnClientClose(item.code, item.payload);
      return false;
    case MessageReader::Kind::kFail:
      FailConnection(item.code, item.payload);
      return false;
    case MessageReader::Kind::kNeedMore:
      break;
  }
  return true;
}

bool Session::OnMessage(const MessageReader::Item& item) {
  const bool text = item.opcode == fc::kText;
  loop_.counters().Received(text ? FrameKind::kText : FrameKind::kBinary, item.payload.size());
  ++messages_in_;
  bytes_in_ += item.payload.size();
  loop_.SubmitMessage(route_->backend_index, id_, next_event_sequence_++, text ? v1::OPCODE_TEXT : v1::OPCODE_BINARY,
                      item.payload);
  bool go_on = WithinRates(item.payload.size());
  if (backend().paused()) {
    paused_ = true;
    loop_.Park(shared_from_this());
    go_on = false;
  }
  return go_on;
}

bool Session::WithinRates(std::size_t bytes) {
  const Config& config = ctx_.config;
  if (config.client_message_rate == 0 && config.client_byte_rate == 0) return true;
  // The time of the read that brought these bytes: no clock call per message.
  const auto now = last_received_;
  auto wait = steady_clock::duration::zero();
  if (config.client_message_rate != 0) {
    wait = message_rate_.Draw(1, static_cast<double>(config.client_message_rate),
                              static_cast<double>(config.client_message_burst), now);
    if (wait > steady_clock::duration::zero()) ctx_.metrics.throttled_messages().Increment();
  }
  if (config.client_byte_rate != 0) {
    const auto byte_wait = byte_rate_.Draw(static_cast<double>(bytes), static_cast<double>(config.client_byte_rate),
                                           static_cast<double>(config.client_byte_burst), now);
    if (byte_wait > steady_clock::duration::zero()) ctx_.metrics.throttled_bytes().Increment();
    wait = std::max(wait, byte_wait);
  }
  if (wait == steady_clock::duration::zero()) return true;
  // Not read until the buckets refill: TCP slows the client down, and what
  // it already sent stays buffered here, in order.
  throttled_ = true;
  loop_.Throttle(shared_from_this(), now + wait);
  return false;
}

bool Session::OnPing(std::string_view payload) {
  loop_.counters().Received(FrameKind::kPing, payload.size());
  if (route_->options.forward_ping_frames) EmitControlFrame(v1::OPCODE_PING, payload);
  // RFC 6455 section 5.5.2: a pong with the ping's payload, unless closing.
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return true;
  return SendControl(FrameType::kPong, payload);
}

void Session::ResumeReading() {
  if (!paused_ || finished_) return;
  paused_ = false;
  ContinueReading();
}

void Session::EndThrottle() {
  if (!throttled_ || finished_) return;
  throttled_ = false;
  // The rates charge what is still buffered at the time it is processed.
  last_received_ = steady_clock::now();
  ContinueReading();
}

void Session::ContinueReading() {
  if (paused_ || throttled_ || finished_) return;
  if (buffer_.size() > 0 && !ProcessBuffered()) return;
  if (!AccountPendingBytes() || finished_) return;
  WaitReadable();
}

void Session::OnClientClose(std::uint16_t code, std::string_view reason) {
  loop_.counters().Received(FrameKind::kClose, reason.size() + (code == 1005 ? 0 : 2));
  close_received_ = true;
  discarding_ = true;
  if (route_->options.forward_close_frames) EmitCloseFrame(code, reason);
  if (close_sent_) {
    // The reply to our close: the handshake is complete, and the server
    // closes TCP first (RFC 6455 section 7.1.1); through TLS after
    // close_notify, so the client sees the stream end in order.
    if (transport_.tls()) {
      if (!close_info_) close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT};
      return StartTeardown();
    }
    beast::error_code ignored;
    socket_.close(ignored);
    return Finish(close_info_.value_or(CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT}));
  }
  if (!close_info_) close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT};
  const bool close_queued = state_ == v1::CONNECTION_STATE_CLOSING;
  SetState(v1::CONNECTION_STATE_CLOSING);
  TakeDeferred();
  // Our own close may already be queued; it then serves as the reply.
  if (!close_queued) {
    // Echo the code (section 5.5.1); a close without one gets one without.
    const std::uint16_t echo = code == 1005 ? 0 : code;
    queue_.push_back(MakeCloseFrame(echo, {}));
  }
  ArmTimer(TimerPhase::kCloseReply, ctx_.config.close_timeout);
  if (!writing_) DoWrite();
  WaitReadable();
}

void Session::FailConnection(std::uint16_t code, std::string_view reason) {
  spdlog::debug("connection {} failed with {}: {}", id_, code, reason);
  close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_SERVER};
  discarding_ = true;
  if (close_sent_) return StartTeardown();
  SetState(v1::CONNECTION_STATE_CLOSING);
  DropUnsentFrames();
  queue_.push_back(MakeCloseFrame(code, std::string(reason)));
  ArmTimer(TimerPhase::kCloseReply, ctx_.config.close_timeout);
  if (!writing_) DoWrite();
  // Keep reading: a client still sending must not get a reset that
  // destroys the close frame before it reads it.
  WaitReadable();
}

void Session::OnReadError(beast::error_code ec) {
  // After a close was started the end of the stream is the expected end.
  if (close_info_) return Finish(*close_info_);
  if (ec == net::error::operation_aborted) return Finish(CloseInfo{});
  const bool eof = ec == net::error::eof || ec == net::ssl::error::stream_truncated;
  Finish({1006, eof ? "connection closed without a close frame" : ec.message(), v1::CLOSED_BY_ERROR});
}

// ---- Writing ---------------------------------------------------------------

Session::EnqueueResult Session::Enqueue(OutboundFrame frame) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return EnqueueResult::kNotActive;
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

Session::EnqueueResult Session::Admit(OutboundFrame&& frame) {
  const bool queue_empty = queue_head_ == queue_.size();
  if (!queue_empty && queued_bytes_ + deferred_bytes_ + frame.size() > ctx_.config.send_queue_max_bytes) {
    ctx_.metrics.slow_consumer_closes().Increment();
    spdlog::debug("closing slow consumer {}: {} bytes queued", id_, queued_bytes_ + deferred_bytes_);
    Abort(1008, "send queue overflow", v1::CLOSED_BY_SERVER);
    return EnqueueResult::kQueueFull;
  }
  if (frame.is_data()) {
    fragment_open_ = !frame.fin;
    fragment_type_ = frame.type;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!fragment_open_ && !deferred_.empty()) ReleaseDeferred();
  if (!writing_) DoWrite();
  return EnqueueResult::kQueued;
}

bool Session::ContinuesValidText(const OutboundFrame& frame) {
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

void Session::Defer(OutboundFrame&& frame) {
  deferred_bytes_ += frame.size();
  deferred_.push_back(std::move(frame));
}

std::vector<OutboundFrame> Session::TakeDeferred() {
  deferred_bytes_ = 0;
  return std::exchange(deferred_, {});
}

void Session::ReleaseDeferred() {
  for (auto& frame : TakeDeferred()) {
    if (Enqueue(std::move(frame)) != EnqueueResult::kQueued) return;
  }
}

void Session::MaybeCompress(OutboundFrame& frame) {
  if (deflate_window_bits_ == 0 || frame.compress == CompressMode::kNever || frame.size() == 0) return;
  if (frame.compress == CompressMode::kBySize && frame.size() < ctx_.config.compression_threshold) return;
  if (auto compressed = loop_.compression().Compress(frame.payload, deflate_window_bits_)) {
    frame.payload = std::move(compressed);
    frame.compressed = true;
  }
}

bool Session::SendControl(FrameType type, std::string_view payload) {
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

std::size_t Session::PongsWaitingAtTheBack() const {
  std::size_t pongs = 0;
  for (std::size_t i = queue_.size(); i > queue_head_ + write_count_ && pongs < kPongsBeforeCoalescing; --i) {
    if (queue_[i - 1].type != FrameType::kPong) break;
    ++pongs;
  }
  return pongs;
}

bool Session::RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return false;
  close_info_ = CloseInfo{code, reason, closed_by};
  SetState(v1::CONNECTION_STATE_CLOSING);
  TakeDeferred();
  queue_.push_back(MakeCloseFrame(code, std::move(reason)));
  if (!writing_) DoWrite();
  return true;
}

void Session::Close(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (!RequestClose(code, reason, closed_by)) Abort(code, std::move(reason), closed_by);
}

void Session::Abort(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (finished_) return;
  if (!close_info_) close_info_ = CloseInfo{code, std::move(reason), closed_by};
  if (state_ == v1::CONNECTION_STATE_ACTIVE) SetState(v1::CONNECTION_STATE_CLOSING);
  beast::error_code ignored;
  socket_.close(ignored);
  // A pending read completes with operation_aborted and finishes the
  // session; without one (paused, or between steps) finish here.
  if (!reading_) Finish(*close_info_);
}

void Session::DropUnsentFrames() {
  const std::size_t keep = queue_head_ + write_count_;
  for (std::size_t i = keep; i < queue_.size(); ++i) queued_bytes_ -= queue_[i].size();
  queue_.resize(keep);
  TakeDeferred();
}

void Session::DoWrite() {
  if (writing_ || finished_ || state_ == v1::CONNECTION_STATE_HANDSHAKE || state_ == v1::CONNECTION_STATE_CONNECTION) {
    return;
  }
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
  writing_ = true;
  transport_.With([&](auto& stream) {
    net::async_write(stream, write_buffers_, beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  });
}

void Session::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (finished_) return;
  if (ec) {
    // A failed write after our close is the peer going away: finish with
    // what the close said.
    return Abort(1006, ec.message(), v1::CLOSED_BY_ERROR);
  }
  last_sent_ = steady_clock::now();
  bool close_written = false;
  for (std::size_t i = 0; i < write_count_; ++i) {
    OutboundFrame& frame = queue_[queue_head_];
    if (frame.type == FrameType::kClose) {
      close_written = true;
    } else {
      loop_.counters().Sent(ToFrameKind(frame.type), frame.size());
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

void Session::AfterCloseSent() {
  close_sent_ = true;
  DropUnsentFrames();
  if (close_received_ || discarding_) return StartTeardown();
  // We closed first: wait for the client's close frame.
  ArmTimer(TimerPhase::kCloseReply, ctx_.config.close_timeout);
}

}  // namespace wsgateway
