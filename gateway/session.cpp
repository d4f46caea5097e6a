#include "gateway/session.hpp"

#include <algorithm>

#include <boost/asio/write.hpp>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "gateway/backend_link.hpp"
#include "gateway/connection_id.hpp"
#include "gateway/endpoint.hpp"
#include "gateway/event_loop.hpp"
#include "gateway/group_rules.hpp"
#include "gateway/http_response_rules.hpp"
#include "gateway/permessage_deflate.hpp"
#include "gateway/protocol_rules.hpp"

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
// How long a refused HTTP client may keep sending before its socket closes.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Most upgrade requests fit in one read of this size.
constexpr std::size_t kFirstReadBytes = 1024;
// One write carries at most this many frames or bytes, so one busy
// connection cannot hold the loop for long.
constexpr std::size_t kMaxFramesPerWrite = 64;
constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
// Reads in a row before a busy connection lets the others run.
constexpr int kReadsPerTurn = 4;

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

DeflatePolicy PolicyFrom(const Config& config) {
  DeflatePolicy policy;
  policy.enabled = config.permessage_deflate;
  policy.server_no_context_takeover = true;
  policy.client_no_context_takeover = true;
  return policy;
}

// Request headers for the backend: names lower-cased, in the order received.
void CopyHeaders(const http::request_header<>& request,
                 google::protobuf::RepeatedPtrField<v1::HttpHeader>& headers) {
  for (const auto& field : request) {
    auto* header = headers.Add();
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    header->set_name(std::move(name));
    header->set_value(std::string(field.value()));
  }
}

bool IsConnectionGone(beast::error_code ec) {
  return ec == net::error::eof || ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

}  // namespace

Session::Session(EventLoop& loop, LoopSocket&& socket, std::uint64_t counter, const GatewayContext& ctx)
    : loop_(loop),
      ctx_(ctx),
      socket_(std::move(socket)),
      timer_(loop.io_context().get_executor()),
      counter_(counter),
      id_(FormatConnectionId({ctx.epoch, loop.index(), counter})),
      route_(&ctx.routes.back()),
      remote_address_(RemoteAddressOf(socket_)),
      connected_at_(std::chrono::system_clock::now()),
      last_received_(steady_clock::now()) {}

void Session::Start() {
  SetState(v1::CONNECTION_STATE_CONNECTION);
  beast::error_code ignored;
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
  ArmTimer(TimerPhase::kHandshake, ctx_.config.handshake_timeout);
  ReadRequest();
}

// ---- Handshake -------------------------------------------------------------

void Session::ReadRequest() {
  reading_ = true;
  // The first bytes move the connection from CONNECTION to HANDSHAKE.
  socket_.async_read_some(buffer_.prepare(kFirstReadBytes),
                          beast::bind_front_handler(&Session::OnRequestStarted, shared_from_this()));
}

void Session::OnRequestStarted(beast::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);
  buffer_.commit(bytes);
  SetState(v1::CONNECTION_STATE_HANDSHAKE);
  ReadRequestHeader();
}

void Session::ReadRequestHeader() {
  parser_ = std::make_unique<http::request_parser<http::string_body>>();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.config.max_handshake_bytes));
  parser_->body_limit(ctx_.config.max_request_body_bytes);
  reading_ = true;
  http::async_read_header(socket_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnReadHeader, shared_from_this()));
}

void Session::OnRequestReadFailed(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    return Reject(http::status::request_header_fields_too_large, "header_too_large",
                  "request header larger than max_handshake_bytes");
  }
  if (ec == http::error::body_limit) {
    return Reject(http::status::payload_too_large, "body_too_large", "request body larger than max_request_body_bytes");
  }
  // A peer that hangs up mid-request (or between keep-alive requests) is
  // gone, not refused.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message || IsConnectionGone(ec)) {
    return Finish({1006, "closed before the handshake", v1::CLOSED_BY_CLIENT});
  }
  if (ec == net::error::operation_aborted) return Finish(close_info_.value_or(CloseInfo{}));
  Reject(http::status::bad_request, "malformed", "malformed HTTP request");
}

