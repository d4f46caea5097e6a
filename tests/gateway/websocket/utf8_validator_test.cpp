// The incremental UTF-8 validator against the vectors of the Autobahn
// testsuite's section 6, the boundary code points of each encoding length,
// and an independent reference that decides, for any prefix, whether some
// continuation could still make it valid (the fail-fast rule).

#include "gateway/websocket/utf8_validator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace wsgateway {
namespace {

constexpr std::size_t kNoFailure = std::string::npos;

std::string Bytes(std::initializer_list<unsigned> bytes) {
  std::string out;
  for (const unsigned b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Encodes a code point the textbook way, without validation.
std::string Encode(std::uint32_t cp) {
  if (cp < 0x80) return Bytes({cp});
  if (cp < 0x800) return Bytes({0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)});
  if (cp < 0x10000) return Bytes({0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)});
  return Bytes({0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)});
}

// ------------------------------------------------------------- reference
// Decodes by arithmetic rather than by state machine, so it shares no logic
// with the validator. A prefix is "viable" when the code points that could
// complete its last, unfinished sequence include a valid one.
enum class Verdict { kComplete, kViablePrefix, kInvalid };

int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

bool RangeHasValidCodePoint(std::uint32_t lo, std::uint32_t hi, int length) {
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  static constexpr std::uint32_t kMax[] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
  lo = std::max(lo, kMin[length]);
  hi = std::min(hi, kMax[length]);
  if (lo > hi) return false;
  return !(lo >= 0xD800 && hi <= 0xDFFF);
}

Verdict Reference(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const int length = SequenceLength(lead);
    if (length == 0) return Verdict::kInvalid;
    const std::uint32_t lead_bits = length == 1 ? lead : lead & (0x7F >> length);
    std::uint32_t lo = lead_bits;
    std::uint32_t hi = lead_bits;
    int k = 1;
    for (; k < length && i + k < text.size(); ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return Verdict::kInvalid;
      lo = (lo << 6) | (c & 0x3F);
      hi = (hi << 6) | (c & 0x3F);
    }
    for (int missing = k; missing < length; ++missing) {
      lo = lo << 6;
      hi = (hi << 6) | 0x3F;
    }
    if (!RangeHasValidCodePoint(lo, hi, length)) return Verdict::kInvalid;
    if (k < length) return Verdict::kViablePrefix;
    i += length;
  }
  return Verdict::kComplete;
}

// Index of the first byte at which the reference calls the prefix invalid.
std::size_t ReferenceFailIndex(const std::string& text) {
  for (std::size_t n = 1; n <= text.size(); ++n) {
    if (Reference(text.substr(0, n)) == Verdict::kInvalid) return n - 1;
  }
  return kNoFailure;
}

// --------------------------------------------------------------- helpers
// Index of the byte whose Feed returned false, feeding one byte at a time.
std::size_t FailIndexByteByByte(const std::string& text) {
  Utf8Validator validator;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!validator.Feed(std::string_view(text).substr(i, 1))) return i;
  }
  return kNoFailure;
}

bool ValidWhole(const std::string& text) {
  Utf8Validator validator;
  return validator.Feed(text) && validator.Complete();
}

// Checks the validator against the reference for `text` fed whole, byte by
// byte and split in two at every point.
void ExpectAgreesWithReference(const std::string& text) {
  const Verdict verdict = Reference(text);
  SCOPED_TRACE(::testing::PrintToString(text));
  EXPECT_EQ(ValidWhole(text), verdict == Verdict::kComplete);
  EXPECT_EQ(FailIndexByteByByte(text), ReferenceFailIndex(text));
  for (std::size_t split = 0; split <= text.size(); ++split) {
    Utf8Validator validator;
    const bool first = validator.Feed(std::string_view(text).substr(0, split));
    const bool second = validator.Feed(std::string_view(text).substr(split));
    EXPECT_EQ(first, Reference(text.substr(0, split)) != Verdict::kInvalid) << "split " << split;
    EXPECT_EQ(second, verdict != Verdict::kInvalid) << "split " << split;
    EXPECT_EQ(validator.Complete(), verdict == Verdict::kComplete) << "split " << split;
  }
}

