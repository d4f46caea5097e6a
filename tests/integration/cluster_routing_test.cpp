// Three gateways acting as one (cluster mode), with one backend and a Redis
// of the test's own: an Admin call on any node reaches connections on every
// node, Broadcast reaches every client once, ListConnections pages over
// every node, the backend's commands for another node's connections are
// delivered, and every node lists the same nodes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/client_swarm.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/scripted_backend.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using ::testing::ElementsAreArray;
using namespace std::chrono_literals;

constexpr std::size_t kNodes = 3;

class ClusterRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    backend_ = ScriptedBackend::Start(&error);
    ASSERT_TRUE(backend_) << error;
    cluster_ = ClusterStack::Start({.nodes = kNodes, .backend = backend_->target()}, &error);
    ASSERT_TRUE(cluster_) << error;
  }

  // One client on each node, on /n<i>; their ids, in node order.
  std::vector<std::string> ConnectOnePerNode() {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < kNodes; ++i) {
      auto& client = clients_.emplace_back(std::make_unique<WsClient>());
      const auto path = "/n" + std::to_string(i);
      EXPECT_EQ(client->Connect(cluster_->node(i).ws_port(), path).http_status, 101u);
      const auto info = cluster_->admin(i).WaitForOne(path, v1::CONNECTION_STATE_ACTIVE);
      EXPECT_TRUE(info.has_value()) << path;
      ids.push_back(info ? info->connection_id() : std::string());
    }
    return ids;
  }

  std::unique_ptr<ScriptedBackend> backend_;
  std::unique_ptr<ClusterStack> cluster_;
  std::vector<std::unique_ptr<WsClient>> clients_;
};

// Every Admin method, called on each node for a connection on each node.
TEST_F(ClusterRoutingTest, EveryAdminMethodReachesConnectionsOnEveryNode) {
  const auto ids = ConnectOnePerNode();
  ASSERT_EQ(ids.size(), kNodes);
  for (std::size_t via = 0; via < kNodes; ++via) {
    auto& admin = cluster_->admin(via);
    for (std::size_t owner = 0; owner < kNodes; ++owner) {
      SCOPED_TRACE("via node " + std::to_string(via) + ", connection on node " + std::to_string(owner));
      const auto& id = ids[owner];
      const auto payload = "from " + std::to_string(via);
      const auto pushed = admin.Push({id}, v1::OPCODE_TEXT, payload);
      ASSERT_TRUE(pushed.ok()) << Describe(pushed.status);
      EXPECT_EQ(clients_[owner]->Read().payload, payload);

      const auto exist = admin.Exist(id);
      ASSERT_TRUE(exist.ok()) << Describe(exist.status);
      EXPECT_TRUE(exist.response.exists());
      const auto established = admin.IsEstablished(id);
      ASSERT_TRUE(established.ok()) << Describe(established.status);
      EXPECT_TRUE(established.response.established());

      const auto info = admin.GetClientInfo(id);
      ASSERT_TRUE(info.ok()) << Describe(info.status);
      EXPECT_EQ(info.response.info().connection_id(), id);
      EXPECT_EQ(info.response.info().path(), "/n" + std::to_string(owner));
      EXPECT_EQ(info.response.info().node_id(), cluster_->node_id(owner));

      const auto joined = admin.JoinGroup(id, {"room-" + std::to_string(via)});
      ASSERT_TRUE(joined.ok()) << Describe(joined.status);
      EXPECT_THAT(joined.response.groups(), ::testing::Contains("room-" + std::to_string(via)));
      const auto left = admin.LeaveGroup(id, {"room-" + std::to_string(via)});
      ASSERT_TRUE(left.ok()) << Describe(left.status);
      EXPECT_THAT(left.response.groups(), ::testing::Not(::testing::Contains("room-" + std::to_string(via))));
    }
  }

  // One Push naming connections on every node (and ids no member owns):
  // one result per id, in the order of the request.
  const std::string stranger = "00000000000000ff-0-1";
  std::vector<std::string> mixed = {ids[2], stranger, ids[0], ids[1], "not-an-id"};
  const auto pushed = cluster_->admin(1).Push(mixed, v1::OPCODE_TEXT, "to all");
  ASSERT_TRUE(pushed.ok()) << Describe(pushed.status);
  ASSERT_EQ(pushed.response.results_size(), 5);
  std::vector<int> codes;
  for (const auto& result : pushed.response.results()) codes.push_back(result.code());
  EXPECT_THAT(codes, ElementsAreArray({0, int(grpc::StatusCode::NOT_FOUND), 0, 0, int(grpc::StatusCode::NOT_FOUND)}));
  EXPECT_EQ(pushed.response.results(0).connection_id(), ids[2]);
  EXPECT_EQ(pushed.response.queued(), 3u);
  for (std::size_t owner = 0; owner < kNodes; ++owner) EXPECT_EQ(clients_[owner]->Read().payload, "to all");

  const auto unknown = cluster_->admin(0).Exist(stranger);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown.response.exists());
  EXPECT_EQ(cluster_->admin(0).GetClientInfo(stranger).status.error_code(), grpc::StatusCode::NOT_FOUND);

  // Disconnect through another node: the client sees the code.
  const auto closed = cluster_->admin(0).Disconnect(ids[2], 4001, "moved");
  ASSERT_TRUE(closed.ok()) << Describe(closed.status);
  EXPECT_TRUE(clients_[2]->Read().ec);
  EXPECT_EQ(clients_[2]->CloseCode(), 4001);
  EXPECT_TRUE(cluster_->admin(1).WaitForExist(ids[2], false));
}

