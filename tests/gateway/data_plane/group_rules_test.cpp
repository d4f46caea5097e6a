// What a group name may be: 1-128 bytes of UTF-8; refusals name the field
// and say what is wrong.

#include "gateway/data_plane/group_rules.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace wsgateway {
namespace {

using ::testing::HasSubstr;

// Ordinary names, with any characters, are accepted.
TEST(GroupRulesTest, AcceptsUtf8NamesUpTo128Bytes) {
  for (const std::string& name :
       {std::string("lobby"), std::string("a"), std::string("tenant/acme/room 7"), std::string("\xC3\xA9t\xC3\xA9"),
        std::string("\xF0\x9F\x98\x80"), std::string(kMaxGroupNameBytes, 'g')}) {
    EXPECT_EQ(CheckGroupName("group", name), "") << name;
  }
}

// The limit counts bytes, not characters: 42 three-byte characters (126
// bytes) fit, 43 (129 bytes) do not.
TEST(GroupRulesTest, LimitCountsBytes) {
  std::string name;
  for (int i = 0; i < 42; ++i) name += "\xE2\x82\xAC";
  EXPECT_EQ(CheckGroupName("group", name), "");
  name += "\xE2\x82\xAC";
  EXPECT_THAT(CheckGroupName("group", name), HasSubstr("129 bytes"));
}

// An empty name is refused, naming the field.
TEST(GroupRulesTest, RefusesAnEmptyName) {
  const auto error = CheckGroupName("groups[3]", "");
  EXPECT_THAT(error, HasSubstr("groups[3] is empty"));
}

// One byte over the limit is refused with the length and the limit.
TEST(GroupRulesTest, RefusesANameOverTheLimit) {
  const auto error = CheckGroupName("filter.group", std::string(kMaxGroupNameBytes + 1, 'g'));
  EXPECT_THAT(error, HasSubstr("filter.group is 129 bytes long"));
  EXPECT_THAT(error, HasSubstr("at most 128 bytes"));
}

// Bytes that are not UTF-8 (a stray byte, an overlong, a surrogate, a
// truncated sequence) are refused.
TEST(GroupRulesTest, RefusesNamesThatAreNotUtf8) {
  for (const std::string& name :
       {std::string("bad\xFF"), std::string("\xC0\x80"), std::string("\xED\xA0\x80"), std::string("cut\xE2\x82")}) {
    EXPECT_THAT(CheckGroupName("groups[0]", name), HasSubstr("groups[0] is not valid UTF-8"));
  }
}

}  // namespace
}  // namespace wsgateway
