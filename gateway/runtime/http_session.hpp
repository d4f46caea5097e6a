#pragma once
// The HTTP life of a client connection (Session): the TLS handshake on a
// TLS listener, reading the request (max_handshake_bytes over the whole
// header), refusals (limits, origin, 4xx), the handshake hook
// (onHandShake), plain HTTP through HandleRequest (onRequest /
// onDisconnect) with keep-alive, and the upgrade (101). Once the 101 is
// written it hands the bytes read past the request, the negotiated
// extensions and the frame reader to the WebSocket life (TakeHandover).
// Loop thread only, like its Session, which it lives inside.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/backend/unary_call.hpp"
#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/websocket_session.hpp"
#include "gateway/websocket/websocket_handshake.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

class Session;

class HttpSession {
 public:
  explicit HttpSession(Session& session) : s_(session) {}
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // The TLS handshake (when the listener speaks TLS), then the request.
  void Start();

  // Answers and closes. A 503 carries Retry-After: `retry_after` or 1s.
  void Reject(boost::beast::http::status status, std::string_view reason_label, std::string_view body,
              std::optional<std::chrono::seconds> retry_after = std::nullopt);

  // Plain requests answered through the backend on this connection.
  std::uint32_t requests() const { return http_requests_; }
  void EmitDisconnect();

  // After the 101: what the WebSocket life starts from.
  WebSocketHandover TakeHandover();
  // The connection finished: what the request held goes now.
  void Release();

 private:
  using HandshakeCall = UnaryCall<v1::HandshakeRequest, v1::HandshakeResponse>;
  using HttpCall = UnaryCall<v1::HttpRequest, v1::HttpResponse>;

  void StartTls();
  void OnTlsHandshake(boost::beast::error_code ec);
  void ReadRequest();
  void OnRequestStarted(boost::beast::error_code ec, std::size_t bytes);
  void ReadRequestHeader();
  void ParseRequestHeader();
  void OnRequestHeaderBytes(boost::beast::error_code ec, std::size_t bytes);
  void OnReadHeader();
  void RejectOverLimit();
  bool OriginAllowed() const;
  void SendResponse(HttpResponse&& response, bool keep_alive, bool head = false);
  void LingerAndClose();
  void DrainUntilPeerCloses();
  void CallHandshakeHook();
  void OnHandshakeDecided(const HandshakeCall& call);
  std::string CheckDecision(const v1::HandshakeResponse& decision, std::string& header_lines) const;
  void RejectAsDecided(const v1::HttpResponse& decided);
  // A hook answer the gateway cannot honour: 502, counted and logged.
  void RejectBadDecision(std::string_view error);
  void OnPlainRequestHeader();
  void OnReadBody(boost::beast::error_code ec, std::size_t bytes);
  void OnRequestHandled(const HttpCall& call);
  void AwaitNextRequest();
  void Upgrade(std::string subprotocol, std::string extra_headers);

  Session& s_;
  // The request's bytes; after the upgrade, the frames sent right behind
  // it (handed over).
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::unique_ptr<HttpRequest> request_;
  // Negotiated by Upgrade for the WebSocket life.
  std::unique_ptr<MessageReader> reader_;
  std::string subprotocol_;
  std::string extensions_;
  int deflate_window_bits_ = 0;
  std::uint32_t http_requests_ = 0;
  // Bytes of the request header parsed so far (max_handshake_bytes).
  std::uint32_t header_bytes_ = 0;
};

}  // namespace wsgateway
