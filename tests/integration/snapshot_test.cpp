// Every Backend.Connect stream opens with a hello and a snapshot of the
// connections the gateway holds, before any event: a backend that
// restarted after acknowledging everything learns the connections already
// open, and never sees a message for a connection it has not seen in the
// snapshot or in an Open. A backend may ask for a snapshot at any time.
// Single node, no Redis.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;
using Preamble = std::vector<ScriptedBackend::PreambleMessage>;

constexpr auto kWait = 30s;

// The messages of the snapshot `snapshot_id` received so far.
std::vector<const v1::SnapshotChunk*> ChunksOf(const Preamble& preamble, std::uint64_t snapshot_id) {
  std::vector<const v1::SnapshotChunk*> chunks;
  for (const auto& entry : preamble) {
    if (entry.message.has_snapshot() && entry.message.snapshot().snapshot_id() == snapshot_id) {
      chunks.push_back(&entry.message.snapshot());
    }
  }
  return chunks;
}

bool Complete(const Preamble& preamble, std::uint64_t snapshot_id) {
  const auto chunks = ChunksOf(preamble, snapshot_id);
  return !chunks.empty() && chunks.back()->last();
}

// Every connection the snapshot listed, by id.
std::map<std::string, v1::ClientInfo> Listed(const Preamble& preamble, std::uint64_t snapshot_id) {
  std::map<std::string, v1::ClientInfo> listed;
  for (const auto* chunk : ChunksOf(preamble, snapshot_id)) {
    for (const auto& info : chunk->connections()) {
      EXPECT_TRUE(listed.emplace(info.connection_id(), info).second) << info.connection_id() << " listed twice";
    }
  }
  return listed;
}

// The id of the first snapshot received after the hello at `hello_index`.
std::uint64_t SnapshotAfter(const Preamble& preamble, std::size_t hello_index) {
  for (std::size_t i = hello_index + 1; i < preamble.size(); ++i) {
    if (preamble[i].message.has_snapshot()) return preamble[i].message.snapshot().snapshot_id();
  }
  return 0;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = ScriptedStack::Start({"--threads", "2"}, &error_);
    ASSERT_NE(stack_, nullptr) << error_;
  }

  // Replaces the backend with a new one on the same port, as a backend
  // pod restarting: it has seen nothing.
  void RestartBackend() {
    const int port = stack_->backend->port();
    stack_->backend.reset();
    stack_->backend = ScriptedBackend::Start(&error_, port);
    ASSERT_NE(stack_->backend, nullptr) << error_;
  }

  // The Open events' connection ids, by path, once `count` arrived.
  std::map<std::string, std::string> WaitForOpens(std::size_t count) {
    std::map<std::string, std::string> ids;
    EXPECT_TRUE(stack_->backend->WaitUntil(
        [&](const std::vector<v1::Event>& events) {
          ids.clear();
          for (const auto& event : events) {
            if (event.has_open()) ids[event.open().path()] = event.connection_id();
          }
          return ids.size() >= count;
        },
        kWait));
    return ids;
  }

  std::unique_ptr<ScriptedStack> stack_;
  std::string error_;
};

// The first stream of a gateway: a hello naming the node, then an empty
// snapshot (nothing is connected yet), before any event.
TEST_F(SnapshotTest, FirstStreamOpensWithHelloAndAnEmptySnapshot) {
  auto& backend = *stack_->backend;
  ASSERT_TRUE(backend.WaitUntilPreamble([](const Preamble& p) { return Complete(p, 1); }, kWait));
  WsClient client;
  ASSERT_EQ(client.Connect(stack_->gateway->ws_port(), "/first").http_status, 101u);
  const auto ids = WaitForOpens(1);
  const auto preamble = backend.preamble();
  ASSERT_GE(preamble.size(), 2u);
  ASSERT_TRUE(preamble[0].message.has_hello());
  const auto& hello = preamble[0].message.hello();
  EXPECT_EQ(hello.node_id(), ids.at("/first").substr(0, hello.node_id().size()));
  EXPECT_EQ(ids.at("/first")[hello.node_id().size()], '-');
  EXPECT_FALSE(hello.version().empty());
  EXPECT_GT(hello.started_at().seconds(), 0);
  EXPECT_EQ(hello.acknowledged(), 0u);
  EXPECT_EQ(preamble[0].message.batch_sequence(), 0u);
  EXPECT_TRUE(Listed(preamble, 1).empty());
  EXPECT_EQ(ChunksOf(preamble, 1).back()->total(), 0u);
  EXPECT_EQ(preamble.back().events_before, 0u) << "an event came before the snapshot ended";
}

