// Many clients at once: broadcast to 1,000 clients and paging through 2,500
// connections.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"

namespace wsgateway::testing {
namespace {

using grpc::StatusCode;

std::vector<std::string> Targets(const std::string& prefix, std::size_t n) {
  std::vector<std::string> targets;
  for (std::size_t i = 0; i < n; ++i) targets.push_back(prefix + std::to_string(i));
  return targets;
}

std::int64_t Nanos(const google::protobuf::Timestamp& t) { return t.seconds() * 1'000'000'000LL + t.nanos(); }

// A broadcast reaches each of 1,000 clients exactly once.
TEST(BroadcastScaleTest, BroadcastToAThousandClientsReachesEachExactlyOnce) {
  std::string error;
  auto stack = EchoStack::Start({}, &error);
  ASSERT_NE(stack, nullptr) << error;
  constexpr std::size_t kClients = 1000;
  ClientSwarm swarm;
  ASSERT_EQ(swarm.ConnectAll(stack->gateway->ws_port(), Targets("/fan/", kClients), 100, std::chrono::seconds(60)),
            kClients);
  AdminClient admin(stack->gateway->admin_port());
  v1::ConnectionFilter active;
  active.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(admin.WaitForCount(active, kClients)) << "not all clients became ACTIVE";

  const auto first = admin.Broadcast(v1::OPCODE_TEXT, "first broadcast");
  ASSERT_TRUE(first.ok()) << Describe(first.status);
  EXPECT_EQ(first.response.queued(), kClients);
  ASSERT_TRUE(swarm.WaitForTotalReceived(kClients, std::chrono::seconds(60)))
      << "received " << swarm.TotalReceived() << " of " << kClients;

  const auto second = admin.Broadcast(v1::OPCODE_BINARY, "second broadcast");
  ASSERT_TRUE(second.ok()) << Describe(second.status);
  EXPECT_EQ(second.response.queued(), kClients);
  ASSERT_TRUE(swarm.WaitForTotalReceived(2 * kClients, std::chrono::seconds(60)))
      << "received " << swarm.TotalReceived() << " of " << 2 * kClients;

  // Each client has exactly the two broadcasts, once each, in order.
  for (std::size_t i = 0; i < kClients; ++i) {
    const auto state = swarm.State(i);
    ASSERT_EQ(state.messages.size(), 2u) << "client " << i;
    EXPECT_EQ(state.messages[0].payload, "first broadcast") << "client " << i;
    EXPECT_FALSE(state.messages[0].binary);
    EXPECT_EQ(state.messages[1].payload, "second broadcast") << "client " << i;
    EXPECT_TRUE(state.messages[1].binary);
  }
  EXPECT_EQ(swarm.TotalReceived(), 2 * kClients) << "a client received something twice";
}

// 2,500 connections are held open by one gateway for the paging tests.
class PaginationTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kClients = 2500;

  static void SetUpTestSuite() {
    stack_ = EchoStack::Start({}, &error_).release();
    if (stack_ == nullptr) return;
    swarm_ = new ClientSwarm();
    const auto connected =
        swarm_->ConnectAll(stack_->gateway->ws_port(), Targets("/p/", kClients), 200, std::chrono::seconds(90));
    if (connected != kClients) {
      error_ = "only " + std::to_string(connected) + " of 2500 clients connected";
      return;
    }
    admin_ = new AdminClient(stack_->gateway->admin_port());
    v1::ConnectionFilter filter;
    filter.set_path_prefix("/p/");
    filter.set_state(v1::CONNECTION_STATE_ACTIVE);
    if (!admin_->WaitForCount(filter, kClients, std::chrono::seconds(60))) {
      error_ = "the gateway never listed 2500 ACTIVE connections";
      return;
    }
    ready_ = true;
  }
  static void TearDownTestSuite() {
    delete admin_;
    delete swarm_;
    delete stack_;
    admin_ = nullptr;
    swarm_ = nullptr;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << error_; }

  // Walks every page; checks page sizes and returns the listed connections.
  static std::vector<v1::ClientInfo> Walk(std::uint32_t page_size, std::uint32_t expected_page_size,
                                          const std::string& prefix) {
    std::vector<v1::ClientInfo> all;
    v1::ListConnectionsRequest request;
    request.set_page_size(page_size);
    request.mutable_filter()->set_path_prefix(prefix);
    for (int pages = 0;; ++pages) {
      EXPECT_LT(pages, 10000);
      if (pages >= 10000) break;
      const auto reply = admin_->ListConnections(request);
      EXPECT_TRUE(reply.ok()) << Describe(reply.status);
      if (!reply.ok()) break;
      const auto size = static_cast<std::uint32_t>(reply.response.connections_size());
      EXPECT_LE(size, expected_page_size);
      if (!reply.response.next_page_token().empty()) {
        EXPECT_EQ(size, expected_page_size) << "only the last page may be short";
      }
      for (const auto& info : reply.response.connections()) all.push_back(info);
      if (reply.response.next_page_token().empty()) break;
      request.set_page_token(reply.response.next_page_token());
    }
    return all;
  }

  static void ExpectEachOnceInListingOrder(const std::vector<v1::ClientInfo>& listed,
                                           const std::set<std::string>& paths) {
    std::multiset<std::string> ids;
    std::set<std::string> seen_paths;
    for (const auto& info : listed) {
      ids.insert(info.connection_id());
      seen_paths.insert(info.path());
    }
    EXPECT_EQ(listed.size(), paths.size());
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), listed.size()) << "an id was listed twice";
    EXPECT_EQ(seen_paths, paths);
    // The documented order: by event loop, oldest first within a loop. The
    // loop is the id's middle field (white-box: clients treat ids as opaque).
    auto loop_of = [](const std::string& id) {
      const auto first = id.find('-');
      return id.substr(first + 1, id.find('-', first + 1) - first - 1);
    };
    std::size_t out_of_order = 0;
    for (std::size_t i = 1; i < listed.size(); ++i) {
      const auto previous_loop = std::stoul(loop_of(listed[i - 1].connection_id()), nullptr, 16);
      const auto loop = std::stoul(loop_of(listed[i].connection_id()), nullptr, 16);
      if (loop < previous_loop) ++out_of_order;
      if (loop == previous_loop && Nanos(listed[i].connected_at()) < Nanos(listed[i - 1].connected_at())) {
        ++out_of_order;
      }
    }
    EXPECT_EQ(out_of_order, 0u) << "connections are not listed by loop, oldest first within a loop";
  }

