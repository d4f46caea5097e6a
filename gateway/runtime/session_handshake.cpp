// Session, part two: the HTTP phase. Reading the request, refusals, the
// handshake hook (onHandShake), plain HTTP through HandleRequest
// (onRequest / onDisconnect) with keep-alive, and the upgrade itself.

#include "gateway/runtime/session.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/backend/backend_link.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/tls/listener_tls.hpp"
#include "gateway/websocket/permessage_deflate.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace fc = frame_codec;
using metrics::FrameKind;
using std::chrono::steady_clock;

namespace {

// How long a refused HTTP client may keep sending before its socket closes.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Most upgrade requests fit in one read of this size.
constexpr std::size_t kFirstReadBytes = 1024;
// Later reads of a request header that did not fit.
constexpr std::size_t kHeaderReadBytes = 4096;

DeflatePolicy PolicyFrom(const Config& config) {
  DeflatePolicy policy;
  policy.enabled = config.permessage_deflate;
  policy.server_no_context_takeover = true;
  policy.client_no_context_takeover = true;
  return policy;
}

// Request headers for the backend: names lower-cased, in the order received.
void CopyHeaders(const http::request_header<>& request, google::protobuf::RepeatedPtrField<v1::HttpHeader>& headers) {
  for (const auto& field : request) {
    auto* header = headers.Add();
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    header->set_name(std::move(name));
    header->set_value(std::string(field.value()));
  }
}

// The Origin header's value; nullopt without one. Two of them are refused
// (an empty value is no origin): which one a browser meant is unknowable.
std::optional<std::string_view> OriginOf(const HttpRequest& request) {
  const auto [first, last] = request.equal_range(http::field::origin);
  if (first == last) return std::nullopt;
  if (std::next(first) != last) return std::string_view();
  return first->value();
}

}  // namespace

// ---- TLS -------------------------------------------------------------------

void Session::StartTls() {
  transport_.UseTls(ctx_.tls->Current());
  // Pending like a read: an abort (the handshake timeout) finishes through
  // its handler.
  reading_ = true;
  transport_.tls_stream().async_handshake(net::ssl::stream_base::server,
                                          beast::bind_front_handler(&Session::OnTlsHandshake, shared_from_this()));
}

void Session::OnTlsHandshake(beast::error_code ec) {
  reading_ = false;
  if (finished_) return;
  if (!ec) return ReadRequest();
  if (ec == net::error::operation_aborted) return Finish(close_info_.value_or(CloseInfo{}));
  if (IsConnectionGone(ec)) return Finish({1006, "closed during the TLS handshake", v1::CLOSED_BY_CLIENT});
  if (IsPlainHttpOnTls(ec)) {
    // OpenSSL has taken the request's bytes; the refusal goes out in the
    // clear, where such a client can read it (as nginx does).
    transport_.DropTls();
    return Reject(http::status::bad_request, "plain_http_on_tls", "this port speaks TLS: use https:// or wss://");
  }
  ctx_.metrics.HandshakeRejected("tls").Increment();
  spdlog::debug("TLS handshake with {} failed: {}", remote_address_, ec.message());
  Finish({1006, "TLS handshake failed", v1::CLOSED_BY_SERVER});
}

// ---- Handshake -------------------------------------------------------------

void Session::ReadRequest() {
  reading_ = true;
  // The first bytes move the connection from CONNECTION to HANDSHAKE.
  transport_.With([&](auto& stream) {
    stream.async_read_some(buffer_.prepare(kFirstReadBytes),
                           beast::bind_front_handler(&Session::OnRequestStarted, shared_from_this()));
  });
}

void Session::OnRequestStarted(beast::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (finished_) return;
  if (ec) return OnRequestReadFailed(ec);
  buffer_.commit(bytes);
  SetState(v1::CONNECTION_STATE_HANDSHAKE);
  // A keep-alive request gets the whole handshake_timeout from its first
  // byte, as the first request did from the accept.
  if (timer_phase_ == TimerPhase::kHttpIdle) ArmTimer(TimerPhase::kHandshake, ctx_.config.handshake_timeout);
  ReadRequestHeader();
}

void Session::ReadRequestHeader() {
  parser_ = std::make_unique<http::request_parser<http::string_body>>();
  parser_->body_limit(ctx_.config.max_request_body_bytes);
  header_bytes_ = 0;
  ParseRequestHeader();
}

// Beast's header_limit bounds only the bytes a single put() has not parsed
// yet, and put() consumes whole fields as they arrive, so a header sent in
// pieces could pass the limit by any amount. The gateway counts what earlier
// puts consumed and gives each put only the rest of max_handshake_bytes, so
// the limit holds for the header as a whole.
void Session::ParseRequestHeader() {
  const std::size_t limit = ctx_.config.max_handshake_bytes;
  while (buffer_.size() > 0 && !parser_->is_header_done()) {
    parser_->header_limit(static_cast<std::uint32_t>(limit - header_bytes_));
    beast::error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    header_bytes_ += used;
    if (ec == http::error::need_more) break;
    if (ec) return OnRequestReadFailed(ec);
  }
  if (parser_->is_header_done()) return OnReadHeader({}, 0);
  // Beast may wait for more without reporting the limit when the unparsed
  // rest fills it; a header that needs more than the limit holds is over it.
  if (header_bytes_ + buffer_.size() >= limit) return OnRequestReadFailed(http::error::header_limit);
  reading_ = true;
  transport_.With([&](auto& stream) {
    stream.async_read_some(buffer_.prepare(kHeaderReadBytes),
                           beast::bind_front_handler(&Session::OnRequestHeaderBytes, shared_from_this()));
  });
}

