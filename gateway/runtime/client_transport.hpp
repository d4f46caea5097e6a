#pragma once
// How a client connection's bytes travel: straight over its TCP socket, or
// through TLS on top of it. The session does its I/O through With(), which
// hands the right stream to an asynchronous operation; on a plain
// connection that costs one predictable branch, no allocation and no
// virtual call.
//
// The two differ in how reads are done. A plain connection waits for
// readiness and reads into its loop's scratch buffer, so an idle one holds
// no buffer. That does not work through TLS: OpenSSL may already hold
// decrypted bytes when the socket has nothing to read, so a TLS connection
// reads with async_read_some into a buffer of its own (tls_read_buffer).
//
// Lives inside its session: the TLS stream refers to the session's socket,
// and one loop thread touches both.

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/error.hpp>
#include <memory>
#include <span>

#include "gateway/runtime/loop_socket.hpp"

namespace wsgateway {

using TlsStream = boost::asio::ssl::stream<LoopSocket&>;

class ClientTransport {
 public:
  explicit ClientTransport(LoopSocket& socket) : socket_(socket) {}

  // Puts TLS over the socket, before any byte is read; the connection keeps
  // `context` for its whole life.
  void UseTls(std::shared_ptr<boost::asio::ssl::context> context);
  // Back to the bare socket once the TLS handshake failed, to answer a
  // client that spoke plain HTTP in plain HTTP. No operation may be pending.
  void DropTls() { tls_.reset(); }

  bool tls() const { return tls_ != nullptr; }
  // Only when tls().
  TlsStream& tls_stream() { return tls_->stream; }
  // Where decrypted bytes are read to; allocated on first use (only
  // connections past the HTTP phase need it). Only when tls().
  std::span<char> tls_read_buffer();

  // Calls `op` with the stream that carries the connection's bytes: the TLS
  // stream or the socket itself. Both calls must have the same type.
  template <typename Op>
  auto With(Op&& op) {
    if (tls_ != nullptr) [[unlikely]] {
      return op(tls_->stream);
    }
    return op(socket_);
  }

 private:
  struct Tls {
    Tls(LoopSocket& socket, std::shared_ptr<boost::asio::ssl::context> context);
    std::shared_ptr<boost::asio::ssl::context> context;
    TlsStream stream;
    std::unique_ptr<char[]> read_buffer;
  };

  LoopSocket& socket_;
  std::unique_ptr<Tls> tls_;
};

// The peer is gone: a FIN, a reset, or (through TLS) the TCP connection
// ending without close_notify.
inline bool IsConnectionGone(boost::beast::error_code ec) {
  return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
         ec == boost::asio::error::broken_pipe || ec == boost::asio::ssl::error::stream_truncated;
}

// The TLS handshake failed because the client spoke plain HTTP.
bool IsPlainHttpOnTls(boost::beast::error_code ec);

}  // namespace wsgateway
