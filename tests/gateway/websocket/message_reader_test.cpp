#include "gateway/websocket/message_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/websocket/deflate_codec.hpp"

namespace wsgateway {
namespace {

namespace fc = frame_codec;
using Kind = MessageReader::Kind;

std::string ClientFrame(std::uint8_t opcode, std::string payload, bool fin = true, bool rsv1 = false) {
  fc::Frame frame;
  frame.fin = fin;
  frame.rsv1 = rsv1;
  frame.opcode = opcode;
  frame.mask = std::array<std::uint8_t, 4>{0x37, 0xfa, 0x21, 0x3d};
  frame.payload = std::move(payload);
  return fc::Pack(frame);
}

std::string CloseFrame(std::uint16_t code, std::string reason = {}) {
  std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return ClientFrame(fc::kClose, payload + reason);
}

// What one test sees: every item up to and including the first that ends
// reading, with payloads copied out.
struct Seen {
  Kind kind;
  std::string payload;
  std::uint16_t code = 0;
  std::uint8_t opcode = 0;
};

class MessageReaderTest : public ::testing::Test {
 protected:
  std::vector<Seen> Read(std::string wire, std::size_t piece = 0) {
    MessageReader reader(options_, shared_inflater_);
    std::vector<Seen> seen;
    std::string pending;
    std::size_t fed = 0;
    const std::size_t step = piece == 0 ? wire.size() : piece;
    while (fed < wire.size()) {
      pending.append(wire, fed, step);
      fed += step;
      for (;;) {
        auto item = reader.Next(pending.data(), pending.size());
        if (item.kind == Kind::kNeedMore) {
          pending.erase(0, item.consumed);
          break;
        }
        seen.push_back({item.kind, std::string(item.payload), item.code, item.opcode});
        pending.erase(0, item.consumed);
        if (item.kind == Kind::kClose || item.kind == Kind::kFail) return seen;
      }
    }
    return seen;
  }

  // Only the single failure or close that ends the input.
  std::uint16_t EndCode(std::string wire, Kind expected = Kind::kFail) {
    const auto seen = Read(std::move(wire));
    if (seen.empty() || seen.back().kind != expected) return 0;
    return seen.back().code;
  }

  MessageReader::Options options_{64 * 1024, false, false, 15};
  MessageInflater shared_inflater_{15};
};

TEST_F(MessageReaderTest, WholeMessageInOneFrame) {
  const auto seen = Read(ClientFrame(fc::kText, "Hello"));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, Kind::kMessage);
  EXPECT_EQ(seen[0].opcode, fc::kText);
  EXPECT_EQ(seen[0].payload, "Hello");
}

TEST_F(MessageReaderTest, FragmentsWithInterleavedPingAndEmptyPieces) {
  const std::string wire = ClientFrame(fc::kText, "", false) + ClientFrame(fc::kContinuation, "Hel", false) +
                           ClientFrame(fc::kPing, "are you there") + ClientFrame(fc::kContinuation, "", false) +
                           ClientFrame(fc::kContinuation, "lo");
  for (std::size_t piece : {0, 1, 3, 7}) {
    const auto seen = Read(wire, piece);
    ASSERT_EQ(seen.size(), 2u) << "piece " << piece;
    EXPECT_EQ(seen[0].kind, Kind::kPing);
    EXPECT_EQ(seen[0].payload, "are you there");
    EXPECT_EQ(seen[1].kind, Kind::kMessage);
    EXPECT_EQ(seen[1].payload, "Hello");
  }
}

TEST_F(MessageReaderTest, ProtocolErrorsGet1002) {
  auto with_first_byte = [](std::string frame, std::uint8_t bits) {
    frame[0] = static_cast<char>(static_cast<std::uint8_t>(frame[0]) | bits);
    return frame;
  };
  EXPECT_EQ(EndCode(with_first_byte(ClientFrame(fc::kText, "x"), 0x20)), 1002) << "RSV2";
  EXPECT_EQ(EndCode(with_first_byte(ClientFrame(fc::kText, "x"), 0x10)), 1002) << "RSV3";
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "x", true, true)), 1002) << "RSV1 without an extension";
  for (std::uint8_t opcode : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    EXPECT_EQ(EndCode(ClientFrame(opcode, "")), 1002) << "opcode " << int(opcode);
  }
  EXPECT_EQ(EndCode(ClientFrame(fc::kPing, "x", false)), 1002) << "fragmented ping";
  EXPECT_EQ(EndCode(ClientFrame(fc::kPing, std::string(126, 'x'))), 1002) << "long ping";
  EXPECT_EQ(EndCode(ClientFrame(fc::kContinuation, "x")), 1002) << "continuation first";
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "a", false) + ClientFrame(fc::kBinary, "b")), 1002)
      << "new message inside a fragmented one";
  fc::Frame unmasked;
  unmasked.payload = "x";
  EXPECT_EQ(EndCode(fc::Pack(unmasked)), 1002) << "unmasked";
  EXPECT_EQ(EndCode(std::string("\x81\xFF\x80\x00\x00\x00\x00\x00\x00\x00mask", 14)), 1002) << "64-bit MSB";
  EXPECT_EQ(EndCode(std::string("\x81\xFE\x00\x05mask", 8)), 1002) << "non-minimal length";
}

