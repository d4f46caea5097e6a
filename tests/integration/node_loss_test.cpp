// Node loss in a cluster of real gateways, as a backend sees it. A node
// that dies (SIGKILL) has its connections reported closed
// (CLOSED_BY_NODE_LOST, 1006) and then a NodeLostEvent by a survivor within
// 8 s, at least once even when the reporting survivor dies halfway. Nodes
// that only lost Redis for a while (stopped, restarted empty) are never
// reported. A node cut off from Redis alone is reported exactly once, then
// fences itself (1012, no Close events of its own) and rejoins under a new
// id; with cluster_fence eager it closes its connections itself before the
// others can reap it.
//
// Every node streams to one ScriptedBackend, whose record of events (with
// the node each batch came from and when) is what the tests assert on,
// together with what the clients and the Admin API see.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "cluster/redis_client.hpp"
#include "gateway/config/redis_url.hpp"
#include "tests/support/admin_client.hpp"
#include "tests/support/client_swarm.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/scripted_backend.hpp"
#include "tests/support/tcp_proxy.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Ids = std::vector<std::string>;

// The gateway's defaults (cluster_lease, cluster_reap_grace), which these
// tests run with.
constexpr auto kLease = 5s;
constexpr auto kReapGrace = 1s;
// The key prefix ClusterStack gives its nodes, with its hash tag.
constexpr const char* kKeys = "{stack}";

std::chrono::milliseconds Millis(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d); }

bool OwnedBy(const std::string& connection_id, const std::string& node_id) {
  return connection_id.rfind(node_id + "-", 0) == 0;
}

// What the backend was told, gathered from its record as events arrive:
// which node opened each connection, every Close of each connection, and
// every NodeLostEvent, each with the stream (node) it came on and when.
class Ledger {
 public:
  struct Close {
    std::uint32_t code = 0;
    std::string reason;
    v1::ClosedBy closed_by = v1::CLOSED_BY_UNSPECIFIED;
    std::uint64_t sequence = 0;
    std::string via;
    Clock::time_point at;
    std::size_t index = 0;  // place among all events received
  };
  struct Lost {
    std::string node_id;
    std::uint64_t connections = 0;
    std::string via;
    Clock::time_point at;
    std::size_t index = 0;
  };

  // Takes in the events not seen yet; the backend's record only grows.
  void Scan(const std::vector<v1::Event>& events, const std::vector<ScriptedBackend::Arrival>& arrivals) {
    for (; scanned_ < events.size(); ++scanned_) {
      const auto& event = events[scanned_];
      const auto& arrival = arrivals[scanned_];
      if (event.has_open()) {
        owner_[event.connection_id()] = event.open().node_id();
        opened_by_path_[event.open().path()].push_back(event.connection_id());
      } else if (event.has_close()) {
        closes_[event.connection_id()].push_back({event.close().code(), event.close().reason(),
                                                  event.close().closed_by(), event.sequence(), arrival.node_id,
                                                  arrival.at, scanned_});
      } else if (event.has_node_lost()) {
        lost_.push_back(
            {event.node_lost().node_id(), event.node_lost().connections(), arrival.node_id, arrival.at, scanned_});
      } else if (event.has_message()) {
        ++messages_[arrival.node_id];
      }
    }
  }

  // The connections the backend saw open on `node`.
  Ids OpenedOn(const std::string& node) const {
    Ids ids;
    for (const auto& [id, owner] : owner_) {
      if (owner == node) ids.push_back(id);
    }
    return ids;
  }
  Ids OpenedOnPath(const std::string& path) const {
    const auto it = opened_by_path_.find(path);
    return it == opened_by_path_.end() ? Ids{} : it->second;
  }
  std::size_t opens() const { return owner_.size(); }
  std::size_t messages_from(const std::string& node) const {
    const auto it = messages_.find(node);
    return it == messages_.end() ? 0 : it->second;
  }

