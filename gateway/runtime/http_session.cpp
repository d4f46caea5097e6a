// HttpSession: the HTTP life of a connection. Reading the request,
// refusals, the handshake hook (onHandShake), plain HTTP through
// HandleRequest (onRequest / onDisconnect) with keep-alive, and the
// upgrade itself. I/O errors go to Session::Fail.

#include "gateway/runtime/http_session.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/backend/backend_link.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/tls/listener_tls.hpp"
#include "gateway/websocket/permessage_deflate.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
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

void HttpSession::Start() {
  if (s_.ctx_.tls != nullptr) return StartTls();
  ReadRequest();
}

// ---- TLS -------------------------------------------------------------------

void HttpSession::StartTls() {
  s_.SetPhase(ConnectionPhase::kTlsHandshake);
  s_.transport_.UseTls(s_.ctx_.tls->Current());
  // Pending like a read: an abort (the handshake timeout) finishes through
  // its handler.
  s_.reading_ = true;
  s_.transport_.tls_stream().async_handshake(net::ssl::stream_base::server,
                                             [self = s_.shared_from_this(), this](beast::error_code ec) {
                                               s_.reading_ = false;
                                               OnTlsHandshake(ec);
                                             });
}

void HttpSession::OnTlsHandshake(beast::error_code ec) {
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kTlsHandshake, ec);
  s_.SetPhase(ConnectionPhase::kAccepting);
  ReadRequest();
}

// ---- Reading the request -----------------------------------------------------

void HttpSession::ReadRequest() {
  s_.reading_ = true;
  // The first bytes move the connection from CONNECTION to HANDSHAKE.
  s_.transport_.With([&](auto& stream) {
    stream.async_read_some(
        buffer_.prepare(kFirstReadBytes),
        [self = s_.shared_from_this(), this](beast::error_code ec, std::size_t bytes) { OnRequestStarted(ec, bytes); });
  });
}

void HttpSession::OnRequestStarted(beast::error_code ec, std::size_t bytes) {
  s_.reading_ = false;
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kRequest, ec);
  buffer_.commit(bytes);
  // A keep-alive request gets the whole handshake_timeout from its first
  // byte, as the first request did from the accept.
  if (s_.phase_ == ConnectionPhase::kHttpKeepAlive) s_.ArmTimer(s_.ctx_.config.handshake_timeout);
  s_.SetPhase(ConnectionPhase::kReadingRequest);
  ReadRequestHeader();
}

void HttpSession::ReadRequestHeader() {
  parser_ = std::make_unique<http::request_parser<http::string_body>>();
  parser_->body_limit(s_.ctx_.config.max_request_body_bytes);
  header_bytes_ = 0;
  ParseRequestHeader();
}

// Beast's header_limit bounds only the bytes a single put() has not parsed
// yet, and put() consumes whole fields as they arrive, so a header sent in
// pieces could pass the limit by any amount. The gateway counts what earlier
// puts consumed and gives each put only the rest of max_handshake_bytes, so
// the limit holds for the header as a whole.
void HttpSession::ParseRequestHeader() {
  const std::size_t limit = s_.ctx_.config.max_handshake_bytes;
  while (buffer_.size() > 0 && !parser_->is_header_done()) {
    parser_->header_limit(static_cast<std::uint32_t>(limit - header_bytes_));
    beast::error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    header_bytes_ += used;
    if (ec == http::error::need_more) break;
    if (ec) return s_.Fail(Session::IoStep::kRequest, ec);
  }
  if (parser_->is_header_done()) return OnReadHeader();
  // Beast may wait for more without reporting the limit when the unparsed
  // rest fills it; a header that needs more than the limit holds is over it.
  if (header_bytes_ + buffer_.size() >= limit) return s_.Fail(Session::IoStep::kRequest, http::error::header_limit);
  s_.reading_ = true;
  s_.transport_.With([&](auto& stream) {
    stream.async_read_some(buffer_.prepare(kHeaderReadBytes),
                           [self = s_.shared_from_this(), this](beast::error_code ec, std::size_t bytes) {
                             OnRequestHeaderBytes(ec, bytes);
                           });
  });
}

void HttpSession::OnRequestHeaderBytes(beast::error_code ec, std::size_t bytes) {
  s_.reading_ = false;
  if (s_.finished()) return;
  if (ec == net::error::eof)
    ec = buffer_.size() == 0 && header_bytes_ == 0 ? http::error::end_of_stream : http::error::partial_message;
  if (ec) return s_.Fail(Session::IoStep::kRequest, ec);
  buffer_.commit(bytes);
  ParseRequestHeader();
}

