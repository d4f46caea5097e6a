// Membership against a real redis-server on a loopback port: nodes find
// each other, leave at once, expire when they stop renewing, keep their
// view while Redis is away and register again when it comes back empty; a
// dead node is reaped once by one survivor, nobody is reaped after Redis
// stalled or restarted, and a node reaped while alive is fenced.
// Renewals are made fast (tens of milliseconds) so the waits are short;
// every wait is for a condition, with a deadline.

#include "cluster/membership.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/redis_client.hpp"
#include "tests/cluster/redis_test.hpp"
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

class MembershipTest : public RedisTest {
 protected:
  MembershipOptions Options(std::chrono::milliseconds lease = 60s) const {
    MembershipOptions options;
    options.redis = Endpoint();
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

  RedisResult Run(const std::vector<std::string>& command) {
    RedisClient client(Options().redis, 1s);
    return client.Command(command);
  }

  // Keys matching `pattern` (the test's own small Redis).
  std::size_t KeysMatching(const std::string& pattern) {
    const auto result = Run({"KEYS", pattern});
    return result.ok() ? result.value->elements.size() : 0;
  }

  // How many connections listen on `channel`.
  long long Subscribers(const std::string& channel) {
    RedisClient client(Options().redis, 1s);
    const auto result = client.Command({"PUBSUB", "NUMSUB", channel});
    return result.ok() && result.value->elements.size() == 2 ? result.value->elements[1].integer : -1;
  }
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
  // Its connections were closed normally before it left: the registry goes.
  ASSERT_TRUE(Run({"HSET", "{test}:conns:a", "a-1", "chat"}).ok());
  a.Leave();
  EXPECT_FALSE(a.joined());
  ASSERT_TRUE(Eventually([&] { return Ids(b) == std::vector<std::string>{"b"}; }));
  EXPECT_EQ(RedisCount("ZCARD", b.members_key()), 1);
  EXPECT_EQ(RedisCount("HLEN", b.nodes_key()), 1);
  EXPECT_EQ(RedisCount("EXISTS", "{test}:conns:a"), 0);
}

// A node that stops renewing without leaving (a crash) is dropped from the
// view once its lease runs out, and its details go when it is reaped, a
// reap_grace later (expired members are no longer deleted at expiry).
TEST_F(MembershipTest, ANodeThatStopsRenewingExpires) {
  Membership a(Options(300ms), Node("a"));
  Membership b(Options(300ms), Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return b.view()->nodes.size() == 2; }));
  a.Stop();
  ASSERT_TRUE(Eventually([&] { return Ids(b) == std::vector<std::string>{"b"}; }));
  EXPECT_TRUE(Eventually([&] { return RedisCount("HLEN", b.nodes_key()) == 1; }));
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

// Reaping and fencing run with a short lease and grace; a survivor may reap
// once its own renewals have held for a lease.
constexpr auto kShortLease = 300ms;
constexpr auto kShortGrace = 100ms;

