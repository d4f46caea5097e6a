#pragma once
// The server side of the RFC 6455 opening handshake (section 4.2.1 and
// 4.2.2): whether a request is a WebSocket upgrade, whether it is a valid
// one, and the 101 response, written as one buffer so an accepted upgrade
// costs one write.

#include <boost/beast/http.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wsgateway {

// The request line and headers; the checks never look at a body.
using UpgradeRequest = boost::beast::http::request_header<>;

// The request asks for a WebSocket upgrade (Upgrade: websocket). Anything
// else is plain HTTP.
bool IsWebSocketUpgrade(const UpgradeRequest& request);

struct UpgradeRefusal {
  boost::beast::http::status status = boost::beast::http::status::bad_request;
  // Label of wsgateway_handshakes_rejected_total.
  std::string_view reason_label;
  // What the client did wrong, for the response body.
  std::string_view message;
};

// Checks an upgrade request against RFC 6455 section 4.2.1; nothing when it
// is valid. A wrong version is refused with 426, which must name version 13
// (section 4.4).
std::optional<UpgradeRefusal> CheckUpgradeRequest(const UpgradeRequest& request);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (section 4.2.2).
std::string WebSocketAccept(std::string_view key);

// The subprotocols the client offered (every Sec-WebSocket-Protocol
// field), in its order of preference. Views into `request`.
std::vector<std::string_view> OfferedSubprotocols(const UpgradeRequest& request);

// The first subprotocol in the client's Sec-WebSocket-Protocol offers (its
// order of preference) that `supported` contains; empty when none, so a
// response never names one the client did not offer.
std::string SelectSubprotocol(const UpgradeRequest& request, std::span<const std::string> supported);

// Every value of a header the client may repeat, joined with ", " as one
// list (RFC 9110 section 5.3).
std::string JoinedFieldValues(const UpgradeRequest& request, boost::beast::http::field field);

struct UpgradeResponseParts {
  std::string_view accept;
  std::string_view subprotocol;  // empty: no Sec-WebSocket-Protocol
  std::string_view extensions;   // empty: no Sec-WebSocket-Extensions
  // Further "Name: value\r\n" lines, already formatted.
  std::string_view extra_header_lines;
};
std::string BuildUpgradeResponse(const UpgradeResponseParts& parts);

}  // namespace wsgateway