void Session::OnRequestHeaderBytes(beast::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (finished_) return;
  if (ec == net::error::eof)
    ec = buffer_.size() == 0 && header_bytes_ == 0 ? http::error::end_of_stream : http::error::partial_message;
  if (ec) return OnRequestReadFailed(ec);
  buffer_.commit(bytes);
  ParseRequestHeader();
}

void Session::OnRequestReadFailed(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    ctx_.metrics.Rejected(metrics::RejectionReason::kHandshakeTooLarge).Increment();
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
  if (admission_.verdict != ConnectionLimits::Verdict::kAdmitted) return RejectOverLimit();

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
  if (!OriginAllowed()) {
    ctx_.metrics.Rejected(metrics::RejectionReason::kOrigin).Increment();
    return Reject(http::status::forbidden, "origin", "this origin is not allowed to open WebSockets here");
  }
  if (ctx_.config.reject_upgrades_without_backend && !backend().up()) {
    return Reject(http::status::service_unavailable, "backend_unavailable",
                  "no backend is reachable; try again shortly");
  }
  if (route_->options.handshake_hook) return CallHandshakeHook();
  Upgrade(SelectSubprotocol(*request_, route_->options.subprotocols), {});
}

bool Session::OriginAllowed() const {
  const auto origin = OriginOf(*request_);
  if (ctx_.origins.Allows(origin)) return true;
  spdlog::debug("upgrade {} from origin '{}' refused: not in allowed_origins", id_, origin.value_or(""));
  return false;
}

void Session::RejectOverLimit() {
  parser_.reset();
  // Whole seconds, rounded up so that a client never comes back too early.
  const auto retry_after = std::chrono::ceil<std::chrono::seconds>(ctx_.config.retry_after);
  if (admission_.verdict == ConnectionLimits::Verdict::kOverTotal) {
    ctx_.metrics.Rejected(metrics::RejectionReason::kConnectionLimit).Increment();
    spdlog::debug("connection {} from {} refused: max_connections reached", id_, remote_address_);
    return Reject(http::status::service_unavailable, "connection_limit",
                  "the gateway holds as many connections as it may; try again later", retry_after);
  }
  ctx_.metrics.Rejected(metrics::RejectionReason::kAddressLimit).Increment();
  spdlog::debug("connection {} from {} refused: max_connections_per_address reached", id_, remote_address_);
  Reject(http::status::too_many_requests, "address_limit", "too many connections from your address; try again later",
         retry_after);
}

void Session::Reject(http::status status, std::string_view reason_label, std::string_view body,
                     std::optional<std::chrono::seconds> retry_after) {
  ctx_.metrics.HandshakeRejected(reason_label).Increment();
  HttpResponse response{status, 11};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  if (retry_after) {
    response.set(http::field::retry_after, std::to_string(retry_after->count()));
  } else if (status == http::status::service_unavailable) {
    response.set(http::field::retry_after, "1");
  }
  // RFC 6455 section 4.4: a version refusal names the versions spoken.
  if (status == http::status::upgrade_required) {
    response.set(http::field::sec_websocket_version, "13");
    response.set(http::field::upgrade, "websocket");
  }
  response.body().assign(body.data(), body.size()).append("\n");
  SendResponse(std::move(response), /*keep_alive=*/false);
}

void Session::SendResponse(HttpResponse&& response, bool keep_alive, bool head) {
  // A connection refused (or answered for the last time) is over for the
  // admin API now, not when its lingering close ends; the pending write
  // keeps the session alive until then.
  if (!keep_alive) loop_.Unregister(counter_);
  response.set(http::field::server, "wsgateway");
  response.keep_alive(keep_alive);
  // Only a bodiless answer to HEAD, or a 304, arrives with a Content-Length
  // (the representation's, http_response_rules); the rest are framed here.
  if (!(response.body().empty() && response.has_content_length())) response.prepare_payload();
  // A response to HEAD states the body's length but carries no body (RFC
  // 9110 section 9.3.2), or the next response on the connection breaks.
  if (head) response.body().clear();
  struct Outgoing {
    explicit Outgoing(HttpResponse&& r) : response(std::move(r)), serializer(response) {}
    HttpResponse response;
    http::response_serializer<http::string_body> serializer;
  };
  auto shared = std::make_shared<Outgoing>(std::move(response));
  writing_ = true;
  auto done = [self = shared_from_this(), shared, keep_alive](beast::error_code ec, std::size_t) {
    self->writing_ = false;
    if (self->finished_) return;
    if (ec) return self->Finish({1006, "HTTP response not delivered", v1::CLOSED_BY_SERVER});
    if (keep_alive) return self->AwaitNextRequest();
    self->LingerAndClose();
  };
  transport_.With([&](auto& stream) {
    if (head) {
      http::async_write_header(stream, shared->serializer, std::move(done));
    } else {
      http::async_write(stream, shared->serializer, std::move(done));
    }
  });
}