// A dead node is reaped by exactly one of the survivors, once: one stream
// record, a tombstone, and its connections moved to the lost hash.
TEST_F(MembershipTest, ADeadNodeIsReapedOnceByOneSurvivor) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  Membership a(options, Node("a"));
  Membership b(options, Node("b"));
  Membership c(options, Node("c"));
  Membership d(options, Node("d"));
  for (auto* node : {&a, &b, &c, &d}) node->Start();
  ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 4 && b.view()->nodes.size() == 4; }));
  ASSERT_TRUE(Run({"HSET", "{test}:conns:d", "d-1", "chat", "d-2", "game"}).ok());
  d.Stop();

  // The reaper counts its reap when the script's reply comes back, after
  // Redis already shows the tombstone, so the count is what is waited for.
  ASSERT_TRUE(Eventually([&] { return a.reaps() + b.reaps() + c.reaps() > 0; }));
  EXPECT_EQ(a.reaps() + b.reaps() + c.reaps(), 1u);
  EXPECT_EQ(RedisCount("EXISTS", "{test}:reaped:d"), 1);
  EXPECT_EQ(d.reaps(), 0u);
  EXPECT_EQ(RedisCount("ZCARD", a.members_key()), 3);
  EXPECT_EQ(RedisCount("HLEN", a.nodes_key()), 3);
  EXPECT_EQ(RedisCount("EXISTS", "{test}:conns:d"), 0);
  const auto lost = Run({"HGETALL", "{test}:lost:d"});
  ASSERT_TRUE(lost.ok());
  ASSERT_EQ(lost.value->elements.size(), 4u);
  const auto ttl = Run({"PTTL", "{test}:reaped:d"});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl.value->integer, 3500000);

  // Many renewals later, still the one record.
  const auto renewals = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > renewals + 20; }));
  EXPECT_EQ(a.reaps() + b.reaps() + c.reaps(), 1u);
  const auto records = Run({"XRANGE", "{test}:lost", "-", "+"});
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records.value->elements.size(), 1u);
  const auto& fields = records.value->elements[0].elements[1].elements;
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].text, "node");
  EXPECT_EQ(fields[1].text, "d");
  EXPECT_EQ(fields[2].text, "connections");
  EXPECT_EQ(fields[3].text, "2");
  // The reporters' group exists, so that the record is read.
  const auto groups = Run({"XINFO", "GROUPS", "{test}:lost"});
  ASSERT_TRUE(groups.ok()) << groups.Describe();
  EXPECT_EQ(groups.value->elements.size(), 1u);
}

// A node without connections is reaped with a stream record too, so the
// backends hear of every lost node.
TEST_F(MembershipTest, ANodeWithoutConnectionsIsReapedWithARecordOfNone) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  Membership a(options, Node("a"));
  Membership b(options, Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 2; }));
  b.Stop();
  ASSERT_TRUE(Eventually([&] { return a.reaps() == 1; }));
  EXPECT_EQ(RedisCount("EXISTS", "{test}:reaped:b"), 1);
  EXPECT_EQ(RedisCount("XLEN", "{test}:lost"), 1);
  EXPECT_EQ(RedisCount("EXISTS", "{test}:lost:b"), 0);
}

// Redis frozen (SIGSTOP) for longer than a lease and a grace, then resumed:
// every lease ran out on Redis's clock, but no node may take that for the
// others' death.
TEST_F(MembershipTest, NobodyIsReapedAfterRedisStalled) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  options.redis_timeout = 200ms;
  Membership a(options, Node("a"));
  Membership b(options, Node("b"));
  Membership c(options, Node("c"));
  for (auto* node : {&a, &b, &c}) node->Start();
  ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 3 && c.view()->nodes.size() == 3; }));
  // Every node may reap by now (they renewed for well over a lease).
  const auto start = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > start + 3 * (kShortLease / 20ms); }));

  const auto pid = redis_->process().pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0) << errno;
  const auto stopped = std::chrono::steady_clock::now();
  // The outage itself is what is tested: it must outlast lease and grace.
  const bool lapsed = Eventually([&] {
    return !a.joined() && !b.joined() && !c.joined() &&
           std::chrono::steady_clock::now() - stopped > 3 * (kShortLease + kShortGrace);
  });
  ASSERT_EQ(::kill(pid, SIGCONT), 0) << errno;
  ASSERT_TRUE(lapsed);

  ASSERT_TRUE(Eventually([&] { return a.joined() && b.joined() && c.joined(); }));
  const auto resumed = a.view()->renewals;
  // Long enough for every node to have become allowed to reap again.
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > resumed + 3 * (kShortLease / 20ms); }));
  EXPECT_EQ(a.reaps() + b.reaps() + c.reaps(), 0u);
  EXPECT_EQ(KeysMatching("{test}:reaped:*"), 0u);
  EXPECT_EQ(RedisCount("ZCARD", a.members_key()), 3);
  EXPECT_EQ(RedisCount("XLEN", "{test}:lost"), 0);
}

