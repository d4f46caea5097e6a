// The connection registry against a real redis-server: opens and closes
// land in the node's hash in batches (not a round trip per connection), a
// resync replaces stale contents in one step, and the registry refills a
// Redis that restarted empty, recovers from an overflowing queue and moves
// to a new key on Rename. Every wait is for a condition, with a deadline.

#include "cluster/connection_registry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
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
using Hash = std::map<std::string, std::string>;

constexpr auto kDeadline = 10s;

template <typename Condition>
bool Eventually(Condition&& condition) {
  return wsgateway::testing::PollUntil(kDeadline, std::forward<Condition>(condition));
}

// The node's connections as the gateway knows them: what list_live
// answers, kept in step with what the registry is told.
class LiveConnections {
 public:
  void Open(ConnectionRegistry& registry, const std::string& id, const std::string& target) {
    {
      std::lock_guard lock(mutex_);
      live_[id] = target;
    }
    registry.Opened(id, target);
  }
  void Close(ConnectionRegistry& registry, const std::string& id) {
    {
      std::lock_guard lock(mutex_);
      live_.erase(id);
    }
    registry.Closed(id);
  }
  std::vector<std::pair<std::string, std::string>> List() {
    std::lock_guard lock(mutex_);
    return {live_.begin(), live_.end()};
  }
  Hash Snapshot() {
    std::lock_guard lock(mutex_);
    return live_;
  }

 private:
  std::mutex mutex_;
  Hash live_;
};

class ConnectionRegistryTest : public RedisTest {
 protected:
  ConnectionRegistryOptions Options(LiveConnections& live) const {
    ConnectionRegistryOptions options;
    options.redis = Endpoint();
    options.key_prefix = "test";
    options.redis_timeout = 500ms;
    options.idle_check_interval = 50ms;
    options.list_live = [&live] { return live.List(); };
    return options;
  }

  RedisResult Run(const std::vector<std::string>& command) {
    RedisClient client(Endpoint(), 1s);
    return client.Command(command);
  }

  Hash HashAt(const std::string& key) {
    Hash hash;
    const auto result = Run({"HGETALL", key});
    if (!result.ok()) return hash;
    const auto& fields = result.value->elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) hash[fields[i].text] = fields[i + 1].text;
    return hash;
  }

  long long Length(const std::string& key) {
    const auto result = Run({"HLEN", key});
    return result.ok() ? result.value->integer : -1;
  }

  // How many times Redis ran `command` (INFO commandstats).
  long long Calls(const std::string& command) {
    const auto result = Run({"INFO", "commandstats"});
    if (!result.ok()) return -1;
    const auto& text = result.value->text;
    const auto at = text.find("cmdstat_" + command + ":calls=");
    if (at == std::string::npos) return 0;
    return std::stoll(text.substr(at + command.size() + 15));
  }
};

TEST_F(ConnectionRegistryTest, OpensAndClosesLandInTheHash) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  EXPECT_EQ(registry.key(), "{test}:conns:n1");
  registry.Start();
  live.Open(registry, "n1-a", "chat");
  live.Open(registry, "n1-b", "");
  live.Open(registry, "n1-c", "game");
  live.Close(registry, "n1-b");
  const Hash expected = {{"n1-a", "chat"}, {"n1-c", "game"}};
  EXPECT_TRUE(Eventually([&] { return HashAt(registry.key()) == expected; })) << HashAt(registry.key()).size();
  live.Close(registry, "n1-a");
  live.Close(registry, "n1-c");
  EXPECT_TRUE(Eventually([&] { return Length(registry.key()) == 0; }));
}

// 10,000 opens are written in batches: a handful of round trips, not one
// per connection.
TEST_F(ConnectionRegistryTest, ChangesAreBatched) {
  LiveConnections live;
  auto options = Options(live);
  // Batches larger than one HSET or HDEL of the script takes.
  options.max_batch = 4000;
  ConnectionRegistry registry(options, "n1");
  registry.Start();
  ASSERT_TRUE(Eventually([&] { return registry.resyncs() == 1; }));
  const auto trips = registry.round_trips();
  const auto hsets = Calls("hset");
  for (int i = 0; i < 10000; ++i) live.Open(registry, "n1-" + std::to_string(i), "chat");
  ASSERT_TRUE(Eventually([&] { return Length(registry.key()) == 10000; }));
  EXPECT_LT(registry.round_trips() - trips, 200u);
  EXPECT_LT(Calls("hset") - hsets, 200);
  EXPECT_LT(Calls("eval"), 200);
  for (int i = 0; i < 6000; ++i) live.Close(registry, "n1-" + std::to_string(i));
  ASSERT_TRUE(Eventually([&] { return Length(registry.key()) == 4000; }));
  EXPECT_EQ(HashAt(registry.key()), live.Snapshot());
  EXPECT_LT(Calls("hdel"), 100);
}