// Broadcast through one node reaches every matching client on all three,
// exactly once, with path and group filters; the counts are summed.
TEST_F(ClusterRoutingTest, BroadcastReachesEveryClientOnEveryNodeExactlyOnce) {
  constexpr std::size_t kPerNode = 20;
  ClientSwarm swarm;
  // Clients i: node i % 3, path /a for even i, /b for odd.
  std::vector<std::string> targets;
  for (std::size_t node = 0; node < kNodes; ++node) {
    std::vector<std::string> node_targets;
    for (std::size_t k = 0; k < kPerNode; ++k) node_targets.push_back(k % 2 == 0 ? "/a" : "/b");
    ASSERT_EQ(swarm.ConnectAll(cluster_->node(node).ws_port(), node_targets, 20, 30s), kPerNode);
  }
  v1::ConnectionFilter all;
  all.set_state(v1::CONNECTION_STATE_ACTIVE);
  const auto listed = cluster_->admin(0).WaitForCount(all, kNodes * kPerNode);
  ASSERT_TRUE(listed.has_value());
  // The /a clients on node 1 join "lobby" (through node 2).
  std::size_t lobby = 0;
  for (const auto& info : *listed) {
    if (info.node_id() == cluster_->node_id(1) && info.path() == "/a") {
      ASSERT_TRUE(cluster_->admin(2).JoinGroup(info.connection_id(), {"lobby"}).ok());
      ++lobby;
    }
  }
  ASSERT_EQ(lobby, kPerNode / 2);

  const auto everyone = cluster_->admin(0).Broadcast(v1::OPCODE_TEXT, "everyone");
  ASSERT_TRUE(everyone.ok()) << Describe(everyone.status);
  EXPECT_EQ(everyone.response.queued(), kNodes * kPerNode);
  EXPECT_EQ(everyone.response.failed_nodes_size(), 0);
  const auto path_a = cluster_->admin(1).Broadcast(v1::OPCODE_TEXT, "a only", "/a");
  ASSERT_TRUE(path_a.ok()) << Describe(path_a.status);
  EXPECT_EQ(path_a.response.queued(), kNodes * kPerNode / 2);
  v1::BroadcastRequest to_lobby;
  to_lobby.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
  to_lobby.mutable_frame()->set_payload("lobby");
  to_lobby.mutable_filter()->set_group("lobby");
  const auto grouped = cluster_->admin(2).Broadcast(to_lobby);
  ASSERT_TRUE(grouped.ok()) << Describe(grouped.status);
  EXPECT_EQ(grouped.response.queued(), lobby);

  const std::size_t expected = kNodes * kPerNode + kNodes * kPerNode / 2 + lobby;
  ASSERT_TRUE(swarm.WaitForTotalReceived(expected, 30s)) << swarm.TotalReceived() << " of " << expected;
  // Exactly once each: per client, the messages it should have and no more.
  for (std::size_t i = 0; i < swarm.size(); ++i) {
    const auto state = swarm.State(i);
    std::multiset<std::string> got;
    for (const auto& message : state.messages) got.insert(message.payload);
    EXPECT_EQ(got.count("everyone"), 1u) << "client " << i;
    const bool on_a = (i % kPerNode) % 2 == 0;
    EXPECT_EQ(got.count("a only"), on_a ? 1u : 0u) << "client " << i;
  }
  EXPECT_EQ(swarm.TotalReceived(), expected);
}

