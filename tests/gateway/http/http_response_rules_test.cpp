// What the gateway makes of a backend's HTTP answer (HandleRequest, and the
// handshake hook's rejections): the framing is the gateway's, so a correct
// Content-Length is accepted and hop-by-hop headers are dropped as a proxy
// drops them; an answer that cannot be sent is refused with a bounded
// reason and a sentence saying why.

#include "gateway/http/http_response_rules.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "metrics/gateway_metrics.hpp"

namespace wsgateway {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;

v1::HttpResponse Answer(unsigned status, std::string body,
                        const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  v1::HttpResponse answer;
  answer.set_status(status);
  answer.set_body(std::move(body));
  for (const auto& [name, value] : headers) {
    auto* header = answer.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  return answer;
}

// The reason of a refusal, or "" when the answer was accepted. Every reason
// must be one of the metric's bounded labels.
std::string ReasonOf(const v1::HttpResponse& answer, bool to_head = false) {
  HttpResponse response;
  const auto invalid = ToHttpResponse(answer, response, to_head);
  if (!invalid) return {};
  const auto& labels = metrics::GatewayMetrics::kHttpForwardingFailureReasons;
  EXPECT_NE(std::find(labels.begin(), labels.end(), invalid->reason), labels.end())
      << invalid->reason << " is not a label of wsgateway_http_forwarding_failures_total";
  return std::string(invalid->reason);
}

// A Content-Length equal to the body's size is accepted (WSGI-style
// adapters always set one); the gateway frames the response itself.
TEST(HttpResponseRulesTest, CorrectContentLengthIsAccepted) {
  HttpResponse response;
  const auto invalid = ToHttpResponse(Answer(200, "hello", {{"Content-Length", "5"}}), response);
  ASSERT_FALSE(invalid.has_value()) << invalid->detail;
  response.prepare_payload();
  EXPECT_EQ(response[http::field::content_length], "5");
  EXPECT_EQ(response.count(http::field::content_length), 1u);
  EXPECT_EQ(response.body(), "hello");
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"content-length", "0"}})), "");
  EXPECT_EQ(ReasonOf(Answer(200, "abc", {{"Content-Length", "3"}, {"Content-Length", "3"}})), "")
      << "repeated, equal values describe the same length";
}

// A Content-Length that does not match the body, or is not a number, is
// refused as bad_content_length, naming both lengths.
TEST(HttpResponseRulesTest, WrongContentLengthIsRefusedWithItsReason) {
  HttpResponse response;
  const auto invalid = ToHttpResponse(Answer(200, "hello", {{"Content-Length", "999"}}), response);
  ASSERT_TRUE(invalid.has_value());
  EXPECT_EQ(invalid->reason, "bad_content_length");
  EXPECT_THAT(invalid->detail, HasSubstr("999"));
  EXPECT_THAT(invalid->detail, HasSubstr("5 bytes"));
  for (const std::string value : {"", "5x", "-5", "+5", " 5", "0x5", "99999999999999999999999"}) {
    EXPECT_EQ(ReasonOf(Answer(200, "hello", {{"Content-Length", value}})), "bad_content_length") << value;
  }
  EXPECT_EQ(ReasonOf(Answer(200, "hello", {{"Content-Length", "5"}, {"Content-Length", "6"}})), "bad_content_length");
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) describe the backend's
// connection, not the client's: they are dropped, as nginx and Envoy drop
// them, and everything else is kept in order.
TEST(HttpResponseRulesTest, HopByHopHeadersAreDropped) {
  HttpResponse response;
  const auto invalid = ToHttpResponse(Answer(200, "body",
                                             {{"Connection", "close"},
                                              {"X-Before", "1"},
                                              {"Keep-Alive", "timeout=5"},
                                              {"Transfer-Encoding", "chunked"},
                                              {"TE", "trailers"},
                                              {"Trailer", "X-Checksum"},
                                              {"Upgrade", "h2c"},
                                              {"Proxy-Connection", "keep-alive"},
                                              {"connection", "keep-alive"},
                                              {"X-After", "2"}}),
                                      response);
  ASSERT_FALSE(invalid.has_value()) << invalid->detail;
  std::vector<std::string> names;
  for (const auto& field : response) names.emplace_back(field.name_string());
  EXPECT_EQ(names, (std::vector<std::string>{"X-Before", "X-After"}));
  EXPECT_EQ(response.body(), "body");
}