// An open and a close both still queued cancel out: Redis never hears of
// the connection.
TEST_F(ConnectionRegistryTest, AnOpenAndCloseStillQueuedCancelOut) {
  LiveConnections live;
  auto options = Options(live);
  // Long enough that the open and the close are queued together.
  options.flush_interval = 1s;
  ConnectionRegistry registry(options, "n1");
  registry.Start();
  ASSERT_TRUE(Eventually([&] { return registry.resyncs() == 1; }));
  live.Open(registry, "n1-brief", "chat");
  live.Close(registry, "n1-brief");
  live.Open(registry, "n1-stays", "chat");
  ASSERT_TRUE(Eventually([&] { return Length(registry.key()) == 1; }));
  EXPECT_EQ(HashAt(registry.key()), (Hash{{"n1-stays", "chat"}}));
  EXPECT_EQ(Calls("hdel"), 0) << "the brief connection was written and then deleted";
}

// A resync replaces whatever the key held with the live list in one step:
// a reader sees the old contents or the new, never a part of the new.
TEST_F(ConnectionRegistryTest, AResyncReplacesStaleContentsAtOnce) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  ASSERT_TRUE(Run({"HSET", registry.key(), "n1-stale1", "x", "n1-stale2", "x", "n1-stale3", "x"}).ok());
  // Before Start: not reported, but listed by the first resync.
  for (int i = 0; i < 5000; ++i) live.Open(registry, "n1-" + std::to_string(i), "chat");
  registry.Start();
  std::vector<long long> seen;
  ASSERT_TRUE(Eventually([&] {
    seen.push_back(Length(registry.key()));
    return seen.back() == 5000;
  }));
  for (const auto length : seen) EXPECT_TRUE(length == 3 || length == 5000) << "a partial list: " << length;
  EXPECT_EQ(HashAt(registry.key()), live.Snapshot());

  // Asked again (say, something wrote to the key behind its back).
  ASSERT_TRUE(Run({"HSET", registry.key(), "n1-bogus", "x"}).ok());
  registry.Resync();
  EXPECT_TRUE(Eventually([&] { return registry.resyncs() == 2 && Length(registry.key()) == 5000; }));
  EXPECT_EQ(HashAt(registry.key()), live.Snapshot());
}

// Changes reported while list_live runs are applied after the list: a
// connection the list holds but that closed meanwhile is removed, one that
// opened meanwhile is added.
TEST_F(ConnectionRegistryTest, ChangesDuringAResyncAreAppliedAfterIt) {
  LiveConnections live;
  ConnectionRegistry* registry_ptr = nullptr;
  auto options = Options(live);
  options.list_live = [&] {
    auto list = live.List();
    // Meanwhile on the event loops: the list is already out of date.
    live.Close(*registry_ptr, "n1-a");
    live.Open(*registry_ptr, "n1-c", "chat");
    live.Close(*registry_ptr, "n1-c");
    live.Open(*registry_ptr, "n1-d", "chat");
    return list;
  };
  ConnectionRegistry registry(options, "n1");
  registry_ptr = &registry;
  live.Open(registry, "n1-a", "chat");
  live.Open(registry, "n1-b", "chat");
  registry.Start();
  EXPECT_TRUE(Eventually([&] { return HashAt(registry.key()) == Hash{{"n1-b", "chat"}, {"n1-d", "chat"}}; }));
  registry.Stop();
}

// A Redis that restarted empty is refilled without being told: the idle
// check fails, and the registry resyncs once Redis is back.
TEST_F(ConnectionRegistryTest, ARedisRestartedEmptyIsRefilled) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  registry.Start();
  live.Open(registry, "n1-a", "chat");
  live.Open(registry, "n1-b", "game");
  ASSERT_TRUE(Eventually([&] { return Length(registry.key()) == 2; }));
  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  EXPECT_TRUE(Eventually([&] { return HashAt(registry.key()) == live.Snapshot(); }));
  live.Open(registry, "n1-c", "chat");
  EXPECT_TRUE(Eventually([&] { return Length(registry.key()) == 3; }));
}

// More changes queued than max_pending: the queue is dropped (memory stays
// bounded) and a resync puts the key right.
TEST_F(ConnectionRegistryTest, AnOverflowingQueueIsReplacedByAResync) {
  LiveConnections live;
  auto options = Options(live);
  options.max_pending = 100;
  // No flush before the queue overflows.
  options.flush_interval = 5s;
  ConnectionRegistry registry(options, "n1");
  registry.Start();
  ASSERT_TRUE(Eventually([&] { return registry.resyncs() == 1; }));
  for (int i = 0; i < 150; ++i) live.Open(registry, "n1-" + std::to_string(i), "chat");
  EXPECT_TRUE(Eventually([&] { return registry.resyncs() >= 2 && Length(registry.key()) == 150; }));
  EXPECT_EQ(HashAt(registry.key()), live.Snapshot());
}

