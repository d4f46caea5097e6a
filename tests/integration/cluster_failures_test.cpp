// Three gateways acting as one when things go wrong: a node stopped with
// SIGTERM, an owner that hangs (SIGSTOP), and Redis stopped for 30 s and
// restarted empty. What a caller sees must always be true: NOT_FOUND only
// for connections no live member holds, UNAVAILABLE (within the caller's
// deadline) for an owner that does not answer, and routing that goes on
// while Redis is away.

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "cluster/redis_client.hpp"
#include "gateway/config/redis_url.hpp"
#include "tests/support/admin_client.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kNodes = 3;

class ClusterFailuresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    backend_ = EchoBackendProcess::Start(0, &error);
    ASSERT_TRUE(backend_) << error;
    cluster_ = ClusterStack::Start({.nodes = kNodes, .backend = backend_->target()}, &error);
    ASSERT_TRUE(cluster_) << error;
    for (std::size_t i = 0; i < kNodes; ++i) ids_.push_back(Connect(i));
  }

  // A client on node i (on /n<i>); its connection id.
  std::string Connect(std::size_t i) {
    auto& client = clients_.emplace_back(std::make_unique<WsClient>());
    const auto path = "/n" + std::to_string(i) + "-" + std::to_string(clients_.size());
    EXPECT_EQ(client->Connect(cluster_->node(i).ws_port(), path).http_status, 101u);
    const auto info = cluster_->admin(i).WaitForOne(path, v1::CONNECTION_STATE_ACTIVE);
    EXPECT_TRUE(info.has_value()) << path;
    return info ? info->connection_id() : std::string();
  }

  // Node `via` pushes `text` to the client of node `owner` (from SetUp),
  // which must receive it.
  void ExpectRouted(std::size_t via, std::size_t owner, const std::string& text) {
    const auto pushed = cluster_->admin(via).Push({ids_[owner]}, v1::OPCODE_TEXT, text);
    ASSERT_TRUE(pushed.ok()) << Describe(pushed.status);
    EXPECT_EQ(clients_[owner]->Read().payload, text);
  }

  // The node ids registered in Redis now.
  std::vector<std::string> Registered() {
    cluster::RedisClient redis(*ParseRedisUrl(cluster_->redis().url()).endpoint, 1s);
    const auto result = redis.Command({"ZRANGE", "{stack}:members", "0", "-1"});
    std::vector<std::string> ids;
    if (!result.ok()) return ids;
    for (const auto& value : result.value->elements) ids.push_back(value.text);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::unique_ptr<EchoBackendProcess> backend_;
  std::unique_ptr<ClusterStack> cluster_;
  std::vector<std::unique_ptr<WsClient>> clients_;
  std::vector<std::string> ids_;
};

