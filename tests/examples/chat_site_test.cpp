#include "examples/chat_site.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace wsgateway_examples {
namespace {

using wsgateway::v1::HttpRequest;
using wsgateway::v1::HttpResponse;

HttpRequest Request(const std::string& method, const std::string& path) {
  HttpRequest request;
  request.set_method(method);
  request.set_path(path);
  return request;
}

std::map<std::string, std::string> Headers(const HttpResponse& response) {
  std::map<std::string, std::string> headers;
  for (const auto& header : response.headers()) headers[header.name()] = header.value();
  return headers;
}

// GET / is the chat page, as HTML that connects to /chat.
TEST(ChatSiteTest, ServesThePageAtTheRoot) {
  const auto response = AnswerRequest(Request("GET", "/"));
  EXPECT_EQ(response.status(), 200u);
  EXPECT_EQ(Headers(response)["Content-Type"], "text/html; charset=utf-8");
  EXPECT_NE(response.body().find("<title>wsgateway chat</title>"), std::string::npos);
  EXPECT_NE(response.body().find("/chat?name="), std::string::npos);
}

// GET /health answers ok, for probes.
TEST(ChatSiteTest, AnswersHealth) {
  const auto response = AnswerRequest(Request("GET", "/health"));
  EXPECT_EQ(response.status(), 200u);
  EXPECT_EQ(response.body(), "ok\n");
}

// Other methods on served paths get 405 with Allow.
TEST(ChatSiteTest, RefusesOtherMethodsWith405) {
  for (const char* path : {"/", "/health"}) {
    const auto response = AnswerRequest(Request("POST", path));
    EXPECT_EQ(response.status(), 405u) << path;
    EXPECT_EQ(Headers(response)["Allow"], "GET") << path;
  }
}

// Anything else is 404.
TEST(ChatSiteTest, AnswersUnknownPathsWith404) {
  EXPECT_EQ(AnswerRequest(Request("GET", "/favicon.ico")).status(), 404u);
  EXPECT_EQ(AnswerRequest(Request("GET", "/chat")).status(), 404u);
}

}  // namespace
}  // namespace wsgateway_examples
