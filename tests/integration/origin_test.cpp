// allowed_origins on the public listener: upgrades from listed origins (exact
// or by subdomain, any case) and from clients without an Origin header go
// through; any other origin gets 403, is counted, and never reaches the
// backend as a connection.

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/support/gateway_stack.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

std::string UpgradeRequest(std::uint16_t port, const std::optional<std::string>& origin) {
  std::string request = "GET /origin HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (origin) request += "Origin: " + *origin + "\r\n";
  return request + "\r\n";
}

HttpResult UpgradeFrom(std::uint16_t port, const std::optional<std::string>& origin) {
  return RawHttpExchange(port, UpgradeRequest(port, origin));
}

double Counter(std::uint16_t metrics_port, const std::string& name, const std::string& reason) {
  const auto scrape = ScrapeMetrics(metrics_port);
  if (!scrape) {
    ADD_FAILURE() << "cannot scrape /metrics";
    return -1;
  }
  return scrape->Value(name, {{"reason", reason}}).value_or(-1);
}

double OriginRejections(std::uint16_t metrics_port) {
  return Counter(metrics_port, "wsgateway_rejected_connections_total", "origin");
}

class OriginTest : public SharedEchoStack<OriginTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--allowed-origins", "https://app.example.com, https://*.example.org, http://localhost:8080"};
  }
};

TEST_F(OriginTest, ListedOriginUpgrades) {
  for (const char* origin : {"https://app.example.com", "http://localhost:8080"}) {
    const auto result = UpgradeFrom(port(), origin);
    EXPECT_EQ(result.status, 101u) << origin << ": " << result.ec.message() << " " << result.body;
  }
}

// Scheme and host are case-insensitive (RFC 6454); a browser sends lower
// case, other clients may not.
TEST_F(OriginTest, OriginCaseDoesNotMatter) {
  const auto result = UpgradeFrom(port(), "HTTPS://App.Example.COM");
  EXPECT_EQ(result.status, 101u) << result.ec.message() << " " << result.body;
}

TEST_F(OriginTest, WildcardAllowsSubdomainsAtAnyDepth) {
  for (const char* origin : {"https://a.example.org", "https://a.b.example.org"}) {
    const auto result = UpgradeFrom(port(), origin);
    EXPECT_EQ(result.status, 101u) << origin << ": " << result.ec.message() << " " << result.body;
  }
  for (const char* origin : {"https://example.org", "https://evil-example.org", "http://a.example.org"}) {
    const auto result = UpgradeFrom(port(), origin);
    EXPECT_EQ(result.status, 403u) << origin << ": " << result.ec.message();
  }
}

// Command-line clients and servers send no Origin; they are not browsers, so
// no page can be abusing them.
TEST_F(OriginTest, UpgradeWithoutOriginIsAllowed) {
  const auto result = UpgradeFrom(port(), std::nullopt);
  EXPECT_EQ(result.status, 101u) << result.ec.message() << " " << result.body;
  WsClient client;
  const auto upgrade = client.Connect(port(), "/origin/library");
  EXPECT_EQ(upgrade.http_status, 101u) << upgrade.ec.message();
}

// Another origin gets 403 with a body that says why, the connection is
// closed, and the refusal is counted.
TEST_F(OriginTest, OtherOriginGets403AndIsCounted) {
  const double before = OriginRejections(metrics_port());
  const double before_handshake = Counter(metrics_port(), "wsgateway_handshake_rejections_total", "origin");
  const auto result = UpgradeFrom(port(), "https://evil.test");
  ASSERT_EQ(result.status, 403u) << result.ec.message();
  EXPECT_NE(result.body.find("origin is not allowed"), std::string::npos) << result.body;
  EXPECT_EQ(result.headers.at("connection"), "close");
  EXPECT_EQ(result.headers.count("sec-websocket-accept"), 0u);
  EXPECT_EQ(OriginRejections(metrics_port()), before + 1);
  EXPECT_EQ(Counter(metrics_port(), "wsgateway_handshake_rejections_total", "origin"),
            std::max(before_handshake, 0.0) + 1);
}

// The opaque origin of sandboxed frames and local files could be any page.
TEST_F(OriginTest, NullOriginIsRefused) {
  const double before = OriginRejections(metrics_port());
  const auto result = UpgradeFrom(port(), "null");
  EXPECT_EQ(result.status, 403u) << result.ec.message();
  EXPECT_EQ(OriginRejections(metrics_port()), before + 1);
}

// A value that is not an origin, or two Origin headers, match nothing.
TEST_F(OriginTest, MalformedOrAmbiguousOriginIsRefused) {
  EXPECT_EQ(UpgradeFrom(port(), "https://app.example.com/").status, 403u);
  EXPECT_EQ(UpgradeFrom(port(), "app.example.com").status, 403u);
  std::string twice = UpgradeRequest(port(), "https://app.example.com");
  twice.insert(twice.size() - 2, "Origin: https://evil.test\r\n");
  EXPECT_EQ(RawHttpExchange(port(), twice).status, 403u);
}

// Established connections are unaffected by refusals around them.
TEST_F(OriginTest, RefusalsDoNotDisturbOpenConnections) {
  WsClient client;
  ASSERT_EQ(client.Connect(port(), "/origin/open", {{"Origin", "https://app.example.com"}}).http_status, 101u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(UpgradeFrom(port(), "https://evil.test").status, 403u);
  ASSERT_FALSE(client.SendText("still here"));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_EQ(echo.payload, "still here");
}

// Without allowed_origins every origin may connect, and every reason of the
// refusal counter is exported at 0 from the start.
TEST(OriginUnsetTest, EveryOriginIsAllowedAndCountersStartAtZero) {
  std::string error;
  const auto stack = EchoStack::Start({}, &error);
  ASSERT_NE(stack, nullptr) << error;
  const auto scrape = ScrapeMetrics(stack->gateway->metrics_port());
  ASSERT_TRUE(scrape);
  for (const char* reason :
       {"origin", "connection_limit", "address_limit", "handshake_timeout", "handshake_too_large"}) {
    EXPECT_EQ(scrape->Value("wsgateway_rejected_connections_total", {{"reason", reason}}), 0.0) << reason;
  }
  for (const char* origin : {"https://evil.test", "null"}) {
    const auto result = UpgradeFrom(stack->gateway->ws_port(), origin);
    EXPECT_EQ(result.status, 101u) << origin << ": " << result.ec.message();
  }
}

}  // namespace
}  // namespace wsgateway::testing