void Session::OnReadHeader(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);
  ArmTimer(TimerPhase::kHandshake, ctx_.config.handshake_timeout);

  const auto& header = parser_->get();
  const std::string_view target = header.target();
  const auto question = target.find('?');
  path_ = std::string(target.substr(0, question));
  query_ = question == std::string_view::npos ? std::string() : std::string(target.substr(question + 1));
  route_ = &MatchRoute(ctx_.routes, path_);

  if (!IsWebSocketUpgrade(header)) return OnPlainRequestHeader();
  request_ = std::make_unique<HttpRequest>(parser_->release());
  parser_.reset();
  if (const auto refusal = CheckUpgradeRequest(*request_)) {
    return Reject(refusal->status, refusal->reason_label, refusal->message);
  }
  if (ctx_.config.reject_upgrades_without_backend && !backend().up()) {
    return Reject(http::status::service_unavailable, "backend_unavailable",
                  "no backend is reachable; try again shortly");
  }
  if (route_->options.handshake_hook) return CallHandshakeHook();
  Upgrade(SelectSubprotocol(*request_, route_->options.subprotocols), {});
}

void Session::Reject(http::status status, std::string_view reason_label, std::string_view body) {
  ctx_.metrics.HandshakeRejected(reason_label).Increment();
  HttpResponse response{status, 11};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::service_unavailable) response.set(http::field::retry_after, "1");
  // RFC 6455 section 4.4: a version refusal names the versions spoken.
  if (status == http::status::upgrade_required) {
    response.set(http::field::sec_websocket_version, "13");
    response.set(http::field::upgrade, "websocket");
  }
  response.body().assign(body.data(), body.size()).append("\n");
  SendResponse(std::move(response), /*keep_alive=*/false);
}

void Session::SendResponse(HttpResponse&& response, bool keep_alive) {
  response.set(http::field::server, "wsgateway");
  response.keep_alive(keep_alive);
  response.prepare_payload();
  auto shared = std::make_shared<HttpResponse>(std::move(response));
  writing_ = true;
  http::async_write(socket_, *shared, [self = shared_from_this(), shared, keep_alive](beast::error_code ec, std::size_t) {
    self->writing_ = false;
    if (self->finished_) return;
    if (ec) return self->Finish({1006, "HTTP response not delivered", v1::CLOSED_BY_SERVER});
    if (keep_alive) return self->AwaitNextRequest();
    self->LingerAndClose();
  });
}

void Session::LingerAndClose() {
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  ArmTimer(TimerPhase::kTeardown, kLingerTime);
  DrainUntilPeerCloses();
}

void Session::DrainUntilPeerCloses() {
  // Closing with unread request bytes would send a reset that can destroy
  // the response before the client reads it (nginx's lingering close).
  reading_ = true;
  buffer_.clear();
  socket_.async_read_some(buffer_.prepare(kFirstReadBytes), [self = shared_from_this()](beast::error_code ec,
                                                                                         std::size_t) {
    self->reading_ = false;
    if (self->finished_) return;
    if (!ec) return self->DrainUntilPeerCloses();
    self->Finish({1006, "HTTP connection closed", v1::CLOSED_BY_SERVER});
  });
}

// ---- Handshake hook (onHandShake) ---------------------------------------------

void Session::CallHandshakeHook() {
  auto call = std::make_shared<HandshakeCall>();
  auto& request = call->request;
  request.set_connection_id(id_);
  request.set_path(path_);
  request.set_query(query_);
  request.set_remote_address(remote_address_);
  request.set_route(route_->path_prefix);
  CopyHeaders(*request_, *request.mutable_headers());
  const auto [first, last] = request_->equal_range(http::field::sec_websocket_protocol);
  for (auto value = first; value != last; ++value) {
    for (const auto offered : http::token_list(value->value())) {
      request.add_offered_subprotocols(std::string(offered.data(), offered.size()));
    }
  }
  auto& loop = loop_;
  backend().Handshake(call, ctx_.config.handshake_hook_timeout, [self = shared_from_this(), call, &loop] {
    loop.Post([self, call] { self->OnHandshakeDecided(*call); });
  });
}