  const std::vector<Close>& ClosesOf(const std::string& id) const {
    static const std::vector<Close> kNone;
    const auto it = closes_.find(id);
    return it == closes_.end() ? kNone : it->second;
  }
  // The first CLOSED_BY_NODE_LOST Close of `id` (on the stream of `via`
  // when given).
  const Close* FirstLostClose(const std::string& id, const std::string& via = "") const {
    for (const auto& close : ClosesOf(id)) {
      if (close.closed_by == v1::CLOSED_BY_NODE_LOST && (via.empty() || close.via == via)) return &close;
    }
    return nullptr;
  }
  bool AllReportedLost(const Ids& ids, const std::string& via = "") const {
    return std::all_of(ids.begin(), ids.end(), [&](const auto& id) { return FirstLostClose(id, via) != nullptr; });
  }
  // Every NodeLostEvent naming `node` (on the stream of `via` when given).
  std::vector<Lost> LostEventsFor(const std::string& node, const std::string& via = "") const {
    std::vector<Lost> found;
    for (const auto& lost : lost_) {
      if (lost.node_id == node && (via.empty() || lost.via == via)) found.push_back(lost);
    }
    return found;
  }
  const std::vector<Lost>& lost_events() const { return lost_; }
  // Every CLOSED_BY_NODE_LOST Close received, of any connection.
  std::size_t lost_closes() const {
    std::size_t n = 0;
    for (const auto& [id, closes] : closes_) {
      n += std::count_if(closes.begin(), closes.end(),
                         [](const Close& close) { return close.closed_by == v1::CLOSED_BY_NODE_LOST; });
    }
    return n;
  }

 private:
  std::size_t scanned_ = 0;
  std::map<std::string, std::string> owner_;
  std::map<std::string, Ids> opened_by_path_;
  std::map<std::string, std::vector<Close>> closes_;
  std::vector<Lost> lost_;
  std::map<std::string, std::size_t> messages_;
};

class NodeLossTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    backend_ = ScriptedBackend::Start(&error);
    ASSERT_TRUE(backend_) << error;
  }

  void TearDown() override {
    StopLoad();
    // The clients first: their sockets go before the gateways they talk to.
    swarm_.reset();
  }

  void StartCluster(ClusterStack::Options options = {}) {
    options.backend = backend_->target();
    std::string error;
    cluster_ = ClusterStack::Start(options, &error);
    ASSERT_TRUE(cluster_) << error;
  }

  // Waits until `done` holds for the ledger, taking in events as they come.
  bool Await(const std::function<bool(const Ledger&)>& done, std::chrono::milliseconds timeout) {
    return backend_->WaitUntilArrived(
        [&](const auto& events, const auto& arrivals) {
          ledger_.Scan(events, arrivals);
          return done(ledger_);
        },
        timeout);
  }
  // Takes in whatever arrived so far.
  const Ledger& Seen() {
    Await([](const auto&) { return true; }, 0ms);
    return ledger_;
  }

  // Opens n clients on node i (on /n<i>) and waits for their Open events;
  // the clients' indices in the swarm are appended to clients_of_[i].
  void Connect(std::size_t i, std::size_t n) {
    const auto opens_before = Seen().opens();
    const auto first = swarm_->size();
    const Ids targets(n, "/n" + std::to_string(i));
    ASSERT_EQ(swarm_->ConnectAll(cluster_->node(i).ws_port(), targets, 100, 60s), n) << "node " << i;
    for (std::size_t k = first; k < first + n; ++k) clients_of_[i].push_back(k);
    ASSERT_TRUE(Await([&](const auto& ledger) { return ledger.opens() >= opens_before + n; }, 30s))
        << "the backend saw " << ledger_.opens() - opens_before << " of " << n << " Open events from node " << i;
  }

  // Clients of node i whose connection is still open.
  std::size_t OpenClients(std::size_t i) const {
    std::size_t open = 0;
    for (const auto k : clients_of_.at(i)) {
      const auto state = swarm_->State(k);
      open += state.connected && !state.closed;
    }
    return open;
  }

  // Every client sends a message every 200 ms until StopLoad.
  void StartLoad() {
    loader_ = std::jthread([this](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any paced;
      for (std::uint64_t round = 0; !stop.stop_requested(); ++round) {
        const auto n = swarm_->size();
        for (std::size_t k = 0; k < n; ++k) swarm_->Send(k, "load " + std::to_string(round));
        // Paces the load; nothing waits on it.
        std::unique_lock lock(mutex);
        paced.wait_for(lock, stop, 200ms, [] { return false; });
      }
    });
  }
  void StopLoad() {
    if (!loader_.joinable()) return;
    loader_.request_stop();
    loader_.join();
  }

  cluster::RedisResult Redis(const std::vector<std::string>& command) {
    cluster::RedisClient redis(*ParseRedisUrl(cluster_->redis().url()).endpoint, 2s);
    return redis.Command(command);
  }
  std::optional<long long> RedisInteger(const std::vector<std::string>& command) {
    const auto result = Redis(command);
    if (!result.ok() || result.value->type != cluster::RedisValue::Type::kInteger) return std::nullopt;
    return result.value->integer;
  }
  // HLEN of the node's registry; -1 when Redis does not answer.
  long long RegistrySize(const std::string& node) {
    return RedisInteger({"HLEN", std::string(kKeys) + ":conns:" + node}).value_or(-1);
  }
  // Records in the lost stream that no reporter has acknowledged.
  std::optional<long long> UnacknowledgedReports() {
    const auto result = Redis({"XPENDING", std::string(kKeys) + ":lost", "reporters"});
    if (!result.ok() || result.value->elements.empty()) return std::nullopt;
    return result.value->elements[0].integer;
  }

  // Adds to the membership a member whose lease ran out a minute ago and
  // that has no connection registry, and waits until a node reaps it. A
  // node may reap only after its renewals have held for a whole lease; once
  // one did, every live node has renewed since the outage, so a live node
  // wrongly reaped would have been reaped by then (in the same script). The
  // sentinel is reported lost with no connections.
  bool AwaitReaperActive(const std::string& sentinel, std::chrono::milliseconds timeout) {
    const auto added = PollUntil(10s, [&] {
      return Redis({"EVAL",
                    "local t = redis.call('TIME') "
                    "return redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 - 60000, ARGV[1])",
                    "1", std::string(kKeys) + ":members", sentinel})
          .ok();
    });
    if (!added) return false;
    return PollUntil(timeout, [&] {
      const auto score = Redis({"ZSCORE", std::string(kKeys) + ":members", sentinel});
      return score.ok() && score.value->type == cluster::RedisValue::Type::kNil;
    });
  }

  std::unique_ptr<ScriptedBackend> backend_;
  std::unique_ptr<ClusterStack> cluster_;
  std::unique_ptr<ClientSwarm> swarm_ = std::make_unique<ClientSwarm>();
  std::map<std::size_t, std::vector<std::size_t>> clients_of_;
  Ledger ledger_;
  std::jthread loader_;
};

