#include "tests/support/ws_client.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

namespace wsgateway::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

template <typename Fields>
std::map<std::string, std::string> HeaderMap(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& f : fields) out[Lower(std::string(f.name_string()))] = std::string(f.value());
  return out;
}

tcp::endpoint Loopback(std::uint16_t port) { return {asio::ip::make_address_v4("127.0.0.1"), port}; }

// Runs the operation started by `start` on `ioc` for at most `timeout`; on
// timeout cancels everything on `socket` and reports timed_out.
template <typename Socket, typename Start>
beast::error_code RunWithDeadline(asio::io_context& ioc, Socket& socket, std::chrono::milliseconds timeout,
                                  Start&& start) {
  std::optional<beast::error_code> result;
  ioc.restart();
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.run_for(timeout);
  if (!result) {
    beast::error_code ignored;
    socket.cancel(ignored);
    ioc.restart();
    ioc.run_for(std::chrono::seconds(5));
    return asio::error::timed_out;
  }
  return *result;
}

ssl::context ClientContext(const ClientTls& tls) {
  ssl::context context(ssl::context::tls_client);
  beast::error_code ignored;
  context.load_verify_file(tls.ca_file, ignored);
  return context;
}

// Verifies the server against the CA for tls.server_name, sent as SNI.
template <typename Next>
void PrepareClient(ssl::stream<Next>& stream, const ClientTls& tls) {
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(tls.server_name));
  SSL_set_tlsext_host_name(stream.native_handle(), tls.server_name.c_str());
}

}  // namespace

struct WsClient::Tls {
  Tls(asio::io_context& ioc, const ClientTls& options) : context(ClientContext(options)), ws(ioc, context) {
    PrepareClient(ws.next_layer(), options);
  }
  ssl::context context;
  websocket::stream<ssl::stream<beast::tcp_stream>> ws;
};

template <typename Op>
auto WsClient::With(Op&& op) {
  if (tls_) return op(tls_->ws);
  return op(ws_);
}

template <typename Op>
auto WsClient::With(Op&& op) const {
  if (tls_) return op(std::as_const(tls_->ws));
  return op(ws_);
}

WsClient::WsClient() : ws_(ioc_) { Configure(); }

WsClient::WsClient(const ClientTls& tls) : ws_(ioc_), tls_(std::make_unique<Tls>(ioc_, tls)) { Configure(); }

void WsClient::Configure() {
  With([this](auto& ws) {
    ws.read_message_max(256 * 1024 * 1024);
    ws.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
      if (kind == websocket::frame_type::ping) pings_.emplace_back(payload);
      if (kind == websocket::frame_type::pong) pongs_.emplace_back(payload);
    });
  });
}

WsClient::~WsClient() {
  With([](auto& ws) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  });
}

template <typename Start>
beast::error_code WsClient::Run(std::chrono::milliseconds timeout, Start&& start) {
  return With([&](auto& ws) {
    return RunWithDeadline(ioc_, beast::get_lowest_layer(ws).socket(), timeout, std::forward<Start>(start));
  });
}

void WsClient::SetReceiveBufferSize(int bytes) {
  With([bytes](auto& ws) {
    auto& socket = beast::get_lowest_layer(ws).socket();
    beast::error_code ec;
    if (!socket.is_open()) socket.open(tcp::v4(), ec);
    socket.set_option(asio::socket_base::receive_buffer_size(bytes), ec);
  });
}

void WsClient::OfferCompression() {
  websocket::permessage_deflate deflate;
  deflate.client_enable = true;
  With([&](auto& ws) { ws.set_option(deflate); });
}

WsClient::Upgrade WsClient::Connect(std::uint16_t port, const std::string& target,
                                    const std::map<std::string, std::string>& headers,
                                    std::chrono::milliseconds timeout) {
  Upgrade upgrade;
  upgrade.ec = With([&](auto& ws) {
    return Run(timeout,
               [&](auto handler) { beast::get_lowest_layer(ws).socket().async_connect(Loopback(port), handler); });
  });
  if (upgrade.ec) return upgrade;
  if (tls_) {
    upgrade.ec =
        Run(timeout, [&](auto handler) { tls_->ws.next_layer().async_handshake(ssl::stream_base::client, handler); });
    if (upgrade.ec) return upgrade;
  }
  auto decorator = websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  });
  websocket::response_type response;
  const std::string host = "127.0.0.1:" + std::to_string(port);
  upgrade.ec = With([&](auto& ws) {
    ws.set_option(std::move(decorator));
    return Run(timeout, [&](auto handler) { ws.async_handshake(response, host, target, handler); });
  });
  upgrade.http_status = response.result_int();
  upgrade.headers = HeaderMap(response);
  upgrade.body = response.body();
  return upgrade;
}

beast::error_code WsClient::Write(const std::string& payload, bool binary, std::chrono::milliseconds timeout) {
  return With([&](auto& ws) {
    ws.binary(binary);
    return Run(timeout, [&](auto handler) { ws.async_write(asio::buffer(payload), handler); });
  });
}

beast::error_code WsClient::SendText(const std::string& payload, std::chrono::milliseconds timeout) {
  return Write(payload, false, timeout);
}

beast::error_code WsClient::SendBinary(const std::string& payload, std::chrono::milliseconds timeout) {
  return Write(payload, true, timeout);
}

beast::error_code WsClient::SendFragmented(const std::vector<std::string>& parts, bool binary,
                                           std::chrono::milliseconds timeout) {
  return With([&](auto& ws) {
    ws.binary(binary);
    ws.auto_fragment(false);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const bool fin = i + 1 == parts.size();
      const auto ec = Run(timeout, [&](auto handler) { ws.async_write_some(fin, asio::buffer(parts[i]), handler); });
      if (ec) return ec;
    }
    return beast::error_code();
  });
}

