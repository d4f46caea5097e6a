// Groups (rooms) and filters over the admin API against a running gateway:
// JoinGroup and LeaveGroup, Broadcast and ListConnections by group and by
// metadata, the group rules with every error status and its message, and
// that a closed connection leaves its groups.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using grpc::StatusCode;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Well-formed, but no gateway process has this id.
const std::string kUnknownId = "0000000000000001-0-1";

using Names = std::vector<std::string>;

Names Sorted(Names names) {
  std::sort(names.begin(), names.end());
  return names;
}

template <typename Repeated>
Names ToNames(const Repeated& repeated) {
  return Names(repeated.begin(), repeated.end());
}

std::set<std::string> IdsOf(const std::vector<v1::ClientInfo>& infos) {
  std::set<std::string> ids;
  for (const auto& info : infos) ids.insert(info.connection_id());
  return ids;
}

class GroupsTest : public SharedEchoStack<GroupsTest> {
 protected:
  // A group name no other test uses.
  static std::string UniqueGroup() { return "group" + UniquePath(); }

  // Connects `client` on `path` (a fresh one when empty) and returns its id;
  // it stands in for the fixture's Connect(client, prefix) because the tests
  // here address connections by id.
  static std::string Connect(WsClient& client, const std::string& path = "") {
    return ConnectAndGetId(client, path.empty() ? UniquePath("groups") : path);
  }

  // Connects `client` and makes it a member of `groups`.
  static std::string ConnectAndJoin(WsClient& client, const Names& groups, const std::string& path = "") {
    const std::string id = Connect(client, path);
    const auto reply = admin().JoinGroup(id, groups);
    EXPECT_TRUE(reply.ok()) << Describe(reply.status);
    return id;
  }

  static void ExpectReceives(WsClient& client, const std::string& payload) {
    const auto message = client.Read();
    ASSERT_FALSE(message.ec) << message.ec.message();
    EXPECT_EQ(message.payload, payload);
    ExpectNothingMoreThan(client);
  }

  static Reply<v1::BroadcastResponse> BroadcastToGroup(const std::string& group, const std::string& payload,
                                                       const Names& exclude = {}) {
    v1::BroadcastRequest request;
    request.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
    request.mutable_frame()->set_payload(payload);
    request.mutable_filter()->set_group(group);
    for (const auto& id : exclude) request.add_exclude_connection_ids(id);
    return admin().Broadcast(request);
  }

  static std::optional<std::vector<v1::ClientInfo>> ListGroup(const std::string& group, grpc::Status* error = nullptr) {
    v1::ConnectionFilter filter;
    filter.set_group(group);
    return admin().ListAll(filter, 1000, error);
  }
};

// ------------------------------------------------------- JoinGroup/Leave

// JoinGroup answers the connection's groups sorted, GetClientInfo shows the
// same, and joining again (or naming a group twice) changes nothing.
TEST_F(GroupsTest, JoinGroupAnswersSortedGroupsAndIsIdempotent) {
  WsClient client;
  const std::string id = Connect(client);
  const std::string base = UniqueGroup();
  const Names expected = {base + "/a", base + "/b", base + "/c"};

  const auto joined = admin().JoinGroup(id, {base + "/c", base + "/a", base + "/b", base + "/a"});
  ASSERT_TRUE(joined.ok()) << Describe(joined.status);
  EXPECT_THAT(ToNames(joined.response.groups()), ElementsAreArray(expected));

  const auto again = admin().JoinGroup(id, {base + "/b"});
  ASSERT_TRUE(again.ok()) << Describe(again.status);
  EXPECT_THAT(ToNames(again.response.groups()), ElementsAreArray(expected));

  const auto info = admin().GetClientInfo(id);
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  EXPECT_THAT(ToNames(info.response.info().groups()), ElementsAreArray(expected));
}

// LeaveGroup answers what is left; leaving a group not joined is no error.
TEST_F(GroupsTest, LeaveGroupAnswersWhatIsLeftAndIgnoresNonMembership) {
  WsClient client;
  const std::string base = UniqueGroup();
  const std::string id = ConnectAndJoin(client, {base + "/a", base + "/b"});

  const auto left = admin().LeaveGroup(id, {base + "/a", base + "/never-joined"});
  ASSERT_TRUE(left.ok()) << Describe(left.status);
  EXPECT_THAT(ToNames(left.response.groups()), ElementsAre(base + "/b"));

  const auto again = admin().LeaveGroup(id, {base + "/a"});
  ASSERT_TRUE(again.ok()) << Describe(again.status);
  EXPECT_THAT(ToNames(again.response.groups()), ElementsAre(base + "/b"));

  const auto all = admin().LeaveGroup(id, {base + "/b"});
  ASSERT_TRUE(all.ok()) << Describe(all.status);
  EXPECT_TRUE(all.response.groups().empty());
  const auto info = admin().GetClientInfo(id);
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  EXPECT_TRUE(info.response.info().groups().empty());
}