// SIGKILL under load: within 8 s a survivor reports every one of the lost
// node's 1,000 connections closed (CLOSED_BY_NODE_LOST, 1006, sequence 0),
// then a NodeLostEvent with the count; nothing else is reported, and the
// cluster no longer lists the lost connections.
TEST_F(NodeLossTest, AKilledNodesConnectionsAreReportedClosedWithinEightSeconds) {
  constexpr std::size_t kPerNode = 1000;
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  for (std::size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Connect(i, kPerNode));
  const std::string lost = cluster_->node_id(2);
  const auto lost_ids = Seen().OpenedOn(lost);
  ASSERT_EQ(lost_ids.size(), kPerNode);
  Ids survivor_ids = Seen().OpenedOn(cluster_->node_id(0));
  const auto more = Seen().OpenedOn(cluster_->node_id(1));
  survivor_ids.insert(survivor_ids.end(), more.begin(), more.end());
  ASSERT_EQ(survivor_ids.size(), 2 * kPerNode);

  StartLoad();
  // The load reaches the backend from every node before the kill.
  ASSERT_TRUE(Await(
      [&](const auto& ledger) {
        for (std::size_t i = 0; i < 3; ++i) {
          if (ledger.messages_from(cluster_->node_id(i)) < kPerNode) return false;
        }
        return true;
      },
      30s));

  const auto killed_at = Clock::now();
  cluster_->Forget(2);  // SIGKILL, by PID
  const bool reported = Await(
      [&](const auto& ledger) { return ledger.AllReportedLost(lost_ids) && !ledger.LostEventsFor(lost).empty(); }, 30s);
  const auto& ledger = Seen();
  std::size_t reported_ids = 0;
  Clock::time_point last_close = killed_at;
  for (const auto& id : lost_ids) {
    if (const auto* close = ledger.FirstLostClose(id)) {
      ++reported_ids;
      last_close = std::max(last_close, close->at);
      EXPECT_EQ(close->code, 1006u) << id;
      EXPECT_EQ(close->reason, "node lost") << id;
      EXPECT_EQ(close->sequence, 0u) << id;
    }
  }
  const auto kill_to_last_close = Millis(last_close - killed_at);
  std::cout << "SIGKILL to the last NODE_LOST Close of " << reported_ids
            << " connections: " << kill_to_last_close.count() << " ms\n";
  RecordProperty("sigkill_to_last_close_ms", std::to_string(kill_to_last_close.count()));
  ASSERT_TRUE(reported) << reported_ids << " of " << kPerNode << " connections of node " << lost
                        << " reported closed; NodeLostEvents for it: " << ledger.LostEventsFor(lost).size();
  EXPECT_LE(kill_to_last_close, 8s);

  // The NodeLostEvent comes after every Close on the stream it came on.
  const auto summaries = ledger.LostEventsFor(lost);
  const auto& summary = summaries.front();
  EXPECT_EQ(summary.connections, kPerNode);
  for (const auto& id : lost_ids) {
    const auto* close = ledger.FirstLostClose(id, summary.via);
    ASSERT_NE(close, nullptr) << id << " not reported on " << summary.via << ", which sent the NodeLostEvent";
    EXPECT_LT(close->index, summary.index) << id;
  }

  // Once the report is acknowledged nothing more can be reported: then no
  // survivor's connection has a Close at all.
  ASSERT_TRUE(PollUntil(10s, [&] { return UnacknowledgedReports() == 0; }));
  StopLoad();
  const auto& after = Seen();
  for (const auto& id : survivor_ids) EXPECT_TRUE(after.ClosesOf(id).empty()) << id;

  for (const std::size_t via : {0, 1}) {
    std::optional<std::vector<v1::ClientInfo>> listed;
    const bool consistent = PollUntil(15s, [&] {
      listed = cluster_->admin(via).ListAll({});
      return listed && listed->size() == 2 * kPerNode &&
             std::none_of(listed->begin(), listed->end(),
                          [&](const v1::ClientInfo& info) { return OwnedBy(info.connection_id(), lost); });
    });
    EXPECT_TRUE(consistent) << "node " << via << " lists " << (listed ? listed->size() : 0) << " connections";
  }
  EXPECT_EQ(OpenClients(0), kPerNode);
  EXPECT_EQ(OpenClients(1), kPerNode);
}