void Session::OnHandshakeDecided(const HandshakeCall& call) {
  if (finished_) return;
  if (!call.status.ok()) {
    const bool timeout = call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    ctx_.metrics.HandshakeHookFailed(timeout ? "timeout" : "error").Increment();
    spdlog::debug("handshake hook for {} failed: {}", id_, call.status.error_message());
    return Reject(http::status::service_unavailable, "hook_failed",
                  timeout ? "the backend did not decide the upgrade in time"
                          : "the backend could not decide the upgrade");
  }
  const auto& decision = call.response;
  if (decision.has_reject()) return RejectAsDecided(decision.reject());
  std::string headers;
  if (const auto error = CheckDecision(decision, headers); !error.empty()) {
    ctx_.metrics.HandshakeHookFailed("bad_response").Increment();
    spdlog::warn("handshake hook answer for {} refused: {}", id_, error);
    return Reject(http::status::bad_gateway, "hook_failed", "the backend's answer to the upgrade was invalid");
  }
  for (const auto& [key, value] : decision.metadata()) tags_.SetMetadata(key, value);
  for (const auto& group : decision.groups()) tags_.Join(group);
  auto subprotocol = decision.subprotocol().empty() ? SelectSubprotocol(*request_, route_->options.subprotocols)
                                                    : decision.subprotocol();
  Upgrade(std::move(subprotocol), std::move(headers));
}

std::string Session::CheckDecision(const v1::HandshakeResponse& decision, std::string& header_lines) const {
  if (!decision.subprotocol().empty()) {
    const std::vector<std::string> chosen = {decision.subprotocol()};
    if (SelectSubprotocol(*request_, chosen).empty()) {
      return "subprotocol '" + decision.subprotocol() + "' was not offered by the client";
    }
  }
  for (const auto& header : decision.response_headers()) {
    if (const auto error = CheckResponseHeader(header.name(), header.value(), /*upgrade=*/true); !error.empty()) {
      return error;
    }
    header_lines.append(header.name()).append(": ").append(header.value()).append("\r\n");
  }
  if (decision.groups_size() > static_cast<int>(kMaxGroupsPerConnection)) {
    return "more than " + std::to_string(kMaxGroupsPerConnection) + " groups";
  }
  for (int i = 0; i < decision.groups_size(); ++i) {
    if (auto error = CheckGroupName("groups[" + std::to_string(i) + "]", decision.groups(i)); !error.empty()) {
      return error;
    }
  }
  return {};
}

void Session::RejectAsDecided(const v1::HttpResponse& decided) {
  if (decided.status() < 400 || decided.status() > 599) {
    ctx_.metrics.HandshakeHookFailed("bad_response").Increment();
    return Reject(http::status::bad_gateway, "hook_failed", "the backend's answer to the upgrade was invalid");
  }
  HttpResponse response;
  if (const auto error = ToHttpResponse(decided, response); !error.empty()) {
    ctx_.metrics.HandshakeHookFailed("bad_response").Increment();
    spdlog::warn("handshake hook answer for {} refused: {}", id_, error);
    return Reject(http::status::bad_gateway, "hook_failed", "the backend's answer to the upgrade was invalid");
  }
  ctx_.metrics.HandshakeRejected("hook").Increment();
  SendResponse(std::move(response), /*keep_alive=*/false);
}

// ---- Plain HTTP (onRequest / onDisconnect) ------------------------------------

void Session::OnPlainRequestHeader() {
  if (!route_->options.http_forwarding) {
    parser_.reset();
    return Reject(http::status::bad_request, "not_websocket",
                  "this endpoint serves WebSocket upgrades only (RFC 6455)");
  }
  if (http::token_list(parser_->get()[http::field::expect]).exists("100-continue")) {
    // Clients that ask wait for this before they send the body.
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    beast::error_code ignored;
    net::write(socket_, net::buffer(kContinue), ignored);
  }
  reading_ = true;
  http::async_read(socket_, buffer_, *parser_, beast::bind_front_handler(&Session::OnReadBody, shared_from_this()));
}

