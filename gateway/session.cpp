#include "gateway/session.hpp"

#include <algorithm>

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "gateway/backend_link.hpp"
#include "gateway/connection_id.hpp"
#include "gateway/endpoint.hpp"
#include "gateway/event_loop.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using metrics::FrameKind;

namespace {

// Idle read buffers above this are released, so a connection that once
// got a large message does not keep its memory while idle.
constexpr std::size_t kMaxIdleReadBuffer = 16 * 1024;
// How long a refused client may keep sending before its socket is closed.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Most upgrade requests fit in one read of this size.
constexpr std::size_t kFirstReadBytes = 1024;

metrics::StateLabel ToStateLabel(v1::ConnectionState state) {
  return static_cast<metrics::StateLabel>(static_cast<int>(state) - 1);
}

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

std::string_view ClosedByLabel(v1::ClosedBy by) {
  switch (by) {
    case v1::CLOSED_BY_CLIENT:
      return "client";
    case v1::CLOSED_BY_SERVER:
      return "server";
    case v1::CLOSED_BY_BACKEND:
      return "backend";
    default:
      return "error";
  }
}

google::protobuf::Timestamp ToTimestamp(std::chrono::system_clock::time_point t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

std::string RemoteAddressOf(const LoopSocket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string() : FormatEndpoint(endpoint);
}

}  // namespace

Session::Session(EventLoop& loop, LoopSocket&& socket, std::uint64_t counter, const GatewayContext& ctx)
    : loop_(loop),
      ctx_(ctx),
      ws_(std::move(socket)),
      counter_(counter),
      id_(FormatConnectionId({ctx.epoch, loop.index(), counter})),
      remote_address_(RemoteAddressOf(beast::get_lowest_layer(ws_).socket())),
      connected_at_(std::chrono::system_clock::now()),
      last_activity_(connected_at_) {}

void Session::Start() {
  SetState(v1::CONNECTION_STATE_CONNECTION);
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().set_option(net::ip::tcp::no_delay(true), ignored);
  DoReadRequest();
}

// ---- Handshake -------------------------------------------------------------

void Session::DoReadRequest() {
  beast::get_lowest_layer(ws_).expires_after(ctx_.config.handshake_timeout);
  reading_ = true;
  // The first bytes move the connection from CONNECTION to HANDSHAKE.
  ws_.next_layer().async_read_some(buffer_.prepare(kFirstReadBytes),
                                   beast::bind_front_handler(&Session::OnRequestStarted, shared_from_this()));
}

void Session::OnRequestStarted(beast::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);
  buffer_.commit(bytes);
  SetState(v1::CONNECTION_STATE_HANDSHAKE);
  parser_ = std::make_unique<http::request_parser<http::empty_body>>();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.config.max_handshake_bytes));
  reading_ = true;
  http::async_read(ws_.next_layer(), buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnReadRequest, shared_from_this()));
}

void Session::OnRequestReadFailed(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    return Reject(http::status::request_header_fields_too_large, "header_too_large",
                  "request header larger than max_handshake_bytes");
  }
  // A peer that hangs up mid-request is gone, not refused.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof ||
      ec == net::error::connection_reset) {
    return Finish({1006, "closed before the handshake", v1::CLOSED_BY_CLIENT});
  }
  if (ec == beast::error::timeout) {
    ctx_.metrics.HandshakeRejected("timeout").Increment();
    return Finish({1006, "handshake timeout", v1::CLOSED_BY_SERVER});
  }
  if (ec == net::error::operation_aborted) return Finish(close_info_.value_or(CloseInfo{}));
  Reject(http::status::bad_request, "malformed", "malformed HTTP request");
}

void Session::OnReadRequest(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);

  request_ = std::make_unique<http::request<http::empty_body>>(parser_->release());
  parser_.reset();
  const std::string_view target = request_->target();
  const auto question = target.find('?');
  path_ = std::string(target.substr(0, question));
  if (question != std::string_view::npos) query_ = std::string(target.substr(question + 1));

  if (!websocket::is_upgrade(*request_)) {
    return Reject(http::status::bad_request, "not_websocket",
                  "this endpoint serves WebSocket upgrades only (RFC 6455)");
  }
  if (ctx_.config.reject_upgrades_without_backend && !ctx_.backend.up()) {
    return Reject(http::status::service_unavailable, "backend_unavailable",
                  "no backend is reachable; try again shortly");
  }
  DoAccept();
}

