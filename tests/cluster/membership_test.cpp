// Membership against a real redis-server on a loopback port: nodes find
// each other, leave at once, expire when they stop renewing, keep their
// view while Redis is away and register again when it comes back empty.
// Renewals are made fast (tens of milliseconds) so the waits are short;
// every wait is for a condition, with a deadline.

#include "cluster/membership.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/redis_client.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/redis_process.hpp"

namespace wsgateway::cluster {
namespace {

using namespace std::chrono_literals;
using wsgateway::testing::RedisProcess;

constexpr auto kDeadline = 10s;

template <typename Condition>
bool Eventually(Condition&& condition) {
  return wsgateway::testing::PollUntil(kDeadline, std::forward<Condition>(condition));
}

std::vector<std::string> Ids(const Membership& membership) {
  std::vector<std::string> ids;
  for (const auto& node : membership.view()->nodes) ids.push_back(node.node_id());
  return ids;
}

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    redis_ = RedisProcess::Start(&error);
    ASSERT_TRUE(redis_) << error;
  }

  MembershipOptions Options(std::chrono::milliseconds lease = 60s) const {
    MembershipOptions options;
    options.redis = *ParseRedisUrl(redis_->url()).endpoint;
    options.key_prefix = "test";
    options.renew_interval = 20ms;
    options.lease = lease;
    options.redis_timeout = 500ms;
    return options;
  }

  static v1::NodeInfo Node(const std::string& id) {
    v1::NodeInfo node;
    node.set_node_id(id);
    node.set_pod_name("pod-" + id);
    node.set_advertised_address("127.0.0.1:50061");
    return node;
  }

  long long RedisCount(const std::string& command, const std::string& key) {
    RedisClient client(Options().redis, 1s);
    const auto result = client.Command({command, key});
    return result.ok() ? result.value->integer : -1;
  }

  // How many connections listen on `channel`.
  long long Subscribers(const std::string& channel) {
    RedisClient client(Options().redis, 1s);
    const auto result = client.Command({"PUBSUB", "NUMSUB", channel});
    return result.ok() && result.value->elements.size() == 2 ? result.value->elements[1].integer : -1;
  }

  std::unique_ptr<RedisProcess> redis_;
};

TEST_F(MembershipTest, NodesSeeEachOtherWithTheirDetails) {
  std::atomic<bool> busy{false};
  auto options = Options();
  options.refresh = [&busy](v1::NodeInfo& self) {
    if (!busy) return;
    self.set_connections(42);
    self.set_state(v1::NODE_STATE_DRAINING);
  };
  Membership a(options, Node("a"));
  Membership b(Options(), Node("b"));
  a.Start();
  b.Start();
  const std::vector<std::string> both = {"a", "b"};
  ASSERT_TRUE(Eventually([&] { return Ids(a) == both && Ids(b) == both; }));
  EXPECT_TRUE(a.joined());
  EXPECT_EQ(b.view()->nodes[0].pod_name(), "pod-a");

  busy = true;
  ASSERT_TRUE(Eventually([&] { return b.view()->nodes[0].connections() == 42; }));
  EXPECT_EQ(b.view()->nodes[0].state(), v1::NODE_STATE_DRAINING);
}

// A node that leaves is gone from the others' view at their next renewal,
// long before its lease (a minute here) would have run out.
TEST_F(MembershipTest, ALeavingNodeIsDroppedAtOnce) {
  Membership a(Options(), Node("a"));
  Membership b(Options(), Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return b.view()->nodes.size() == 2; }));
  a.Leave();
  EXPECT_FALSE(a.joined());
  ASSERT_TRUE(Eventually([&] { return Ids(b) == std::vector<std::string>{"b"}; }));
  EXPECT_EQ(RedisCount("ZCARD", b.members_key()), 1);
  EXPECT_EQ(RedisCount("HLEN", b.nodes_key()), 1);
}

// A node that stops renewing without leaving (a crash) is dropped once its
// lease runs out, and its details go with it.
TEST_F(MembershipTest, ANodeThatStopsRenewingExpires) {
  Membership a(Options(300ms), Node("a"));
  Membership b(Options(300ms), Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return b.view()->nodes.size() == 2; }));
  a.Stop();
  ASSERT_TRUE(Eventually([&] { return Ids(b) == std::vector<std::string>{"b"}; }));
  EXPECT_EQ(RedisCount("HLEN", b.nodes_key()), 1);
  EXPECT_TRUE(Eventually([&] { return !a.joined(); }));
}

// While Redis is away the view stays as it was (routing goes on); a Redis
// that comes back empty is filled again by the nodes' next renewals.
TEST_F(MembershipTest, TheViewOutlivesRedisAndNodesRegisterAgain) {
  Membership a(Options(1s), Node("a"));
  Membership b(Options(1s), Node("b"));
  a.Start();
  b.Start();
  const std::vector<std::string> both = {"a", "b"};
  ASSERT_TRUE(Eventually([&] { return Ids(a) == both && Ids(b) == both; }));

  redis_->Kill();
  ASSERT_TRUE(Eventually([&] { return !a.joined(); })) << "renewals kept succeeding without Redis";
  EXPECT_EQ(Ids(a), both);
  EXPECT_EQ(Ids(b), both);

  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  const auto renewals = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.joined() && b.joined() && a.view()->renewals > renewals; }));
  ASSERT_TRUE(Eventually([&] { return RedisCount("ZCARD", a.members_key()) == 2; }));
  // Whichever registered first sees the other at its next renewal.
  EXPECT_TRUE(Eventually([&] { return Ids(a) == both && Ids(b) == both; }));
}

// Redis back without its data: a node missing from it (it has not renewed
// yet, or it is gone) stays in the view for a lease, so its connections are
// not answered as gone while the others register again; then it drops out.
TEST_F(MembershipTest, AfterRedisLostItsDataAMissingNodeStaysForALease) {
  Membership a(Options(2s), Node("a"));
  Membership b(Options(2s), Node("b"));
  a.Start();
  b.Start();
  const std::vector<std::string> both = {"a", "b"};
  ASSERT_TRUE(Eventually([&] { return Ids(a) == both; }));

  b.Stop();
  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  ASSERT_TRUE(Eventually([&] { return RedisCount("ZCARD", a.members_key()) == 1; }));
  const auto renewals = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > renewals; }));
  EXPECT_EQ(Ids(a), both) << "b was dropped before its lease could have run out";
  EXPECT_TRUE(Eventually([&] { return Ids(a) == std::vector<std::string>{"a"}; }));
}

// A node that joins or leaves publishes a hint: the others read the
// membership at once, long before their next renewal would.
TEST_F(MembershipTest, JoinsAndLeavesAreSeenAtOnceThroughTheHint) {
  auto slow = Options();
  slow.renew_interval = 60s;
  Membership a(slow, Node("a"));
  Membership b(slow, Node("b"));
  a.Start();
  ASSERT_TRUE(Eventually([&] { return Ids(a) == std::vector<std::string>{"a"}; }));
  // Once a listens, no hint can be missed.
  ASSERT_TRUE(Eventually([&] { return Subscribers(a.changes_channel()) == 1; }));
  b.Start();
  const std::vector<std::string> both = {"a", "b"};
  EXPECT_TRUE(Eventually([&] { return Ids(a) == both; })) << "a never heard that b joined";
  b.Leave();
  EXPECT_TRUE(Eventually([&] { return Ids(a) == std::vector<std::string>{"a"}; })) << "a never heard that b left";
}

}  // namespace
}  // namespace wsgateway::cluster