// The survivor reporting a lost node dies before the backend acknowledged
// its report: the last survivor reports that node again, and the dead
// reporter too, each connection at least once, on its own stream.
TEST_F(NodeLossTest, AReporterKilledHalfwayIsReportedAndItsReportIsRedone) {
  constexpr std::size_t kPerNode = 300;
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  for (std::size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Connect(i, kPerNode));
  const std::string lost = cluster_->node_id(0);
  const auto lost_ids = Seen().OpenedOn(lost);
  ASSERT_EQ(lost_ids.size(), kPerNode);

  // Unacknowledged, the report cannot be finished: its record stays
  // claimed, not acknowledged.
  backend_->SetAcknowledging(false);
  cluster_->Forget(0);
  std::string reporter;
  ASSERT_TRUE(Await(
      [&](const auto& ledger) {
        for (const auto& id : lost_ids) {
          if (const auto* close = ledger.FirstLostClose(id)) reporter = close->via;
        }
        return !reporter.empty();
      },
      30s));
  const std::size_t reporter_index = reporter == cluster_->node_id(1) ? 1 : 2;
  ASSERT_EQ(cluster_->node_id(reporter_index), reporter);
  const std::size_t survivor_index = 3 - reporter_index;
  const std::string survivor = cluster_->node_id(survivor_index);
  const auto reporter_ids = Seen().OpenedOn(reporter);
  ASSERT_EQ(reporter_ids.size(), kPerNode);
  EXPECT_EQ(UnacknowledgedReports(), 1);

  cluster_->Forget(reporter_index);
  backend_->SetAcknowledging(true);
  const bool reported = Await(
      [&](const auto& ledger) {
        return ledger.AllReportedLost(lost_ids, survivor) && ledger.AllReportedLost(reporter_ids, survivor) &&
               !ledger.LostEventsFor(lost, survivor).empty() && !ledger.LostEventsFor(reporter, survivor).empty();
      },
      40s);
  const auto& ledger = Seen();
  ASSERT_TRUE(reported) << "on " << survivor << "'s stream: " << ledger.LostEventsFor(lost, survivor).size()
                        << " NodeLostEvents for the first lost node, "
                        << ledger.LostEventsFor(reporter, survivor).size() << " for the reporter";
  EXPECT_EQ(ledger.LostEventsFor(lost, survivor).front().connections, kPerNode);
  EXPECT_EQ(ledger.LostEventsFor(reporter, survivor).front().connections, kPerNode);
  EXPECT_TRUE(PollUntil(10s, [&] { return UnacknowledgedReports() == 0; }));
  EXPECT_TRUE(cluster_->WaitForMembers(survivor_index, {survivor}, 10s));
  EXPECT_EQ(OpenClients(survivor_index), kPerNode);
}