void ExpectValid(const std::string& text) {
  ExpectAgreesWithReference(text);
  EXPECT_TRUE(ValidWhole(text)) << ::testing::PrintToString(text);
  EXPECT_EQ(FailIndexByteByByte(text), kNoFailure) << ::testing::PrintToString(text);
}

// Invalid, and refused exactly at byte `fail_at` however it is fed.
void ExpectFailsAt(const std::string& text, std::size_t fail_at) {
  ExpectAgreesWithReference(text);
  EXPECT_FALSE(ValidWhole(text)) << ::testing::PrintToString(text);
  EXPECT_EQ(FailIndexByteByByte(text), fail_at) << ::testing::PrintToString(text);
}

// A viable prefix that the end of the message leaves unfinished.
void ExpectTruncated(const std::string& text) {
  ExpectAgreesWithReference(text);
  Utf8Validator validator;
  EXPECT_TRUE(validator.Feed(text)) << ::testing::PrintToString(text);
  EXPECT_FALSE(validator.Complete()) << ::testing::PrintToString(text);
}

const std::string kKosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // κόσμε

// ---------------------------------------------------------------- tests
TEST(Utf8ValidatorTest, FreshValidatorIsComplete) {
  Utf8Validator validator;
  EXPECT_TRUE(validator.Complete());
  EXPECT_TRUE(validator.Feed(""));
  EXPECT_TRUE(validator.Complete());
}

TEST(Utf8ValidatorTest, EmptyFeedsChangeNothing) {
  Utf8Validator validator;
  EXPECT_TRUE(validator.Feed("\xe2"));
  EXPECT_TRUE(validator.Feed(""));
  EXPECT_FALSE(validator.Complete());
  EXPECT_TRUE(validator.Feed("\x82"));
  EXPECT_TRUE(validator.Feed(""));
  EXPECT_TRUE(validator.Feed("\xac"));  // €
  EXPECT_TRUE(validator.Feed(""));
  EXPECT_TRUE(validator.Complete());
  EXPECT_FALSE(validator.Feed("\xff"));
  EXPECT_FALSE(validator.Feed(""));
  EXPECT_FALSE(validator.Complete());
}

TEST(Utf8ValidatorTest, FailureIsStickyUntilReset) {
  Utf8Validator validator;
  EXPECT_FALSE(validator.Feed("\xc0"));
  EXPECT_FALSE(validator.Feed("hello"));
  EXPECT_FALSE(validator.Complete());
  validator.Reset();
  EXPECT_TRUE(validator.Complete());
  EXPECT_TRUE(validator.Feed("hello"));
  EXPECT_TRUE(validator.Complete());
}

TEST(Utf8ValidatorTest, ResetDropsAnUnfinishedSequence) {
  Utf8Validator validator;
  EXPECT_TRUE(validator.Feed("\xf0\x9f"));
  validator.Reset();
  EXPECT_TRUE(validator.Complete());
  EXPECT_FALSE(validator.Feed("\x98"));  // a continuation byte with no lead
}

TEST(Utf8ValidatorTest, BoundaryCodePointsAreValid) {
  for (const std::uint32_t cp :
       {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFEu, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    SCOPED_TRACE(cp);
    ExpectValid(Encode(cp));
    std::string surrounded = "a";  // built step by step: GCC 12 warns wrongly on "a" + string
    surrounded += Encode(cp);
    surrounded += 'z';
    ExpectValid(surrounded);
  }
}

TEST(Utf8ValidatorTest, EveryScalarValueIsValidAndEverySurrogateIsNot) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string encoded = Encode(cp);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(ValidWhole(encoded), !surrogate) << std::hex << cp;
  }
}

// Autobahn 6.1-6.2: empty and valid text.
TEST(Utf8ValidatorTest, AutobahnValidText) {
  ExpectValid("");
  ExpectValid("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!");
  ExpectValid(kKosme);
}

// Autobahn 6.3: κόσμε with a surrogate in the middle fails at its second byte.
TEST(Utf8ValidatorTest, AutobahnKosmeWithSurrogate) {
  const std::string text = kKosme + "\xed\xa0\x80" + "edited";
  ExpectFailsAt(text, kKosme.size() + 1);
}

