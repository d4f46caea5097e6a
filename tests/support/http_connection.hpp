#pragma once
// One client TCP connection that speaks HTTP/1.1 request by request, for
// keep-alive tests: several requests on the same connection, an upgrade
// after plain requests, and watching the server close it. Requests are
// written as raw bytes, so a test controls every header; responses are
// parsed with Beast, and bytes after a response (pipelined responses, or
// WebSocket frames after a 101) stay buffered.
//
// Every call has a deadline and runs the connection's own io_context for at
// most that long, so a test can never hang on the network.
//
// Thread-safety: one object per thread.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {

class HttpConnection {
 public:
  // Connects to 127.0.0.1:port; check connected().
  explicit HttpConnection(std::uint16_t port, std::chrono::milliseconds timeout = kIoTimeout);
  // Connects from `bind_address` (any address of the loopback network, e.g.
  // "127.0.0.2"), so that the gateway sees another client address; the
  // port is the OS's choice.
  HttpConnection(std::uint16_t port, const std::string& bind_address, std::chrono::milliseconds timeout = kIoTimeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  bool connected() const { return connected_; }
  // "ADDRESS:PORT" of this end, as the gateway reports the client.
  std::string LocalAddress() const;

  boost::system::error_code Write(std::string_view bytes, std::chrono::milliseconds timeout = kIoTimeout);
  // Reads one response (a 1xx or 101 has no body). A response to HEAD has
  // none either, whatever its Content-Length says: pass `to_head`.
  HttpResult ReadResponse(std::chrono::milliseconds timeout = kIoTimeout, bool to_head = false);
  // Bytes received after the last response, taken out of the buffer; waits
  // up to `timeout` for at least `at_least` of them.
  std::string TakeBytes(std::size_t at_least = 0, std::chrono::milliseconds timeout = kIoTimeout);
  // Reads (and discards) until the server ends the connection; true when
  // it did (FIN or reset) before the deadline.
  bool WaitForServerClose(std::chrono::milliseconds timeout = kIoTimeout);

  void Close();

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

}  // namespace wsgateway::testing