// Names are any UTF-8 up to 128 bytes; 64 groups per connection fit.
TEST_F(GroupsTest, JoinAcceptsNamesAtTheLimitsAnd64Groups) {
  WsClient client;
  const std::string id = Connect(client);
  std::string euros;
  for (int i = 0; i < 42; ++i) euros += "\xE2\x82\xAC";  // 126 bytes
  const std::string longest(128, 'x');
  ASSERT_TRUE(admin().JoinGroup(id, {euros, longest, "\xF0\x9F\x98\x80"}).ok());

  Names more;
  for (int i = 0; i < 61; ++i) more.push_back(UniqueGroup());
  const auto reply = admin().JoinGroup(id, more);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.groups_size(), 64);
  EXPECT_THAT(ToNames(reply.response.groups()), ::testing::Contains(longest));
  EXPECT_THAT(ToNames(reply.response.groups()), ::testing::Contains(euros));
}

// ------------------------------------------------------------ Broadcast

// A broadcast to a group reaches exactly its members, minus the excluded
// ones; non-members on the same path get nothing.
TEST_F(GroupsTest, BroadcastToAGroupReachesExactlyItsMembers) {
  const std::string group = UniqueGroup();
  const std::string prefix = UniquePath("room");
  WsClient a, b, excluded, outsider, other_group;
  ConnectAndJoin(a, {group}, prefix + "/a");
  ConnectAndJoin(b, {group, UniqueGroup()}, prefix + "/b");
  const std::string id_excluded = ConnectAndJoin(excluded, {group}, prefix + "/c");
  Connect(outsider, prefix + "/d");
  ConnectAndJoin(other_group, {UniqueGroup()}, prefix + "/e");

  const auto reply = BroadcastToGroup(group, "to the room", {id_excluded});
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 2u);
  EXPECT_EQ(reply.response.dropped_slow_consumers(), 0u);
  ExpectReceives(a, "to the room");
  ExpectReceives(b, "to the room");
  ExpectNothingMoreThan(excluded);
  ExpectNothingMoreThan(outsider);
  ExpectNothingMoreThan(other_group);
}

// Group and path prefix combine: both must match.
TEST_F(GroupsTest, BroadcastCombinesGroupAndPathPrefix) {
  const std::string group = UniqueGroup();
  const std::string prefix = UniquePath("combo");
  WsClient inside, member_elsewhere;
  ConnectAndJoin(inside, {group}, prefix + "/in");
  ConnectAndJoin(member_elsewhere, {group});

  v1::BroadcastRequest request;
  request.mutable_frame()->set_payload("both");
  request.mutable_filter()->set_group(group);
  request.mutable_filter()->set_path_prefix(prefix + "/");
  const auto reply = admin().Broadcast(request);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 1u);
  ExpectReceives(inside, "both");
  ExpectNothingMoreThan(member_elsewhere);
}

// After LeaveGroup a connection no longer receives the group's broadcasts.
TEST_F(GroupsTest, LeftMembersNoLongerReceive) {
  const std::string group = UniqueGroup();
  WsClient stays, leaves;
  ConnectAndJoin(stays, {group});
  const std::string id_leaves = ConnectAndJoin(leaves, {group});
  ASSERT_TRUE(admin().LeaveGroup(id_leaves, {group}).ok());

  const auto reply = BroadcastToGroup(group, "still here");
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 1u);
  ExpectReceives(stays, "still here");
  ExpectNothingMoreThan(leaves);
}