  static std::set<std::string> Paths(const std::string& prefix, std::size_t n, const std::string& starts_with = "") {
    std::set<std::string> paths;
    for (const auto& t : Targets(prefix, n)) {
      if (t.rfind(starts_with, 0) == 0) paths.insert(t);
    }
    return paths;
  }

  static inline EchoStack* stack_ = nullptr;
  static inline ClientSwarm* swarm_ = nullptr;
  static inline AdminClient* admin_ = nullptr;
  static inline std::string error_;
  static inline bool ready_ = false;
};

// Page size 0 means pages of 100: 25 pages list every connection exactly once.
TEST_F(PaginationTest, DefaultPagesListEveryConnectionExactlyOnce) {
  const auto listed = Walk(0, 100, "/p/");
  ExpectEachOnceInListingOrder(listed, Paths("/p/", kClients));
}

// Pages of the maximum size 1000 list every connection exactly once.
TEST_F(PaginationTest, LargestPagesListEveryConnectionExactlyOnce) {
  const auto listed = Walk(1000, 1000, "/p/");
  ExpectEachOnceInListingOrder(listed, Paths("/p/", kClients));
}

// Odd page sizes with a path filter see exactly the matching connections.
TEST_F(PaginationTest, FilteredOddSizedPagesSeeExactlyTheMatchingConnections) {
  // "/p/1" matches /p/1, /p/10-19, /p/100-199 and /p/1000-1999: 1,111 paths.
  const auto listed = Walk(333, 333, "/p/1");
  ExpectEachOnceInListingOrder(listed, Paths("/p/", kClients, "/p/1"));
  EXPECT_EQ(listed.size(), 1111u);
}

// A page size above 1000 is either refused or served as at most 1000.
TEST_F(PaginationTest, PageSizeAboveTheMaximumIsCapped) {
  v1::ListConnectionsRequest request;
  request.set_page_size(5000);
  const auto reply = admin_->ListConnections(request);
  if (reply.ok()) {
    EXPECT_EQ(reply.response.connections_size(), 1000);
    EXPECT_FALSE(reply.response.next_page_token().empty());
  } else {
    EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(reply.status);
  }
}

// Connections that close while a listing is paged through do not make the
// remaining ones skipped or repeated.
TEST_F(PaginationTest, ClosingConnectionsDuringPagingSkipsNoOtherConnection) {
  constexpr std::size_t kExtra = 300;
  const std::size_t first_index = swarm_->size();
  ASSERT_EQ(swarm_->ConnectAll(stack_->gateway->ws_port(), Targets("/q/", kExtra), 100, std::chrono::seconds(60)),
            kExtra);
  v1::ConnectionFilter filter;
  filter.set_path_prefix("/q/");
  filter.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(admin_->WaitForCount(filter, kExtra));

  v1::ListConnectionsRequest request;
  request.set_page_size(100);
  *request.mutable_filter() = filter;
  const auto first = admin_->ListConnections(request);
  ASSERT_TRUE(first.ok()) << Describe(first.status);
  ASSERT_EQ(first.response.connections_size(), 100);
  ASSERT_FALSE(first.response.next_page_token().empty());

  // Close the clients of the first page, and wait until they are gone.
  std::map<std::string, std::size_t> index_by_address;
  for (std::size_t i = first_index; i < first_index + kExtra; ++i) index_by_address[swarm_->State(i).local_address] = i;
  std::set<std::string> first_page;
  for (const auto& info : first.response.connections()) {
    first_page.insert(info.connection_id());
    ASSERT_EQ(index_by_address.count(info.remote_address()), 1u) << info.remote_address();
    swarm_->Close(index_by_address[info.remote_address()]);
  }
  ASSERT_TRUE(admin_->WaitForCount(filter, kExtra - 100));

  std::multiset<std::string> rest;
  request.set_page_token(first.response.next_page_token());
  for (int pages = 0; pages < 100; ++pages) {
    const auto reply = admin_->ListConnections(request);
    ASSERT_TRUE(reply.ok()) << Describe(reply.status);
    for (const auto& info : reply.response.connections()) rest.insert(info.connection_id());
    if (reply.response.next_page_token().empty()) break;
    request.set_page_token(reply.response.next_page_token());
  }
  EXPECT_EQ(rest.size(), kExtra - 100) << "connections were skipped or repeated after others closed";
  for (const auto& id : rest) {
    EXPECT_EQ(first_page.count(id), 0u) << id << " was listed on the first page and again later";
    EXPECT_EQ(rest.count(id), 1u) << id;
  }
}

}  // namespace
}  // namespace wsgateway::testing
