// RFC 6455 rules on what the API is asked to send: UTF-8 text, close codes
// and close reasons.

#include "gateway/websocket/protocol_rules.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace wsgateway {
namespace {

std::string Bytes(std::initializer_list<unsigned> bytes) {
  std::string out;
  for (unsigned b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Encodes a code point the standard way (no validation), to build inputs.
std::string Encode(std::uint32_t cp) {
  if (cp < 0x80) return Bytes({cp});
  if (cp < 0x800) return Bytes({0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)});
  if (cp < 0x10000) return Bytes({0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)});
  return Bytes({0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)});
}

// Empty text, ASCII and well-formed multi-byte text of every length are valid.
TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello, world"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9t\xC3\xA9"));                 // été
  EXPECT_TRUE(IsValidUtf8("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2"));  // Привет (part)
  EXPECT_TRUE(IsValidUtf8("\xEC\x95\x88\xEB\x85\x95"));          // 안녕
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));                  // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xEF\xBB\xBF"));                      // BOM is a valid character
}

// The boundaries of each encoding length are valid: the smallest and largest
// code point of every length, around the surrogates, and U+10FFFF.
TEST(IsValidUtf8Test, AcceptsEveryBoundaryCodePoint) {
  for (std::uint32_t cp :
       {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFEu, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    EXPECT_TRUE(IsValidUtf8(Encode(cp))) << std::hex << cp;
    EXPECT_TRUE(IsValidUtf8("abcdefgh" + Encode(cp) + "abcdefgh")) << std::hex << cp;
  }
}

// Overlong encodings (a code point spelled with more bytes than needed) are
// invalid, including the classic overlong NUL and '/'.
TEST(IsValidUtf8Test, RejectsOverlongEncodings) {
  EXPECT_FALSE(IsValidUtf8(Bytes({0xC0, 0x80})));              // NUL in 2 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xC0, 0xAF})));              // '/' in 2 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xC1, 0xBF})));              // U+7F in 2 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xE0, 0x80, 0xAF})));        // '/' in 3 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xE0, 0x9F, 0xBF})));        // U+7FF in 3 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF0, 0x80, 0x80, 0xAF})));  // '/' in 4 bytes
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF0, 0x8F, 0xBF, 0xBF})));  // U+FFFF in 4 bytes
}

// UTF-16 surrogates U+D800..U+DFFF, alone or paired, are not characters.
TEST(IsValidUtf8Test, RejectsSurrogates) {
  EXPECT_FALSE(IsValidUtf8(Bytes({0xED, 0xA0, 0x80})));                    // U+D800
  EXPECT_FALSE(IsValidUtf8(Bytes({0xED, 0xAD, 0xBF})));                    // U+DB7F
  EXPECT_FALSE(IsValidUtf8(Bytes({0xED, 0xB0, 0x80})));                    // U+DC00
  EXPECT_FALSE(IsValidUtf8(Bytes({0xED, 0xBF, 0xBF})));                    // U+DFFF
  EXPECT_FALSE(IsValidUtf8(Bytes({0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80})));  // CESU-8 pair for U+1F600
}

// Code points beyond U+10FFFF and the lead bytes that could only start them
// are invalid.
TEST(IsValidUtf8Test, RejectsCodePointsAboveU10FFFF) {
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF4, 0x90, 0x80, 0x80})));  // U+110000
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF7, 0xBF, 0xBF, 0xBF})));  // U+1FFFFF
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF5, 0x80, 0x80, 0x80})));
  EXPECT_FALSE(IsValidUtf8(Bytes({0xF8, 0x88, 0x80, 0x80, 0x80})));        // old 5-byte form
  EXPECT_FALSE(IsValidUtf8(Bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80})));  // old 6-byte form
  EXPECT_FALSE(IsValidUtf8(Bytes({0xFE})));
  EXPECT_FALSE(IsValidUtf8(Bytes({0xFF})));
}