void Session::Reject(http::status status, std::string_view reason_label, std::string body) {
  ctx_.metrics.HandshakeRejected(reason_label).Increment();
  auto response = std::make_shared<http::response<http::string_body>>(status, 11);
  response->set(http::field::server, "wsgateway");
  response->set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::service_unavailable) response->set(http::field::retry_after, "1");
  response->keep_alive(false);
  response->body() = std::move(body) + "\n";
  response->prepare_payload();
  http::async_write(
      ws_.next_layer(), *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
        if (ec) return self->Finish({1006, "handshake rejected", v1::CLOSED_BY_SERVER});
        beast::error_code ignored;
        beast::get_lowest_layer(self->ws_).socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
        beast::get_lowest_layer(self->ws_).expires_after(kLingerTime);
        self->DrainUntilPeerCloses();
      });
}

void Session::DrainUntilPeerCloses() {
  // Closing with unread request bytes would send a reset that can destroy
  // the response before the client reads it (nginx's lingering close).
  reading_ = true;
  buffer_.clear();
  ws_.next_layer().async_read_some(buffer_.prepare(kFirstReadBytes),
                                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                     self->reading_ = false;
                                     if (self->finished_) return;
                                     if (!ec) return self->DrainUntilPeerCloses();
                                     self->Finish({1006, "handshake rejected", v1::CLOSED_BY_SERVER});
                                   });
}

void Session::DoAccept() {
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = ctx_.config.handshake_timeout;
  timeouts.idle_timeout = ctx_.config.idle_timeout.count() > 0
                              ? beast::websocket::stream_base::duration(ctx_.config.idle_timeout)
                              : websocket::stream_base::none();
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& response) { response.set(http::field::server, "wsgateway"); }));
  // The size limit is enforced in OnRead: Beast's own limit fails the
  // connection with a teardown that can reset the socket under a client
  // that is still sending, destroying the 1009 close frame before it is read.
  ws_.read_message_max(0);
  if (ctx_.config.permessage_deflate) {
    websocket::permessage_deflate deflate;
    deflate.server_enable = true;
    ws_.set_option(deflate);
  }
  ws_.auto_fragment(false);
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
    OnControlFrame(kind, std::string_view(payload.data(), payload.size()));
  });
  reading_ = true;
  ws_.async_accept(*request_, beast::bind_front_handler(&Session::OnAccept, shared_from_this()));
}

void Session::OnAccept(beast::error_code ec) {
  reading_ = false;
  if (finished_) return;
  if (ec) {
    const bool bad_version = ec == websocket::error::bad_sec_version;
    ctx_.metrics.HandshakeRejected(bad_version ? "bad_version" : "malformed").Increment();
    return Finish({1006, "handshake failed", v1::CLOSED_BY_SERVER});
  }
  SetState(v1::CONNECTION_STATE_ACTIVE);
  ctx_.metrics.opened().Increment();
  EmitOpen();
  request_.reset();
  DoRead();
}

// ---- Reading ---------------------------------------------------------------

