// The chat example (examples/chat_backend) behind a real gateway configured
// as scripts/run does: the page over HTTP forwarding, names and the lobby
// group from the handshake hook, lines broadcast to the group through the
// Admin API. tests/browser drives the same stack from Chromium.

#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

// The demo's gateway settings (examples/chat_gateway.yaml).
const std::vector<std::string> kDemoFlags = {"--http-forwarding", "true",    "--handshake-hook",     "true",
                                             "--subprotocols",    "chat.v1", "--permessage-deflate", "true"};

struct ChatStack {
  std::unique_ptr<GatewayProcess> gateway;
  std::unique_ptr<ChatBackendProcess> chat;

  // The backend needs the gateway's admin port and the gateway the
  // backend's port: start the gateway towards a port the OS just freed,
  // then the chat backend on it; the gateway's reconnect finds it.
  static std::unique_ptr<ChatStack> Start(const std::vector<std::string>& gateway_args, std::string* error) {
    std::uint16_t backend_port = 0;
    {
      auto placeholder = EchoBackendProcess::Start(0, error);
      if (!placeholder) return nullptr;
      backend_port = placeholder->port();
      placeholder->process().Signal(SIGKILL);
      if (!placeholder->process().Wait(kStartTimeout)) {
        *error = "the placeholder backend did not exit";
        return nullptr;
      }
    }
    auto stack = std::make_unique<ChatStack>();
    GatewayProcess::Options options;
    options.backend = "127.0.0.1:" + std::to_string(backend_port);
    options.wait_for_backend = false;
    options.args = gateway_args;
    stack->gateway = GatewayProcess::Start(options, error);
    if (!stack->gateway) return nullptr;
    stack->chat =
        ChatBackendProcess::Start(backend_port, "127.0.0.1:" + std::to_string(stack->gateway->admin_port()), error);
    if (!stack->chat) return nullptr;
    if (!stack->gateway->WaitForBackendUp()) {
      *error = "the gateway never reached the chat backend:\n" + stack->gateway->process().Tail();
      return nullptr;
    }
    return stack;
  }

  std::uint16_t port() const { return gateway->ws_port(); }
};

// Reads until a text message contains `needle`; returns it, or nullopt when
// the deadline passes or the connection ends. Binary messages on the way
// fail the test: the room sends none to anyone but their sender.
std::optional<std::string> ReadUntil(WsClient& client, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto message =
        client.Read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (message.ec) return std::nullopt;
    EXPECT_FALSE(message.binary) << "unexpected binary message while waiting for " << needle;
    if (message.payload.find(needle) != std::string::npos) return message.payload;
  }
  return std::nullopt;
}

// Joins, lines and leaves reach everyone in the lobby, with who is online.
TEST(ChatBackendTest, LinesAndPresenceAreBroadcastToTheLobby) {
  std::string error;
  auto stack = ChatStack::Start(kDemoFlags, &error);
  ASSERT_NE(stack, nullptr) << error;

  WsClient ann;
  ASSERT_EQ(ann.Connect(stack->port(), "/chat?name=ann").http_status, 101u);
  EXPECT_EQ(ReadUntil(ann, R"("name":"ann")"), R"({"type":"joined","name":"ann","online":["ann"]})");

  WsClient bob;
  ASSERT_EQ(bob.Connect(stack->port(), "/chat?name=bob").http_status, 101u);
  const std::string bob_joined = R"({"type":"joined","name":"bob","online":["ann","bob"]})";
  EXPECT_EQ(ReadUntil(ann, R"("name":"bob")"), bob_joined);
  EXPECT_EQ(ReadUntil(bob, R"("name":"bob")"), bob_joined);

  ASSERT_FALSE(ann.SendText("hello \"room\""));
  const std::string line = R"({"type":"message","from":"ann","text":"hello \"room\""})";
  EXPECT_EQ(ReadUntil(bob, "hello"), line);
  EXPECT_EQ(ReadUntil(ann, "hello"), line);

  ASSERT_FALSE(bob.Close());
  EXPECT_EQ(ReadUntil(ann, R"("type":"left")"), R"({"type":"left","name":"bob","online":["ann"]})");
}