// Redis stopped for 30 s, then restarted empty: the nodes only lost their
// registry, not each other. Nobody is reported lost, every client stays
// open, and each node's registry in Redis matches its connections again by
// itself, including the ones that opened and closed meanwhile.
TEST_F(NodeLossTest, NobodyIsReportedLostWhenRedisStallsOrRestartsEmpty) {
  constexpr std::size_t kPerNode = 100;
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  for (std::size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Connect(i, kPerNode));
  const auto registries_match = [&] {
    for (std::size_t i = 0; i < 3; ++i) {
      if (RegistrySize(cluster_->node_id(i)) != static_cast<long long>(OpenClients(i))) return false;
    }
    return true;
  };
  ASSERT_TRUE(PollUntil(10s, registries_match));

  cluster_->redis().process().Signal(SIGSTOP);
  const auto stopped_at = Clock::now();
  // Meanwhile some clients leave and others come, which Redis misses.
  std::vector<std::size_t> left;
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t k = 0; k < 10; ++k) left.push_back(clients_of_[i][k]);
  }
  for (const auto k : left) swarm_->Close(k);
  for (const auto k : left) ASSERT_TRUE(swarm_->WaitForClosed(k, 10s));
  for (std::size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Connect(i, 20));
  std::this_thread::sleep_until(stopped_at + 30s);  // the outage itself
  cluster_->redis().process().Signal(SIGCONT);

  const auto expect_nobody_reported = [&](const char* after) {
    EXPECT_TRUE(PollUntil(20s, registries_match))
        << after << ": registries " << RegistrySize(cluster_->node_id(0)) << ", " << RegistrySize(cluster_->node_id(1))
        << ", " << RegistrySize(cluster_->node_id(2)) << "; open clients " << OpenClients(0) << ", " << OpenClients(1)
        << ", " << OpenClients(2);
    EXPECT_EQ(Seen().lost_closes(), 0u) << after;
    // The only lost nodes are the sentinels, each reported with none.
    for (const auto& lost : Seen().lost_events()) {
      EXPECT_TRUE(lost.node_id.starts_with("sentinel-")) << after << ": " << lost.node_id << " reported lost";
      EXPECT_EQ(lost.connections, 0u) << after << ": " << lost.node_id;
    }
    EXPECT_EQ(RedisInteger({"XLEN", std::string(kKeys) + ":lost"}), 1) << after << ": only the sentinel's record";
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(OpenClients(i), kPerNode + 10) << after << ", node " << i;
      EXPECT_TRUE(cluster_->WaitForMembers(i, cluster_->live_ids(), 10s)) << after << ", node " << i;
    }
  };
  ASSERT_TRUE(AwaitReaperActive("sentinel-after-stall", kLease + 15s));
  expect_nobody_reported("after the stall");

  std::string error;
  ASSERT_TRUE(cluster_->redis().Restart(&error)) << error;
  ASSERT_TRUE(AwaitReaperActive("sentinel-after-restart", kLease + 15s));
  expect_nobody_reported("after the empty restart");
}

// Starts the cluster with node 2 reaching Redis through a proxy the test
// can cut.
class CutOffNodeTest : public NodeLossTest {
 protected:
  void StartWithProxy(std::vector<std::string> node_2_args = {}) {
    ClusterStack::Options options;
    options.node_args[2] = std::move(node_2_args);
    options.redis_url_of = [this](std::size_t node, const RedisProcess& redis) -> std::string {
      if (node != 2) return "";
      proxy_ = TcpProxy::Start(redis.port(), &proxy_error_);
      return proxy_ ? proxy_->redis_url() : "";
    };
    ASSERT_NO_FATAL_FAILURE(StartCluster(options));
    ASSERT_TRUE(proxy_) << proxy_error_;
    for (std::size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Connect(i, kPerNode));
    cut_ = cluster_->node_id(2);
    cut_ids_ = Seen().OpenedOn(cut_);
    ASSERT_EQ(cut_ids_.size(), kPerNode);
    // What the survivors will report is what reached Redis before the cut.
    ASSERT_TRUE(PollUntil(10s, [&] { return RegistrySize(cut_) == static_cast<long long>(kPerNode); }));
  }

  // Node 2's id as node 0 lists it (its pod name is node-2).
  std::string ListedIdOfNode2() {
    for (const auto& node : cluster_->Nodes(0)) {
      if (node.pod_name() == "node-2") return node.node_id();
    }
    return "";
  }

  static constexpr std::size_t kPerNode = 100;
  std::unique_ptr<TcpProxy> proxy_;
  std::string proxy_error_;
  std::string cut_;
  Ids cut_ids_;
};

