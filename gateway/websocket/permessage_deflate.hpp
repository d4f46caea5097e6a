#pragma once
// Server side of the permessage-deflate negotiation (RFC 7692, sections 5
// and 7.1): which of a client's offers the gateway accepts, what it answers
// in Sec-WebSocket-Extensions, and the compression parameters both ends are
// then bound to.
//
// A bad offer never fails the handshake: RFC 7692 section 7 has the server
// decline it, and a client that gets no extension back simply does not
// compress.

#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

// What the gateway is willing to do (from configuration).
struct DeflatePolicy {
  bool enabled = false;
  // Ask for no context takeover in each direction. The server may always add
  // these to its response (RFC 7692 7.1.1); with them, no compressor or
  // decompressor state outlives a message, so an idle connection holds no
  // zlib memory.
  bool server_no_context_takeover = true;
  bool client_no_context_takeover = true;
  int server_max_window_bits = 15;  // 9..15 (zlib cannot deflate with an 8-bit window)
  int client_max_window_bits = 15;  // 8..15
};

// What was agreed with one client.
struct DeflateAgreement {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;  // the window the gateway compresses with
  int client_max_window_bits = 15;  // the window the gateway must be able to inflate
  // The Sec-WebSocket-Extensions response value, e.g.
  // "permessage-deflate; server_no_context_takeover; client_no_context_takeover".
  std::string response;
};

// Looks at every Sec-WebSocket-Extensions value the client sent (pass them
// joined with ", "), considers the permessage-deflate offers in the client's
// order of preference and returns an agreement for the first one the policy
// can honour; nullopt declines compression.
//
// Never fails the handshake: malformed syntax, unknown, duplicate or
// valueless-when-required parameters, invalid values, and offers the policy
// cannot honour (server_max_window_bits=8) decline that offer and the next
// one is considered. Other extensions are ignored. Syntax is RFC 6455 9.1 /
// RFC 7230: tokens, quoted-string values (client_max_window_bits="10"), OWS
// around ";", "," and "=", empty list elements; extension and parameter
// names are case-insensitive.
std::optional<DeflateAgreement> NegotiateDeflate(std::string_view offers, const DeflatePolicy& policy);

}  // namespace wsgateway