// A renamed (fenced) node resyncs into its new key; the old one is left to
// whoever reported it lost.
TEST_F(ConnectionRegistryTest, RenameMovesToANewKeyAndLeavesTheOld) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  registry.Start();
  live.Open(registry, "n1-a", "chat");
  ASSERT_TRUE(Eventually([&] { return Length("{test}:conns:n1") == 1; }));
  registry.Rename("n2");
  EXPECT_EQ(registry.key(), "{test}:conns:n2");
  EXPECT_TRUE(Eventually([&] { return HashAt("{test}:conns:n2") == live.Snapshot(); }));
  live.Open(registry, "n2-b", "chat");
  EXPECT_TRUE(Eventually([&] { return Length("{test}:conns:n2") == 2; }));
  EXPECT_EQ(HashAt("{test}:conns:n1"), (Hash{{"n1-a", "chat"}}));
}

// Once the node was reaped (its registry renamed to "lost", its tombstone
// set), the registry writes nothing more under the old id, not even on a
// resync: the old key is not recreated behind the loss reporter's back.
TEST_F(ConnectionRegistryTest, AReapedNodesRegistryIsNotWrittenAgain) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  registry.Start();
  live.Open(registry, "n1-a", "chat");
  ASSERT_TRUE(Eventually([&] { return Length("{test}:conns:n1") == 1; }));
  // What the membership's reap does to it.
  ASSERT_TRUE(Run({"RENAME", "{test}:conns:n1", "{test}:lost:n1"}).ok());
  ASSERT_TRUE(Run({"SET", "{test}:reaped:n1", "1", "PX", "3600000"}).ok());

  live.Open(registry, "n1-b", "chat");
  ASSERT_TRUE(Eventually([&] { return registry.fenced(); }));
  registry.Resync();
  const auto trips = registry.round_trips();
  // A few idle checks later, still nothing.
  ASSERT_TRUE(Eventually([&] { return registry.round_trips() > trips + 3; }));
  EXPECT_EQ(Length("{test}:conns:n1"), 0);
  EXPECT_EQ(HashAt("{test}:lost:n1"), (Hash{{"n1-a", "chat"}}));

  registry.Rename("n2");
  EXPECT_TRUE(Eventually([&] { return HashAt("{test}:conns:n2") == live.Snapshot(); }));
  EXPECT_FALSE(registry.fenced());
  EXPECT_EQ(Length("{test}:conns:n1"), 0);
}

// What the survivors cannot report: the connections no successful write
// put in Redis before the reap. Closes while the node is being fenced do
// not hide them; the new id's connections are not handed out.
TEST_F(ConnectionRegistryTest, ConnectionsRedisNeverConfirmedAreHandedOutOnce) {
  using Entries = std::vector<std::pair<std::string, std::string>>;
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  registry.Start();
  live.Open(registry, "n1-a", "chat");
  ASSERT_TRUE(Eventually([&] { return Length("{test}:conns:n1") == 1; }));
  // Redis holds the write before the registry has read the reply that
  // confirms it; two round trips more and the registry's one thread has.
  const auto trips = registry.round_trips();
  ASSERT_TRUE(Eventually([&] { return registry.round_trips() >= trips + 2; }));
  EXPECT_TRUE(registry.TakeUnregistered().empty());
  ASSERT_TRUE(Run({"RENAME", "{test}:conns:n1", "{test}:lost:n1"}).ok());
  ASSERT_TRUE(Run({"SET", "{test}:reaped:n1", "1", "PX", "3600000"}).ok());

  live.Open(registry, "n1-b", "chat");
  live.Open(registry, "n1-c", "chat");
  // Closed with its Close event before the fence: nothing to hand out.
  live.Close(registry, "n1-c");
  ASSERT_TRUE(Eventually([&] { return registry.fenced(); }));
  registry.HoldUnregistered();
  live.Close(registry, "n1-b");
  live.Open(registry, "n2-a", "chat");
  EXPECT_EQ(registry.TakeUnregistered(), (Entries{{"n1-b", "chat"}}));
  EXPECT_TRUE(registry.TakeUnregistered().empty());

  const auto resyncs = registry.resyncs();
  registry.Rename("n2");
  ASSERT_TRUE(Eventually([&] { return registry.resyncs() > resyncs; }));
  EXPECT_EQ(HashAt("{test}:conns:n2"), live.Snapshot());
  EXPECT_TRUE(registry.TakeUnregistered().empty());
}

TEST_F(ConnectionRegistryTest, CallsBeforeStartAndAfterStopDoNothing) {
  LiveConnections live;
  ConnectionRegistry registry(Options(live), "n1");
  registry.Opened("n1-a", "chat");
  registry.Closed("n1-a");
  registry.Resync();
  registry.Stop();
  registry.Start();
  ASSERT_TRUE(Eventually([&] { return registry.resyncs() == 1; }));
  registry.Stop();
  registry.Opened("n1-b", "chat");
  registry.Resync();
  EXPECT_EQ(Length(registry.key()), 0);
}

}  // namespace
}  // namespace wsgateway::cluster