// Cut off for longer than its lease and grace, the node is reaped and
// reported once while its clients are still open; back in touch, it closes
// them with 1012 (no Close events: the backend was told already) and
// rejoins under a new id, which routing knows.
TEST_F(CutOffNodeTest, ACutOffNodeIsReportedOnceThenFencesAndRejoinsUnderANewId) {
  ASSERT_NO_FATAL_FAILURE(StartWithProxy());
  proxy_->Cut();
  const auto cut_at = Clock::now();
  ASSERT_TRUE(
      Await([&](const auto& ledger) { return ledger.AllReportedLost(cut_ids_) && !ledger.LostEventsFor(cut_).empty(); },
            kLease + kReapGrace + 20s));
  EXPECT_EQ(Seen().LostEventsFor(cut_).front().connections, kPerNode);
  // Lazy fencing: it does not know yet, and takes new clients, which only
  // it can ever report.
  EXPECT_EQ(OpenClients(2), kPerNode);
  constexpr std::size_t kLate = 5;
  const auto first_late = swarm_->size();
  ASSERT_EQ(swarm_->ConnectAll(cluster_->node(2).ws_port(), Ids(kLate, "/late"), kLate, 10s), kLate);
  ASSERT_TRUE(Await([&](const auto& ledger) { return ledger.OpenedOnPath("/late").size() == kLate; }, 10s));
  const auto late_ids = Seen().OpenedOnPath("/late");
  for (const auto& id : late_ids) EXPECT_TRUE(OwnedBy(id, cut_)) << id;
  std::this_thread::sleep_until(cut_at + kLease + kReapGrace + 3s);  // the partition itself
  proxy_->Restore();

  for (std::size_t k = first_late; k < first_late + kLate; ++k) clients_of_[2].push_back(k);
  for (const auto k : clients_of_[2]) {
    ASSERT_TRUE(swarm_->WaitForClosed(k, 20s)) << "client " << k;
    EXPECT_EQ(swarm_->State(k).close_code, 1012) << "client " << k;
  }
  // What an operator sees: one fence, and the closes counted as node_lost.
  const auto scrape = ScrapeMetrics(cluster_->node(2).metrics_port());
  ASSERT_TRUE(scrape.has_value());
  EXPECT_EQ(scrape->Value("wsgateway_cluster_fenced_total"), 1.0);
  EXPECT_TRUE(PollUntil(10s, [&] {
    const auto now = ScrapeMetrics(cluster_->node(2).metrics_port());
    return now && now->Sum("wsgateway_connections_closed_total", {{"closed_by", "node_lost"}, {"code", "1012"}}) ==
                      static_cast<double>(clients_of_[2].size());
  })) << "closes counted as node_lost";
  std::string rejoined;
  EXPECT_TRUE(PollUntil(20s,
                        [&] {
                          rejoined = ListedIdOfNode2();
                          return !rejoined.empty() && rejoined != cut_;
                        }))
      << "node 0 lists node-2 as " << rejoined;
  ASSERT_FALSE(rejoined.empty());
  EXPECT_TRUE(cluster_->WaitForMembers(0, {cluster_->node_id(0), cluster_->node_id(1), rejoined}, 10s));

  // A new client of the rejoined node has an id of its new name and is
  // routed to from another node.
  const auto fresh = swarm_->size();
  ASSERT_EQ(swarm_->ConnectAll(cluster_->node(2).ws_port(), {"/fresh"}, 1, 10s), 1u);
  ASSERT_TRUE(Await([](const auto& ledger) { return !ledger.OpenedOnPath("/fresh").empty(); }, 10s));
  const auto fresh_id = Seen().OpenedOnPath("/fresh").front();
  EXPECT_TRUE(OwnedBy(fresh_id, rejoined)) << fresh_id;
  EXPECT_TRUE(PollUntil(10s, [&] { return cluster_->admin(0).Push({fresh_id}, v1::OPCODE_TEXT, "hello").ok(); }));
  ASSERT_TRUE(swarm_->WaitForReceived(fresh, 1, 10s));
  EXPECT_EQ(swarm_->State(fresh).messages.front().payload, "hello");

  // Exactly once: one record, acknowledged (so never claimed again), one
  // NodeLostEvent, one Close per connection. The fenced connections'
  // events, had there been any, came before the fresh Open on the same
  // stream.
  EXPECT_TRUE(PollUntil(10s, [&] { return UnacknowledgedReports() == 0; }));
  EXPECT_EQ(RedisInteger({"XLEN", std::string(kKeys) + ":lost"}), 1);
  EXPECT_EQ(Seen().LostEventsFor(cut_).size(), 1u);
  for (const auto& id : cut_ids_) {
    const auto& closes = Seen().ClosesOf(id);
    ASSERT_EQ(closes.size(), 1u) << id;
    EXPECT_EQ(closes.front().closed_by, v1::CLOSED_BY_NODE_LOST) << id;
  }
  // The survivors could not know of the late clients: the node reports
  // them itself, as the survivors report theirs.
  for (const auto& id : late_ids) {
    const auto& closes = Seen().ClosesOf(id);
    ASSERT_EQ(closes.size(), 1u) << id << " opened on " << cut_ << " while it was cut off";
    EXPECT_EQ(closes.front().closed_by, v1::CLOSED_BY_NODE_LOST) << id;
    EXPECT_EQ(closes.front().code, 1006u) << id;
    EXPECT_TRUE(closes.front().via == cut_ || closes.front().via == rejoined) << id << " via " << closes.front().via;
  }
  // The old name's registry went with the report, and nothing wrote it
  // again; the new one holds the fresh client.
  EXPECT_EQ(RedisInteger({"EXISTS", std::string(kKeys) + ":conns:" + cut_}), 0);
  EXPECT_EQ(RedisInteger({"EXISTS", std::string(kKeys) + ":lost:" + cut_}), 0);
  EXPECT_TRUE(PollUntil(10s, [&] { return RegistrySize(rejoined) == 1; }));
  EXPECT_EQ(OpenClients(0), kPerNode);
  EXPECT_EQ(OpenClients(1), kPerNode);
}