// A multi-byte sequence cut short, at the end of the text or by another
// character, is invalid; so is a continuation byte without a lead byte.
TEST(IsValidUtf8Test, RejectsTruncatedAndStraySequences) {
  const std::string euro = "\xE2\x82\xAC";
  const std::string emoji = "\xF0\x9F\x98\x80";
  EXPECT_FALSE(IsValidUtf8(euro.substr(0, 1)));
  EXPECT_FALSE(IsValidUtf8(euro.substr(0, 2)));
  EXPECT_FALSE(IsValidUtf8(emoji.substr(0, 3)));
  EXPECT_FALSE(IsValidUtf8("abcdefghijk" + emoji.substr(0, 2)));
  EXPECT_FALSE(IsValidUtf8(euro.substr(0, 2) + "a"));
  EXPECT_FALSE(IsValidUtf8(Bytes({0xC3}) + "\xC3\xA9"));
  EXPECT_FALSE(IsValidUtf8(Bytes({0x80})));
  EXPECT_FALSE(IsValidUtf8(Bytes({0xBF})));
  EXPECT_FALSE(IsValidUtf8("abc" + Bytes({0x80, 0x80}) + "def"));
  EXPECT_FALSE(IsValidUtf8(euro + Bytes({0xAC})));
}

// An invalid byte is found wherever it is, also after a long ASCII run that
// the validator skips eight bytes at a time.
TEST(IsValidUtf8Test, FindsAnInvalidByteAtAnyPosition) {
  for (std::size_t position = 0; position < 40; ++position) {
    std::string text(40, 'x');
    text[position] = static_cast<char>(0xFF);
    EXPECT_FALSE(IsValidUtf8(text)) << position;
    text[position] = static_cast<char>(0xC3);  // truncated 2-byte sequence unless followed by a continuation
    EXPECT_FALSE(IsValidUtf8(text)) << position;
  }
}

// A backend may close with 1000 (or 0, meaning 1000) and 3000-4999 only.
TEST(CheckCloseRequestTest, AcceptsNormalAndApplicationCodes) {
  for (std::uint32_t code : {0u, 1000u, 3000u, 3999u, 4000u, 4999u}) {
    EXPECT_EQ(CheckCloseRequest(code, ""), "") << code;
    EXPECT_EQ(CheckCloseRequest(code, "bye"), "") << code;
  }
}

// One default for every caller: an unset code is a normal closure.
TEST(RequestedCloseCodeTest, ZeroStandsForNormalClosure) {
  EXPECT_EQ(RequestedCloseCode(0), 1000);
  EXPECT_EQ(RequestedCloseCode(1000), 1000);
  EXPECT_EQ(RequestedCloseCode(4321), 4321);
}

// Reserved, protocol-level and out-of-range codes are refused with a sentence
// that names the code.
TEST(CheckCloseRequestTest, RejectsOtherCodesNamingThem) {
  for (std::uint32_t code :
       {1u, 999u, 1001u, 1002u, 1005u, 1006u, 1008u, 1011u, 1015u, 2999u, 5000u, 65535u, 4294967295u}) {
    const std::string error = CheckCloseRequest(code, "");
    EXPECT_NE(error, "") << code;
    EXPECT_NE(error.find(std::to_string(code)), std::string::npos) << error;
  }
}

// A reason up to 123 bytes fits in a close frame; 124 bytes does not.
TEST(CheckCloseRequestTest, LimitsTheReasonTo123Bytes) {
  EXPECT_EQ(CheckCloseRequest(1000, std::string(123, 'r')), "");
  EXPECT_NE(CheckCloseRequest(1000, std::string(124, 'r')), "");
  EXPECT_NE(CheckCloseRequest(4000, std::string(1000, 'r')), "");
  // The limit counts bytes, not characters: 41 three-byte characters are 123 bytes.
  std::string euros;
  for (int i = 0; i < 41; ++i) euros += "\xE2\x82\xAC";
  EXPECT_EQ(CheckCloseRequest(1000, euros), "");
  EXPECT_NE(CheckCloseRequest(1000, euros + "x"), "");
}

// A reason must be valid UTF-8.
TEST(CheckCloseRequestTest, RejectsReasonsThatAreNotUtf8) {
  EXPECT_NE(CheckCloseRequest(1000, "\xFF"), "");
  EXPECT_NE(CheckCloseRequest(3000, "bad \xC0\x80"), "");
  EXPECT_NE(CheckCloseRequest(4000, "\xED\xA0\x80"), "");
  EXPECT_EQ(CheckCloseRequest(4000, "\xC3\xA9t\xC3\xA9"), "");
}

}  // namespace
}  // namespace wsgateway