// Headers that a Connection header names are hop-by-hop too.
TEST(HttpResponseRulesTest, HeadersNamedByConnectionAreDropped) {
  HttpResponse response;
  const auto invalid =
      ToHttpResponse(Answer(200, "", {{"Connection", "close, X-Hop"}, {"x-hop", "a"}, {"X-Kept", "b"}}), response);
  ASSERT_FALSE(invalid.has_value()) << invalid->detail;
  EXPECT_EQ(response.count("X-Hop"), 0u);
  EXPECT_EQ(response["X-Kept"], "b");
}

// A 426 must name the protocols in Upgrade (RFC 9110 section 15.5.22), so
// there it is kept.
TEST(HttpResponseRulesTest, UpgradeIsKeptOnA426) {
  HttpResponse response;
  ASSERT_FALSE(ToHttpResponse(Answer(426, "", {{"Upgrade", "websocket"}}), response).has_value());
  EXPECT_EQ(response[http::field::upgrade], "websocket");
}

// The answer to HEAD, and a 304, carry no body; their Content-Length
// states the size of the representation and is kept as the backend set it.
TEST(HttpResponseRulesTest, HeadAnd304KeepTheRepresentationsLength) {
  HttpResponse head;
  ASSERT_FALSE(ToHttpResponse(Answer(200, "", {{"Content-Length", "1234"}}), head, /*to_head=*/true).has_value());
  EXPECT_EQ(head[http::field::content_length], "1234");
  HttpResponse not_modified;
  ASSERT_FALSE(ToHttpResponse(Answer(304, "", {{"Content-Length", "77"}}), not_modified).has_value());
  EXPECT_EQ(not_modified[http::field::content_length], "77");
  // A body sent anyway must match, as for any other answer.
  EXPECT_EQ(ReasonOf(Answer(200, "abc", {{"Content-Length", "1234"}}), /*to_head=*/true), "bad_content_length");
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"Content-Length", "x"}}), /*to_head=*/true), "bad_content_length");
}

// 204 and 304 answers cannot have a body (RFC 9110 sections 15.3.5 and
// 15.4.5); one that has is refused rather than half-sent.
TEST(HttpResponseRulesTest, BodyOnA204Or304IsRefused) {
  EXPECT_EQ(ReasonOf(Answer(204, "x")), "bad_body");
  EXPECT_EQ(ReasonOf(Answer(304, "x")), "bad_body");
  EXPECT_EQ(ReasonOf(Answer(204, "")), "");
  EXPECT_EQ(ReasonOf(Answer(204, "", {{"Content-Length", "1"}})), "bad_content_length");
}

// A status that cannot end an exchange is bad_status; 0 means 200.
TEST(HttpResponseRulesTest, StatusOutside200To599IsRefused) {
  EXPECT_EQ(ReasonOf(Answer(101, "")), "bad_status");
  EXPECT_EQ(ReasonOf(Answer(199, "")), "bad_status");
  EXPECT_EQ(ReasonOf(Answer(600, "")), "bad_status");
  HttpResponse response;
  ASSERT_FALSE(ToHttpResponse(Answer(0, "ok"), response).has_value());
  EXPECT_EQ(response.result_int(), 200u);
}

// A header that cannot be written is bad_header: a name that is not a
// token, a value with CR, LF or NUL. A long name is not quoted whole.
TEST(HttpResponseRulesTest, UnwritableHeaderIsRefused) {
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"Bad Name", "x"}})), "bad_header");
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"", "x"}})), "bad_header");
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"X-Split", "a\r\nSet-Cookie: evil"}})), "bad_header");
  EXPECT_EQ(ReasonOf(Answer(200, "", {{"X-Nul", std::string("a\0b", 3)}})), "bad_header");
  HttpResponse response;
  const auto invalid = ToHttpResponse(Answer(200, "", {{std::string(8192, 'n') + " ", "x"}}), response);
  ASSERT_TRUE(invalid.has_value());
  EXPECT_LT(invalid->detail.size(), 200u) << invalid->detail.substr(0, 300);
}

// The handshake hook's 101 headers keep the stricter rule: the gateway
// writes the 101's framing and WebSocket headers itself.
TEST(HttpResponseRulesTest, UpgradeHeadersStillRefuseTheGatewaysOwn) {
  EXPECT_NE(CheckResponseHeader("Content-Length", "0", /*upgrade=*/true), "");
  EXPECT_NE(CheckResponseHeader("Connection", "close", /*upgrade=*/true), "");
  EXPECT_NE(CheckResponseHeader("Sec-WebSocket-Accept", "x", /*upgrade=*/true), "");
  EXPECT_EQ(CheckResponseHeader("X-Session", "abc", /*upgrade=*/true), "");
}

}  // namespace
}  // namespace wsgateway
