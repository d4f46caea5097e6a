#pragma once
// What the gateway accepts from a backend that writes HTTP for it: the
// handshake hook's extra 101 headers and rejections, and HandleRequest's
// responses. A backend cannot smuggle a second response or take over the
// headers the gateway owns: the gateway frames every response itself, so
// it drops the hop-by-hop headers a backend sets (as nginx and Envoy do),
// accepts a Content-Length only where it states the body's real size, and
// refuses what it cannot send with a bounded reason.
//
// Thread-safety: pure functions, callable from any thread.

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Empty when `name: value` may go into a response; otherwise why not. The
// gateway's own headers (framing, and on a 101 the WebSocket ones) are
// refused.
std::string CheckResponseHeader(std::string_view name, std::string_view value, bool upgrade);

// Why a backend's answer cannot be sent to the client.
struct InvalidAnswer {
  // A bounded metric label (wsgateway_http_forwarding_failures_total):
  // "bad_status" (not 200-599), "bad_header" (a name that is not a token,
  // a value with CR, LF or NUL), "bad_content_length" (not a number, or not
  // the body's size), "bad_body" (a body on a 204 or 304).
  std::string_view reason;
  // A sentence for the log; quotes the backend's input only briefly.
  std::string detail;
};

// Turns a backend's answer into an HTTP response (status 0 means 200), or
// says why it cannot. Hop-by-hop headers (Connection and the headers it
// names, Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade except on a
// 426, Proxy-Connection) are dropped. A Content-Length must equal the
// body's size and is then left to the gateway's framing, except that the
// answer to HEAD (`to_head`) and a 304 without a body keep it as the size
// of the representation (RFC 9110 sections 8.6 and 9.3.2).
std::optional<InvalidAnswer> ToHttpResponse(const v1::HttpResponse& from, HttpResponse& to, bool to_head = false);

}  // namespace wsgateway