TEST_F(MessageReaderTest, TooBigGets1009BeforeThePayloadArrives) {
  std::string wire = ClientFrame(fc::kBinary, std::string(options_.max_message_bytes + 1, 'x'));
  wire.resize(16);  // only the header has arrived
  EXPECT_EQ(EndCode(wire), 1009);
  const std::string half(options_.max_message_bytes / 2 + 1, 'x');
  EXPECT_EQ(EndCode(ClientFrame(fc::kBinary, half, false) + ClientFrame(fc::kContinuation, half)), 1009);
}

TEST_F(MessageReaderTest, InvalidUtf8FailsFast) {
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80", false)),
            1007)
      << "an invalid first fragment fails before the message ends";
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "\xce", false) + ClientFrame(fc::kContinuation, "")), 1007)
      << "a message that ends inside a character";
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "\xe2\x82", false) + ClientFrame(fc::kContinuation, "\x28")), 1007)
      << "split across fragments";
  std::string partial = ClientFrame(fc::kText, std::string(1000, 'a') + "\xff" + std::string(1000, 'a'));
  partial.resize(1100);
  EXPECT_EQ(EndCode(partial), 1007) << "inside a frame whose end has not arrived";
  EXPECT_EQ(EndCode(ClientFrame(fc::kBinary, "\xff")), 0) << "binary is not UTF-8";
}

TEST_F(MessageReaderTest, CloseFrames) {
  EXPECT_EQ(EndCode(ClientFrame(fc::kClose, ""), Kind::kClose), 1005);
  EXPECT_EQ(EndCode(ClientFrame(fc::kClose, "x")), 1002);
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_EQ(EndCode(CloseFrame(code)), 1002) << code;
  }
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
    EXPECT_EQ(EndCode(CloseFrame(code, "bye"), Kind::kClose), code) << code;
  }
  EXPECT_EQ(EndCode(CloseFrame(1000, "\xff")), 1007);
  EXPECT_EQ(EndCode(ClientFrame(fc::kClose, "xx", true, true)), 1002) << "RSV1 on a control frame";
}

class CompressedMessageReaderTest : public MessageReaderTest {
 protected:
  void SetUp() override {
    options_.compression = true;
    options_.client_no_context_takeover = true;
  }
  static std::string Deflate(const std::string& text) {
    MessageDeflater deflater(15);
    std::string out;
    EXPECT_TRUE(deflater.Compress(text, out, true));
    return out;
  }
};

TEST_F(CompressedMessageReaderTest, InflatesWholeAndFragmentedMessages) {
  const std::string text(5000, 'z');
  auto seen = Read(ClientFrame(fc::kText, Deflate(text), true, true));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].payload, text);

  const auto compressed = Deflate(text);
  const auto half = compressed.size() / 2;
  seen = Read(ClientFrame(fc::kText, compressed.substr(0, half), false, true) +
              ClientFrame(fc::kContinuation, compressed.substr(half)));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].payload, text);
}

TEST_F(CompressedMessageReaderTest, DecompressionBombGets1009) {
  EXPECT_EQ(EndCode(ClientFrame(fc::kBinary, Deflate(std::string(10 * 1024 * 1024, '\0')), true, true)), 1009);
}

TEST_F(CompressedMessageReaderTest, RsvOnContinuationAndCorruptDataFail) {
  EXPECT_EQ(
      EndCode(ClientFrame(fc::kText, Deflate("ab"), false, true) + ClientFrame(fc::kContinuation, "", true, true)),
      1002);
  EXPECT_EQ(EndCode(ClientFrame(fc::kText, "\xff\xff\xff\xff", true, true)), 1007);
}

}  // namespace
}  // namespace wsgateway