// Autobahn 6.4: fail fast on U+110000 inside κόσμε, the message unfinished.
TEST(Utf8ValidatorTest, AutobahnFailFastPastMaxCodePoint) {
  const std::string text = kKosme + "\xf4\x90\x80\x80" + "edited";
  ExpectFailsAt(text, kKosme.size() + 1);

  // 6.4.1/6.4.3: fragments κόσμε | F4 90 80 80 | edited: the second fails.
  Utf8Validator fragments;
  EXPECT_TRUE(fragments.Feed(kKosme));
  EXPECT_FALSE(fragments.Feed("\xf4\x90\x80\x80"));

  // 6.4.2/6.4.4: κόσμε F4 | 90 | ...: the lone 90 fragment fails.
  Utf8Validator split;
  EXPECT_TRUE(split.Feed(kKosme + "\xf4"));
  EXPECT_FALSE(split.Feed("\x90"));
}

// Autobahn 6.5-6.6: κόσμε in every fragmentation, valid prefixes stay open.
TEST(Utf8ValidatorTest, AutobahnKosmeFragmented) {
  ExpectValid(kKosme);
  for (std::size_t n = 1; n <= kKosme.size(); ++n) {
    Utf8Validator validator;
    EXPECT_TRUE(validator.Feed(kKosme.substr(0, n)));
  }
  ExpectTruncated(kKosme.substr(0, 3));  // κ and half of ό
  ExpectTruncated("\xce");
}

// Autobahn 6.7 and 6.9: the first and last code point of each length.
TEST(Utf8ValidatorTest, AutobahnFirstAndLastOfEachLength) {
  ExpectValid(std::string(1, '\0'));
  ExpectValid("\xc2\x80");
  ExpectValid("\xe0\xa0\x80");
  ExpectValid("\xf0\x90\x80\x80");
  ExpectValid("\x7f");
  ExpectValid("\xdf\xbf");
  ExpectValid("\xef\xbf\xbf");
  ExpectValid("\xf4\x8f\xbf\xbf");
}

// Autobahn 6.8 and 6.10: five- and six-byte forms died with RFC 3629.
TEST(Utf8ValidatorTest, AutobahnFiveAndSixByteForms) {
  ExpectFailsAt("\xf8\x88\x80\x80\x80", 0);
  ExpectFailsAt("\xfc\x84\x80\x80\x80\x80", 0);
  ExpectFailsAt("\xf7\xbf\xbf\xbf", 0);
  ExpectFailsAt("\xfb\xbf\xbf\xbf\xbf", 0);
  ExpectFailsAt("\xfd\xbf\xbf\xbf\xbf\xbf", 0);
}

// Autobahn 6.11: other boundary conditions.
TEST(Utf8ValidatorTest, AutobahnOtherBoundaries) {
  ExpectValid("\xed\x9f\xbf");      // U+D7FF
  ExpectValid("\xee\x80\x80");      // U+E000
  ExpectValid("\xef\xbf\xbd");      // U+FFFD
  ExpectValid("\xf4\x8f\xbf\xbf");  // U+10FFFF
  ExpectFailsAt("\xf4\x90\x80\x80", 1);
}

// Autobahn 6.12: continuation bytes with no lead byte.
TEST(Utf8ValidatorTest, AutobahnUnexpectedContinuationBytes) {
  for (unsigned b = 0x80; b <= 0xBF; ++b) ExpectFailsAt(Bytes({b}), 0);
  ExpectFailsAt("\x80\xbf", 0);
  ExpectFailsAt("\x80\xbf\x80", 0);
  ExpectFailsAt("\x80\xbf\x80\xbf", 0);
  ExpectFailsAt("ok\x80\xbf\x80\xbf\x80", 2);
  ExpectFailsAt("\xc3\xa9\xa9", 2);  // one continuation too many
}

// Autobahn 6.13: lead bytes followed by a space.
TEST(Utf8ValidatorTest, AutobahnLonelyStartBytes) {
  for (unsigned b = 0xC2; b <= 0xF4; ++b) ExpectFailsAt(Bytes({b, ' '}), 1);
  for (unsigned b : {0xC0u, 0xC1u, 0xF5u, 0xF6u, 0xF7u, 0xF8u, 0xFBu, 0xFCu, 0xFDu}) {
    ExpectFailsAt(Bytes({b, ' '}), 0);
  }
}