void Session::DoRead() {
  if (finished_ || reading_ || state_ != v1::CONNECTION_STATE_ACTIVE) return;
  reading_ = true;
  // At most one byte past the limit is ever buffered.
  const std::size_t room = ctx_.config.max_message_bytes + 1 - buffer_.size();
  ws_.async_read_some(buffer_, room, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (finished_) return;
  if (ec) return Finish(CloseInfoFor(ec));
  Touch();
  if (buffer_.size() > ctx_.config.max_message_bytes) {
    buffer_.clear();
    buffer_.shrink_to_fit();
    // A close handshake rather than a failed connection: the client reads
    // the 1009 before the socket closes, and Beast drains what it still sends.
    RequestClose(1009, "message too big", v1::CLOSED_BY_SERVER);
    return;
  }
  if (!ws_.is_message_done()) return DoRead();

  const std::size_t bytes = buffer_.size();
  const bool text = ws_.got_text();
  const auto kind = text ? FrameKind::kText : FrameKind::kBinary;
  loop_.counters().Received(kind, bytes);
  ++messages_in_;
  bytes_in_ += bytes;

  loop_.SubmitMessage(id_, next_event_sequence_++, text ? v1::OPCODE_TEXT : v1::OPCODE_BINARY,
                      std::string_view(static_cast<const char*>(buffer_.data().data()), bytes));
  buffer_.consume(bytes);
  if (buffer_.capacity() > kMaxIdleReadBuffer) buffer_.shrink_to_fit();

  if (ctx_.backend.paused()) {
    paused_ = true;
    loop_.Park(shared_from_this());
    return;
  }
  DoRead();
}

void Session::ResumeReading() {
  if (!paused_ || finished_) return;
  paused_ = false;
  DoRead();
}

void Session::OnControlFrame(websocket::frame_type kind, std::string_view payload) {
  Touch();
  FrameKind label = FrameKind::kClose;
  if (kind == websocket::frame_type::ping) label = FrameKind::kPing;
  if (kind == websocket::frame_type::pong) label = FrameKind::kPong;
  loop_.counters().Received(label, payload.size());
  if (kind == websocket::frame_type::close && state_ == v1::CONNECTION_STATE_ACTIVE) {
    SetState(v1::CONNECTION_STATE_CLOSING);
  }
}

Session::CloseInfo Session::CloseInfoFor(beast::error_code ec) const {
  if (close_info_) return *close_info_;
  if (ec == websocket::error::closed) {
    const auto& reason = ws_.reason();
    const std::uint16_t code = reason.code == websocket::close_code::none ? 1005 : reason.code;
    return {code, std::string(reason.reason.data(), reason.reason.size()), v1::CLOSED_BY_CLIENT};
  }
  if (ec == beast::error::timeout) return {1006, "idle timeout", v1::CLOSED_BY_SERVER};
  if (ec == websocket::error::bad_frame_payload) return {1007, "invalid UTF-8 in text message", v1::CLOSED_BY_SERVER};
  if (ec == websocket::condition::protocol_violation) return {1002, "protocol error", v1::CLOSED_BY_SERVER};
  return {1006, ec.message(), v1::CLOSED_BY_ERROR};
}

// ---- Writing ---------------------------------------------------------------

Session::EnqueueResult Session::Enqueue(OutboundFrame frame) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return EnqueueResult::kNotActive;
  const bool queue_empty = queue_head_ == queue_.size();
  if (!queue_empty && queued_bytes_ + frame.size() > ctx_.config.send_queue_max_bytes) {
    ctx_.metrics.slow_consumer_closes().Increment();
    spdlog::debug("closing slow consumer {}: {} bytes queued", id_, queued_bytes_);
    Abort(1008, "send queue overflow", v1::CLOSED_BY_SERVER);
    return EnqueueResult::kQueueFull;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!writing_) DoWrite();
  return EnqueueResult::kQueued;
}

bool Session::RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return false;
  close_info_ = CloseInfo{code, reason, closed_by};
  SetState(v1::CONNECTION_STATE_CLOSING);
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
  beast::get_lowest_layer(ws_).socket().close(ignored);
  // A pending read completes with operation_aborted and finishes the
  // session; without one (paused, or between steps) finish here.
  if (!reading_) Finish(*close_info_);
}

void Session::DoWrite() {
  if (queue_head_ == queue_.size()) {
    queue_.clear();
    queue_head_ = 0;
    if (queue_.capacity() > 16) queue_.shrink_to_fit();
    return;
  }
  writing_ = true;
  const OutboundFrame& frame = queue_[queue_head_];
  auto handler = beast::bind_front_handler(&Session::OnWrite, shared_from_this());
  switch (frame.type) {
    case FrameType::kText:
    case FrameType::kBinary:
      ws_.text(frame.type == FrameType::kText);
      ws_.async_write(net::buffer(*frame.payload), std::move(handler));
      break;
    case FrameType::kPing:
      ws_.async_ping(websocket::ping_data(frame.payload->data(), frame.payload->size()),
                     [handler = std::move(handler)](beast::error_code ec) mutable { handler(ec, 0); });
      break;
    case FrameType::kPong:
      ws_.async_pong(websocket::ping_data(frame.payload->data(), frame.payload->size()),
                     [handler = std::move(handler)](beast::error_code ec) mutable { handler(ec, 0); });
      break;
    case FrameType::kClose:
      ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(frame.close_code), *frame.payload),
                      [handler = std::move(handler)](beast::error_code ec) mutable { handler(ec, 0); });
      break;
  }
}