// A binary message comes back to its sender, unchanged, and to nobody else.
TEST(ChatBackendTest, BinaryMessagesComeBackToTheirSenderOnly) {
  std::string error;
  auto stack = ChatStack::Start(kDemoFlags, &error);
  ASSERT_NE(stack, nullptr) << error;
  WsClient ann;
  WsClient bob;
  ASSERT_EQ(ann.Connect(stack->port(), "/chat?name=ann").http_status, 101u);
  ASSERT_EQ(bob.Connect(stack->port(), "/chat?name=bob").http_status, 101u);
  ASSERT_TRUE(ReadUntil(ann, R"("name":"bob")"));
  ASSERT_TRUE(ReadUntil(bob, R"("name":"bob")"));

  const std::string bytes("\x00\x01\xfe\xff", 4);
  ASSERT_FALSE(ann.SendBinary(bytes));
  // The two join announcements are broadcast independently, so ann's own
  // may still arrive after bob's: skip text until the binary echo.
  auto echoed = ann.Read();
  for (int text_lines = 0; !echoed.ec && !echoed.binary && text_lines < 4; ++text_lines) echoed = ann.Read();
  ASSERT_FALSE(echoed.ec) << echoed.ec.message();
  EXPECT_TRUE(echoed.binary);
  EXPECT_EQ(echoed.payload, bytes);
  // bob's next message is ann's next line; ReadUntil fails on a binary one.
  ASSERT_FALSE(ann.SendText("after the bytes"));
  EXPECT_TRUE(ReadUntil(bob, "after the bytes"));
}

// The handshake hook picks chat.v1 when offered, attaches the name as
// metadata and puts the connection in the lobby group.
TEST(ChatBackendTest, TheHandshakeNamesTheConnectionAndChoosesChatV1) {
  std::string error;
  auto stack = ChatStack::Start(kDemoFlags, &error);
  ASSERT_NE(stack, nullptr) << error;
  WsClient ann;
  const auto upgrade = ann.Connect(stack->port(), "/chat?name=Ann%20Lee", {{"Sec-WebSocket-Protocol", "x, chat.v1"}});
  ASSERT_EQ(upgrade.http_status, 101u);
  EXPECT_EQ(upgrade.headers.at("sec-websocket-protocol"), "chat.v1");
  EXPECT_TRUE(ReadUntil(ann, R"("name":"Ann Lee")"));

  AdminClient admin(stack->gateway->admin_port());
  const auto info = admin.WaitForOne("/chat", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata().at("name"), "Ann Lee");
  ASSERT_EQ(info->groups_size(), 1);
  EXPECT_EQ(info->groups(0), "lobby");
  EXPECT_EQ(info->subprotocol(), "chat.v1");
}

// Missing or bad names, and other paths, are refused before the upgrade
// with a status and a body that say what to fix.
TEST(ChatBackendTest, BadNamesAreRefusedAtTheHandshake) {
  std::string error;
  auto stack = ChatStack::Start(kDemoFlags, &error);
  ASSERT_NE(stack, nullptr) << error;
  const struct {
    const char* target;
    unsigned status;
    const char* says;
  } cases[] = {
      {"/chat", 400, "connect to /chat?name=YOUR_NAME"},
      {"/chat?name=", 400, "The name is empty."},
      {"/chat?name=%01bad", 400, "control or invisible character"},
      {"/chat?name=123456789012345678901234567890123", 400, "longer than 32 characters"},
      {"/lobby?name=ann", 404, "There is no chat at /lobby"},
  };
  for (const auto& c : cases) {
    WsClient client;
    const auto upgrade = client.Connect(stack->port(), c.target);
    EXPECT_EQ(upgrade.http_status, c.status) << c.target;
    EXPECT_NE(upgrade.body.find(c.says), std::string::npos) << c.target << ": " << upgrade.body;
  }
}