// A closed connection is gone from its groups: the next broadcast to the
// group counts one fewer and the listing no longer shows it.
TEST_F(GroupsTest, ClosedConnectionIsGoneFromItsGroups) {
  const std::string group = UniqueGroup();
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    ids.push_back(ConnectAndJoin(*clients.back(), {group}));
  }
  const auto before = BroadcastToGroup(group, "three");
  ASSERT_TRUE(before.ok()) << Describe(before.status);
  EXPECT_EQ(before.response.queued(), 3u);
  for (auto& client : clients) ExpectReceives(*client, "three");

  ASSERT_FALSE(clients[1]->Close());
  ASSERT_TRUE(admin().WaitForExist(ids[1], false));

  const auto after = BroadcastToGroup(group, "two");
  ASSERT_TRUE(after.ok()) << Describe(after.status);
  EXPECT_EQ(after.response.queued(), 2u);
  ExpectReceives(*clients[0], "two");
  ExpectReceives(*clients[2], "two");
  const auto listed = ListGroup(group);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(IdsOf(*listed), (std::set<std::string>{ids[0], ids[2]}));
}

// ------------------------------------------------------ ListConnections

// Listing by group shows exactly the members, each with its groups, and
// follows joins and leaves.
TEST_F(GroupsTest, ListConnectionsByGroupShowsExactlyTheMembers) {
  const std::string group = UniqueGroup();
  WsClient a, b, outsider;
  const std::string id_a = ConnectAndJoin(a, {group});
  const std::string id_b = ConnectAndJoin(b, {group});
  Connect(outsider);

  auto listed = ListGroup(group);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(IdsOf(*listed), (std::set<std::string>{id_a, id_b}));
  for (const auto& info : *listed) EXPECT_THAT(ToNames(info.groups()), ElementsAre(group));

  ASSERT_TRUE(admin().LeaveGroup(id_a, {group}).ok());
  listed = ListGroup(group);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(IdsOf(*listed), std::set<std::string>{id_b});
}

// A group nobody is in lists nothing and broadcasts to nobody: groups need
// no creation, so an unused name is not an error.
TEST_F(GroupsTest, AnEmptyGroupMatchesNobody) {
  const std::string group = UniqueGroup();
  const auto listed = ListGroup(group);
  ASSERT_TRUE(listed.has_value());
  EXPECT_TRUE(listed->empty());
  const auto reply = BroadcastToGroup(group, "anyone?");
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 0u);
}

// A metadata filter matches only connections carrying every listed pair.
// Without a handshake hook no connection carries metadata, so it matches
// none of ours, while the same filter without metadata matches them.
TEST_F(GroupsTest, MetadataFilterNeedsTheMetadata) {
  const std::string prefix = UniquePath("meta");
  WsClient client;
  const std::string id = Connect(client, prefix);

  v1::ConnectionFilter filter;
  filter.set_path_prefix(prefix);
  const auto plain = admin().ListAll(filter);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(IdsOf(*plain), std::set<std::string>{id});

  (*filter.mutable_metadata())["tenant"] = "acme";
  const auto with_metadata = admin().ListAll(filter);
  ASSERT_TRUE(with_metadata.has_value());
  EXPECT_TRUE(with_metadata->empty());
  v1::BroadcastRequest request;
  request.mutable_frame()->set_payload("tenants only");
  *request.mutable_filter() = filter;
  const auto reply = admin().Broadcast(request);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 0u);
  ExpectNothingMoreThan(client);
}

// ---------------------------------------------------------------- errors

// Unknown ids are NOT_FOUND naming the id; an empty id is INVALID_ARGUMENT.
TEST_F(GroupsTest, UnknownIdIsNotFoundAndEmptyIdInvalid) {
  for (const auto& reply :
       {admin().JoinGroup(kUnknownId, {"lobby"}).status, admin().LeaveGroup(kUnknownId, {"lobby"}).status}) {
    EXPECT_EQ(reply.error_code(), StatusCode::NOT_FOUND) << Describe(reply);
    EXPECT_THAT(reply.error_message(), HasSubstr("no connection '" + kUnknownId + "'"));
  }
  for (const auto& reply : {admin().JoinGroup("", {"lobby"}).status, admin().LeaveGroup("", {"lobby"}).status}) {
    EXPECT_EQ(reply.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(reply);
    EXPECT_THAT(reply.error_message(), HasSubstr("connection_id is empty"));
  }
}

// Bad group lists are INVALID_ARGUMENT naming the entry at fault, and leave
// the connection's groups as they were (checked before any change).
TEST_F(GroupsTest, BadGroupNamesAreInvalidArgument) {
  WsClient client;
  const std::string kept = UniqueGroup();
  const std::string id = ConnectAndJoin(client, {kept});
  struct Case {
    Names groups;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "groups is empty: name at least one group"},
      {{"fine", ""}, "groups[1] is empty"},
      {{std::string(129, 'x')}, "groups[0] is 129 bytes long; a group name is at most 128 bytes"},
      {{"fine", "bad \xFF name"}, "groups[1] is not valid UTF-8"},
      {{"\xED\xA0\x80"}, "groups[0] is not valid UTF-8"},
      {Names(65, "g"), "groups has 65 entries; at most 64 per call"},
  };
  for (const auto& c : cases) {
    const auto join = admin().JoinGroup(id, c.groups).status;
    EXPECT_EQ(join.error_code(), StatusCode::INVALID_ARGUMENT) << c.message << " / " << Describe(join);
    EXPECT_THAT(join.error_message(), HasSubstr(c.message));
    const auto leave = admin().LeaveGroup(id, c.groups).status;
    EXPECT_EQ(leave.error_code(), StatusCode::INVALID_ARGUMENT) << c.message << " / " << Describe(leave);
    EXPECT_THAT(leave.error_message(), HasSubstr(c.message));
  }
  const auto info = admin().GetClientInfo(id);
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  EXPECT_THAT(ToNames(info.response.info().groups()), ElementsAre(kept));
}