void Session::OnReadBody(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);
  request_ = std::make_unique<HttpRequest>(parser_->release());
  parser_.reset();
  ++http_requests_;
  auto call = std::make_shared<HttpCall>();
  auto& request = call->request;
  request.set_connection_id(id_);
  request.set_method(std::string(request_->method_string()));
  request.set_path(path_);
  request.set_query(query_);
  request.set_remote_address(remote_address_);
  CopyHeaders(*request_, *request.mutable_headers());
  request.set_body(std::move(request_->body()));
  auto& loop = loop_;
  backend().HandleRequest(call, ctx_.config.http_request_timeout, [self = shared_from_this(), call, &loop] {
    loop.Post([self, call] { self->OnRequestHandled(*call); });
  });
}

void Session::OnRequestHandled(const HttpCall& call) {
  if (finished_) return;
  const bool keep_alive = request_->keep_alive() && http_requests_ < ctx_.config.http_keepalive_requests;
  if (!call.status.ok()) {
    const bool timeout = call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    spdlog::debug("HandleRequest for {} failed: {}", id_, call.status.error_message());
    return Reject(timeout ? http::status::gateway_timeout : http::status::bad_gateway, "backend_error",
                  timeout ? "the backend did not answer in time" : "the backend could not answer the request");
  }
  HttpResponse response;
  if (const auto error = ToHttpResponse(call.response, response); !error.empty()) {
    spdlog::warn("HandleRequest answer for {} refused: {}", id_, error);
    return Reject(http::status::bad_gateway, "backend_error", "the backend's answer was invalid");
  }
  request_.reset();
  SendResponse(std::move(response), keep_alive);
}

void Session::AwaitNextRequest() {
  ArmTimer(TimerPhase::kHttpIdle, ctx_.config.http_keepalive_timeout);
  if (buffer_.size() > 0) return ReadRequestHeader();
  reading_ = true;
  socket_.async_read_some(buffer_.prepare(kFirstReadBytes), [self = shared_from_this()](beast::error_code ec,
                                                                                         std::size_t bytes) {
    self->reading_ = false;
    if (self->finished_) return;
    if (ec) return self->OnRequestReadFailed(ec);
    self->buffer_.commit(bytes);
    self->ReadRequestHeader();
  });
}

// ---- Upgrade -----------------------------------------------------------------

void Session::Upgrade(std::string subprotocol, std::string extra_headers) {
  subprotocol_ = std::move(subprotocol);
  MessageReader::Options options;
  options.max_message_bytes = route_->options.max_message_bytes;
  if (route_->options.permessage_deflate) {
    const auto offers = JoinedFieldValues(*request_, http::field::sec_websocket_extensions);
    if (auto agreement = NegotiateDeflate(offers, PolicyFrom(ctx_.config))) {
      extensions_ = std::move(agreement->response);
      deflate_window_bits_ = agreement->server_max_window_bits;
      options.compression = true;
      options.client_no_context_takeover = agreement->client_no_context_takeover;
      options.client_max_window_bits = agreement->client_max_window_bits;
    }
  }
  reader_ = std::make_unique<MessageReader>(options, loop_.compression().inflater());

  for (const auto& header : ctx_.config.response_headers) extra_headers.append(header).append("\r\n");
  const auto accept = WebSocketAccept((*request_)[http::field::sec_websocket_key]);
  auto response = std::make_shared<const std::string>(
      BuildUpgradeResponse({accept, subprotocol_, extensions_, extra_headers}));
  writing_ = true;
  net::async_write(socket_, net::buffer(*response),
                   [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                     self->writing_ = false;
                     self->OnUpgradeWritten(ec);
                   });
}