// A backend restarted after acknowledging everything gets no replay, but
// learns every open connection from the snapshot, with its details, before
// any event; a connection that closed meanwhile is not listed.
TEST_F(SnapshotTest, ARestartedBackendLearnsEveryOpenConnection) {
  const auto port = stack_->gateway->ws_port();
  std::vector<WsClient> clients(5);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    ASSERT_EQ(clients[i].Connect(port, "/room/" + std::to_string(i) + "?user=u" + std::to_string(i)).http_status, 101u);
  }
  auto ids = WaitForOpens(clients.size());
  clients[4].Close(1000);
  ASSERT_TRUE(stack_->backend->WaitForClose(ids.at("/room/4"), kWait));
  // Everything acknowledged: the gateway holds no event once the backend's
  // ack of the Close came back, which the Close's arrival alone does not say.
  ASSERT_TRUE(PollUntil(kWait, [&] {
    const auto scrape = ScrapeMetrics(stack_->gateway->metrics_port());
    return scrape && scrape->Value("wsgateway_backend_buffered_events", {{"backend", stack_->backend->target()}}) == 0;
  }));

  const std::size_t from_line = stack_->gateway->process().LineCount();
  RestartBackend();
  ASSERT_TRUE(stack_->gateway->WaitForBackendUp(from_line));
  auto& backend = *stack_->backend;
  ASSERT_TRUE(backend.WaitUntilPreamble(
      [](const Preamble& p) { return !p.empty() && Complete(p, SnapshotAfter(p, 0)); }, kWait));
  const auto preamble = backend.preamble();
  ASSERT_TRUE(preamble[0].message.has_hello());
  EXPECT_GT(preamble[0].message.hello().acknowledged(), 0u);
  const auto snapshot_id = SnapshotAfter(preamble, 0);
  const auto listed = Listed(preamble, snapshot_id);
  EXPECT_EQ(ChunksOf(preamble, snapshot_id).back()->total(), 4u);
  ASSERT_EQ(listed.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const auto& id = ids.at("/room/" + std::to_string(i));
    ASSERT_TRUE(listed.count(id)) << id;
    const auto& info = listed.at(id);
    EXPECT_EQ(info.path(), "/room/" + std::to_string(i));
    EXPECT_EQ(info.query(), "user=u" + std::to_string(i));
    EXPECT_EQ(info.state(), v1::CONNECTION_STATE_ACTIVE);
    EXPECT_FALSE(info.remote_address().empty());
    EXPECT_GT(info.connected_at().seconds(), 0);
    EXPECT_EQ(info.node_id(), preamble[0].message.hello().node_id());
  }
  EXPECT_FALSE(listed.count(ids.at("/room/4")));
  EXPECT_TRUE(backend.events().empty()) << "the new backend got replayed events: everything was acknowledged";

  // Events flow after it as before.
  ASSERT_FALSE(clients[0].SendText("after"));
  ASSERT_TRUE(backend.WaitForEvent([](const v1::Event& e) { return e.has_message(); }, kWait));
}

// Clients keep sending while the backend restarts: on the new stream no
// message event comes before its connection was in the snapshot or had an
// Open, and the snapshot's chunks all come before the first event.
TEST_F(SnapshotTest, NoEventForAConnectionBeforeTheBackendKnowsIt) {
  constexpr std::size_t kClients = 200;
  ClientSwarm swarm;
  std::vector<std::string> targets;
  for (std::size_t i = 0; i < kClients; ++i) targets.push_back("/busy/" + std::to_string(i));
  ASSERT_EQ(swarm.ConnectAll(stack_->gateway->ws_port(), targets, 50, kWait), kClients);
  WaitForOpens(kClients);
  // Sends are queued on the swarm's thread and keep flowing while the
  // backend is replaced.
  for (int round = 0; round < 20; ++round) {
    for (std::size_t c = 0; c < kClients; ++c) swarm.Send(c, "m" + std::to_string(round));
  }
  RestartBackend();
  auto& backend = *stack_->backend;
  ASSERT_TRUE(backend.WaitUntilPreamble(
      [](const Preamble& p) { return !p.empty() && Complete(p, SnapshotAfter(p, 0)); }, kWait));
  // More clients come and go while the snapshot is taken and after.
  ClientSwarm late;
  ASSERT_EQ(late.ConnectAll(stack_->gateway->ws_port(), {"/late/0", "/late/1", "/late/2"}, 3, kWait), 3u);
  for (std::size_t c = 0; c < 3; ++c) late.Send(c, "late");
  ASSERT_TRUE(backend.WaitUntil(
      [](const std::vector<v1::Event>& events) {
        std::size_t late_messages = 0;
        for (const auto& e : events) late_messages += e.has_message() && e.message().payload() == "late";
        return late_messages == 3;
      },
      kWait));

  const auto preamble = backend.preamble();
  const auto snapshot_id = SnapshotAfter(preamble, 0);
  const auto listed = Listed(preamble, snapshot_id);
  EXPECT_EQ(listed.size(), kClients);
  for (const auto& entry : preamble) {
    EXPECT_EQ(entry.events_before, 0u) << "an event came inside the preamble";
  }
  std::set<std::string> known;
  for (const auto& [id, info] : listed) known.insert(id);
  for (const auto& event : backend.events()) {
    if (event.has_open()) known.insert(event.connection_id());
    if (event.has_message()) {
      EXPECT_TRUE(known.count(event.connection_id())) << event.connection_id();
    }
  }
}

// A SnapshotCommand is answered with a new snapshot on the same stream,
// listing the connections open at that moment with their groups.
TEST_F(SnapshotTest, TheBackendMayAskForASnapshot) {
  auto& backend = *stack_->backend;
  ASSERT_TRUE(backend.WaitUntilPreamble([](const Preamble& p) { return Complete(p, 1); }, kWait));
  WsClient a;
  WsClient b;
  ASSERT_EQ(a.Connect(stack_->gateway->ws_port(), "/a").http_status, 101u);
  ASSERT_EQ(b.Connect(stack_->gateway->ws_port(), "/b").http_status, 101u);
  const auto ids = WaitForOpens(2);

  v1::CommandBatch ask;
  ask.add_commands()->mutable_snapshot();
  ASSERT_TRUE(backend.Send(ask));
  ASSERT_TRUE(backend.WaitUntilPreamble([](const Preamble& p) { return Complete(p, 2); }, kWait));
  const auto preamble = backend.preamble();
  const auto listed = Listed(preamble, 2);
  EXPECT_EQ(listed.size(), 2u);
  EXPECT_TRUE(listed.count(ids.at("/a")));
  EXPECT_TRUE(listed.count(ids.at("/b")));
  EXPECT_EQ(ChunksOf(preamble, 2).back()->total(), 2u);
}

}  // namespace
}  // namespace wsgateway::testing