// A connection that has not finished its handshake cannot join or leave.
TEST_F(GroupsTest, NotActiveConnectionIsFailedPrecondition) {
  RawTcpConnection raw(port());
  ASSERT_TRUE(raw.connected());
  const auto info = admin().WaitForAddress(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION);
  ASSERT_TRUE(info.has_value()) << "silent connection never listed";
  const std::string& id = info->connection_id();

  const auto join = admin().JoinGroup(id, {"lobby"}).status;
  EXPECT_EQ(join.error_code(), StatusCode::FAILED_PRECONDITION) << Describe(join);
  EXPECT_THAT(join.error_message(),
              HasSubstr("connection '" + id + "' is CONNECTION; only ACTIVE connections can join groups"));
  const auto leave = admin().LeaveGroup(id, {"lobby"}).status;
  EXPECT_EQ(leave.error_code(), StatusCode::FAILED_PRECONDITION) << Describe(leave);
  EXPECT_THAT(leave.error_message(), HasSubstr("only ACTIVE connections can leave groups"));
}

// Passing 64 groups is FAILED_PRECONDITION and joins none of the request's
// groups; groups already joined do not count again.
TEST_F(GroupsTest, PassingTheGroupLimitJoinsNothing) {
  WsClient client;
  const std::string id = Connect(client);
  Names first;
  for (int i = 0; i < 62; ++i) first.push_back(UniqueGroup());
  ASSERT_TRUE(admin().JoinGroup(id, first).ok());

  const std::string new_a = UniqueGroup();
  const std::string new_b = UniqueGroup();
  const std::string new_c = UniqueGroup();
  const auto over = admin().JoinGroup(id, {first[0], new_a, new_b, new_c}).status;
  EXPECT_EQ(over.error_code(), StatusCode::FAILED_PRECONDITION) << Describe(over);
  EXPECT_THAT(over.error_message(),
              HasSubstr("'" + id + "' is in 62 groups; joining 3 more would pass the limit of 64 per connection"));
  EXPECT_THAT(over.error_message(), HasSubstr("leave some groups first"));
  const auto info = admin().GetClientInfo(id);
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  EXPECT_THAT(ToNames(info.response.info().groups()), ElementsAreArray(Sorted(first)));

  const auto fits = admin().JoinGroup(id, {first[0], new_a, new_b});
  ASSERT_TRUE(fits.ok()) << Describe(fits.status);
  EXPECT_EQ(fits.response.groups_size(), 64);
}

// A group filter no connection could match is INVALID_ARGUMENT for both
// Broadcast and ListConnections, naming filter.group.
TEST_F(GroupsTest, ImpossibleGroupFilterIsInvalidArgument) {
  for (const std::string& group : {std::string(129, 'x'), std::string("bad \xFF")}) {
    const auto broadcast = BroadcastToGroup(group, "never").status;
    EXPECT_EQ(broadcast.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(broadcast);
    EXPECT_THAT(broadcast.error_message(), HasSubstr("filter.group is "));
    grpc::Status list;
    EXPECT_FALSE(ListGroup(group, &list).has_value());
    EXPECT_EQ(list.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(list);
    EXPECT_THAT(list.error_message(), HasSubstr("filter.group is "));
  }
}

}  // namespace
}  // namespace wsgateway::testing