void Session::LingerAndClose() {
  ArmTimer(TimerPhase::kTeardown, kLingerTime);
  if (transport_.tls()) return SendCloseNotify();
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  DrainUntilPeerCloses();
}

void Session::DrainUntilPeerCloses() {
  // Closing with unread request bytes would send a reset that can destroy
  // the response before the client reads it (nginx's lingering close).
  reading_ = true;
  buffer_.clear();
  socket_.async_read_some(buffer_.prepare(kFirstReadBytes),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
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
  for (const auto offered : OfferedSubprotocols(*request_)) request.add_offered_subprotocols(std::string(offered));
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
    return Reject(
        http::status::service_unavailable, "hook_failed",
        timeout ? "the backend did not decide the upgrade in time" : "the backend could not decide the upgrade");
  }
  const auto& decision = call.response;
  if (decision.has_reject()) return RejectAsDecided(decision.reject());
  std::string headers;
  if (const auto error = CheckDecision(decision, headers); !error.empty()) return RejectBadDecision(error);
  for (const auto& [key, value] : decision.metadata()) tags_.SetMetadata(key, value);
  for (const auto& group : decision.groups()) tags_.Join(group);
  auto subprotocol = decision.subprotocol().empty() ? SelectSubprotocol(*request_, route_->options.subprotocols)
                                                    : decision.subprotocol();
  Upgrade(std::move(subprotocol), std::move(headers));
}

std::string Session::CheckDecision(const v1::HandshakeResponse& decision, std::string& header_lines) const {
  if (!decision.subprotocol().empty()) {
    const auto offered = OfferedSubprotocols(*request_);
    if (std::find(offered.begin(), offered.end(), decision.subprotocol()) == offered.end()) {
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

void Session::RejectBadDecision(std::string_view error) {
  ctx_.metrics.HandshakeHookFailed("bad_response").Increment();
  spdlog::warn("handshake hook answer for {} refused: {}", id_, error);
  Reject(http::status::bad_gateway, "hook_failed", "the backend's answer to the upgrade was invalid");
}

void Session::RejectAsDecided(const v1::HttpResponse& decided) {
  if (decided.status() < 400 || decided.status() > 599) {
    return RejectBadDecision("reject status " + std::to_string(decided.status()) + " is not 400-599");
  }
  HttpResponse response;
  if (const auto invalid = ToHttpResponse(decided, response)) return RejectBadDecision(invalid->detail);
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
    transport_.With([&](auto& stream) { net::write(stream, net::buffer(kContinue), ignored); });
  }
  reading_ = true;
  transport_.With([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_, beast::bind_front_handler(&Session::OnReadBody, shared_from_this()));
  });
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
  // The call's own deadline (http_request_timeout) bounds the wait now.
  ArmTimer(TimerPhase::kNone, {});
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
    ctx_.metrics.HttpForwardingFailed(timeout ? "timeout" : "error").Increment();
    spdlog::debug("HandleRequest for {} failed: {}", id_, call.status.error_message());
    return Reject(timeout ? http::status::gateway_timeout : http::status::bad_gateway, "backend_error",
                  timeout ? "the backend did not answer in time" : "the backend could not answer the request");
  }
  const bool head = request_->method() == http::verb::head;
  HttpResponse response;
  if (const auto invalid = ToHttpResponse(call.response, response, head)) {
    ctx_.metrics.HttpForwardingFailed(invalid->reason).Increment();
    spdlog::warn("HandleRequest answer for {} refused ({}): {}", id_, invalid->reason, invalid->detail);
    return Reject(http::status::bad_gateway, "backend_error", "the backend's answer was invalid");
  }
  request_.reset();
  SendResponse(std::move(response), keep_alive, head);
}

void Session::AwaitNextRequest() {
  // Pipelined bytes start the next request at once; otherwise the
  // connection idles under the keep-alive timeout until its first byte.
  if (buffer_.size() > 0) {
    ArmTimer(TimerPhase::kHandshake, ctx_.config.handshake_timeout);
    return ReadRequestHeader();
  }
  ArmTimer(TimerPhase::kHttpIdle, ctx_.config.http_keepalive_timeout);
  ReadRequest();
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

  extra_headers.append(route_->options.response_header_lines);
  const auto accept = WebSocketAccept((*request_)[http::field::sec_websocket_key]);
  auto response =
      std::make_shared<const std::string>(BuildUpgradeResponse({accept, subprotocol_, extensions_, extra_headers}));
  writing_ = true;
  transport_.With([&](auto& stream) {
    net::async_write(stream, net::buffer(*response),
                     [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       self->OnUpgradeWritten(ec);
                     });
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

}  // namespace wsgateway