void HttpSession::OnReadHeader() {
  if (s_.admission_.verdict != ConnectionLimits::Verdict::kAdmitted) return RejectOverLimit();

  const auto& header = parser_->get();
  const std::string_view target = header.target();
  const auto question = target.find('?');
  s_.path_ = std::string(target.substr(0, question));
  s_.query_ = question == std::string_view::npos ? std::string() : std::string(target.substr(question + 1));
  s_.route_ = &MatchRoute(s_.ctx_.routes, s_.path_);

  if (!IsWebSocketUpgrade(header)) return OnPlainRequestHeader();
  request_ = std::make_unique<HttpRequest>(parser_->release());
  parser_.reset();
  if (const auto refusal = CheckUpgradeRequest(*request_)) {
    return Reject(refusal->status, refusal->reason_label, refusal->message);
  }
  if (!OriginAllowed()) {
    s_.ctx_.metrics.Rejected(metrics::RejectionReason::kOrigin).Increment();
    return Reject(http::status::forbidden, "origin", "this origin is not allowed to open WebSockets here");
  }
  if (s_.ctx_.config.reject_upgrades_without_backend && !s_.backend().up()) {
    return Reject(http::status::service_unavailable, "backend_unavailable",
                  "no backend is reachable; try again shortly");
  }
  if (s_.route_->options.handshake_hook) return CallHandshakeHook();
  Upgrade(SelectSubprotocol(*request_, s_.route_->options.subprotocols), {});
}

bool HttpSession::OriginAllowed() const {
  const auto origin = OriginOf(*request_);
  if (s_.ctx_.origins.Allows(origin)) return true;
  spdlog::debug("upgrade {} from origin '{}' refused: not in allowed_origins", s_.id_, origin.value_or(""));
  return false;
}

// ---- Refusals ------------------------------------------------------------------

void HttpSession::RejectOverLimit() {
  parser_.reset();
  // Whole seconds, rounded up so that a client never comes back too early.
  const auto retry_after = std::chrono::ceil<std::chrono::seconds>(s_.ctx_.config.retry_after);
  if (s_.admission_.verdict == ConnectionLimits::Verdict::kOverTotal) {
    s_.ctx_.metrics.Rejected(metrics::RejectionReason::kConnectionLimit).Increment();
    spdlog::debug("connection {} from {} refused: max_connections reached", s_.id_, s_.remote_address_);
    return Reject(http::status::service_unavailable, "connection_limit",
                  "the gateway holds as many connections as it may; try again later", retry_after);
  }
  s_.ctx_.metrics.Rejected(metrics::RejectionReason::kAddressLimit).Increment();
  spdlog::debug("connection {} from {} refused: max_connections_per_address reached", s_.id_, s_.remote_address_);
  Reject(http::status::too_many_requests, "address_limit", "too many connections from your address; try again later",
         retry_after);
}