// ListConnections through any node pages over 2,500 connections spread
// over the three, with no repeat and no miss.
TEST_F(ClusterRoutingTest, ListConnectionsPagesOverEveryNodeWithNoRepeatAndNoMiss) {
  constexpr std::size_t kTotal = 2500;
  ClientSwarm swarm;
  for (std::size_t node = 0; node < kNodes; ++node) {
    const std::size_t count = kTotal / kNodes + (node < kTotal % kNodes ? 1 : 0);
    ASSERT_EQ(swarm.ConnectAll(cluster_->node(node).ws_port(), std::vector<std::string>(count, "/many"), 100, 60s),
              count);
  }
  v1::ConnectionFilter many;
  many.set_path_prefix("/many");
  many.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(cluster_->admin(0).WaitForCount(many, kTotal, 60s).has_value());
  std::set<std::string> first;
  for (std::size_t via = 0; via < kNodes; ++via) {
    for (const std::uint32_t page_size : {97u, 1000u}) {
      SCOPED_TRACE("via node " + std::to_string(via) + ", pages of " + std::to_string(page_size));
      grpc::Status error;
      const auto all = cluster_->admin(via).ListAll(many, page_size, &error);
      ASSERT_TRUE(all.has_value()) << Describe(error);
      std::set<std::string> ids;
      std::map<std::string, std::size_t> per_node;
      for (const auto& info : *all) {
        EXPECT_TRUE(ids.insert(info.connection_id()).second) << "listed twice: " << info.connection_id();
        ++per_node[info.node_id()];
      }
      EXPECT_EQ(ids.size(), kTotal);
      EXPECT_EQ(per_node.size(), kNodes);
      if (first.empty()) first = ids;
      EXPECT_EQ(ids, first);
    }
  }
  // A page token from a single gateway (no node in it) is refused.
  v1::ListConnectionsRequest request;
  request.set_page_token("not a cursor");
  EXPECT_EQ(cluster_->admin(1).ListConnections(request).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Commands the backend sends on one node's stream for connections another
// node owns are delivered; every Open event and batch names its node, and
// every node lists the same nodes.
TEST_F(ClusterRoutingTest, BackendCommandsReachOtherNodesAndEveryNodeAgreesOnTheNodes) {
  const auto ids = ConnectOnePerNode();
  // "relay <id> <text>": push <text> to <id>, in reply to the batch.
  backend_->SetEventHandler([](const v1::Event& event, v1::CommandBatch& reply) {
    if (!event.has_message()) return;
    const auto& text = event.message().payload();
    if (text.rfind("relay ", 0) != 0) return;
    const auto space = text.find(' ', 6);
    auto* push = reply.add_commands()->mutable_push();
    push->add_connection_ids(text.substr(6, space - 6));
    push->mutable_frame()->set_opcode(v1::OPCODE_TEXT);
    push->mutable_frame()->set_payload(text.substr(space + 1));
  });
  ASSERT_FALSE(clients_[0]->SendText("relay " + ids[2] + " hello from node 0"));
  EXPECT_EQ(clients_[2]->Read().payload, "hello from node 0");
  ASSERT_FALSE(clients_[2]->SendText("relay " + ids[1] + " hello from node 2"));
  EXPECT_EQ(clients_[1]->Read().payload, "hello from node 2");

  for (std::size_t owner = 0; owner < kNodes; ++owner) {
    const auto open = backend_->WaitForOpen("/n" + std::to_string(owner), 10s);
    ASSERT_TRUE(open.has_value());
    EXPECT_EQ(open->open().node_id(), cluster_->node_id(owner));
  }
  for (std::size_t i = 0; i < kNodes; ++i) {
    const auto nodes = cluster_->Nodes(i);
    ASSERT_EQ(nodes.size(), kNodes);
    std::vector<std::string> ids_listed;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
      ids_listed.push_back(nodes[k].node_id());
      EXPECT_EQ(nodes[k].state(), v1::NODE_STATE_SERVING);
      EXPECT_FALSE(nodes[k].advertised_address().empty());
      EXPECT_EQ(nodes[k].version(), cluster_->Nodes(0)[k].version());
      EXPECT_EQ(nodes[k].advertised_address(), cluster_->Nodes(0)[k].advertised_address());
      EXPECT_EQ(nodes[k].pod_name(), cluster_->Nodes(0)[k].pod_name());
    }
    EXPECT_TRUE(std::is_sorted(ids_listed.begin(), ids_listed.end()));
    auto expected = cluster_->live_ids();
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ids_listed, expected);
  }
}

}  // namespace
}  // namespace wsgateway::testing
