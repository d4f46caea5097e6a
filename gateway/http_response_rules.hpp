#pragma once
// What the gateway accepts from a backend that writes HTTP for it: the
// handshake hook's extra 101 headers and rejections, and HandleRequest's
// responses. A backend cannot smuggle a second response or take over the
// headers the gateway owns.

#include <boost/beast/http.hpp>
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

// Turns a backend's response into an HTTP response (status 0 means 200);
// returns why it cannot, or empty.
std::string ToHttpResponse(const v1::HttpResponse& from, HttpResponse& to);

}  // namespace wsgateway