// Autobahn 6.14: sequences with the last byte missing. Those that can still
// become valid pass Feed and fail Complete; the rest fail at once.
TEST(Utf8ValidatorTest, AutobahnLastByteMissing) {
  ExpectFailsAt("\xc0", 0);
  ExpectFailsAt("\xe0\x80", 1);
  ExpectFailsAt("\xf0\x80\x80", 1);
  ExpectFailsAt("\xf8\x80\x80\x80", 0);
  ExpectFailsAt("\xfc\x80\x80\x80\x80", 0);
  ExpectTruncated("\xdf");
  ExpectTruncated("\xef\xbf");
  ExpectFailsAt("\xf7\xbf\xbf", 0);
  ExpectTruncated("\xf4\x8f\xbf");
  ExpectTruncated("\xf0\x90\x80");
}

// Autobahn 6.15: concatenated incomplete sequences.
TEST(Utf8ValidatorTest, AutobahnConcatenatedIncompleteSequences) {
  ExpectFailsAt(
      "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf"
      "\xfd\xbf\xbf\xbf\xbf",
      0);
  ExpectFailsAt("\xdf\xef\xbf", 1);  // a lead byte where a continuation is owed
}

// Autobahn 6.16: bytes that never appear in UTF-8.
TEST(Utf8ValidatorTest, AutobahnImpossibleBytes) {
  ExpectFailsAt("\xfe", 0);
  ExpectFailsAt("\xff", 0);
  ExpectFailsAt("\xfe\xfe\xff\xff", 0);
  for (unsigned b = 0xF5; b <= 0xFF; ++b) ExpectFailsAt(Bytes({b}), 0);
}

// Autobahn 6.17-6.19: overlong forms fail at the first byte that proves it.
TEST(Utf8ValidatorTest, AutobahnOverlongs) {
  ExpectFailsAt("\xc0\xaf", 0);  // "/"
  ExpectFailsAt("\xe0\x80\xaf", 1);
  ExpectFailsAt("\xf0\x80\x80\xaf", 1);
  ExpectFailsAt("\xf8\x80\x80\x80\xaf", 0);
  ExpectFailsAt("\xfc\x80\x80\x80\x80\xaf", 0);
  ExpectFailsAt("\xc1\xbf", 0);  // largest overlongs
  ExpectFailsAt("\xe0\x9f\xbf", 1);
  ExpectFailsAt("\xf0\x8f\xbf\xbf", 1);
  ExpectFailsAt("\xc0\x80", 0);  // NUL
  ExpectFailsAt("\xe0\x80\x80", 1);
  ExpectFailsAt("\xf0\x80\x80\x80", 1);
}

// Autobahn 6.20-6.21: single and paired UTF-16 surrogates.
TEST(Utf8ValidatorTest, AutobahnSurrogates) {
  for (const char* s :
       {"\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf",
        "\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xbf\xbf"}) {
    ExpectFailsAt(s, 1);
  }
}

// Autobahn 6.22-6.23: noncharacters and specials are valid scalar values.
TEST(Utf8ValidatorTest, AutobahnNoncharactersAreValid) {
  for (const std::uint32_t cp :
       {0xFFFEu, 0xFFFFu, 0x1FFFEu, 0x1FFFFu, 0x10FFFEu, 0x10FFFFu, 0xFDD0u, 0xFDEFu, 0xFFF9u, 0xFFFDu, 0xFEFFu}) {
    ExpectValid(Encode(cp));
  }
}

// The brief's fail-fast examples, each the first byte of a message.
TEST(Utf8ValidatorTest, FailsFastOnTwoBytePrefixes) {
  ExpectFailsAt("\xf4\x90", 1);  // would be U+110000 or above
  ExpectFailsAt("\xed\xa0", 1);  // would be a surrogate
  ExpectFailsAt("\xe0\x80", 1);  // would be overlong
  ExpectFailsAt("\xf0\x8f", 1);  // would be overlong
  ExpectTruncated("\xf4\x8f");   // U+100000..U+10FFFF are still possible
  ExpectTruncated("\xed\x9f");   // U+D7C0..U+D7FF are still possible
  ExpectTruncated("\xe0\xa0");
  ExpectTruncated("\xf0\x90");
}

