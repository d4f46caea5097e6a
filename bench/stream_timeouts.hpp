#pragma once
// The time limits of wsbench's client streams, and closing a stream without
// leaving a timer behind: a declined or failed WebSocket handshake leaves
// Beast's handshake timer armed (Boost 1.81), and its pending wait keeps the
// io_context running until the timeout expires, seconds after the run is
// over. Turning the stream's timeouts off cancels it.

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>

namespace wsbench {

// How long a connect, and each opening or closing handshake, may take.
inline constexpr auto kConnectTimeout = std::chrono::seconds(5);

// Beast's suggested client timeouts, with `handshake_timeout` bounding the
// opening and the closing handshake.
inline void SetClientTimeouts(boost::beast::websocket::stream<boost::beast::tcp_stream>& ws,
                              std::chrono::steady_clock::duration handshake_timeout) {
  using boost::beast::websocket::stream_base;
  stream_base::timeout timeout = stream_base::timeout::suggested(boost::beast::role_type::client);
  timeout.handshake_timeout = handshake_timeout;
  ws.set_option(timeout);
}

// Closes the socket under `ws` at once, without a close handshake, for a
// stream whose handshake failed or may still be under way.
inline void Abandon(boost::beast::websocket::stream<boost::beast::tcp_stream>& ws) {
  using boost::beast::websocket::stream_base;
  ws.set_option(stream_base::timeout{stream_base::none(), stream_base::none(), false});
  boost::beast::error_code ignored;
  boost::beast::get_lowest_layer(ws).socket().close(ignored);
}

}  // namespace wsbench