void Session::OnUpgradeWritten(beast::error_code ec) {
  if (finished_) return;
  if (ec) {
    ctx_.metrics.HandshakeRejected("malformed").Increment();
    return Finish({1006, "handshake failed", v1::CLOSED_BY_SERVER});
  }
  SetState(v1::CONNECTION_STATE_ACTIVE);
  ctx_.metrics.opened().Increment();
  EmitOpen();
  request_.reset();
  if (ctx_.config.ping_interval.count() > 0) {
    ArmTimer(TimerPhase::kHeartbeat, ctx_.config.ping_interval);
  } else {
    ArmTimer(TimerPhase::kNone, {});
  }
  beast::error_code ignored;
  socket_.non_blocking(true, ignored);
  // Frames the client sent right behind its request are already here.
  if (buffer_.size() > 0 && !ProcessBuffered()) return;
  if (!writing_) DoWrite();
  WaitReadable();
}

// ---- Reading ---------------------------------------------------------------

void Session::WaitReadable() {
  if (finished_ || reading_ || paused_) return;
  reading_ = true;
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
    if (discarding_ && buffer_.size() > 0) buffer_ = beast::flat_buffer();
    const bool into_scratch = buffer_.size() == 0;
    net::mutable_buffer space;
    if (into_scratch) {
      const auto scratch = loop_.read_scratch();
      space = net::buffer(scratch.data(), scratch.size());
    } else {
      space = buffer_.prepare(std::max<std::size_t>(16 * 1024, buffer_.size()));
    }
    beast::error_code ec;
    const std::size_t bytes = socket_.read_some(space, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return WaitReadable();
    if (ec) return OnReadError(ec);
    last_received_ = steady_clock::now();
    bool go_on = true;
    if (discarding_) {
      go_on = true;
    } else if (into_scratch) {
      go_on = ProcessScratch(static_cast<char*>(space.data()), bytes);
    } else {
      buffer_.commit(bytes);
      go_on = ProcessBuffered();
    }
    if (!go_on || finished_) return;
    // A short read drained the socket: wait rather than read into EAGAIN.
    if (bytes < space.size()) return WaitReadable();
  }
  reading_ = true;
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->reading_ = false;
    if (!self->finished_) self->ReadAvailable();
  });
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
      OnPing(item.payload);
      return true;
    case MessageReader::Kind::kPong:
      loop_.counters().Received(FrameKind::kPong, item.payload.size());
      if (route_->options.forward_pong_frames) EmitControlFrame(v1::OPCODE_PONG, item.payload);
      return true;
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
  loop_.SubmitMessage(route_->backend_index, id_, next_event_sequence_++, text ? v1::OPCODE_TEXT : v1::OPCODE_BINARY, item.payload);
  if (backend().paused()) {
    paused_ = true;
    loop_.Park(shared_from_this());
    return false;
  }
  return true;
}

void Session::OnPing(std::string_view payload) {
  loop_.counters().Received(FrameKind::kPing, payload.size());
  if (route_->options.forward_ping_frames) EmitControlFrame(v1::OPCODE_PING, payload);
  // RFC 6455 section 5.5.2: a pong with the ping's payload, unless closing.
  if (state_ == v1::CONNECTION_STATE_ACTIVE) SendControl(FrameType::kPong, payload);
}

void Session::ResumeReading() {
  if (!paused_ || finished_) return;
  paused_ = false;
  if (buffer_.size() > 0 && !ProcessBuffered()) return;
  if (!finished_) WaitReadable();
}