void Session::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (finished_) return;
  if (ec) {
    // The read side reports the failure; make sure it notices.
    return Abort(1006, ec.message(), v1::CLOSED_BY_ERROR);
  }
  Touch();
  const OutboundFrame& frame = queue_[queue_head_];
  if (frame.type == FrameType::kClose && !reading_) {
    // A paused connection has no read to observe the peer's close reply;
    // async_close read it itself.
    return Finish(close_info_.value_or(CloseInfo{frame.close_code, *frame.payload, v1::CLOSED_BY_SERVER}));
  }
  if (frame.type != FrameType::kClose) {
    const auto kind = ToFrameKind(frame.type);
    loop_.counters().Sent(kind, frame.size());
    if (frame.type == FrameType::kText || frame.type == FrameType::kBinary) {
      ++messages_out_;
      bytes_out_ += frame.size();
    }
    queued_bytes_ -= frame.size();
  }
  queue_[queue_head_] = OutboundFrame{};
  ++queue_head_;
  DoWrite();
}

// ---- Life cycle ------------------------------------------------------------

void Session::Finish(const CloseInfo& info) {
  if (finished_) return;
  finished_ = true;
  // Unregistering may drop the last owner other than this call.
  const auto self = shared_from_this();
  if (opened_) {
    EmitClose(info);
    ctx_.metrics.Closed(info.code, ClosedByLabel(info.closed_by)).Increment();
  }
  SetState(v1::CONNECTION_STATE_UNSPECIFIED);
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  queue_.clear();
  queued_bytes_ = 0;
  request_.reset();
  parser_.reset();
  loop_.Unregister(counter_);
}

void Session::SetState(v1::ConnectionState state) {
  if (state == state_) return;
  if (state_ != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(state_)).Decrement();
  if (state != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(state)).Increment();
  state_ = state;
}

v1::Event Session::NewEvent() {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  return event;
}

void Session::EmitOpen() {
  opened_ = true;
  // Lower-cased names go into one buffer, sized first so views stay valid.
  std::size_t names_size = 0;
  std::size_t count = 0;
  for (const auto& field : *request_) {
    names_size += field.name_string().size();
    ++count;
  }
  std::string names;
  names.reserve(names_size);
  std::vector<HeaderField> headers;
  headers.reserve(count);
  for (const auto& field : *request_) {
    const auto name = field.name_string();
    const std::size_t start = names.size();
    for (const char c : name) names.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    headers.push_back({std::string_view(names).substr(start, name.size()), field.value()});
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const HeaderField& a, const HeaderField& b) { return a.name < b.name; });
  loop_.SubmitOpen(id_, next_event_sequence_++, path_, query_, remote_address_, headers);
}

void Session::EmitClose(const CloseInfo& info) {
  auto event = NewEvent();
  auto* close = event.mutable_close();
  close->set_code(info.code);
  close->set_reason(info.reason);
  close->set_closed_by(info.closed_by);
  loop_.SubmitEvent(event);
}

void Session::Describe(v1::ClientInfo* info) const {
  info->set_connection_id(id_);
  info->set_state(state_);
  info->set_remote_address(remote_address_);
  info->set_path(path_);
  info->set_query(query_);
  info->set_subprotocol(subprotocol_);
  *info->mutable_connected_at() = ToTimestamp(connected_at_);
  *info->mutable_last_activity_at() = ToTimestamp(last_activity_);
  info->set_bytes_in(bytes_in_);
  info->set_bytes_out(bytes_out_);
  info->set_messages_in(messages_in_);
  info->set_messages_out(messages_out_);
  info->set_send_queue_bytes(queued_bytes_);
}

}  // namespace wsgateway