// Every one- and two-byte string, and every three- and four-byte string
// built from bytes at the class boundaries, against the reference.
TEST(Utf8ValidatorTest, AgreesWithReferenceOnShortStrings) {
  for (unsigned a = 0; a < 256; ++a) {
    ExpectAgreesWithReference(Bytes({a}));
    for (unsigned b = 0; b < 256; ++b) {
      const std::string text = Bytes({a, b});
      ASSERT_EQ(FailIndexByteByByte(text), ReferenceFailIndex(text)) << std::hex << a << " " << b;
      ASSERT_EQ(ValidWhole(text), Reference(text) == Verdict::kComplete) << std::hex << a << " " << b;
    }
  }
  const std::vector<unsigned> edges = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                       0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
  for (const unsigned a : edges) {
    for (const unsigned b : edges) {
      for (const unsigned c : edges) {
        for (const unsigned d : edges) {
          const std::string text = Bytes({a, b, c, d});
          ASSERT_EQ(FailIndexByteByByte(text), ReferenceFailIndex(text))
              << std::hex << a << " " << b << " " << c << " " << d;
          ASSERT_EQ(ValidWhole(text), Reference(text) == Verdict::kComplete)
              << std::hex << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

// The eight-bytes-at-a-time ASCII path must hand over to the DFA at any
// alignment, including in the middle of a word and across Feed calls.
TEST(Utf8ValidatorTest, AsciiFastPathAtEveryAlignment) {
  for (std::size_t before = 0; before < 20; ++before) {
    for (std::size_t after = 0; after < 20; ++after) {
      const std::string ascii_before(before, 'a');
      const std::string ascii_after(after, 'z');
      EXPECT_TRUE(ValidWhole(ascii_before + "\xe2\x82\xac" + ascii_after));
      EXPECT_FALSE(ValidWhole(ascii_before + "\xe2\x82" + ascii_after));
      EXPECT_EQ(FailIndexByteByByte(ascii_before + "\xff" + ascii_after), before);
      Utf8Validator whole;
      EXPECT_FALSE(whole.Feed(ascii_before + "\x80" + ascii_after));
      Utf8Validator split;
      EXPECT_TRUE(split.Feed(ascii_before + "\xf0\x9f"));
      EXPECT_TRUE(split.Feed("\x98\x80" + ascii_after));
      EXPECT_TRUE(split.Complete());
    }
  }
  EXPECT_TRUE(ValidWhole(std::string(1 << 20, 'x')));
  EXPECT_FALSE(ValidWhole(std::string(1 << 20, 'x') + "\xc3"));
}

// Random text, mostly valid with damage here and there, fed in random
// pieces, always agrees with the reference.
TEST(Utf8ValidatorTest, RandomPiecesAgreeWithReference) {
  std::mt19937 rng(6455);
  std::uniform_int_distribution<std::uint32_t> code_point(0, 0x10FFFF);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<unsigned> any_byte(0, 255);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int count = percent(rng) % 12;
    for (int i = 0; i < count; ++i) {
      const int roll = percent(rng);
      if (roll < 40) {
        text += static_cast<char>('a' + roll % 26);
      } else if (roll < 92) {
        std::uint32_t cp = code_point(rng);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        text += Encode(cp);
      } else if (roll < 96 && !text.empty()) {
        text.pop_back();  // leaves a truncated sequence behind, sometimes
      } else {
        text += static_cast<char>(any_byte(rng));
      }
    }
    Utf8Validator validator;
    std::size_t pos = 0;
    bool ok = true;
    while (pos < text.size()) {
      const std::size_t piece = std::min<std::size_t>(text.size() - pos, percent(rng) % 6);
      ok = validator.Feed(std::string_view(text).substr(pos, piece));
      const Verdict prefix = Reference(text.substr(0, pos + piece));
      ASSERT_EQ(ok, prefix != Verdict::kInvalid) << ::testing::PrintToString(text) << " at " << pos + piece;
      pos += piece;
    }
    ASSERT_EQ(ok && validator.Complete(), Reference(text) == Verdict::kComplete) << ::testing::PrintToString(text);
  }
}

}  // namespace
}  // namespace wsgateway
