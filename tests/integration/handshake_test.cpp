// The HTTP side of the public listener: upgrades, refusals and plain HTTP,
// with and without a backend.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/shared_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

std::string UpgradeRequest(std::uint16_t port, const std::string& target, const std::string& version,
                           bool with_key = true) {
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  if (with_key) request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  if (!version.empty()) request += "Sec-WebSocket-Version: " + version + "\r\n";
  return request + "\r\n";
}

class HandshakeTest : public SharedEchoStack<HandshakeTest> {};

// A well-formed upgrade by hand gets 101 with the RFC 6455 accept key.
TEST_F(HandshakeTest, ValidUpgradeGets101WithTheAcceptKey) {
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), "/raw", "13"));
  ASSERT_EQ(result.status, 101u) << result.ec.message();
  EXPECT_EQ(result.headers.at("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

// WebSocket clients may connect on any path, with a query string.
TEST_F(HandshakeTest, UpgradeSucceedsOnAnyPath) {
  for (const char* target : {"/", "/chat", "/a/b/c?room=1&user=x", "/%20encoded"}) {
    WsClient client;
    const auto upgrade = client.Connect(port(), target);
    EXPECT_EQ(upgrade.http_status, 101u) << target << ": " << upgrade.ec.message();
  }
}

// A plain HTTP GET (no upgrade) is answered 400, as in Swoole without onRequest.
TEST_F(HandshakeTest, PlainHttpGetGets400) {
  const auto result = HttpGet(port(), "/index.html");
  EXPECT_FALSE(result.ec && result.status == 0) << result.ec.message();
  EXPECT_EQ(result.status, 400u);
}

// An upgrade asking for another protocol version is answered 426 with
// Sec-WebSocket-Version: 13.
TEST_F(HandshakeTest, WrongVersionGets426NamingVersion13) {
  for (const char* version : {"8", "12", "14"}) {
    const auto result = RawHttpExchange(port(), UpgradeRequest(port(), "/v", version));
    EXPECT_EQ(result.status, 426u) << "version " << version << ": " << result.ec.message();
    ASSERT_EQ(result.headers.count("sec-websocket-version"), 1u) << "version " << version;
    EXPECT_EQ(result.headers.at("sec-websocket-version"), "13");
  }
}

// An upgrade without Sec-WebSocket-Key is malformed: 400.
TEST_F(HandshakeTest, UpgradeWithoutKeyGets400) {
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), "/nokey", "13", /*with_key=*/false));
  EXPECT_EQ(result.status, 400u) << result.ec.message();
}

// An upgrade without any Sec-WebSocket-Version is malformed too (400 or 426).
TEST_F(HandshakeTest, UpgradeWithoutVersionIsRefused) {
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), "/noversion", ""));
  EXPECT_TRUE(result.status == 400u || result.status == 426u) << result.status << " " << result.ec.message();
}

// Bytes that are not HTTP at all get 400 (or a closed connection), never a
// WebSocket.
TEST_F(HandshakeTest, GarbageRequestIsRefused) {
  const auto result = RawHttpExchange(port(), "\x16\x03\x01 not http at all\r\n\r\n", std::chrono::seconds(20));
  EXPECT_NE(result.status, 101u);
  EXPECT_TRUE(result.status == 400u || (result.status == 0 && result.ec)) << result.status;
}

// The listener still serves WebSocket clients after all the refusals above.
TEST_F(HandshakeTest, RefusalsDoNotDisturbOtherClients) {
  (void)HttpGet(port(), "/");
  (void)RawHttpExchange(port(), UpgradeRequest(port(), "/v", "8"));
  WsClient client;
  ASSERT_EQ(client.Connect(port(), "/after").http_status, 101u);
  ASSERT_FALSE(client.SendText("still here"));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_EQ(echo.payload, "still here");
}

// Without a backend, upgrades are answered 503 Service Unavailable.
TEST(HandshakeWithoutBackendTest, UpgradeGets503WhenNoBackendIsConfigured) {
  std::string error;
  auto gateway = GatewayProcess::Start({}, &error);
  ASSERT_NE(gateway, nullptr) << error;
  WsClient client;
  const auto upgrade = client.Connect(gateway->ws_port(), "/no-backend");
  EXPECT_TRUE(upgrade.ec);
  EXPECT_EQ(upgrade.http_status, 503u);
}

// When the configured backend cannot be reached, upgrades get 503 too.
TEST(HandshakeWithoutBackendTest, UpgradeGets503WhenTheBackendIsUnreachable) {
  // A port the OS just handed out and nobody listens on any more.
  std::string error;
  std::uint16_t dead_port = 0;
  {
    auto backend = EchoBackendProcess::Start(0, &error);
    ASSERT_NE(backend, nullptr) << error;
    dead_port = backend->port();
    backend->process().Signal(SIGKILL);
    ASSERT_TRUE(backend->process().Wait(std::chrono::seconds(20)));
  }
  GatewayProcess::Options options;
  options.backend = "127.0.0.1:" + std::to_string(dead_port);
  options.wait_for_backend = false;
  auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  WsClient client;
  const auto upgrade = client.Connect(gateway->ws_port(), "/backend-down");
  EXPECT_EQ(upgrade.http_status, 503u) << upgrade.ec.message();
}

// With --reject-upgrades-without-backend false, clients can connect while no
// backend is there.
TEST(HandshakeWithoutBackendTest, UpgradeSucceedsWithoutBackendWhenRejectionIsOff) {
  std::string error;
  GatewayProcess::Options options;
  options.args = {"--reject-upgrades-without-backend", "false"};
  auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  WsClient client;
  const auto upgrade = client.Connect(gateway->ws_port(), "/accepted");
  EXPECT_EQ(upgrade.http_status, 101u) << upgrade.ec.message();
}

// Plain HTTP still gets 400 without a backend.
TEST(HandshakeWithoutBackendTest, PlainHttpGets400WithoutBackend) {
  std::string error;
  auto gateway = GatewayProcess::Start({}, &error);
  ASSERT_NE(gateway, nullptr) << error;
  EXPECT_EQ(HttpGet(gateway->ws_port(), "/").status, 400u);
}

}  // namespace
}  // namespace wsgateway::testing