// Every lease lapses at once while the nodes stay connected (Redis's clock
// jumped, or it came back from an old snapshot): a node that renews first
// finds its own lease gone and must hold a streak of a lease before it may
// reap, by which time the slower node has renewed too.
TEST_F(MembershipTest, NobodyIsReapedWhenEveryLeaseLapsedAtOnce) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  // b renews less often than a: right after the lapse a is back first.
  auto slower = options;
  slower.renew_interval = 150ms;
  Membership a(options, Node("a"));
  Membership b(slower, Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 2 && b.view()->nodes.size() == 2; }));
  const auto start = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > start + 3 * (kShortLease / 20ms); }));

  // Every deadline ten seconds in the past, in one step.
  const auto lapsed = Run({"EVAL", R"lua(
local t = redis.call('TIME')
local old = tonumber(t[1]) * 1000 - 10000
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('ZADD', KEYS[1], old, id) end
return 1
)lua",
                           "1", a.members_key()});
  ASSERT_TRUE(lapsed.ok()) << lapsed.Describe();
  const auto renewals = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > renewals + 3 * (kShortLease / 20ms); }));
  EXPECT_EQ(a.reaps() + b.reaps(), 0u);
  EXPECT_EQ(RedisCount("ZCARD", a.members_key()), 2);
  EXPECT_EQ(KeysMatching("{test}:reaped:*"), 0u);
}

// Redis back empty after an outage longer than a lease: the nodes register
// anew (and say so, for their connection registries), nobody is reaped.
TEST_F(MembershipTest, NobodyIsReapedAfterRedisRestartedEmpty) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  std::atomic<int> anew{0};
  options.on_registered_anew = [&anew] { ++anew; };
  Membership a(options, Node("a"));
  Membership b(options, Node("b"));
  a.Start();
  b.Start();
  ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 2 && b.view()->nodes.size() == 2; }));
  EXPECT_EQ(anew, 0) << "the first registration is not a re-registration";

  redis_->Kill();
  ASSERT_TRUE(Eventually([&] { return !a.joined() && !b.joined(); }));
  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  ASSERT_TRUE(Eventually([&] { return a.joined() && b.joined() && anew == 2; }));
  const auto resumed = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > resumed + 3 * (kShortLease / 20ms); }));
  EXPECT_EQ(a.reaps() + b.reaps(), 0u);
  EXPECT_EQ(RedisCount("ZCARD", a.members_key()), 2);
  EXPECT_EQ(KeysMatching("{test}:reaped:*"), 0u);
  EXPECT_EQ(anew, 2);
}

// A node reaped while alive (here: it stopped, was reaped, and comes back,
// as after a partition) finds its tombstone: it is fenced, once, and does
// not register again; renamed, it continues under the new id.
TEST_F(MembershipTest, AReapedNodeIsFencedUntilRenamed) {
  auto options = Options(kShortLease);
  options.reap_grace = kShortGrace;
  Membership a(options, Node("a"));
  a.Start();
  {
    Membership x(options, Node("x"));
    x.Start();
    ASSERT_TRUE(Eventually([&] { return a.view()->nodes.size() == 2; }));
    x.Stop();
  }
  ASSERT_TRUE(Eventually([&] { return a.reaps() == 1; }));

  std::atomic<int> fences{0};
  auto returning = options;
  returning.on_fenced = [&fences] { ++fences; };
  Membership x(returning, Node("x"));
  x.Start();
  ASSERT_TRUE(Eventually([&] { return x.fenced(); }));
  const auto renewals = a.view()->renewals;
  ASSERT_TRUE(Eventually([&] { return a.view()->renewals > renewals + 20; }));
  EXPECT_EQ(fences, 1);
  EXPECT_FALSE(x.joined());
  EXPECT_EQ(Ids(a), std::vector<std::string>{"a"});
  EXPECT_FALSE(Run({"ZSCORE", a.members_key(), "x"}).value->type == RedisValue::Type::kString);

  x.Rename(Node("x2"));
  ASSERT_TRUE(Eventually([&] { return Ids(a) == std::vector<std::string>{"a", "x2"}; }));
  EXPECT_FALSE(x.fenced());
  EXPECT_TRUE(x.joined());
  EXPECT_EQ(x.node_id(), "x2");
  EXPECT_EQ(fences, 1);
  EXPECT_EQ(RedisCount("EXISTS", "{test}:reaped:x2"), 0);
  EXPECT_EQ(RedisCount("ZCARD", a.members_key()), 2);
}

}  // namespace
}  // namespace wsgateway::cluster
