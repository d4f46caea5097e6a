// WebSocketSession: the WebSocket life of a connection. Opening, reading
// (readiness, the loop's scratch buffer, MessageReader items), rates and
// pending bytes, the heartbeat, the close handshake and teardown, and the
// events to the backend. Writing is in websocket_session_write.cpp; I/O
// errors go to Session::Fail.

#include "gateway/runtime/websocket_session.hpp"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "gateway/backend/backend_link.hpp"
#include "gateway/runtime/connection_observer.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/session.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace fc = frame_codec;
using metrics::FrameKind;
using std::chrono::steady_clock;

namespace {

// A partial-frame buffer above this is released once empty.
constexpr std::size_t kKeptBufferBytes = 4 * 1024;
// Reads in a row before a busy connection lets the others run.
constexpr int kReadsPerTurn = 4;

}  // namespace

WebSocketSession::WebSocketSession(Session& session, WebSocketHandover&& handover)
    : s_(session),
      buffer_(std::move(handover.buffer)),
      reader_(std::move(handover.reader)),
      subprotocol_(std::move(handover.subprotocol)),
      extensions_(std::move(handover.extensions)),
      send_queue_({.max_bytes = session.ctx_.config.send_queue_max_bytes,
                   .compression_threshold = session.ctx_.config.compression_threshold}) {
  if (handover.deflate_window_bits != 0) {
    send_queue_.EnableCompression(session.loop_.compression(), handover.deflate_window_bits);
  }
}

void WebSocketSession::Open(const HttpRequest& request) {
  s_.SetPhase(ConnectionPhase::kOpen);
  s_.ctx_.metrics.opened().Increment();
  EmitOpen(request);
  if (s_.ctx_.observer != nullptr) s_.ctx_.observer->Opened(s_.id_, s_.route_->backend_index);
  if (s_.ctx_.config.ping_interval.count() > 0) {
    s_.ArmTimer(s_.ctx_.config.ping_interval);
  } else {
    s_.CancelTimer();
  }
  beast::error_code ignored;
  s_.socket_.non_blocking(true, ignored);
  // Frames the client sent right behind its request are already here.
  if (buffer_.size() > 0 && !ProcessBuffered()) return;
  DoWrite();
  WaitReadable();
}

// ---- Reading ---------------------------------------------------------------

void WebSocketSession::WaitReadable() {
  if (s_.finished() || s_.reading_ || paused_ || throttled_) return;
  s_.reading_ = true;
  if (s_.transport_.tls()) return ReadTls();
  s_.socket_.async_wait(net::socket_base::wait_read,
                        [self = s_.shared_from_this(), this](beast::error_code ec) { OnReadable(ec); });
}

void WebSocketSession::OnReadable(beast::error_code ec) {
  s_.reading_ = false;
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kFrameRead, ec);
  ReadAvailable();
}

void WebSocketSession::ReadAvailable() {
  for (int round = 0; round < kReadsPerTurn; ++round) {
    bool into_scratch = false;
    const auto space = ReadSpace(s_.loop_.read_scratch(), into_scratch);
    beast::error_code ec;
    const std::size_t bytes = s_.socket_.read_some(space, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return WaitReadable();
    if (ec) return s_.Fail(Session::IoStep::kFrameRead, ec);
    if (!OnBytesRead(static_cast<char*>(space.data()), bytes, into_scratch) || s_.finished()) return;
    // A short read drained the socket: wait rather than read into EAGAIN.
    if (bytes < space.size()) return WaitReadable();
  }
  s_.reading_ = true;
  net::post(s_.socket_.get_executor(), [self = s_.shared_from_this(), this] {
    s_.reading_ = false;
    if (!s_.finished()) ReadAvailable();
  });
}

void WebSocketSession::ReadTls() {
  bool into_own = false;
  const auto space = ReadSpace(s_.transport_.tls_read_buffer(), into_own);
  s_.transport_.tls_stream().async_read_some(
      space, [self = s_.shared_from_this(), this, into_own](beast::error_code ec, std::size_t bytes) {
        OnTlsRead(ec, bytes, into_own);
      });
}

void WebSocketSession::OnTlsRead(beast::error_code ec, std::size_t bytes, bool into_own_buffer) {
  s_.reading_ = false;
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kFrameRead, ec);
  char* data = into_own_buffer ? s_.transport_.tls_read_buffer().data() : nullptr;
  if (!OnBytesRead(data, bytes, into_own_buffer) || s_.finished()) return;
  WaitReadable();
}

net::mutable_buffer WebSocketSession::ReadSpace(std::span<char> own, bool& into_own) {
  if (DiscardsInput(s_.phase_) && buffer_.size() > 0) buffer_ = beast::flat_buffer();
  into_own = buffer_.size() == 0;
  if (into_own) return net::buffer(own.data(), own.size());
  return buffer_.prepare(std::max<std::size_t>(16 * 1024, buffer_.size()));
}