// SIGTERM: the node's clients get 1001, the others drop it, and its ids are
// NOT_FOUND everywhere; a node that joins is routed to.
TEST_F(ClusterFailuresTest, ANodeStoppedWithSigtermLeavesAndANewOneIsRoutedTo) {
  cluster_->node(2).process().Signal(SIGTERM);
  EXPECT_TRUE(clients_[2]->Read(30s).ec);
  EXPECT_EQ(clients_[2]->CloseCode(), 1001);
  ASSERT_TRUE(cluster_->node(2).process().Wait(30s).has_value());
  const std::vector<std::string> survivors = {cluster_->node_id(0), cluster_->node_id(1)};
  for (std::size_t i = 0; i < 2; ++i) EXPECT_TRUE(cluster_->WaitForMembers(i, survivors, 10s)) << "node " << i;
  for (std::size_t via = 0; via < 2; ++via) {
    const auto exist = cluster_->admin(via).Exist(ids_[2]);
    ASSERT_TRUE(exist.ok()) << Describe(exist.status);
    EXPECT_FALSE(exist.response.exists());
    EXPECT_EQ(cluster_->admin(via).Push({ids_[2]}, v1::OPCODE_TEXT, "gone").status.error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  std::string error;
  ASSERT_TRUE(cluster_->AddNode(&error)) << error;
  const std::size_t joined = cluster_->size() - 1;
  const auto joined_id = Connect(joined);
  ASSERT_FALSE(joined_id.empty());
  // Routed to as soon as the others see it: poll the push, then read.
  const auto pushed =
      PollUntil(10s, [&] { return cluster_->admin(0).Push({joined_id}, v1::OPCODE_TEXT, "welcome").status.ok(); });
  ASSERT_TRUE(pushed);
  EXPECT_EQ(clients_.back()->Read().payload, "welcome");
  ExpectRouted(joined, 1, "from the new node");
}

// An owner that hangs answers nothing: a call for its connections is
// UNAVAILABLE within the caller's deadline (never a hang, never a false),
// and a Broadcast names it among the failed nodes.
TEST_F(ClusterFailuresTest, AHangingOwnerIsUnavailableWithinTheCallersDeadline) {
  AdminClient impatient(cluster_->node(0).admin_port(), 1s);
  cluster_->node(1).process().Signal(SIGSTOP);
  const auto started = std::chrono::steady_clock::now();
  const auto exist = impatient.Exist(ids_[1]);
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(exist.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(exist.status);
  EXPECT_NE(exist.status.error_message().find(cluster_->node_id(1)), std::string::npos);
  EXPECT_LT(waited, 1s);

  const auto pushed = impatient.Push({ids_[0], ids_[1]}, v1::OPCODE_TEXT, "partly");
  ASSERT_TRUE(pushed.ok()) << Describe(pushed.status);
  ASSERT_EQ(pushed.response.results_size(), 2);
  EXPECT_EQ(pushed.response.results(0).code(), 0);
  EXPECT_EQ(pushed.response.results(1).code(), int(grpc::StatusCode::UNAVAILABLE));

  const auto broadcast = impatient.Broadcast(v1::OPCODE_TEXT, "all");
  cluster_->node(1).process().Signal(SIGCONT);
  ASSERT_TRUE(broadcast.ok()) << Describe(broadcast.status);
  ASSERT_EQ(broadcast.response.failed_nodes_size(), 1);
  EXPECT_EQ(broadcast.response.failed_nodes(0).node_id(), cluster_->node_id(1));
  EXPECT_EQ(broadcast.response.queued(), 2u);
  EXPECT_EQ(clients_[0]->Read().payload, "partly");
  EXPECT_EQ(clients_[0]->Read().payload, "all");

  // Awake again, it answers as before.
  ExpectRouted(0, 1, "back");

  // And the metrics say what happened.
  const auto scrape = ScrapeMetrics(cluster_->node(0).metrics_port());
  ASSERT_TRUE(scrape.has_value());
  EXPECT_GE(scrape->Sum("wsgateway_cluster_forwarded_calls_total", {{"code", "DEADLINE_EXCEEDED"}}), 3);
  EXPECT_GE(scrape->Sum("wsgateway_cluster_forwarded_calls_total", {{"method", "Deliver"}, {"code", "OK"}}), 1);
  EXPECT_EQ(scrape->Value("wsgateway_cluster_nodes"), static_cast<double>(kNodes));
  EXPECT_EQ(scrape->Value("wsgateway_cluster_redis_up"), 1.0);
}

// Redis stopped for 30 s: routing between the live nodes goes on with the
// cached view. Restarted empty: every node registers again by itself.
TEST_F(ClusterFailuresTest, RoutingOutlivesRedisAndTheNodesRegisterAgainAfterItLostItsData) {
  cluster_->redis().process().Signal(SIGSTOP);
  const auto until = std::chrono::steady_clock::now() + 30s;
  int round = 0;
  while (std::chrono::steady_clock::now() < until) {
    const auto via = static_cast<std::size_t>(round % kNodes);
    const auto owner = static_cast<std::size_t>((round + 1) % kNodes);
    ExpectRouted(via, owner, "round " + std::to_string(round));
    if (HasFailure()) break;
    ++round;
    // Paces the rounds; each round's outcome is asserted above.
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_GT(round, 50);
  for (std::size_t i = 0; i < kNodes; ++i) EXPECT_EQ(cluster_->Nodes(i).size(), kNodes) << "node " << i;

  std::string error;
  ASSERT_TRUE(cluster_->redis().Restart(&error)) << error;
  auto expected = cluster_->live_ids();
  std::sort(expected.begin(), expected.end());
  EXPECT_TRUE(PollUntil(15s, [&] { return Registered() == expected; }));
  ExpectRouted(2, 0, "after the restart");
}

// SIGHUP re-reads the token file: the tokens a node accepts and the one it
// sends. A node that sends a token its peer does not accept yet gets
// UNAVAILABLE (and UNAUTHENTICATED in its metrics), never a wrong answer.
TEST_F(ClusterFailuresTest, SighupRotatesTheSharedToken) {
  std::ofstream(cluster_->token_file()) << "rotated-token\n";
  const auto from = cluster_->node(0).process().LineCount();
  cluster_->node(0).process().Signal(SIGHUP);
  ASSERT_TRUE(cluster_->node(0).process().WaitForLine("cluster tokens reloaded", 10s, from));

  const auto refused = cluster_->admin(0).Exist(ids_[1]);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(refused.status);
  const auto scrape = ScrapeMetrics(cluster_->node(0).metrics_port());
  ASSERT_TRUE(scrape.has_value());
  EXPECT_GE(scrape->Sum("wsgateway_cluster_forwarded_calls_total", {{"code", "UNAUTHENTICATED"}}), 1);

  for (std::size_t i = 1; i < kNodes; ++i) {
    const auto line = cluster_->node(i).process().LineCount();
    cluster_->node(i).process().Signal(SIGHUP);
    ASSERT_TRUE(cluster_->node(i).process().WaitForLine("cluster tokens reloaded", 10s, line));
  }
  ExpectRouted(0, 1, "with the new token");
  ExpectRouted(2, 0, "and back");
}

}  // namespace
}  // namespace wsgateway::testing
