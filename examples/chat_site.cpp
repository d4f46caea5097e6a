#include "chat_site.hpp"

#include <string>
#include <string_view>

#include "chat_page.hpp"

namespace wsgateway_examples {
namespace {

using wsgateway::v1::HttpRequest;
using wsgateway::v1::HttpResponse;

void AddHeader(HttpResponse& response, std::string_view name, std::string_view value) {
  auto& header = *response.add_headers();
  header.set_name(std::string(name));
  header.set_value(std::string(value));
}

HttpResponse Respond(unsigned status, std::string_view content_type, std::string_view body) {
  HttpResponse response;
  response.set_status(status);
  AddHeader(response, "Content-Type", content_type);
  // The page is built into the binary: a new build is a new page, so let
  // the browser check every time rather than keep a stale copy.
  AddHeader(response, "Cache-Control", "no-cache");
  AddHeader(response, "X-Content-Type-Options", "nosniff");
  response.set_body(std::string(body));
  return response;
}

}  // namespace

HttpResponse AnswerRequest(const HttpRequest& request) {
  const bool page = request.path() == "/";
  const bool health = request.path() == "/health";
  if (!page && !health) return Respond(404, "text/plain; charset=utf-8", "Not found. The chat is at /.\n");
  if (request.method() != "GET") {
    auto response = Respond(405, "text/plain; charset=utf-8", "Only GET is served here.\n");
    AddHeader(response, "Allow", "GET");
    return response;
  }
  if (health) return Respond(200, "text/plain; charset=utf-8", "ok\n");
  return Respond(200, "text/html; charset=utf-8", ChatPageHtml());
}

}  // namespace wsgateway_examples