// cluster_fence eager: the cut-off node closes its connections with 1012
// itself, before the others may reap it, and reports those Closes on its
// own stream (CLOSED_BY_SERVER).
TEST_F(CutOffNodeTest, AnEagerNodeClosesItsConnectionsItselfBeforeItIsReaped) {
  ASSERT_NO_FATAL_FAILURE(StartWithProxy({"--cluster-fence", "eager"}));
  proxy_->Cut();
  for (const auto k : clients_of_[2]) ASSERT_TRUE(swarm_->WaitForClosed(k, kLease + 10s)) << "client " << k;
  // Not reaped yet when the last client saw its close.
  EXPECT_EQ(RedisInteger({"EXISTS", std::string(kKeys) + ":reaped:" + cut_}), 0);
  for (const auto k : clients_of_[2]) EXPECT_EQ(swarm_->State(k).close_code, 1012) << "client " << k;

  ASSERT_TRUE(Await(
      [&](const auto& ledger) {
        return std::all_of(cut_ids_.begin(), cut_ids_.end(), [&](const auto& id) {
          const auto& closes = ledger.ClosesOf(id);
          return !closes.empty() && closes.front().closed_by == v1::CLOSED_BY_SERVER;
        });
      },
      10s));
  for (const auto& id : cut_ids_) {
    const auto& close = Seen().ClosesOf(id).front();
    EXPECT_EQ(close.code, 1012u) << id;
    EXPECT_EQ(close.via, cut_) << id;
  }

  // The others still reap it, and tell the backend again (at least once);
  // back in touch, it rejoins under a new id.
  ASSERT_TRUE(Await([&](const auto& ledger) { return !ledger.LostEventsFor(cut_).empty(); }, kLease + 20s));
  proxy_->Restore();
  std::string rejoined;
  EXPECT_TRUE(PollUntil(20s,
                        [&] {
                          rejoined = ListedIdOfNode2();
                          return !rejoined.empty() && rejoined != cut_;
                        }))
      << "node 0 lists node-2 as " << rejoined;
  EXPECT_EQ(OpenClients(0), kPerNode);
  EXPECT_EQ(OpenClients(1), kPerNode);
}

}  // namespace
}  // namespace wsgateway::testing