bool WebSocketSession::OnBytesRead(char* data, std::size_t bytes, bool into_own) {
  // Without into_own the bytes are in buffer_'s prepared space, and `data`
  // is not used.
  s_.last_received_ = steady_clock::now();
  if (DiscardsInput(s_.phase_)) return true;
  bool go_on = true;
  if (into_own) {
    go_on = ProcessScratch(data, bytes);
  } else {
    buffer_.commit(bytes);
    go_on = ProcessBuffered();
  }
  return AccountPendingBytes() && go_on;
}

bool WebSocketSession::AccountPendingBytes() {
  const auto& ctx = s_.ctx_;
  if (ctx.pending_message_bytes == nullptr) return true;
  const std::size_t held = DiscardsInput(s_.phase_) || !reader_ ? 0 : buffer_.size() + reader_->held_bytes();
  if (held == pending_bytes_) return true;
  auto& total = *ctx.pending_message_bytes;
  if (held < pending_bytes_) {
    const std::size_t freed = pending_bytes_ - held;
    total.fetch_sub(freed, std::memory_order_relaxed);
    ctx.metrics.pending_message_bytes().Decrement(static_cast<double>(freed));
    pending_bytes_ = held;
    return true;
  }
  const std::size_t grown = held - pending_bytes_;
  if (total.fetch_add(grown, std::memory_order_relaxed) + grown > ctx.config.pending_messages_max_bytes) {
    total.fetch_sub(grown, std::memory_order_relaxed);
    ctx.metrics.pending_messages_closes().Increment();
    spdlog::warn("closing {} with 1013: unfinished messages of all connections would pass pending_messages_max_bytes",
                 s_.id_);
    FailConnection(1013, "too much data in unfinished messages; try again later");
    // Discarding now: gives back what it held.
    AccountPendingBytes();
    return false;
  }
  ctx.metrics.pending_message_bytes().Increment(static_cast<double>(grown));
  pending_bytes_ = held;
  return true;
}

bool WebSocketSession::ProcessScratch(char* data, std::size_t size) {
  bool go_on = true;
  const std::size_t consumed = ProcessFrames(data, size, go_on);
  // Keep the start of a frame that has not fully arrived (or input left
  // while reads are paused); never anything after a close.
  if (consumed < size && !DiscardsInput(s_.phase_)) {
    const auto rest = size - consumed;
    net::buffer_copy(buffer_.prepare(rest), net::buffer(data + consumed, rest));
    buffer_.commit(rest);
  }
  return go_on;
}

bool WebSocketSession::ProcessBuffered() {
  bool go_on = true;
  const std::size_t consumed = ProcessFrames(static_cast<char*>(buffer_.data().data()), buffer_.size(), go_on);
  buffer_.consume(consumed);
  if (buffer_.size() == 0 && buffer_.capacity() > kKeptBufferBytes) buffer_ = beast::flat_buffer();
  return go_on;
}

std::size_t WebSocketSession::ProcessFrames(char* data, std::size_t size, bool& go_on) {
  std::size_t offset = 0;
  go_on = true;
  while (go_on && !DiscardsInput(s_.phase_)) {
    const auto item = reader_->Next(data + offset, size - offset);
    offset += item.consumed;
    if (item.kind == MessageReader::Kind::kNeedMore) break;
    go_on = OnItem(item);
  }
  return offset;
}

