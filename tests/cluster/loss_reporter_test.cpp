// The loss reporter against a real redis-server: a reap record is reported
// with every connection of the lost node, then summed up per backend, and
// acknowledged only after the backends did; two reporters share the records
// (each reported once while both live), and a record whose reporter stopped
// before the backends acknowledged is claimed and reported by another.
// Every wait is for a condition, with a deadline.

#include "cluster/loss_reporter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
using steady = std::chrono::steady_clock;

constexpr auto kDeadline = 10s;
constexpr auto kClaimIdle = 300ms;

template <typename Condition>
bool Eventually(Condition&& condition) {
  return wsgateway::testing::PollUntil(kDeadline, std::forward<Condition>(condition));
}

// What the backend links were handed, by one reporter or several.
struct Backends {
  std::mutex mutex;
  // Close events per connection id.
  std::map<std::string, int> closes;
  // Summaries per lost node, and the closes handed over before each.
  std::map<std::string, std::vector<std::map<std::string, std::uint64_t>>> summaries;
  std::map<std::string, std::size_t> closes_before_summary;

  void Attach(LossReporterOptions& options) {
    options.report_closes = [this](const std::string&, const std::vector<LostConnection>& batch) {
      std::lock_guard lock(mutex);
      for (const auto& connection : batch) ++closes[connection.id];
    };
    options.report_summary = [this](const std::string& node, const std::map<std::string, std::uint64_t>& per_target) {
      std::lock_guard lock(mutex);
      summaries[node].push_back(per_target);
      closes_before_summary[node] = closes.size();
    };
  }
  std::size_t Summaries(const std::string& node) {
    std::lock_guard lock(mutex);
    const auto it = summaries.find(node);
    return it == summaries.end() ? 0 : it->second.size();
  }
};

class LossReporterTest : public RedisTest {
 protected:
  LossReporterOptions Options(Backends& backends) const {
    LossReporterOptions options;
    options.redis = Endpoint();
    options.key_prefix = "test";
    options.redis_timeout = 500ms;
    options.claim_idle = kClaimIdle;
    options.batch = 1000;
    backends.Attach(options);
    options.acknowledged_mark = [] { return [] { return true; }; };
    return options;
  }

  RedisResult Run(const std::vector<std::string>& command) {
    RedisClient client(Endpoint(), 1s);
    return client.Command(command);
  }

  // What the membership's reap leaves: the lost hash and a stream record
  // (the group made first, as the reap script does).
  void Reap(const std::string& node, int connections) {
    Run({"XGROUP", "CREATE", "{test}:lost", "reporters", "$", "MKSTREAM"});
    std::vector<std::string> hset{"HSET", "{test}:lost:" + node};
    for (int i = 0; i < connections; ++i) {
      hset.push_back(node + "-" + std::to_string(i));
      hset.push_back(i % 2 == 0 ? "chat" : "game");
    }
    ASSERT_TRUE(Run(hset).ok());
    ASSERT_TRUE(Run({"XADD", "{test}:lost", "*", "node", node, "connections", std::to_string(connections)}).ok());
  }

  long long Pending() {
    const auto result = Run({"XPENDING", "{test}:lost", "reporters"});
    return result.ok() && !result.value->elements.empty() ? result.value->elements[0].integer : -1;
  }

  long long Exists(const std::string& key) {
    const auto result = Run({"EXISTS", key});
    return result.ok() ? result.value->integer : -1;
  }
};

TEST_F(LossReporterTest, ARecordIsReportedWithEveryConnection) {
  Backends backends;
  std::atomic<int> marks{0};
  auto options = Options(backends);
  options.acknowledged_mark = [&marks] {
    ++marks;
    return [] { return true; };
  };
  Reap("n1", 2500);
  LossReporter reporter(options, "n2");
  reporter.Start();
  ASSERT_TRUE(Eventually([&] { return reporter.reported() == 1; }));

  std::lock_guard lock(backends.mutex);
  ASSERT_EQ(backends.closes.size(), 2500u);
  for (const auto& [id, count] : backends.closes) EXPECT_EQ(count, 1) << id;
  ASSERT_EQ(backends.summaries["n1"].size(), 1u);
  EXPECT_EQ(backends.summaries["n1"][0], (std::map<std::string, std::uint64_t>{{"chat", 1250}, {"game", 1250}}));
  EXPECT_EQ(backends.closes_before_summary["n1"], 2500u) << "the summary came before the last close";
  EXPECT_EQ(marks, 1);
  EXPECT_EQ(Exists("{test}:lost:n1"), 0);
  EXPECT_EQ(Pending(), 0);
}

