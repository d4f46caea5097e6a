// Path-prefix routes: each route's events go to its own backend, and each
// route's options apply to the connections it matched.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

class RoutesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    default_backend_ = EchoBackendProcess::Start(0, &error_).release();
    if (default_backend_ == nullptr) return;
    chat_backend_ = EchoBackendProcess::Start(0, &error_).release();
    if (chat_backend_ == nullptr) return;
    const auto config = std::filesystem::path(::testing::TempDir()) / "wsgateway-routes.yaml";
    std::ofstream(config) << "routes:\n"
                          << "  - path_prefix: /chat\n"
                          << "    backend: " << chat_backend_->target() << "\n"
                          << "    subprotocols: [chat.v1]\n"
                          << "  - path_prefix: /small\n"
                          << "    max_message_bytes: 16\n";
    GatewayProcess::Options options;
    options.backend = default_backend_->target();
    options.args = {"--config", config.string(), "--subprotocols", "echo.v1"};
    gateway_ = GatewayProcess::Start(options, &error_).release();
    // Start waited for the first stream; the chat route has its own.
    if (gateway_ != nullptr &&
        !gateway_->process().WaitForLine("backend stream up: " + chat_backend_->target(), kStartTimeout)) {
      error_ = "no stream to the chat backend:\n" + gateway_->process().Tail();
      delete gateway_;
      gateway_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete chat_backend_;
    delete default_backend_;
  }
  void SetUp() override { ASSERT_NE(gateway_, nullptr) << error_; }

  static double EventsSentTo(const EchoBackendProcess& backend) {
    const auto scrape = ScrapeMetrics(gateway_->metrics_port());
    return scrape ? scrape->Sum("wsgateway_backend_events_sent_total", {{"backend", backend.target()}}) : -1;
  }

  // The counter moves when gRPC reports the write done, which may come
  // after the backend's reply; poll it up to a deadline.
  static double WaitForEventsSentTo(const EchoBackendProcess& backend, double at_least) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    double sent = EventsSentTo(backend);
    while (sent < at_least && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      sent = EventsSentTo(backend);
    }
    return sent;
  }

  static inline EchoBackendProcess* default_backend_ = nullptr;
  static inline EchoBackendProcess* chat_backend_ = nullptr;
  static inline GatewayProcess* gateway_ = nullptr;
  static inline std::string error_;
};

// A connection on /chat is served by the chat backend; one on / by the
// default backend. Both echo, so the metrics tell who carried the events.
TEST_F(RoutesTest, EachRouteReachesItsOwnBackend) {
  const double chat_before = EventsSentTo(*chat_backend_);
  const double default_before = EventsSentTo(*default_backend_);
  {
    WsClient client;
    ASSERT_EQ(client.Connect(gateway_->ws_port(), "/chat/room-1").http_status, 101u);
    ASSERT_FALSE(client.SendText("to chat"));
    EXPECT_EQ(client.Read().payload, "to chat");
    ASSERT_FALSE(client.Close());
  }
  // Open + message at least; the close event may still be on its way.
  EXPECT_GE(WaitForEventsSentTo(*chat_backend_, chat_before + 2), chat_before + 2);
  EXPECT_EQ(EventsSentTo(*default_backend_), default_before);

  WsClient other;
  ASSERT_EQ(other.Connect(gateway_->ws_port(), "/elsewhere").http_status, 101u);
  ASSERT_FALSE(other.SendText("to default"));
  EXPECT_EQ(other.Read().payload, "to default");
  EXPECT_GE(WaitForEventsSentTo(*default_backend_, default_before + 2), default_before + 2);
}

// Subprotocols and size limits are per route.
TEST_F(RoutesTest, OptionsArePerRoute) {
  WsClient chat;
  auto upgrade = chat.Connect(gateway_->ws_port(), "/chat", {{"Sec-WebSocket-Protocol", "echo.v1, chat.v1"}});
  ASSERT_EQ(upgrade.http_status, 101u);
  EXPECT_EQ(upgrade.headers["sec-websocket-protocol"], "chat.v1");

  WsClient plain;
  upgrade = plain.Connect(gateway_->ws_port(), "/", {{"Sec-WebSocket-Protocol", "echo.v1, chat.v1"}});
  ASSERT_EQ(upgrade.http_status, 101u);
  EXPECT_EQ(upgrade.headers["sec-websocket-protocol"], "echo.v1");

  WsClient small;
  ASSERT_EQ(small.Connect(gateway_->ws_port(), "/small").http_status, 101u);
  ASSERT_FALSE(small.SendText(std::string(16, 'a')));
  EXPECT_EQ(small.Read().payload, std::string(16, 'a'));
  ASSERT_FALSE(small.SendText(std::string(17, 'a')));
  EXPECT_TRUE(small.Read().ec);
  EXPECT_EQ(small.CloseCode(), 1009);

  ASSERT_FALSE(plain.SendText(std::string(17, 'a')));
  EXPECT_EQ(plain.Read().payload, std::string(17, 'a'));
}

}  // namespace
}  // namespace wsgateway::testing