void Session::OnClientClose(std::uint16_t code, std::string_view reason) {
  loop_.counters().Received(FrameKind::kClose, reason.size() + (code == 1005 ? 0 : 2));
  close_received_ = true;
  discarding_ = true;
  if (route_->options.forward_close_frames) EmitCloseFrame(code, reason);
  if (close_sent_) {
    // The reply to our close: the handshake is complete, and the server
    // closes TCP first (RFC 6455 section 7.1.1).
    beast::error_code ignored;
    socket_.close(ignored);
    return Finish(close_info_.value_or(CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT}));
  }
  if (!close_info_) close_info_ = CloseInfo{code, std::string(reason), v1::CLOSED_BY_CLIENT};
  const bool close_queued = state_ == v1::CONNECTION_STATE_CLOSING;
  SetState(v1::CONNECTION_STATE_CLOSING);
  deferred_.clear();
  deferred_bytes_ = 0;
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
  const bool eof = ec == net::error::eof;
  Finish({1006, eof ? "connection closed without a close frame" : ec.message(), v1::CLOSED_BY_ERROR});
}

// ---- Writing ---------------------------------------------------------------

Session::EnqueueResult Session::Enqueue(OutboundFrame frame) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return EnqueueResult::kNotActive;
  if (frame.is_data()) {
    if (frame.continuation && (!fragment_open_ || frame.type != fragment_type_)) {
      return EnqueueResult::kNoMessageToContinue;
    }
    if (!frame.continuation && fragment_open_) {
      Defer(std::move(frame));
      return EnqueueResult::kQueued;
    }
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

void Session::Defer(OutboundFrame&& frame) {
  deferred_bytes_ += frame.size();
  deferred_.push_back(std::move(frame));
}

void Session::ReleaseDeferred() {
  auto deferred = std::move(deferred_);
  deferred_.clear();
  deferred_bytes_ = 0;
  for (auto& frame : deferred) {
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

void Session::SendControl(FrameType type, std::string_view payload) {
  OutboundFrame frame;
  frame.type = type;
  frame.payload = std::make_shared<const std::string>(payload);
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!writing_) DoWrite();
}

bool Session::RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return false;
  close_info_ = CloseInfo{code, reason, closed_by};
  SetState(v1::CONNECTION_STATE_CLOSING);
  deferred_.clear();
  deferred_bytes_ = 0;
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
  deferred_.clear();
  deferred_bytes_ = 0;
}

void Session::DoWrite() {
  if (writing_ || finished_ || state_ == v1::CONNECTION_STATE_HANDSHAKE ||
      state_ == v1::CONNECTION_STATE_CONNECTION) {
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
    auto& header = *reinterpret_cast<std::uint8_t(*)[fc::kMaxHeaderBytes]>(write_headers_.data() +
                                                                            count * fc::kMaxHeaderBytes);
    const bool close = frame.type == FrameType::kClose;
    const std::size_t code_bytes = close && frame.close_code != 0 ? 2 : 0;
    std::size_t header_size = fc::WriteHeader(frame.fin, frame.compressed, WireOpcode(frame),
                                              frame.size() + code_bytes, header);
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
  net::async_write(socket_, write_buffers_, beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
}

void Session::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (finished_) return;
  if (ec) {
    // A failed write after our close is the peer going away: finish with
    // what the close said.
    return Abort(1006, ec.message(), v1::CLOSED_BY_ERROR);
  }
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
  if (queue_head_ == queue_.size()) {
    // Nothing left: give the write storage back.
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

// ---- Timers and teardown -----------------------------------------------------

void Session::ArmTimer(TimerPhase phase, steady_clock::duration after) {
  timer_phase_ = phase;
  if (phase == TimerPhase::kNone) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(after);
  timer_.async_wait(beast::bind_front_handler(&Session::OnTimer, shared_from_this()));
}

void Session::OnTimer(beast::error_code ec) {
  if (ec || finished_) return;
  switch (timer_phase_) {
    case TimerPhase::kNone:
      return;
    case TimerPhase::kHandshake:
      ctx_.metrics.HandshakeRejected("timeout").Increment();
      return Abort(1006, "handshake timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kHttpIdle:
      return Abort(1006, "keep-alive timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kHeartbeat:
    case TimerPhase::kPong:
      return OnHeartbeat();
    case TimerPhase::kCloseReply:
      return Abort(close_info_ ? close_info_->code : 1006,
                   close_info_ ? close_info_->reason : "no close reply within close_timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kTeardown:
      return Abort(close_info_ ? close_info_->code : 1006, close_info_ ? close_info_->reason : "teardown timeout",
                   v1::CLOSED_BY_SERVER);
  }
}

void Session::OnHeartbeat() {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return;
  const auto now = steady_clock::now();
  const auto interval = ctx_.config.ping_interval;
  if (timer_phase_ == TimerPhase::kPong && last_received_ < ping_sent_at_) {
    ctx_.metrics.heartbeat_timeouts().Increment();
    spdlog::debug("connection {} sent nothing within pong_timeout of a ping", id_);
    return Abort(1006, "no pong within pong_timeout", v1::CLOSED_BY_SERVER);
  }
  const auto silent = now - last_received_;
  if (silent < interval) return ArmTimer(TimerPhase::kHeartbeat, interval - silent);
  ping_sent_at_ = now;
  SendControl(FrameType::kPing, {});
  ArmTimer(TimerPhase::kPong, ctx_.config.pong_timeout);
}

void Session::StartTeardown() {
  // Our FIN after the close frames; reading on to the client's FIN keeps
  // late bytes from turning the close into a reset.
  discarding_ = true;
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  ArmTimer(TimerPhase::kTeardown, ctx_.config.close_timeout);
  WaitReadable();
}

void Session::Finish(const CloseInfo& info) {
  if (finished_) return;
  finished_ = true;
  // Unregistering may drop the last owner other than this call.
  const auto self = shared_from_this();
  if (opened_) {
    EmitClose(info);
    ctx_.metrics.Closed(info.code, ClosedByLabel(info.closed_by)).Increment();
  } else if (http_requests_ > 0) {
    EmitDisconnect();
  }
  SetState(v1::CONNECTION_STATE_UNSPECIFIED);
  timer_phase_ = TimerPhase::kNone;
  timer_.cancel();
  beast::error_code ignored;
  socket_.close(ignored);
  queue_.clear();
  deferred_.clear();
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

// ---- Events ----------------------------------------------------------------

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
  const std::string_view extension = deflate_window_bits_ != 0 ? std::string_view("permessage-deflate") : "";
  loop_.SubmitOpen(route_->backend_index, id_, next_event_sequence_++, path_, query_, remote_address_, headers, {subprotocol_, extension});
}

void Session::EmitClose(const CloseInfo& info) {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  auto* close = event.mutable_close();
  close->set_code(info.code);
  close->set_reason(info.reason);
  close->set_closed_by(info.closed_by);
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitDisconnect() {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  event.mutable_disconnect()->set_requests(http_requests_);
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitControlFrame(v1::Opcode opcode, std::string_view payload) {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  auto* frame = event.mutable_control_frame();
  frame->set_opcode(opcode);
  frame->set_payload(payload.data(), payload.size());
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitCloseFrame(std::uint16_t code, std::string_view reason) {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  auto* frame = event.mutable_close_frame();
  frame->set_code(code);
  frame->set_reason(reason.data(), reason.size());
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::Describe(v1::ClientInfo* info) const {
  info->set_connection_id(id_);
  info->set_state(state_);
  info->set_remote_address(remote_address_);
  info->set_path(path_);
  info->set_query(query_);
  info->set_subprotocol(subprotocol_);
  if (!extensions_.empty()) info->add_extensions(extensions_);
  *info->mutable_connected_at() = ToTimestamp(connected_at_);
  const auto silent = steady_clock::now() - last_received_;
  *info->mutable_last_activity_at() = ToTimestamp(
      std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(silent));
  info->set_bytes_in(bytes_in_);
  info->set_bytes_out(bytes_out_);
  info->set_messages_in(messages_in_);
  info->set_messages_out(messages_out_);
  info->set_send_queue_bytes(queued_bytes_ + deferred_bytes_);
  for (const auto& [key, value] : tags_.metadata()) (*info->mutable_metadata())[key] = value;
  for (const auto& group : tags_.groups()) info->add_groups(group);
}

}  // namespace wsgateway
