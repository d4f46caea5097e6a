// ConnectionFilter: every set field must match, an empty filter matches
// every connection, and a filter no connection could match is refused up
// front.

#include "gateway/data_plane/connection_filter.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace wsgateway {
namespace {

using ::testing::HasSubstr;

constexpr auto kActive = v1::CONNECTION_STATE_ACTIVE;

ConnectionTags Tagged() {
  ConnectionTags tags;
  tags.SetMetadata("tenant", "acme");
  tags.SetMetadata("user", "ann");
  tags.Join("lobby");
  tags.Join("room-7");
  return tags;
}

// The empty filter matches connections in any state, on any path, tagged
// or not.
TEST(ConnectionFilterTest, EmptyFilterMatchesEverything) {
  const v1::ConnectionFilter filter;
  EXPECT_TRUE(Matches(kActive, "/chat", Tagged(), filter));
  EXPECT_TRUE(Matches(v1::CONNECTION_STATE_CONNECTION, "", ConnectionTags(), filter));
  EXPECT_TRUE(Matches(v1::CONNECTION_STATE_CLOSING, "/x", ConnectionTags(), filter));
}

// A state filter matches only that state.
TEST(ConnectionFilterTest, StateMatchesOnlyThatState) {
  v1::ConnectionFilter filter;
  filter.set_state(kActive);
  EXPECT_TRUE(Matches(kActive, "/", ConnectionTags(), filter));
  EXPECT_FALSE(Matches(v1::CONNECTION_STATE_CLOSING, "/", ConnectionTags(), filter));
}

// A path prefix matches paths that start with it.
TEST(ConnectionFilterTest, PathPrefixMatchesPathsStartingWithIt) {
  v1::ConnectionFilter filter;
  filter.set_path_prefix("/chat");
  EXPECT_TRUE(Matches(kActive, "/chat", ConnectionTags(), filter));
  EXPECT_TRUE(Matches(kActive, "/chat/room", ConnectionTags(), filter));
  EXPECT_FALSE(Matches(kActive, "/cha", ConnectionTags(), filter));
  EXPECT_FALSE(Matches(kActive, "/other/chat", ConnectionTags(), filter));
}

// A group filter matches members only; the name must match exactly.
TEST(ConnectionFilterTest, GroupMatchesMembersOnly) {
  v1::ConnectionFilter filter;
  filter.set_group("lobby");
  EXPECT_TRUE(Matches(kActive, "/", Tagged(), filter));
  EXPECT_FALSE(Matches(kActive, "/", ConnectionTags(), filter));
  filter.set_group("lob");
  EXPECT_FALSE(Matches(kActive, "/", Tagged(), filter));
  filter.set_group("Lobby");
  EXPECT_FALSE(Matches(kActive, "/", Tagged(), filter));
}

// Metadata matches when every listed key is present with exactly that
// value; other keys of the connection do not matter.
TEST(ConnectionFilterTest, MetadataNeedsEveryListedKeyWithItsExactValue) {
  v1::ConnectionFilter filter;
  (*filter.mutable_metadata())["tenant"] = "acme";
  EXPECT_TRUE(Matches(kActive, "/", Tagged(), filter));
  (*filter.mutable_metadata())["user"] = "ann";
  EXPECT_TRUE(Matches(kActive, "/", Tagged(), filter));
  (*filter.mutable_metadata())["user"] = "Ann";
  EXPECT_FALSE(Matches(kActive, "/", Tagged(), filter)) << "values are case-sensitive";
  (*filter.mutable_metadata())["user"] = "ann";
  (*filter.mutable_metadata())["role"] = "admin";
  EXPECT_FALSE(Matches(kActive, "/", Tagged(), filter)) << "a listed key is missing";
  EXPECT_FALSE(Matches(kActive, "/", ConnectionTags(), filter));
}

// An empty value in the filter asks for a key set to "", not for any value.
TEST(ConnectionFilterTest, EmptyMetadataValueIsAValueNotAWildcard) {
  v1::ConnectionFilter filter;
  (*filter.mutable_metadata())["user"] = "";
  EXPECT_FALSE(Matches(kActive, "/", Tagged(), filter));
  ConnectionTags flagged;
  flagged.SetMetadata("user", "");
  EXPECT_TRUE(Matches(kActive, "/", flagged, filter));
}

// Every set field must match at once.
TEST(ConnectionFilterTest, EveryFieldMustMatch) {
  v1::ConnectionFilter filter;
  filter.set_state(kActive);
  filter.set_path_prefix("/chat");
  filter.set_group("room-7");
  (*filter.mutable_metadata())["tenant"] = "acme";
  EXPECT_TRUE(Matches(kActive, "/chat/1", Tagged(), filter));
  EXPECT_FALSE(Matches(v1::CONNECTION_STATE_CLOSING, "/chat/1", Tagged(), filter));
  EXPECT_FALSE(Matches(kActive, "/news", Tagged(), filter));
  ConnectionTags other_room = Tagged();
  other_room.Leave("room-7");
  EXPECT_FALSE(Matches(kActive, "/chat/1", other_room, filter));
  ConnectionTags other_tenant = Tagged();
  other_tenant.SetMetadata("tenant", "globex");
  EXPECT_FALSE(Matches(kActive, "/chat/1", other_tenant, filter));
}

// Filters that can match something pass the check: empty, or any valid
// group with any metadata.
TEST(ConnectionFilterTest, CheckAcceptsFiltersThatCanMatch) {
  v1::ConnectionFilter filter;
  EXPECT_EQ(CheckFilter(filter), "");
  filter.set_group(std::string(128, 'g'));
  (*filter.mutable_metadata())["tenant"] = "acme";
  filter.set_path_prefix("/chat");
  EXPECT_EQ(CheckFilter(filter), "");
}

// A group no connection can be in is refused, naming filter.group.
TEST(ConnectionFilterTest, CheckRefusesAGroupNoConnectionCanBeIn) {
  v1::ConnectionFilter filter;
  filter.set_group(std::string(129, 'g'));
  EXPECT_THAT(CheckFilter(filter), HasSubstr("filter.group is 129 bytes long"));
  filter.set_group("bad\xFF");
  EXPECT_THAT(CheckFilter(filter), HasSubstr("filter.group is not valid UTF-8"));
}

// Broadcast reaches ACTIVE connections only: an unset state or ACTIVE
// passes, any other state (or a value outside the enum) could never match
// and is refused naming filter.state, never run as a broadcast to nobody.
TEST(ConnectionFilterTest, BroadcastCheckRefusesAStateOtherThanActive) {
  v1::ConnectionFilter filter;
  EXPECT_EQ(CheckBroadcastFilter(filter), "");
  filter.set_state(kActive);
  EXPECT_EQ(CheckBroadcastFilter(filter), "");
  for (const auto state : {v1::CONNECTION_STATE_CONNECTION, v1::CONNECTION_STATE_HANDSHAKE,
                           v1::CONNECTION_STATE_CLOSING, static_cast<v1::ConnectionState>(77)}) {
    filter.set_state(state);
    EXPECT_THAT(CheckBroadcastFilter(filter), HasSubstr("filter.state")) << state;
    EXPECT_THAT(CheckBroadcastFilter(filter), HasSubstr("only ACTIVE")) << state;
  }
}

// The broadcast check includes the general one.
TEST(ConnectionFilterTest, BroadcastCheckRefusesWhatCheckRefuses) {
  v1::ConnectionFilter filter;
  filter.set_group(std::string(129, 'g'));
  EXPECT_THAT(CheckBroadcastFilter(filter), HasSubstr("filter.group is 129 bytes long"));
}

}  // namespace
}  // namespace wsgateway
