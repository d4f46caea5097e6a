// Sizes and durations as written in flags, environment and YAML.

#include "gateway/config/units.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

namespace wsgateway {
namespace {

using std::chrono::milliseconds;

// Plain numbers are bytes, and every documented suffix scales by its unit.
TEST(ParseBytesTest, AcceptsPlainNumbersAndEverySuffix) {
  EXPECT_EQ(ParseBytes("0"), 0u);
  EXPECT_EQ(ParseBytes("1024"), 1024u);
  EXPECT_EQ(ParseBytes("17B"), 17u);
  EXPECT_EQ(ParseBytes("64KiB"), 64u * 1024);
  EXPECT_EQ(ParseBytes("2MiB"), 2u * 1024 * 1024);
  EXPECT_EQ(ParseBytes("1GiB"), std::size_t{1} << 30);
  EXPECT_EQ(ParseBytes("5KB"), 5000u);
  EXPECT_EQ(ParseBytes("3MB"), 3'000'000u);
  EXPECT_EQ(ParseBytes("2GB"), std::size_t{2'000'000'000});
}

// Anything that is not a number with a known suffix is refused, not guessed.
TEST(ParseBytesTest, RejectsGarbageUnknownSuffixesAndSigns) {
  for (const char* text :
       {"", "KiB", "abc", "-1", "+1", "1.5MiB", "1 MiB", " 1", "1 ", "1kib", "1Ki", "1TiB", "1MiBx", "0x10", "1e3"}) {
    EXPECT_EQ(ParseBytes(text), std::nullopt) << "'" << text << "'";
  }
}

// A size that does not fit in 64 bits is an error, not a wrapped-around number.
TEST(ParseBytesTest, RejectsValuesThatOverflow) {
  EXPECT_EQ(ParseBytes("18446744073709551616"), std::nullopt);
  EXPECT_EQ(ParseBytes("18446744073709551615GiB"), std::nullopt);
  EXPECT_EQ(ParseBytes("17179869184GiB"), std::nullopt);  // 2^34 GiB = 2^64 bytes
  EXPECT_EQ(ParseBytes("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
}

// Durations take ms, s, m and h.
TEST(ParseDurationTest, AcceptsEveryUnit) {
  EXPECT_EQ(ParseDuration("0ms"), milliseconds(0));
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("30s"), milliseconds(30'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("2h"), milliseconds(7'200'000));
}

// A duration needs a unit; fractions, signs and unknown units are refused.
TEST(ParseDurationTest, RejectsMissingOrUnknownUnits) {
  for (const char* text : {"", "10", "s", "1.5s", "-1s", "+1s", "1 s", "1sec", "1d", "1S", "1us", "ms"}) {
    EXPECT_EQ(ParseDuration(text), std::nullopt) << "'" << text << "'";
  }
}

// A duration whose milliseconds overflow is an error.
TEST(ParseDurationTest, RejectsValuesThatOverflow) {
  EXPECT_EQ(ParseDuration("18446744073709551615h"), std::nullopt);
  EXPECT_EQ(ParseDuration("9223372036854775808ms"), std::nullopt);
  EXPECT_EQ(ParseDuration("9223372036854775807ms"), milliseconds(std::numeric_limits<std::int64_t>::max()));
}

// Sizes print with the largest binary unit that divides them exactly.
TEST(FormatBytesTest, UsesTheLargestExactBinaryUnit) {
  EXPECT_EQ(FormatBytes(0), "0");
  EXPECT_EQ(FormatBytes(1000), "1000");
  EXPECT_EQ(FormatBytes(1024), "1KiB");
  EXPECT_EQ(FormatBytes(1536), "1536");
  EXPECT_EQ(FormatBytes(2 * 1024 * 1024), "2MiB");
  EXPECT_EQ(FormatBytes(std::size_t{3} << 30), "3GiB");
}

// Durations print with the largest unit that divides them exactly.
TEST(FormatDurationTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(30'000)), "30s");
  EXPECT_EQ(FormatDuration(milliseconds(120'000)), "2m");
}

// What FormatBytes and FormatDuration print parses back to the same value,
// so defaults shown in --help are valid input.
TEST(UnitsTest, FormattedValuesParseBackToThemselves) {
  for (std::size_t bytes :
       {std::size_t{0}, std::size_t{1}, std::size_t{1023}, std::size_t{1024}, std::size_t{64} * 1024,
        std::size_t{2} << 20, std::size_t{5} << 30, std::size_t{123456789}}) {
    EXPECT_EQ(ParseBytes(FormatBytes(bytes)), bytes) << FormatBytes(bytes);
  }
  for (long ms : {0L, 1L, 999L, 1000L, 60'000L, 61'000L, 3'600'000L}) {
    EXPECT_EQ(ParseDuration(FormatDuration(milliseconds(ms))), milliseconds(ms)) << FormatDuration(milliseconds(ms));
  }
}

}  // namespace
}  // namespace wsgateway
