// The frame codec against the examples of RFC 6455, section 5.7, and the
// length encodings of section 5.2.

#include "gateway/websocket/frame_codec.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wsgateway::frame_codec {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (const int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

constexpr std::array<std::uint8_t, 4> kRfcMask = {0x37, 0xfa, 0x21, 0x3d};
constexpr std::uint64_t kNoLimit = ~std::uint64_t{0} >> 1;

Frame Make(std::uint8_t opcode, std::string payload, bool fin = true,
           std::optional<std::array<std::uint8_t, 4>> mask = std::nullopt) {
  Frame frame;
  frame.opcode = opcode;
  frame.fin = fin;
  frame.mask = mask;
  frame.payload = std::move(payload);
  return frame;
}

void ExpectRoundTrip(const Frame& frame, const std::string& wire) {
  EXPECT_EQ(Pack(frame), wire);
  const auto unpacked = Unpack(wire, kNoLimit);
  ASSERT_EQ(unpacked.status, Unpacked::Status::kFrame) << unpacked.error;
  EXPECT_EQ(unpacked.consumed, wire.size());
  EXPECT_EQ(unpacked.frame.fin, frame.fin);
  EXPECT_EQ(unpacked.frame.opcode, frame.opcode);
  EXPECT_EQ(unpacked.frame.mask, frame.mask);
  EXPECT_EQ(unpacked.frame.payload, frame.payload);
}

TEST(FrameCodecTest, RfcSingleFrameUnmaskedText) {
  ExpectRoundTrip(Make(kText, "Hello"), Bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(FrameCodecTest, RfcSingleFrameMaskedText) {
  ExpectRoundTrip(Make(kText, "Hello", true, kRfcMask),
                  Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(FrameCodecTest, RfcFragmentedUnmaskedText) {
  ExpectRoundTrip(Make(kText, "Hel", false), Bytes({0x01, 0x03, 0x48, 0x65, 0x6c}));
  ExpectRoundTrip(Make(kContinuation, "lo"), Bytes({0x80, 0x02, 0x6c, 0x6f}));
}

TEST(FrameCodecTest, RfcPingAndMaskedPong) {
  ExpectRoundTrip(Make(kPing, "Hello"), Bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  ExpectRoundTrip(Make(kPong, "Hello", true, kRfcMask),
                  Bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(FrameCodecTest, RfcSixteenAndSixtyFourBitLengths) {
  const std::string k256(256, 'x');
  ExpectRoundTrip(Make(kBinary, k256), Bytes({0x82, 0x7e, 0x01, 0x00}) + k256);
  const std::string k64(65536, 'y');
  ExpectRoundTrip(Make(kBinary, k64), Bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}) + k64);
}

TEST(FrameCodecTest, LengthBoundariesUseTheShortestEncoding) {
  EXPECT_EQ(Pack(Make(kBinary, std::string(125, 'a'))).size(), 2u + 125);
  EXPECT_EQ(Pack(Make(kBinary, std::string(126, 'a'))).size(), 4u + 126);
  EXPECT_EQ(Pack(Make(kBinary, std::string(65535, 'a'))).size(), 4u + 65535);
  EXPECT_EQ(Pack(Make(kBinary, std::string(65536, 'a'))).size(), 10u + 65536);
}

TEST(FrameCodecTest, ReservedBitsAndAnyOpcodeSurviveTheRoundTrip) {
  Frame frame = Make(0x3, "?");
  frame.rsv1 = frame.rsv2 = frame.rsv3 = true;
  const auto unpacked = Unpack(Pack(frame), kNoLimit);
  ASSERT_EQ(unpacked.status, Unpacked::Status::kFrame);
  EXPECT_TRUE(unpacked.frame.rsv1 && unpacked.frame.rsv2 && unpacked.frame.rsv3);
  EXPECT_EQ(unpacked.frame.opcode, 0x3);
}

TEST(FrameCodecTest, EveryTruncationNeedsMore) {
  const std::string wire = Pack(Make(kText, std::string(300, 'z'), true, kRfcMask));
  for (std::size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(Unpack(std::string_view(wire).substr(0, n), kNoLimit).status, Unpacked::Status::kNeedMore) << n;
  }
}

TEST(FrameCodecTest, OnlyTheFirstFrameIsConsumed) {
  const std::string wire = Pack(Make(kText, "one")) + Pack(Make(kText, "two"));
  const auto first = Unpack(wire, kNoLimit);
  ASSERT_EQ(first.status, Unpacked::Status::kFrame);
  EXPECT_EQ(first.frame.payload, "one");
  const auto second = Unpack(std::string_view(wire).substr(first.consumed), kNoLimit);
  ASSERT_EQ(second.status, Unpacked::Status::kFrame);
  EXPECT_EQ(second.frame.payload, "two");
}

TEST(FrameCodecTest, RejectsTheMostSignificantLengthBitAndOversizedPayloads) {
  const auto msb = Unpack(Bytes({0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1}), kNoLimit);
  EXPECT_EQ(msb.status, Unpacked::Status::kInvalid);
  EXPECT_NE(msb.error.find("most significant bit"), std::string::npos);
  const auto big = Unpack(Bytes({0x82, 0x7e, 0x01, 0x00}), 255);
  EXPECT_EQ(big.status, Unpacked::Status::kInvalid);
  EXPECT_NE(big.error.find("256"), std::string::npos);
}

}  // namespace
}  // namespace wsgateway::frame_codec
