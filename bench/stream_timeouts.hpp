#pragma once
// A declined or failed WebSocket handshake leaves Beast's handshake timer
// armed (Boost 1.81), and its pending wait keeps the io_context running
// until the timeout expires, seconds after the run is over. Turning the
// stream's timeouts off cancels it.

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace wsbench {

inline void DisarmTimeouts(boost::beast::websocket::stream<boost::beast::tcp_stream>& ws) {
  using boost::beast::websocket::stream_base;
  ws.set_option(stream_base::timeout{stream_base::none(), stream_base::none(), false});
}

}  // namespace wsbench
