#include "tests/support/http_connection.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace wsgateway::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Runs the operation started by `start` for at most `timeout`. The stream's
// own timer cancels it (and closes the socket) when the deadline passes.
template <typename Start>
beast::error_code RunOn(asio::io_context& ioc, beast::tcp_stream& stream, std::chrono::milliseconds timeout,
                        Start&& start) {
  std::optional<beast::error_code> result;
  stream.expires_after(timeout);
  ioc.restart();
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.run();
  stream.expires_never();
  return result.value_or(asio::error::timed_out);
}

}  // namespace

HttpConnection::HttpConnection(std::uint16_t port, std::chrono::milliseconds timeout) : stream_(ioc_) {
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
  connected_ = !RunOn(ioc_, stream_, timeout, [&](auto handler) { stream_.async_connect(endpoint, handler); });
}

HttpConnection::HttpConnection(std::uint16_t port, const std::string& bind_address, std::chrono::milliseconds timeout)
    : stream_(ioc_) {
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
  beast::error_code ec;
  const auto local = asio::ip::make_address(bind_address, ec);
  if (ec) return;
  auto& socket = stream_.socket();
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.bind({local, 0}, ec);
  if (ec) return;
  connected_ = !RunOn(ioc_, stream_, timeout, [&](auto handler) { stream_.async_connect(endpoint, handler); });
}

HttpConnection::~HttpConnection() { Close(); }

std::string HttpConnection::LocalAddress() const {
  beast::error_code ec;
  const auto endpoint = stream_.socket().local_endpoint(ec);
  if (ec) return {};
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

beast::error_code HttpConnection::Write(std::string_view bytes, std::chrono::milliseconds timeout) {
  return RunOn(ioc_, stream_, timeout,
               [&](auto handler) { asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), handler); });
}

HttpResult HttpConnection::ReadResponse(std::chrono::milliseconds timeout, bool to_head) {
  HttpResult result;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(to_head);
  result.ec = RunOn(ioc_, stream_, timeout, [&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
  if (parser.is_header_done()) {
    const auto& response = parser.get();
    result.status = response.result_int();
    for (const auto& field : response) {
      auto& value = result.headers[Lower(std::string(field.name_string()))];
      value += (value.empty() ? "" : ", ") + std::string(field.value());
    }
    result.body = response.body();
  }
  return result;
}

std::string HttpConnection::TakeBytes(std::size_t at_least, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buffer_.size() < at_least) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const auto ec = RunOn(ioc_, stream_, left, [&](auto handler) {
      stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                              [this, handler](beast::error_code e, std::size_t n) mutable {
                                buffer_.commit(n);
                                handler(e);
                              });
    });
    if (ec) break;
  }
  std::string bytes = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  return bytes;
}

bool HttpConnection::WaitForServerClose(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    buffer_.consume(buffer_.size());
    const auto ec = RunOn(ioc_, stream_, left, [&](auto handler) {
      stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                              [this, handler](beast::error_code e, std::size_t n) mutable {
                                buffer_.commit(n);
                                handler(e);
                              });
    });
    if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
    if (ec) return false;
  }
}

void HttpConnection::Close() {
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

}  // namespace wsgateway::testing