bool WebSocketSession::OnItem(const MessageReader::Item& item) {
  switch (item.kind) {
    case MessageReader::Kind::kMessage:
      return OnMessage(item);
    case MessageReader::Kind::kPing:
      return OnPing(item.payload) && WithinRates(item.payload.size());
    case MessageReader::Kind::kPong:
      s_.loop_.counters().Received(FrameKind::kPong, item.payload.size());
      if (s_.route_->options.forward_pong_frames) EmitControlFrame(v1::OPCODE_PONG, item.payload);
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

bool WebSocketSession::OnMessage(const MessageReader::Item& item) {
  const bool text = item.opcode == fc::kText;
  s_.loop_.counters().Received(text ? FrameKind::kText : FrameKind::kBinary, item.payload.size());
  ++messages_in_;
  bytes_in_ += item.payload.size();
  s_.loop_.SubmitMessage(s_.route_->backend_index, s_.id_, s_.next_event_sequence_++,
                         text ? v1::OPCODE_TEXT : v1::OPCODE_BINARY, item.payload);
  bool go_on = WithinRates(item.payload.size());
  if (s_.backend().paused()) {
    paused_ = true;
    s_.loop_.Park(s_.shared_from_this());
    go_on = false;
  }
  return go_on;
}

bool WebSocketSession::WithinRates(std::size_t bytes) {
  const Config& config = s_.ctx_.config;
  if (config.client_message_rate == 0 && config.client_byte_rate == 0) return true;
  // The time of the read that brought these bytes: no clock call per message.
  const auto now = s_.last_received_;
  auto wait = steady_clock::duration::zero();
  if (config.client_message_rate != 0) {
    wait = message_rate_.Draw(1, static_cast<double>(config.client_message_rate),
                              static_cast<double>(config.client_message_burst), now);
    if (wait > steady_clock::duration::zero()) s_.ctx_.metrics.throttled_messages().Increment();
  }
  if (config.client_byte_rate != 0) {
    const auto byte_wait = byte_rate_.Draw(static_cast<double>(bytes), static_cast<double>(config.client_byte_rate),
                                           static_cast<double>(config.client_byte_burst), now);
    if (byte_wait > steady_clock::duration::zero()) s_.ctx_.metrics.throttled_bytes().Increment();
    wait = std::max(wait, byte_wait);
  }
  if (wait == steady_clock::duration::zero()) return true;
  // Not read until the buckets refill: TCP slows the client down, and what
  // it already sent stays buffered here, in order.
  throttled_ = true;
  s_.loop_.Throttle(s_.shared_from_this(), now + wait);
  return false;
}

bool WebSocketSession::OnPing(std::string_view payload) {
  s_.loop_.counters().Received(FrameKind::kPing, payload.size());
  if (s_.route_->options.forward_ping_frames) EmitControlFrame(v1::OPCODE_PING, payload);
  // RFC 6455 section 5.5.2: a pong with the ping's payload, unless closing.
  if (s_.phase_ != ConnectionPhase::kOpen) return true;
  return SendControl(FrameType::kPong, payload);
}

void WebSocketSession::ResumeReading() {
  if (!paused_ || s_.finished()) return;
  paused_ = false;
  ContinueReading();
}

void WebSocketSession::EndThrottle() {
  if (!throttled_ || s_.finished()) return;
  throttled_ = false;
  // The rates charge what is still buffered at the time it is processed.
  s_.last_received_ = steady_clock::now();
  ContinueReading();
}

void WebSocketSession::ContinueReading() {
  if (paused_ || throttled_ || s_.finished()) return;
  if (buffer_.size() > 0 && !ProcessBuffered()) return;
  if (!AccountPendingBytes() || s_.finished()) return;
  WaitReadable();
}

// ---- Heartbeat -----------------------------------------------------------------

void WebSocketSession::OnHeartbeat() {
  const auto interval = s_.ctx_.config.ping_interval;
  // A handshake timer that expired just before the upgrade lands here.
  if (s_.phase_ != ConnectionPhase::kOpen || interval.count() <= 0) return;
  const auto now = steady_clock::now();
  // Only a pong wait arms the timer with a ping newer than the last read.
  if (s_.last_received_ < ping_sent_at_) {
    s_.ctx_.metrics.heartbeat_timeouts().Increment();
    spdlog::debug("connection {} sent nothing within pong_timeout of a ping", s_.id_);
    return s_.Abort(1006, "no pong within pong_timeout", v1::CLOSED_BY_SERVER);
  }
  const auto silent = now - s_.last_received_;
  if (silent < interval) return s_.ArmTimer(interval - silent);
  ping_sent_at_ = now;
  if (!SendControl(FrameType::kPing, {})) return;
  s_.ArmTimer(s_.ctx_.config.pong_timeout);
}

// ---- Close handshake and teardown ------------------------------------------------

bool WebSocketSession::RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (s_.phase_ != ConnectionPhase::kOpen) return false;
  s_.close_info_ = CloseInfo{code, reason, closed_by};
  s_.SetPhase(ConnectionPhase::kCloseQueued);
  send_queue_.DropDeferred();
  send_queue_.QueueClose(MakeCloseFrame(code, std::move(reason)));
  DoWrite();
  return true;
}

void WebSocketSession::OnClientClose(std::uint16_t code, std::string_view reason) {
  s_.loop_.counters().Received(FrameKind::kClose, reason.size() + (code == 1005 ? 0 : 2));
  if (s_.route_->options.forward_close_frames) EmitCloseFrame(code, reason);
  if (s_.phase_ == ConnectionPhase::kCloseSent) {
    // The reply to our close: the handshake is complete, and the server
    // closes TCP first (RFC 6455 section 7.1.1); through TLS after
    // close_notify, so the client sees the stream end in order.
    if (s_.transport_.tls()) {
      if (!s_.close_info_) s_.close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT};
      return StartTeardown();
    }
    beast::error_code ignored;
    s_.socket_.close(ignored);
    return s_.Finish(s_.close_info_.value_or(CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT}));
  }
  if (!s_.close_info_) s_.close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT};
  // Our own close may already be queued; it then serves as the reply.
  const bool close_queued = s_.phase_ == ConnectionPhase::kCloseQueued;
  s_.SetPhase(ConnectionPhase::kCloseReceived);
  send_queue_.DropDeferred();
  if (!close_queued) {
    // Echo the code (section 5.5.1); a close without one gets one without.
    const std::uint16_t echo = code == 1005 ? 0 : code;
    send_queue_.QueueClose(MakeCloseFrame(echo, {}));
  }
  s_.ArmTimer(s_.ctx_.config.close_timeout);
  DoWrite();
  WaitReadable();
}

