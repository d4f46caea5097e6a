// Frames from the API (Admin.Push, Broadcast, backend commands): which are
// accepted and what they become, which are refused and with what words.

#include "gateway/websocket/outbound_frame.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {
namespace {

using ::testing::HasSubstr;

constexpr std::size_t kLimit = 1024;

v1::Frame MakeFrame(v1::Opcode opcode, std::string payload) {
  v1::Frame frame;
  frame.set_opcode(opcode);
  frame.set_payload(std::move(payload));
  return frame;
}

OutboundFrameCheck Check(v1::Opcode opcode, std::string payload, std::size_t max_message_bytes = kLimit) {
  return MakeOutboundFrame(MakeFrame(opcode, std::move(payload)), max_message_bytes);
}

// Each pushable opcode becomes its frame type with the payload unchanged;
// an unset opcode means text.
TEST(OutboundFrameTest, AcceptsTextBinaryPingAndPongWithTheirPayload) {
  const std::pair<v1::Opcode, FrameType> cases[] = {{v1::OPCODE_UNSPECIFIED, FrameType::kText},
                                                    {v1::OPCODE_TEXT, FrameType::kText},
                                                    {v1::OPCODE_BINARY, FrameType::kBinary},
                                                    {v1::OPCODE_PING, FrameType::kPing},
                                                    {v1::OPCODE_PONG, FrameType::kPong}};
  for (const auto& [opcode, type] : cases) {
    const auto check = Check(opcode, "hello");
    EXPECT_TRUE(check.error.empty()) << opcode << ": " << check.error;
    EXPECT_EQ(check.frame.type, type) << opcode;
    ASSERT_NE(check.frame.payload, nullptr) << opcode;
    EXPECT_EQ(*check.frame.payload, "hello") << opcode;
    EXPECT_EQ(check.frame.size(), 5u) << opcode;
    EXPECT_EQ(check.frame.close_code, 0u) << opcode;
  }
}

// A frame without a payload is accepted with an empty (not null) payload.
TEST(OutboundFrameTest, AcceptsEmptyPayloads) {
  const auto unset = MakeOutboundFrame(v1::Frame{}, kLimit);
  EXPECT_TRUE(unset.error.empty()) << unset.error;
  EXPECT_EQ(unset.frame.type, FrameType::kText);
  ASSERT_NE(unset.frame.payload, nullptr);
  EXPECT_EQ(unset.frame.size(), 0u);
  for (const auto opcode : {v1::OPCODE_TEXT, v1::OPCODE_BINARY, v1::OPCODE_PING, v1::OPCODE_PONG}) {
    const auto check = Check(opcode, "");
    EXPECT_TRUE(check.error.empty()) << opcode << ": " << check.error;
    ASSERT_NE(check.frame.payload, nullptr) << opcode;
    EXPECT_EQ(check.frame.size(), 0u) << opcode;
  }
}

// Binary payloads keep every byte, NULs and invalid UTF-8 included.
TEST(OutboundFrameTest, BinaryPayloadKeepsEveryByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const auto check = Check(v1::OPCODE_BINARY, bytes);
  ASSERT_TRUE(check.error.empty()) << check.error;
  ASSERT_NE(check.frame.payload, nullptr);
  EXPECT_EQ(*check.frame.payload, bytes);
}

// A pushed close frame takes its code and reason from Frame.close; an
// unset code means 1000.
TEST(OutboundFrameTest, CloseFramesCarryCodeAndReasonFromClose) {
  v1::Frame frame;
  frame.set_opcode(v1::OPCODE_CLOSE);
  frame.mutable_close()->set_code(4001);
  frame.mutable_close()->set_reason("room closed");
  auto check = MakeOutboundFrame(std::move(frame), kLimit);
  ASSERT_TRUE(check.error.empty()) << check.error;
  EXPECT_EQ(check.frame.type, FrameType::kClose);
  EXPECT_EQ(check.frame.close_code, 4001);
  EXPECT_EQ(*check.frame.payload, "room closed");

  check = Check(v1::OPCODE_CLOSE, "");
  ASSERT_TRUE(check.error.empty()) << check.error;
  EXPECT_EQ(check.frame.close_code, 1000);
  EXPECT_EQ(check.frame.size(), 0u);
}

// Close frames are refused with a reason for a code the API may not send,
// a long or non-UTF-8 reason, a payload, fragmentation or a compress flag;
// `close` on another opcode is refused too.
TEST(OutboundFrameTest, RefusesBadCloseFrames) {
  const auto close = [](std::uint32_t code, std::string reason) {
    v1::Frame frame;
    frame.set_opcode(v1::OPCODE_CLOSE);
    frame.mutable_close()->set_code(code);
    frame.mutable_close()->set_reason(std::move(reason));
    return frame;
  };
  EXPECT_THAT(MakeOutboundFrame(close(1006, ""), kLimit).error, HasSubstr("close code 1006 is not allowed"));
  EXPECT_THAT(MakeOutboundFrame(close(1000, std::string(124, 'r')), kLimit).error, HasSubstr("at most 123"));
  EXPECT_THAT(MakeOutboundFrame(close(1000, "\xff"), kLimit).error, HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Check(v1::OPCODE_CLOSE, "x").error, HasSubstr("not in payload"));
  auto fragmented = close(1000, "");
  fragmented.set_fin(false);
  EXPECT_THAT(MakeOutboundFrame(std::move(fragmented), kLimit).error, HasSubstr("cannot be fragmented"));
  auto compressed = close(1000, "");
  compressed.set_compress(true);
  EXPECT_THAT(MakeOutboundFrame(std::move(compressed), kLimit).error, HasSubstr("never compressed"));
  auto text = MakeFrame(v1::OPCODE_TEXT, "x");
  text.mutable_close()->set_code(1000);
  EXPECT_THAT(MakeOutboundFrame(std::move(text), kLimit).error, HasSubstr("only for OPCODE_CLOSE"));
}

// Opcodes outside the enum (continuation, reserved, negative, huge) are
// refused and the refusal names the number received.
TEST(OutboundFrameTest, RefusesOpcodesOutsideTheEnum) {
  for (const int opcode : {3, 4, 5, 6, 7, 11, 12, 15, 16, -1, 1 << 20}) {
    const auto check = Check(static_cast<v1::Opcode>(opcode), "x");
    EXPECT_THAT(check.error, HasSubstr("opcode " + std::to_string(opcode) + " cannot be pushed")) << opcode;
  }
}

// Pings and pongs carry at most 125 bytes (RFC 6455 5.5), whatever the
// message limit.
TEST(OutboundFrameTest, PingAndPongPayloadsAreLimitedTo125Bytes) {
  ASSERT_EQ(kMaxControlPayloadBytes, 125u);
  for (const auto opcode : {v1::OPCODE_PING, v1::OPCODE_PONG}) {
    const auto at_limit = Check(opcode, std::string(125, 'p'));
    EXPECT_TRUE(at_limit.error.empty()) << opcode << ": " << at_limit.error;
    EXPECT_EQ(at_limit.frame.size(), 125u) << opcode;

    const auto over = Check(opcode, std::string(126, 'p'));
    EXPECT_THAT(over.error, HasSubstr("limited to 125 bytes")) << opcode;
    EXPECT_THAT(over.error, HasSubstr("got 126")) << opcode;
  }
}

// The 125-byte limit is for control frames only: data frames may be larger.
TEST(OutboundFrameTest, DataFramesAreNotHeldToTheControlFrameLimit) {
  for (const auto opcode : {v1::OPCODE_TEXT, v1::OPCODE_BINARY}) {
    const auto check = Check(opcode, std::string(126, 'd'));
    EXPECT_TRUE(check.error.empty()) << opcode << ": " << check.error;
  }
}

// A payload of exactly max_message_bytes is accepted; one byte more is
// refused, naming the size and the limit.
TEST(OutboundFrameTest, PayloadsAreLimitedToMaxMessageBytes) {
  for (const auto opcode : {v1::OPCODE_TEXT, v1::OPCODE_BINARY}) {
    const auto at_limit = Check(opcode, std::string(kLimit, 'a'));
    EXPECT_TRUE(at_limit.error.empty()) << opcode << ": " << at_limit.error;
    EXPECT_EQ(at_limit.frame.size(), kLimit) << opcode;

    const auto over = Check(opcode, std::string(kLimit + 1, 'a'));
    EXPECT_THAT(over.error, HasSubstr("payload is 1025 bytes")) << opcode;
    EXPECT_THAT(over.error, HasSubstr("max_message_bytes")) << opcode;
    EXPECT_THAT(over.error, HasSubstr("is 1024")) << opcode;
  }
}

// A message limit below 125 bytes also binds pings and pongs.
TEST(OutboundFrameTest, SmallMessageLimitAlsoBindsControlFrames) {
  for (const auto opcode : {v1::OPCODE_PING, v1::OPCODE_PONG}) {
    EXPECT_TRUE(Check(opcode, std::string(10, 'p'), 10).error.empty()) << opcode;
    EXPECT_THAT(Check(opcode, std::string(11, 'p'), 10).error, HasSubstr("max_message_bytes")) << opcode;
  }
}

// With a limit of zero only empty frames pass.
TEST(OutboundFrameTest, ZeroMessageLimitAcceptsOnlyEmptyPayloads) {
  EXPECT_TRUE(Check(v1::OPCODE_TEXT, "", 0).error.empty());
  EXPECT_FALSE(Check(v1::OPCODE_TEXT, "x", 0).error.empty());
  EXPECT_FALSE(Check(v1::OPCODE_BINARY, "x", 0).error.empty());
}

// Text must be well-formed UTF-8, whether the opcode is TEXT or unset.
TEST(OutboundFrameTest, RefusesTextThatIsNotValidUtf8) {
  for (const std::string& bad :
       {std::string("\xC3\x28"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"), std::string("\xE2\x82"),
        std::string("\xF4\x90\x80\x80"), std::string("\xFF"), std::string("ok\x80")}) {
    for (const auto opcode : {v1::OPCODE_TEXT, v1::OPCODE_UNSPECIFIED}) {
      const auto check = Check(opcode, bad);
      EXPECT_THAT(check.error, HasSubstr("not valid UTF-8")) << opcode;
      EXPECT_THAT(check.error, HasSubstr("OPCODE_BINARY")) << opcode;
    }
  }
}

// Multi-byte characters up to four bytes and NUL are valid text.
TEST(OutboundFrameTest, AcceptsValidMultiByteText) {
  const std::string text = std::string("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 ") + std::string(1, '\0');
  const auto check = Check(v1::OPCODE_TEXT, text);
  ASSERT_TRUE(check.error.empty()) << check.error;
  EXPECT_EQ(*check.frame.payload, text);
}

// Bytes that are not UTF-8 are fine in binary frames, pings and pongs.
TEST(OutboundFrameTest, DoesNotCheckUtf8OutsideTextFrames) {
  for (const auto opcode : {v1::OPCODE_BINARY, v1::OPCODE_PING, v1::OPCODE_PONG}) {
    const auto check = Check(opcode, "\xC3\x28\xFF");
    EXPECT_TRUE(check.error.empty()) << opcode << ": " << check.error;
  }
}

// A close frame carries its code and its reason as the payload.
TEST(OutboundFrameTest, MakeCloseFrameCarriesCodeAndReason) {
  const auto frame = MakeCloseFrame(4001, "going away now");
  EXPECT_EQ(frame.type, FrameType::kClose);
  EXPECT_EQ(frame.close_code, 4001u);
  ASSERT_NE(frame.payload, nullptr);
  EXPECT_EQ(*frame.payload, "going away now");
  EXPECT_EQ(frame.size(), 14u);
}

// A close frame without a reason has an empty, not a null, payload.
TEST(OutboundFrameTest, MakeCloseFrameWithoutReasonHasEmptyPayload) {
  const auto frame = MakeCloseFrame(1000, "");
  EXPECT_EQ(frame.type, FrameType::kClose);
  EXPECT_EQ(frame.close_code, 1000u);
  ASSERT_NE(frame.payload, nullptr);
  EXPECT_TRUE(frame.payload->empty());
  EXPECT_EQ(frame.size(), 0u);
}

// A default frame has no payload and a size of zero.
TEST(OutboundFrameTest, DefaultFrameIsEmptyText) {
  const OutboundFrame frame;
  EXPECT_EQ(frame.type, FrameType::kText);
  EXPECT_EQ(frame.payload, nullptr);
  EXPECT_EQ(frame.size(), 0u);
}

// Copies of a frame share one payload (a broadcast is serialised once).
TEST(OutboundFrameTest, CopiesShareOnePayload) {
  const auto check = Check(v1::OPCODE_BINARY, std::string(512, 'b'));
  ASSERT_TRUE(check.error.empty()) << check.error;
  const OutboundFrame copy = check.frame;
  EXPECT_EQ(copy.payload.get(), check.frame.payload.get());
}

// A close frame's code travels right behind its header, counted in the
// header's length; a close without a code has none.
TEST(OutboundFrameTest, WriteOutboundHeaderPutsACloseCodeBehindTheHeader) {
  std::uint8_t header[kMaxOutboundHeaderBytes];
  const auto close = MakeCloseFrame(4001, "bye");
  ASSERT_EQ(WriteOutboundHeader(close, header), 4u);
  EXPECT_EQ(header[0], 0x88);  // FIN, close
  EXPECT_EQ(header[1], 5);     // code and reason
  EXPECT_EQ(header[2], 4001 >> 8);
  EXPECT_EQ(header[3], 4001 & 0xFF);

  ASSERT_EQ(WriteOutboundHeader(MakeCloseFrame(0, ""), header), 2u);
  EXPECT_EQ(header[1], 0);
}

// A piece after the first goes out as a continuation frame.
TEST(OutboundFrameTest, WireOpcodeOfALaterPieceIsContinuation) {
  OutboundFrame piece{FrameType::kBinary, std::make_shared<const std::string>("x"), 0};
  EXPECT_EQ(WireOpcode(piece), 0x2);
  piece.continuation = true;
  EXPECT_EQ(WireOpcode(piece), 0x0);
}

}  // namespace
}  // namespace wsgateway
