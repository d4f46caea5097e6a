// A real WebSocket client exchanges messages with the echo backend through
// the gateway, and the gateway enforces RFC 6455 and its message limit.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/shared_stack.hpp"

namespace wsgateway::testing {
namespace {

constexpr std::size_t kLimit = 64 * 1024;

class EchoTest : public SharedEchoStack<EchoTest> {
 public:
  static std::vector<std::string> Flags() { return {"--max-message-bytes", "64KiB"}; }
};

// A text message comes back whole, as text, with the same bytes.
TEST_F(EchoTest, TextMessageIsEchoedAsText) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  const std::string text = "hello, gateway \xE2\x82\xAC \xF0\x9F\x98\x80";
  ASSERT_FALSE(client.SendText(text));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_FALSE(echo.binary);
  EXPECT_EQ(echo.payload, text);
}

// A binary message with every byte value comes back whole, as binary.
TEST_F(EchoTest, BinaryMessageIsEchoedAsBinary) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  std::string bytes;
  for (int i = 0; i < 4 * 256; ++i) bytes.push_back(static_cast<char>(i % 256));
  ASSERT_FALSE(client.SendBinary(bytes));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_TRUE(echo.binary);
  EXPECT_EQ(echo.payload, bytes);
}

// Empty text and binary messages are messages too.
TEST_F(EchoTest, EmptyMessagesAreEchoed) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendText(""));
  ASSERT_FALSE(client.SendBinary(""));
  const auto first = client.Read();
  const auto second = client.Read();
  ASSERT_FALSE(first.ec) << first.ec.message();
  ASSERT_FALSE(second.ec) << second.ec.message();
  EXPECT_FALSE(first.binary);
  EXPECT_EQ(first.payload, "");
  EXPECT_TRUE(second.binary);
  EXPECT_EQ(second.payload, "");
}

// A message sent in several frames reaches the backend reassembled and comes
// back as one whole message.
TEST_F(EchoTest, FragmentedMessageIsEchoedWhole) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendFragmented({"frag", "mented ", "\xE2\x82", "\xAC message"}, false));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_FALSE(echo.binary);
  EXPECT_EQ(echo.payload, "fragmented \xE2\x82\xAC message");
  EXPECT_TRUE(client.IsOpen());
}

// Messages and their echoes keep their order and opcodes when interleaved.
TEST_F(EchoTest, InterleavedTextAndBinaryKeepOrderAndOpcode) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  for (int i = 0; i < 20; ++i) {
    const std::string payload = "m" + std::to_string(i);
    ASSERT_FALSE(i % 2 == 0 ? client.SendText(payload) : client.SendBinary(payload));
  }
  for (int i = 0; i < 20; ++i) {
    const auto echo = client.Read();
    ASSERT_FALSE(echo.ec) << echo.ec.message();
    EXPECT_EQ(echo.payload, "m" + std::to_string(i));
    EXPECT_EQ(echo.binary, i % 2 == 1) << i;
  }
}

// A message of exactly --max-message-bytes is accepted and echoed.
TEST_F(EchoTest, MessageAtTheLimitIsEchoed) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  std::string payload(kLimit, 'x');
  payload.front() = '<';
  payload.back() = '>';
  ASSERT_FALSE(client.SendBinary(payload));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_EQ(echo.payload.size(), kLimit);
  EXPECT_EQ(echo.payload, payload);
}

// One byte over --max-message-bytes closes the connection with 1009.
TEST_F(EchoTest, MessageOverTheLimitClosesWith1009) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendBinary(std::string(kLimit + 1, 'x')));
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 1009);
}

// The limit applies to the reassembled message, not to each frame.
TEST_F(EchoTest, FragmentedMessageOverTheLimitClosesWith1009) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  const std::string half(kLimit / 2 + 1, 'y');
  (void)client.SendFragmented({half, half}, true);  // the gateway may close before the last frame
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 1009);
}

// Text that is not valid UTF-8 closes the connection with 1007.
TEST_F(EchoTest, InvalidUtf8TextClosesWith1007) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendText("bad \xC0\x80 text"));
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 1007);
}

// A surrogate encoded in text (valid in CESU-8, not in UTF-8) closes with 1007.
TEST_F(EchoTest, SurrogateInTextClosesWith1007) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendText("\xED\xA0\x80"));
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 1007);
}

// Binary messages are not checked for UTF-8.
TEST_F(EchoTest, InvalidUtf8InBinaryIsEchoed) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.SendBinary("\xC0\x80\xFF"));
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_EQ(echo.payload, "\xC0\x80\xFF");
}

// The gateway answers a client's ping with a pong carrying the same payload.
TEST_F(EchoTest, PingIsAnsweredWithPong) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  ASSERT_FALSE(client.Ping("are you there"));
  ASSERT_FALSE(client.SendText("after ping"));  // the pong arrives before this echo
  const auto echo = client.Read();
  ASSERT_FALSE(echo.ec) << echo.ec.message();
  EXPECT_EQ(echo.payload, "after ping");
  ASSERT_EQ(client.PongsReceived().size(), 1u);
  EXPECT_EQ(client.PongsReceived()[0], "are you there");
}

// A client's close is answered with a close frame (clean close handshake).
TEST_F(EchoTest, ClientCloseCompletesTheCloseHandshake) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "echo"));
  const auto ec = client.Close(1000, "done");
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(client.IsOpen());
}

}  // namespace
}  // namespace wsgateway::testing