beast::error_code WsClient::Ping(const std::string& payload, std::chrono::milliseconds timeout) {
  return With([&](auto& ws) {
    return Run(timeout, [&](auto handler) { ws.async_ping(websocket::ping_data(payload), handler); });
  });
}

WsMessage WsClient::Read(std::chrono::milliseconds timeout) {
  WsMessage message;
  beast::flat_buffer buffer;
  With([&](auto& ws) {
    message.ec = Run(timeout, [&](auto handler) { ws.async_read(buffer, handler); });
    if (!message.ec) {
      message.binary = ws.got_binary();
      message.payload = beast::buffers_to_string(buffer.data());
    }
  });
  return message;
}

beast::error_code WsClient::Close(std::uint16_t code, const std::string& reason, std::chrono::milliseconds timeout) {
  websocket::close_reason close(static_cast<websocket::close_code>(code), reason);
  return With([&](auto& ws) { return Run(timeout, [&](auto handler) { ws.async_close(close, handler); }); });
}

std::string WsClient::PeerCommonName() const {
  if (!tls_) return {};
  X509* certificate = SSL_get1_peer_certificate(tls_->ws.next_layer().native_handle());
  if (certificate == nullptr) return {};
  char name[256] = {};
  const int size = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
  X509_free(certificate);
  return size > 0 ? std::string(name, static_cast<std::size_t>(size)) : std::string();
}

std::uint16_t WsClient::CloseCode() const {
  return With([](const auto& ws) { return static_cast<std::uint16_t>(ws.reason().code); });
}
std::string WsClient::CloseReason() const {
  return With([](const auto& ws) { return std::string(ws.reason().reason.c_str()); });
}

std::string WsClient::LocalAddress() const {
  return With([](const auto& ws) {
    beast::error_code ec;
    const auto ep = beast::get_lowest_layer(ws).socket().local_endpoint(ec);
    if (ec) return std::string();
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  });
}

bool WsClient::IsOpen() const {
  return With([](const auto& ws) { return ws.is_open(); });
}

// Writes `raw_request` on a connected `stream` (whose socket is `socket`)
// and reads one response.
template <typename Stream>
HttpResult ExchangeOn(asio::io_context& ioc, tcp::socket& socket, Stream& stream, const std::string& raw_request,
                      std::chrono::milliseconds timeout) {
  HttpResult result;
  result.ec = RunWithDeadline(ioc, socket, timeout,
                              [&](auto handler) { asio::async_write(stream, asio::buffer(raw_request), handler); });
  if (result.ec) return result;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  result.ec =
      RunWithDeadline(ioc, socket, timeout, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (parser.is_header_done()) {
    const auto& response = parser.get();
    result.status = response.result_int();
    result.headers = HeaderMap(response);
    result.body = response.body();
  }
  return result;
}

HttpResult RawHttpExchange(std::uint16_t port, const std::string& raw_request, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  HttpResult result;
  result.ec =
      RunWithDeadline(ioc, socket, timeout, [&](auto handler) { socket.async_connect(Loopback(port), handler); });
  if (result.ec) return result;
  return ExchangeOn(ioc, socket, socket, raw_request, timeout);
}

HttpResult RawHttpExchange(std::uint16_t port, const std::string& raw_request, const ClientTls& tls,
                           std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  auto context = ClientContext(tls);
  ssl::stream<tcp::socket> stream(ioc, context);
  PrepareClient(stream, tls);
  auto& socket = stream.next_layer();
  HttpResult result;
  result.ec =
      RunWithDeadline(ioc, socket, timeout, [&](auto handler) { socket.async_connect(Loopback(port), handler); });
  if (result.ec) return result;
  result.ec = RunWithDeadline(ioc, socket, timeout,
                              [&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
  if (result.ec) return result;
  return ExchangeOn(ioc, socket, stream, raw_request, timeout);
}

HttpResult HttpGet(std::uint16_t port, const std::string& target, std::chrono::milliseconds timeout) {
  return RawHttpExchange(
      port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n\r\n",
      timeout);
}

RawTcpConnection::RawTcpConnection(std::uint16_t port, std::chrono::milliseconds timeout) : stream_(ioc_) {
  const auto ec = RunWithDeadline(ioc_, stream_.socket(), timeout,
                                  [&](auto handler) { stream_.socket().async_connect(Loopback(port), handler); });
  connected_ = !ec;
}

RawTcpConnection::~RawTcpConnection() { Close(); }

std::string RawTcpConnection::LocalAddress() const {
  beast::error_code ec;
  const auto ep = stream_.socket().local_endpoint(ec);
  if (ec) return {};
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

bool RawTcpConnection::Write(const std::string& bytes, std::chrono::milliseconds timeout) {
  return !RunWithDeadline(ioc_, stream_.socket(), timeout,
                          [&](auto handler) { asio::async_write(stream_.socket(), asio::buffer(bytes), handler); });
}

std::pair<std::string, bool> RawTcpConnection::ReadUntilClosed(std::chrono::milliseconds timeout) {
  std::string data;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {data, false};
    std::size_t got = 0;
    const auto ec = RunWithDeadline(ioc_, stream_.socket(), left, [&](auto handler) {
      stream_.socket().async_read_some(asio::buffer(buffer),
                                       [&got, handler](beast::error_code e, std::size_t n) mutable {
                                         got = n;
                                         handler(e);
                                       });
    });
    data.append(buffer, got);
    if (ec == asio::error::timed_out) return {data, false};
    if (ec) return {data, true};
  }
}

void RawTcpConnection::Close() {
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

}  // namespace wsgateway::testing