// Plain HTTP reaches the backend: the page at /, 404 elsewhere, 405 for
// other methods.
TEST(ChatBackendTest, ThePageIsServedOverPlainHttp) {
  std::string error;
  auto stack = ChatStack::Start(kDemoFlags, &error);
  ASSERT_NE(stack, nullptr) << error;

  const auto page = HttpGet(stack->port(), "/");
  ASSERT_FALSE(page.ec) << page.ec.message();
  EXPECT_EQ(page.status, 200u);
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<title>wsgateway chat</title>"), std::string::npos);

  EXPECT_EQ(HttpGet(stack->port(), "/nope").status, 404u);

  const auto post = RawHttpExchange(stack->port(),
                                    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
                                    "Connection: close\r\n\r\nhi");
  ASSERT_FALSE(post.ec) << post.ec.message();
  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(post.headers.at("allow"), "GET");
}

// Behind a gateway without the handshake hook the room still works: people
// are named by the end of their connection id and join the lobby through
// Admin.JoinGroup.
TEST(ChatBackendTest, WithoutTheHookPeopleAreNamedByTheirId) {
  std::string error;
  auto stack = ChatStack::Start({}, &error);
  ASSERT_NE(stack, nullptr) << error;
  AdminClient admin(stack->gateway->admin_port());

  WsClient ann;
  ASSERT_EQ(ann.Connect(stack->port(), "/chat/ann").http_status, 101u);
  const auto info = admin.WaitForOne("/chat/ann", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());
  const std::string tag = info->connection_id().substr(info->connection_id().size() - 6);

  EXPECT_EQ(ReadUntil(ann, R"("type":"joined")"),
            R"({"type":"joined","name":")" + tag + R"(","online":[")" + tag + R"("]})");
  ASSERT_FALSE(ann.SendText("hi"));
  EXPECT_EQ(ReadUntil(ann, R"("text":"hi")"), R"({"type":"message","from":")" + tag + R"(","text":"hi"})");
}

// The demo behind two replicas in cluster mode: the chat backend broadcasts
// through one replica's admin API and reaches people on both.
TEST(ChatBackendTest, TheRoomSpansTwoReplicas) {
  std::string error;
  std::uint16_t backend_port = 0;
  {
    auto placeholder = EchoBackendProcess::Start(0, &error);
    ASSERT_TRUE(placeholder) << error;
    backend_port = placeholder->port();
    placeholder->process().Signal(SIGKILL);
    ASSERT_TRUE(placeholder->process().Wait(kStartTimeout));
  }
  auto cluster = ClusterStack::Start({.nodes = 2,
                                      .backend = "127.0.0.1:" + std::to_string(backend_port),
                                      .args = kDemoFlags,
                                      .wait_for_backend = false},
                                     &error);
  ASSERT_TRUE(cluster) << error;
  auto chat =
      ChatBackendProcess::Start(backend_port, "127.0.0.1:" + std::to_string(cluster->node(0).admin_port()), &error);
  ASSERT_TRUE(chat) << error;
  ASSERT_TRUE(cluster->node(0).WaitForBackendUp());
  ASSERT_TRUE(cluster->node(1).WaitForBackendUp());

  WsClient ann;
  ASSERT_EQ(ann.Connect(cluster->node(0).ws_port(), "/chat?name=ann").http_status, 101u);
  EXPECT_TRUE(ReadUntil(ann, R"("name":"ann")"));
  WsClient bob;
  ASSERT_EQ(bob.Connect(cluster->node(1).ws_port(), "/chat?name=bob").http_status, 101u);
  const std::string bob_joined = R"({"type":"joined","name":"bob","online":["ann","bob"]})";
  EXPECT_EQ(ReadUntil(ann, R"("name":"bob")"), bob_joined);
  EXPECT_EQ(ReadUntil(bob, R"("name":"bob")"), bob_joined);
  ASSERT_FALSE(bob.SendText("hi from the other replica"));
  const std::string line = R"({"type":"message","from":"bob","text":"hi from the other replica"})";
  EXPECT_EQ(ReadUntil(ann, "other replica"), line);
  EXPECT_EQ(ReadUntil(bob, "other replica"), line);
}

}  // namespace
}  // namespace wsgateway::testing