void HttpSession::Reject(http::status status, std::string_view reason_label, std::string_view body,
                         std::optional<std::chrono::seconds> retry_after) {
  s_.ctx_.metrics.HandshakeRejected(reason_label).Increment();
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

void HttpSession::SendResponse(HttpResponse&& response, bool keep_alive, bool head) {
  // A connection refused (or answered for the last time) is over for the
  // admin API now, not when its lingering close ends; the pending write
  // keeps the session alive until then.
  if (!keep_alive) s_.loop_.Unregister(s_.counter_);
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
  s_.writing_ = true;
  auto done = [self = s_.shared_from_this(), this, shared, keep_alive](beast::error_code ec, std::size_t) {
    s_.writing_ = false;
    if (s_.finished()) return;
    if (ec) return s_.Fail(Session::IoStep::kResponse, ec);
    if (keep_alive) return AwaitNextRequest();
    LingerAndClose();
  };
  s_.transport_.With([&](auto& stream) {
    if (head) {
      http::async_write_header(stream, shared->serializer, std::move(done));
    } else {
      http::async_write(stream, shared->serializer, std::move(done));
    }
  });
}

void HttpSession::LingerAndClose() {
  s_.SetPhase(ConnectionPhase::kLingering);
  s_.ArmTimer(kLingerTime);
  if (s_.transport_.tls()) return s_.SendCloseNotify();
  beast::error_code ignored;
  s_.socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  DrainUntilPeerCloses();
}

void HttpSession::DrainUntilPeerCloses() {
  // Closing with unread request bytes would send a reset that can destroy
  // the response before the client reads it (nginx's lingering close).
  s_.reading_ = true;
  buffer_.clear();
  s_.socket_.async_read_some(buffer_.prepare(kFirstReadBytes),
                             [self = s_.shared_from_this(), this](beast::error_code ec, std::size_t) {
                               s_.reading_ = false;
                               if (s_.finished()) return;
                               if (!ec) return DrainUntilPeerCloses();
                               s_.Fail(Session::IoStep::kLinger, ec);
                             });
}

// ---- Handshake hook (onHandShake) ---------------------------------------------

void HttpSession::CallHandshakeHook() {
  s_.SetPhase(ConnectionPhase::kAwaitingHook);
  auto call = std::make_shared<HandshakeCall>();
  auto& request = call->request;
  request.set_connection_id(s_.id_);
  request.set_path(s_.path_);
  request.set_query(s_.query_);
  request.set_remote_address(s_.remote_address_);
  request.set_route(s_.route_->path_prefix);
  CopyHeaders(*request_, *request.mutable_headers());
  for (const auto offered : OfferedSubprotocols(*request_)) request.add_offered_subprotocols(std::string(offered));
  auto& loop = s_.loop_;
  s_.backend().Handshake(call, s_.ctx_.config.handshake_hook_timeout,
                         [self = s_.shared_from_this(), this, call, &loop] {
                           loop.Post([self, this, call] { OnHandshakeDecided(*call); });
                         });
}

void HttpSession::OnHandshakeDecided(const HandshakeCall& call) {
  if (s_.finished()) return;
  if (!call.status.ok()) {
    const bool timeout = call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    s_.ctx_.metrics.HandshakeHookFailed(timeout ? "timeout" : "error").Increment();
    spdlog::debug("handshake hook for {} failed: {}", s_.id_, call.status.error_message());
    return Reject(
        http::status::service_unavailable, "hook_failed",
        timeout ? "the backend did not decide the upgrade in time" : "the backend could not decide the upgrade");
  }
  const auto& decision = call.response;
  if (decision.has_reject()) return RejectAsDecided(decision.reject());
  std::string headers;
  if (const auto error = CheckDecision(decision, headers); !error.empty()) return RejectBadDecision(error);
  for (const auto& [key, value] : decision.metadata()) s_.tags_.SetMetadata(key, value);
  for (const auto& group : decision.groups()) s_.tags_.Join(group);
  auto subprotocol = decision.subprotocol().empty() ? SelectSubprotocol(*request_, s_.route_->options.subprotocols)
                                                    : decision.subprotocol();
  Upgrade(std::move(subprotocol), std::move(headers));
}

std::string HttpSession::CheckDecision(const v1::HandshakeResponse& decision, std::string& header_lines) const {
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

void HttpSession::RejectBadDecision(std::string_view error) {
  s_.ctx_.metrics.HandshakeHookFailed("bad_response").Increment();
  spdlog::warn("handshake hook answer for {} refused: {}", s_.id_, error);
  Reject(http::status::bad_gateway, "hook_failed", "the backend's answer to the upgrade was invalid");
}

void HttpSession::RejectAsDecided(const v1::HttpResponse& decided) {
  if (decided.status() < 400 || decided.status() > 599) {
    return RejectBadDecision("reject status " + std::to_string(decided.status()) + " is not 400-599");
  }
  HttpResponse response;
  if (const auto invalid = ToHttpResponse(decided, response)) return RejectBadDecision(invalid->detail);
  s_.ctx_.metrics.HandshakeRejected("hook").Increment();
  SendResponse(std::move(response), /*keep_alive=*/false);
}

// ---- Plain HTTP (onRequest / onDisconnect) ------------------------------------

void HttpSession::OnPlainRequestHeader() {
  if (!s_.route_->options.http_forwarding) {
    parser_.reset();
    return Reject(http::status::bad_request, "not_websocket",
                  "this endpoint serves WebSocket upgrades only (RFC 6455)");
  }
  if (http::token_list(parser_->get()[http::field::expect]).exists("100-continue")) {
    // Clients that ask wait for this before they send the body.
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    beast::error_code ignored;
    s_.transport_.With([&](auto& stream) { net::write(stream, net::buffer(kContinue), ignored); });
  }
  s_.reading_ = true;
  s_.transport_.With([&](auto& stream) {
    http::async_read(
        stream, buffer_, *parser_,
        [self = s_.shared_from_this(), this](beast::error_code ec, std::size_t bytes) { OnReadBody(ec, bytes); });
  });
}

void HttpSession::OnReadBody(beast::error_code ec, std::size_t) {
  s_.reading_ = false;
  if (s_.finished()) return;
  if (ec) return s_.Fail(Session::IoStep::kRequest, ec);
  request_ = std::make_unique<HttpRequest>(parser_->release());
  parser_.reset();
  ++http_requests_;
  auto call = std::make_shared<HttpCall>();
  auto& request = call->request;
  request.set_connection_id(s_.id_);
  request.set_method(std::string(request_->method_string()));
  request.set_path(s_.path_);
  request.set_query(s_.query_);
  request.set_remote_address(s_.remote_address_);
  CopyHeaders(*request_, *request.mutable_headers());
  request.set_body(std::move(request_->body()));
  // The call's own deadline (http_request_timeout) bounds the wait now.
  s_.SetPhase(ConnectionPhase::kForwarding);
  s_.CancelTimer();
  auto& loop = s_.loop_;
  s_.backend().HandleRequest(call, s_.ctx_.config.http_request_timeout,
                             [self = s_.shared_from_this(), this, call, &loop] {
                               loop.Post([self, this, call] { OnRequestHandled(*call); });
                             });
}

void HttpSession::OnRequestHandled(const HttpCall& call) {
  if (s_.finished()) return;
  const bool keep_alive = request_->keep_alive() && http_requests_ < s_.ctx_.config.http_keepalive_requests;
  if (!call.status.ok()) {
    const bool timeout = call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    s_.ctx_.metrics.HttpForwardingFailed(timeout ? "timeout" : "error").Increment();
    spdlog::debug("HandleRequest for {} failed: {}", s_.id_, call.status.error_message());
    return Reject(timeout ? http::status::gateway_timeout : http::status::bad_gateway, "backend_error",
                  timeout ? "the backend did not answer in time" : "the backend could not answer the request");
  }
  const bool head = request_->method() == http::verb::head;
  HttpResponse response;
  if (const auto invalid = ToHttpResponse(call.response, response, head)) {
    s_.ctx_.metrics.HttpForwardingFailed(invalid->reason).Increment();
    spdlog::warn("HandleRequest answer for {} refused ({}): {}", s_.id_, invalid->reason, invalid->detail);
    return Reject(http::status::bad_gateway, "backend_error", "the backend's answer was invalid");
  }
  request_.reset();
  SendResponse(std::move(response), keep_alive, head);
}

void HttpSession::AwaitNextRequest() {
  // Pipelined bytes start the next request at once; otherwise the
  // connection idles under the keep-alive timeout until its first byte.
  if (buffer_.size() > 0) {
    s_.SetPhase(ConnectionPhase::kReadingRequest);
    s_.ArmTimer(s_.ctx_.config.handshake_timeout);
    return ReadRequestHeader();
  }
  s_.SetPhase(ConnectionPhase::kHttpKeepAlive);
  s_.ArmTimer(s_.ctx_.config.http_keepalive_timeout);
  ReadRequest();
}

void HttpSession::EmitDisconnect() {
  auto event = s_.NewEvent();
  event.mutable_disconnect()->set_requests(http_requests_);
  s_.loop_.SubmitEvent(s_.route_->backend_index, event);
}

// ---- Upgrade -----------------------------------------------------------------

void HttpSession::Upgrade(std::string subprotocol, std::string extra_headers) {
  s_.SetPhase(ConnectionPhase::kUpgrading);
  subprotocol_ = std::move(subprotocol);
  const auto& options = s_.route_->options;
  MessageReader::Options reader_options;
  reader_options.max_message_bytes = options.max_message_bytes;
  if (options.permessage_deflate) {
    const auto offers = JoinedFieldValues(*request_, http::field::sec_websocket_extensions);
    if (auto agreement = NegotiateDeflate(offers, PolicyFrom(s_.ctx_.config))) {
      extensions_ = std::move(agreement->response);
      deflate_window_bits_ = agreement->server_max_window_bits;
      reader_options.compression = true;
      reader_options.client_no_context_takeover = agreement->client_no_context_takeover;
      reader_options.client_max_window_bits = agreement->client_max_window_bits;
    }
  }
  reader_ = std::make_unique<MessageReader>(reader_options, s_.loop_.compression().inflater());

  extra_headers.append(options.response_header_lines);
  const auto accept = WebSocketAccept((*request_)[http::field::sec_websocket_key]);
  auto response =
      std::make_shared<const std::string>(BuildUpgradeResponse({accept, subprotocol_, extensions_, extra_headers}));
  s_.writing_ = true;
  s_.transport_.With([&](auto& stream) {
    // The handler reaches the Session, not this life, which the upgrade ends.
    net::async_write(stream, net::buffer(*response),
                     [self = s_.shared_from_this(), response](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       self->OnUpgradeWritten(ec);
                     });
  });
}

WebSocketHandover HttpSession::TakeHandover() {
  return {std::move(buffer_),      std::move(request_),    std::move(reader_),
          std::move(subprotocol_), std::move(extensions_), deflate_window_bits_};
}

void HttpSession::Release() {
  request_.reset();
  parser_.reset();
}

}  // namespace wsgateway
