// Connection ids: opaque to API clients, one spelling per connection, never
// reused.

#include "gateway/data_plane/connection_id.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>
#include <string>

namespace wsgateway {
namespace {

// An id is the 16-digit epoch, the loop and the counter in lower-case hex.
TEST(ConnectionIdTest, FormatsEpochLoopAndCounterAsHex) {
  EXPECT_EQ(FormatConnectionId({0x1, 0, 0x1}), "0000000000000001-0-1");
  EXPECT_EQ(FormatConnectionId({0xdeadbeefcafef00dULL, 0x1f, 0xabc}), "deadbeefcafef00d-1f-abc");
}

// Every id that FormatConnectionId produces parses back to the same parts.
TEST(ConnectionIdTest, FormatAndParseRoundTrip) {
  constexpr auto kMax64 = std::numeric_limits<std::uint64_t>::max();
  constexpr auto kMax32 = std::numeric_limits<std::uint32_t>::max();
  for (const ConnectionId& id :
       {ConnectionId{1, 0, 0}, ConnectionId{1, 0, 1}, ConnectionId{0x123456789abcdefULL, 7, 42},
        ConnectionId{kMax64, kMax32, kMax64}, ConnectionId{0x8000000000000000ULL, 255, 1ULL << 40}}) {
    const std::string text = FormatConnectionId(id);
    const auto parsed = ParseConnectionId(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, id) << text;
  }
}

// Other spellings of a valid id (upper case, extra zeros, signs) are refused,
// so that one connection never answers to two ids.
TEST(ConnectionIdTest, RejectsNonCanonicalSpellings) {
  ASSERT_TRUE(ParseConnectionId("00000000000000ab-1-2").has_value());
  for (const char* text : {"00000000000000AB-1-2", "00000000000000ab-01-2", "00000000000000ab-1-02",
                           "00000000000000ab-1-+2", "00000000000000ab-+1-2", "00000000000000ab-0x1-2",
                           "00000000000000ab-1-2 ", " 00000000000000ab-1-2", "00000000000000Ab-1-2"}) {
    EXPECT_EQ(ParseConnectionId(text), std::nullopt) << "'" << text << "'";
  }
}

// Strings that are not ids at all are refused without crashing.
TEST(ConnectionIdTest, RejectsGarbage) {
  const std::string with_nul("00000000000000ab-1-2\0", 21);
  for (const std::string& text :
       {std::string(), std::string("-"), std::string("--"), std::string("abc"), std::string("00000000000000ab"),
        std::string("00000000000000ab-"), std::string("00000000000000ab-1"), std::string("00000000000000ab-1-"),
        std::string("00000000000000ab--2"), std::string("00000000000000ab-1-2-3"), std::string("0000000000000ab-1-2"),
        std::string("000000000000000ab-1-2"), std::string("00000000000000xy-1-2"), std::string("00000000000000ab-g-2"),
        std::string("00000000000000ab-1-z"), std::string("00000000000000ab-100000000-2"),
        std::string("00000000000000ab-1-10000000000000000"), with_nul, std::string(4096, 'a')}) {
    EXPECT_EQ(ParseConnectionId(text), std::nullopt) << "'" << text << "'";
  }
}

// Distinct parts give distinct ids (no two connections share a spelling).
TEST(ConnectionIdTest, DistinctIdsFormatDistinctly) {
  std::set<std::string> seen;
  for (std::uint64_t epoch : {1ULL, 2ULL, 0x10ULL}) {
    for (std::uint32_t loop = 0; loop < 17; ++loop) {
      for (std::uint64_t counter = 0; counter < 300; ++counter) {
        EXPECT_TRUE(seen.insert(FormatConnectionId({epoch, loop, counter})).second);
      }
    }
  }
  EXPECT_EQ(seen.size(), 3u * 17 * 300);
}

// Every process draws a non-zero epoch, and draws differ (ids of a restarted
// gateway cannot collide with those of the previous run).
TEST(ConnectionIdTest, DrawnEpochsAreNonZeroAndUnique) {
  std::set<std::uint64_t> epochs;
  for (int i = 0; i < 1000; ++i) {
    const auto epoch = DrawEpoch();
    EXPECT_NE(epoch, 0u);
    epochs.insert(epoch);
  }
  EXPECT_EQ(epochs.size(), 1000u);
}

// A node id is the epoch exactly as it leads the connection ids it hands out.
TEST(ConnectionIdTest, FormatEpochIsTheIdsFirstPart) {
  const ConnectionId id{0x00ab'cdef'0123'4567, 3, 99};
  EXPECT_EQ(FormatEpoch(id.epoch), "00abcdef01234567");
  EXPECT_EQ(FormatConnectionId(id).substr(0, 17), FormatEpoch(id.epoch) + "-");
}

}  // namespace

}  // namespace wsgateway
