#pragma once
// Blocking test clients with deadlines: a WebSocket client on Boost.Beast
// (ws:// or wss://), a raw HTTP exchange for handshake tests (in the clear
// or through TLS) and a bare TCP connection that never sends anything. Each call runs its own io_context for at most `timeout`,
// so a test can never hang on the network.
//
// Thread-safety: one object per thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wsgateway::testing {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds kIoTimeout = 20s;

// TLS for a test client: the server must present a certificate signed by
// `ca_file` and valid for `server_name`, which is also sent as SNI.
struct ClientTls {
  std::string ca_file;
  std::string server_name = "localhost";
};

struct WsMessage {
  boost::system::error_code ec;  // set when no message arrived
  bool binary = false;
  std::string payload;
};

class WsClient {
 public:
  struct Upgrade {
    boost::system::error_code ec;
    unsigned http_status = 0;                    // 101 on success, the refusal's status otherwise
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
  };

  WsClient();
  // A wss:// client: TLS first, then the upgrade.
  explicit WsClient(const ClientTls& tls);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Shrinks the kernel receive buffer before connecting, so that a client
  // that stops reading pushes back on the gateway quickly.
  void SetReceiveBufferSize(int bytes);

  // Offers permessage-deflate (RFC 7692) in the next Connect.
  void OfferCompression();

  // Connects to 127.0.0.1:port and upgrades on `target` ("/path?query").
  Upgrade Connect(std::uint16_t port, const std::string& target = "/",
                  const std::map<std::string, std::string>& headers = {},
                  std::chrono::milliseconds timeout = kIoTimeout);

  boost::system::error_code SendText(const std::string& payload, std::chrono::milliseconds timeout = kIoTimeout);
  boost::system::error_code SendBinary(const std::string& payload, std::chrono::milliseconds timeout = kIoTimeout);
  // Sends one message as several frames (a continuation sequence).
  boost::system::error_code SendFragmented(const std::vector<std::string>& parts, bool binary,
                                           std::chrono::milliseconds timeout = kIoTimeout);
  boost::system::error_code Ping(const std::string& payload, std::chrono::milliseconds timeout = kIoTimeout);

  // Reads one whole message. When the server closes, ec is set (usually
  // websocket::error::closed, but the teardown after the close frame may
  // report a socket error instead) and CloseCode()/CloseReason() tell what
  // the server's close frame said.
  WsMessage Read(std::chrono::milliseconds timeout = kIoTimeout);

  // Starts the close handshake and waits for the server's close frame.
  boost::system::error_code Close(std::uint16_t code = 1000, const std::string& reason = "",
                                  std::chrono::milliseconds timeout = kIoTimeout);

  // wss:// only: the common name of the certificate the server presented.
  std::string PeerCommonName() const;

  // Close frame received from the server (0 if none).
  std::uint16_t CloseCode() const;
  std::string CloseReason() const;

  // Control frames seen while reading: ping and pong payloads, in order.
  const std::vector<std::string>& PingsReceived() const { return pings_; }
  const std::vector<std::string>& PongsReceived() const { return pongs_; }

  // "127.0.0.1:PORT" of this client's end, as the gateway reports it.
  std::string LocalAddress() const;
  bool IsOpen() const;

  // ws:// only.
  boost::beast::websocket::stream<boost::beast::tcp_stream>& stream() { return ws_; }

 private:
  struct Tls;
  // Settings both kinds of stream get.
  void Configure();
  template <typename Start>
  boost::system::error_code Run(std::chrono::milliseconds timeout, Start&& start);
  boost::system::error_code Write(const std::string& payload, bool binary, std::chrono::milliseconds timeout);
  // Calls `op` with the WebSocket stream in use (ws:// or wss://).
  template <typename Op>
  auto With(Op&& op);
  template <typename Op>
  auto With(Op&& op) const;

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  std::unique_ptr<Tls> tls_;
  std::vector<std::string> pings_;
  std::vector<std::string> pongs_;
};

struct HttpResult {
  boost::system::error_code ec;
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Sends `raw_request` (bytes as written) to 127.0.0.1:port and reads one
// HTTP response.
HttpResult RawHttpExchange(std::uint16_t port, const std::string& raw_request,
                           std::chrono::milliseconds timeout = kIoTimeout);

// The same through TLS (https://).
HttpResult RawHttpExchange(std::uint16_t port, const std::string& raw_request, const ClientTls& tls,
                           std::chrono::milliseconds timeout = kIoTimeout);

// GET http://127.0.0.1:port/target.
HttpResult HttpGet(std::uint16_t port, const std::string& target, std::chrono::milliseconds timeout = kIoTimeout);

// A TCP connection that sends nothing: the gateway holds it in state
// CONNECTION. Closed by the destructor.
class RawTcpConnection {
 public:
  explicit RawTcpConnection(std::uint16_t port, std::chrono::milliseconds timeout = kIoTimeout);
  ~RawTcpConnection();
  bool connected() const { return connected_; }
  std::string LocalAddress() const;
  // Writes bytes; false on error.
  bool Write(const std::string& bytes, std::chrono::milliseconds timeout = kIoTimeout);
  // Reads until the peer closes or the deadline passes; returns what arrived
  // and whether the peer closed.
  std::pair<std::string, bool> ReadUntilClosed(std::chrono::milliseconds timeout = kIoTimeout);
  void Close();

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  bool connected_ = false;
};

}  // namespace wsgateway::testing
