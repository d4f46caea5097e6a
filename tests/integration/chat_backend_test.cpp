// The chat example: a backend that answers client messages through the
// gateway's Admin API (Broadcast) instead of the stream's push command.

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/echo_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

// Reads until a message contains `needle`; returns it, or an empty optional
// when the deadline passes or the connection ends.
std::optional<std::string> ReadUntil(WsClient& client, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto message =
        client.Read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (message.ec) return std::nullopt;
    if (message.payload.find(needle) != std::string::npos) return message.payload;
  }
  return std::nullopt;
}

// Joins, messages and leaves are announced to everyone in the room.
TEST(ChatBackendTest, MessagesAndPresenceAreBroadcastToEveryone) {
  // The backend needs the gateway's admin port and the gateway the backend's
  // port: start the gateway towards a port the OS just freed, then start the
  // chat backend on it; the gateway's reconnect finds it.
  std::string error;
  std::uint16_t backend_port = 0;
  {
    auto placeholder = EchoBackendProcess::Start(0, &error);
    ASSERT_NE(placeholder, nullptr) << error;
    backend_port = placeholder->port();
    placeholder->process().Signal(SIGKILL);
    ASSERT_TRUE(placeholder->process().Wait(std::chrono::seconds(20)));
  }
  GatewayProcess::Options options;
  options.backend = "127.0.0.1:" + std::to_string(backend_port);
  options.wait_for_backend = false;
  auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  auto chat = ChatBackendProcess::Start(backend_port, "127.0.0.1:" + std::to_string(gateway->admin_port()), &error);
  ASSERT_NE(chat, nullptr) << error;
  ASSERT_TRUE(gateway->WaitForBackendUp()) << "gateway never reached the chat backend";

  AdminClient admin(gateway->admin_port());
  WsClient ann;
  ASSERT_EQ(ann.Connect(gateway->ws_port(), "/chat/ann").http_status, 101u);
  const auto ann_info = admin.WaitForOne("/chat/ann", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(ann_info.has_value());
  const std::string ann_tag = ann_info->connection_id().substr(ann_info->connection_id().size() - 6);

  WsClient bob;
  ASSERT_EQ(bob.Connect(gateway->ws_port(), "/chat/bob").http_status, 101u);
  const auto bob_info = admin.WaitForOne("/chat/bob", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(bob_info.has_value());
  const std::string bob_tag = bob_info->connection_id().substr(bob_info->connection_id().size() - 6);

  EXPECT_TRUE(ReadUntil(ann, bob_tag + " joined")) << "ann never saw bob join";
  ASSERT_FALSE(ann.SendText("hello room"));
  EXPECT_EQ(ReadUntil(bob, "hello room"), ann_tag + ": hello room");
  EXPECT_EQ(ReadUntil(ann, "hello room"), ann_tag + ": hello room");

  ASSERT_FALSE(bob.Close());
  EXPECT_TRUE(ReadUntil(ann, bob_tag + " left")) << "ann never saw bob leave";
}

}  // namespace
}  // namespace wsgateway::testing
