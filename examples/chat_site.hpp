// The chat's Backend.HandleRequest: the plain-HTTP side of the demo, which
// the gateway forwards with --http-forwarding. It serves the page at / so
// that a browser pointed at the gateway gets a working chat from the same
// origin it then opens its WebSocket to.
#pragma once

#include "wsgateway/v1/backend.pb.h"

namespace wsgateway_examples {

// GET / is the page (text/html), GET /health is "ok"; another method on
// those paths is 405 with Allow: GET, and any other path 404.
wsgateway::v1::HttpResponse AnswerRequest(const wsgateway::v1::HttpRequest& request);

}  // namespace wsgateway_examples