void WebSocketSession::FailConnection(std::uint16_t code, std::string_view reason) {
  spdlog::debug("connection {} failed with {}: {}", s_.id_, code, reason);
  s_.close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_SERVER};
  if (s_.phase_ == ConnectionPhase::kCloseSent) return StartTeardown();
  // Input is over: our close with the failure's code is the last frame.
  s_.SetPhase(ConnectionPhase::kCloseReceived);
  send_queue_.DropUnsent();
  send_queue_.QueueClose(MakeCloseFrame(code, std::string(reason)));
  s_.ArmTimer(s_.ctx_.config.close_timeout);
  DoWrite();
  // Keep reading: a client still sending must not get a reset that
  // destroys the close frame before it reads it.
  WaitReadable();
}

void WebSocketSession::AfterCloseSent() {
  send_queue_.DropUnsent();
  if (s_.phase_ == ConnectionPhase::kCloseReceived) return StartTeardown();
  if (s_.phase_ != ConnectionPhase::kCloseQueued) return;
  // We closed first: wait for the client's close frame.
  s_.SetPhase(ConnectionPhase::kCloseSent);
  s_.ArmTimer(s_.ctx_.config.close_timeout);
}

void WebSocketSession::StartTeardown() {
  // Our FIN after the close frames; reading on to the client's FIN keeps
  // late bytes from turning the close into a reset.
  s_.SetPhase(ConnectionPhase::kTeardown);
  s_.ArmTimer(s_.ctx_.config.close_timeout);
  if (s_.transport_.tls()) return s_.SendCloseNotify();
  beast::error_code ignored;
  s_.socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  WaitReadable();
}

// ---- Events ----------------------------------------------------------------

void WebSocketSession::EmitOpen(const HttpRequest& request) {
  // Lower-cased names go into one buffer, sized first so views stay valid.
  std::size_t names_size = 0;
  std::size_t count = 0;
  for (const auto& field : request) {
    names_size += field.name_string().size();
    ++count;
  }
  std::string names;
  names.reserve(names_size);
  std::vector<HeaderField> headers;
  headers.reserve(count);
  for (const auto& field : request) {
    const auto name = field.name_string();
    const std::size_t start = names.size();
    for (const char c : name) names.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    headers.push_back({std::string_view(names).substr(start, name.size()), field.value()});
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const HeaderField& a, const HeaderField& b) { return a.name < b.name; });
  // As answered in Sec-WebSocket-Extensions, the spelling of ClientInfo too.
  s_.loop_.SubmitOpen(s_.route_->backend_index, s_.id_, s_.next_event_sequence_++, s_.path_, s_.query_,
                      s_.remote_address_, headers, {subprotocol_, extensions_, s_.tags_.metadata(), s_.tags_.groups()});
}

void WebSocketSession::EmitClose(const CloseInfo& info) {
  auto event = s_.NewEvent();
  auto* close = event.mutable_close();
  close->set_code(info.code);
  close->set_reason(info.reason);
  close->set_closed_by(info.closed_by);
  s_.loop_.SubmitEvent(s_.route_->backend_index, event);
}

void WebSocketSession::EmitControlFrame(v1::Opcode opcode, std::string_view payload) {
  auto event = s_.NewEvent();
  auto* frame = event.mutable_control_frame();
  frame->set_opcode(opcode);
  frame->set_payload(payload.data(), payload.size());
  s_.loop_.SubmitEvent(s_.route_->backend_index, event);
}

void WebSocketSession::EmitCloseFrame(std::uint16_t code, std::string_view reason) {
  auto event = s_.NewEvent();
  auto* frame = event.mutable_close_frame();
  frame->set_code(code);
  frame->set_reason(reason.data(), reason.size());
  s_.loop_.SubmitEvent(s_.route_->backend_index, event);
}

void WebSocketSession::Describe(v1::ClientInfo* info) const {
  info->set_subprotocol(subprotocol_);
  if (!extensions_.empty()) info->add_extensions(extensions_);
  info->set_bytes_in(bytes_in_);
  info->set_bytes_out(bytes_out_);
  info->set_messages_in(messages_in_);
  info->set_messages_out(messages_out_);
  info->set_send_queue_bytes(send_queue_.unwritten_bytes());
}

}  // namespace wsgateway