// The record is acknowledged only once the backends acknowledged.
TEST_F(LossReporterTest, TheRecordWaitsForTheBackends) {
  Backends backends;
  std::atomic<bool> acknowledged{false};
  auto options = Options(backends);
  options.acknowledged_mark = [&acknowledged] { return [&acknowledged] { return acknowledged.load(); }; };
  LossReporter reporter(options, "n2");
  reporter.Start();
  Reap("n1", 3);
  ASSERT_TRUE(Eventually([&] { return backends.Summaries("n1") == 1; }));
  EXPECT_EQ(Pending(), 1);
  EXPECT_EQ(Exists("{test}:lost:n1"), 1);
  acknowledged = true;
  ASSERT_TRUE(Eventually([&] { return reporter.reported() == 1; }));
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(Exists("{test}:lost:n1"), 0);
}

// Two live reporters, and backends slower to acknowledge than claim_idle:
// the reporters keep their claims fresh, so each record is reported (and
// acknowledged) exactly once.
TEST_F(LossReporterTest, TwoLiveReportersReportEachRecordOnce) {
  Backends backends;
  auto options = Options(backends);
  // A slow backend: acknowledges two claim_idle after the summary.
  options.acknowledged_mark = [] {
    const auto due = steady::now() + 2 * kClaimIdle;
    return [due] { return steady::now() >= due; };
  };
  LossReporter first(options, "r1");
  LossReporter second(options, "r2");
  first.Start();
  second.Start();
  constexpr int kRecords = 6;
  for (int i = 0; i < kRecords; ++i) Reap("n" + std::to_string(i), 3);
  ASSERT_TRUE(Eventually([&] { return first.reported() + second.reported() == kRecords; }));
  EXPECT_GT(first.reported(), 0u);
  EXPECT_GT(second.reported(), 0u);
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(backends.Summaries("n" + std::to_string(i)), 1u) << i;
  std::lock_guard lock(backends.mutex);
  EXPECT_EQ(backends.closes.size(), static_cast<std::size_t>(3 * kRecords));
  for (const auto& [id, count] : backends.closes) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(Pending(), 0);
}

// A reporter that stops before its backends acknowledged (it died, say):
// while it lived nobody took the record; after claim_idle another claims it
// and reports it again, all of it.
TEST_F(LossReporterTest, ARecordLeftByAStoppedReporterIsReportedByAnother) {
  Backends stuck_backends;
  auto stuck_options = Options(stuck_backends);
  stuck_options.acknowledged_mark = [] { return [] { return false; }; };
  LossReporter stuck(stuck_options, "r1");
  stuck.Start();
  Reap("n1", 5);
  ASSERT_TRUE(Eventually([&] { return stuck_backends.Summaries("n1") == 1; }));

  Backends backends;
  LossReporter other(Options(backends), "r2");
  other.Start();
  // The outcome under test is the absence of a claim while r1 lives: give
  // XAUTOCLAIM several claim_idle periods to (wrongly) take it.
  const auto since = steady::now();
  EXPECT_FALSE(Eventually([&] { return other.reported() > 0 || steady::now() - since > 4 * kClaimIdle; }) &&
               other.reported() > 0);
  EXPECT_EQ(backends.Summaries("n1"), 0u);

  const auto stopping = steady::now();
  stuck.Stop();
  EXPECT_LT(steady::now() - stopping, 1s) << "Stop waited for the backends";
  ASSERT_TRUE(Eventually([&] { return other.reported() == 1; }));
  EXPECT_EQ(backends.Summaries("n1"), 1u);
  {
    std::lock_guard lock(backends.mutex);
    EXPECT_EQ(backends.closes.size(), 5u);
  }
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(Exists("{test}:lost:n1"), 0);
}

// A reporter restarted under the same name takes up its own pending record
// first.
TEST_F(LossReporterTest, ARestartedReporterReportsItsOwnPendingRecord) {
  Backends backends;
  std::atomic<bool> acknowledge{false};
  auto options = Options(backends);
  options.acknowledged_mark = [&acknowledge] { return [&acknowledge] { return acknowledge.load(); }; };
  LossReporter reporter(options, "r1");
  reporter.Start();
  Reap("n1", 2);
  ASSERT_TRUE(Eventually([&] { return backends.Summaries("n1") == 1; }));
  reporter.Stop();
  acknowledge = true;
  reporter.Start();
  ASSERT_TRUE(Eventually([&] { return reporter.reported() == 1; }));
  EXPECT_EQ(backends.Summaries("n1"), 2u) << "reported again: at least once";
  EXPECT_EQ(Pending(), 0);
}

}  // namespace
}  // namespace wsgateway::cluster
