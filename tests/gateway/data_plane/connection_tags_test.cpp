// A connection's metadata and groups: sorted, one entry per key or group,
// and idempotent joins and leaves.

#include "gateway/data_plane/connection_tags.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace wsgateway {
namespace {

using Groups = std::vector<std::string>;

// A fresh connection carries nothing, and carrying nothing allocates nothing.
TEST(ConnectionTagsTest, StartsEmptyWithoutAllocating) {
  const ConnectionTags tags;
  EXPECT_TRUE(tags.metadata().empty());
  EXPECT_TRUE(tags.groups().empty());
  EXPECT_EQ(tags.metadata().capacity(), 0u);
  EXPECT_EQ(tags.groups().capacity(), 0u);
  EXPECT_EQ(tags.FindMetadata("user"), nullptr);
  EXPECT_FALSE(tags.InGroup("lobby"));
}

// Metadata is kept sorted by key whatever the order it was set in.
TEST(ConnectionTagsTest, MetadataIsSortedByKey) {
  ConnectionTags tags;
  tags.SetMetadata("user", "ann");
  tags.SetMetadata("tenant", "acme");
  tags.SetMetadata("device", "phone");
  const ConnectionTags::Metadata expected = {{"device", "phone"}, {"tenant", "acme"}, {"user", "ann"}};
  EXPECT_EQ(tags.metadata(), expected);
}

// Setting a key again replaces its value instead of adding a second entry.
TEST(ConnectionTagsTest, SettingAKeyAgainReplacesItsValue) {
  ConnectionTags tags;
  tags.SetMetadata("user", "ann");
  tags.SetMetadata("user", "bob");
  ASSERT_EQ(tags.metadata().size(), 1u);
  ASSERT_NE(tags.FindMetadata("user"), nullptr);
  EXPECT_EQ(*tags.FindMetadata("user"), "bob");
}

// Lookups are exact: no prefix, no case folding; empty keys and values are
// ordinary strings.
TEST(ConnectionTagsTest, FindMetadataIsExact) {
  ConnectionTags tags;
  tags.SetMetadata("user", "ann");
  tags.SetMetadata("", "empty key");
  tags.SetMetadata("flag", "");
  EXPECT_EQ(tags.FindMetadata("use"), nullptr);
  EXPECT_EQ(tags.FindMetadata("users"), nullptr);
  EXPECT_EQ(tags.FindMetadata("User"), nullptr);
  ASSERT_NE(tags.FindMetadata(""), nullptr);
  EXPECT_EQ(*tags.FindMetadata(""), "empty key");
  ASSERT_NE(tags.FindMetadata("flag"), nullptr);
  EXPECT_EQ(*tags.FindMetadata("flag"), "");
}

// Groups are kept sorted bytewise, which is the order the API reports them in.
TEST(ConnectionTagsTest, GroupsAreSortedBytewise) {
  ConnectionTags tags;
  for (const char* group : {"room-b", "Room-a", "room-a", "\xC3\xA9t\xC3\xA9", "a"}) EXPECT_TRUE(tags.Join(group));
  EXPECT_EQ(tags.groups(), (Groups{"Room-a", "a", "room-a", "room-b", "\xC3\xA9t\xC3\xA9"}));
}

// Joining twice keeps one membership and says it changed nothing.
TEST(ConnectionTagsTest, JoiningTwiceIsANoOp) {
  ConnectionTags tags;
  EXPECT_TRUE(tags.Join("lobby"));
  EXPECT_FALSE(tags.Join("lobby"));
  EXPECT_EQ(tags.groups(), Groups{"lobby"});
  EXPECT_TRUE(tags.InGroup("lobby"));
}

// Leaving removes only that group; leaving a group not joined changes nothing.
TEST(ConnectionTagsTest, LeavingRemovesOnlyThatGroupAndIsIdempotent) {
  ConnectionTags tags;
  tags.Join("a");
  tags.Join("b");
  tags.Join("c");
  EXPECT_TRUE(tags.Leave("b"));
  EXPECT_FALSE(tags.Leave("b"));
  EXPECT_FALSE(tags.Leave("never-joined"));
  EXPECT_EQ(tags.groups(), (Groups{"a", "c"}));
  EXPECT_FALSE(tags.InGroup("b"));
  EXPECT_TRUE(tags.InGroup("a"));
  EXPECT_TRUE(tags.InGroup("c"));
}

// Membership is exact: a prefix of a group or another case is another group.
TEST(ConnectionTagsTest, InGroupIsExact) {
  ConnectionTags tags;
  tags.Join("room-1");
  EXPECT_FALSE(tags.InGroup("room-"));
  EXPECT_FALSE(tags.InGroup("room-10"));
  EXPECT_FALSE(tags.InGroup("ROOM-1"));
  EXPECT_FALSE(tags.InGroup(""));
}

// Groups and metadata are independent: a key is not a group.
TEST(ConnectionTagsTest, GroupsAndMetadataAreIndependent) {
  ConnectionTags tags;
  tags.SetMetadata("lobby", "1");
  EXPECT_FALSE(tags.InGroup("lobby"));
  tags.Join("user");
  EXPECT_EQ(tags.FindMetadata("user"), nullptr);
}

}  // namespace
}  // namespace wsgateway
