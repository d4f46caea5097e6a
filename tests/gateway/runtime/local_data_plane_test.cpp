// LocalDataPlane, in-process: a Gateway on loopback port 0 with two event
// loops and no backend, driven through the DataPlane face only, with
// Boost.Beast clients on the test thread. Every call's answer is handed back
// through a promise and waited for with a deadline; connections are found by
// listing them (the face again) until the one of a client's address shows.

#include "gateway/runtime/local_data_plane.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/websocket/error.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/data_plane/connection_id.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/runtime/gateway.hpp"
#include "metrics/gateway_metrics.hpp"
#include "tests/gateway/runtime/in_process_gateway.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway {
namespace {

using namespace std::chrono_literals;
using wsgateway::testing::RawTcpConnection;
using wsgateway::testing::WsClient;

constexpr auto kDeadline = 10s;
constexpr auto kNoDeadline = DataPlane::Deadline::max();
constexpr auto kIo = std::chrono::milliseconds(10'000);

OutboundFrame Text(std::string text) {
  return OutboundFrame{FrameType::kText, std::make_shared<const std::string>(std::move(text)), 0};
}

std::vector<Outcome> Outcomes(const std::vector<ConnectionResult>& results) {
  std::vector<Outcome> out;
  for (const auto& result : results) out.push_back(result.outcome);
  return out;
}

class LocalDataPlaneTest : public testing::InProcessGatewayTest {
 protected:
  void SetUp() override {
    InProcessGatewayTest::SetUp();
    plane_ = std::make_unique<LocalDataPlane>(*gateway_);
  }

  // Runs `call(done)` and waits for its answer; nullopt if none came in time.
  template <typename Result, typename Call>
  std::optional<Result> Await(Call call) {
    auto promise = std::make_shared<std::promise<Result>>();
    auto future = promise->get_future();
    call([promise](Result result) { promise->set_value(std::move(result)); });
    if (future.wait_for(kDeadline) != std::future_status::ready) return std::nullopt;
    return future.get();
  }

  std::optional<std::vector<ConnectionResult>> Push(std::vector<std::string> ids, OutboundFrame frame) {
    return Await<std::vector<ConnectionResult>>(
        [&](auto done) { plane_->Push(std::move(ids), std::move(frame), kNoDeadline, std::move(done)); });
  }
  std::optional<std::vector<ConnectionResult>> Deliver(std::vector<Delivery> deliveries) {
    return Await<std::vector<ConnectionResult>>(
        [&](auto done) { plane_->Deliver(std::move(deliveries), kNoDeadline, std::move(done)); });
  }
  std::optional<BroadcastTally> Broadcast(v1::ConnectionFilter filter, OutboundFrame frame,
                                          std::vector<std::string> exclude) {
    return Await<BroadcastTally>([&](auto done) {
      plane_->Broadcast(std::move(filter), std::move(frame), std::move(exclude), kNoDeadline, std::move(done));
    });
  }
  std::optional<ConnectionResult> Close(const std::string& id, std::uint16_t code, std::string reason) {
    return Await<ConnectionResult>(
        [&](auto done) { plane_->Close(id, code, std::move(reason), kNoDeadline, std::move(done)); });
  }
  std::optional<ConnectionResult> Find(const std::string& id) {
    return Await<ConnectionResult>([&](auto done) { plane_->Find(id, kNoDeadline, std::move(done)); });
  }
  std::optional<std::pair<ConnectionResult, v1::ClientInfo>> Describe(const std::string& id) {
    return Await<std::pair<ConnectionResult, v1::ClientInfo>>(
        [&](auto done) { plane_->Describe(id, kNoDeadline, std::move(done)); });
  }
  std::optional<ListPage> List(std::uint32_t page_size, std::string token, v1::ConnectionFilter filter = {}) {
    return Await<ListPage>(
        [&](auto done) { plane_->List(std::move(filter), page_size, std::move(token), kNoDeadline, std::move(done)); });
  }
  std::optional<GroupsResult> ChangeGroups(const std::string& id, GroupChange change) {
    return Await<GroupsResult>(
        [&](auto done) { plane_->ChangeGroups(id, std::move(change), kNoDeadline, std::move(done)); });
  }

  // Every connection, listed page after page.
  std::vector<v1::ClientInfo> ListAll(std::uint32_t page_size = 1000) {
    std::vector<v1::ClientInfo> all;
    std::string token;
    do {
      auto page = List(page_size, token);
      EXPECT_TRUE(page.has_value());
      if (!page) break;
      EXPECT_FALSE(page->bad_page_token);
      all.insert(all.end(), page->connections.begin(), page->connections.end());
      token = page->next_page_token;
    } while (!token.empty());
    return all;
  }

  // The id of the connection from `address` once it is in `state`; empty
  // if it did not get there in time. Each round trip goes through every
  // loop, so work the gateway queued before it has run.
  std::string WaitForState(const std::string& address, v1::ConnectionState state) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& info : ListAll()) {
        if (info.remote_address() == address && info.state() == state) return info.connection_id();
      }
      std::this_thread::yield();
    }
    return {};
  }

  // A client that completed its upgrade on `target`, and its id.
  std::string ConnectActive(WsClient& client, const std::string& target = "/") {
    const auto upgrade = client.Connect(port_, target, {}, kIo);
    EXPECT_FALSE(upgrade.ec) << upgrade.ec.message();
    if (upgrade.ec) return {};
    return WaitForState(client.LocalAddress(), v1::CONNECTION_STATE_ACTIVE);
  }

  static std::size_t LoopOf(const std::string& id) { return ParseConnectionId(id)->loop; }

  // An id of this gateway that no connection has.
  static std::string UnusedId(const std::string& id) {
    auto parsed = *ParseConnectionId(id);
    parsed.counter += 1000;
    return FormatConnectionId(parsed);
  }

  static void ExpectText(WsClient& client, const std::string& text) {
    const auto message = client.Read(kIo);
    ASSERT_FALSE(message.ec) << message.ec.message();
    EXPECT_EQ(message.payload, text);
  }

  static void ExpectClosed(WsClient& client, std::uint16_t code, const std::string& reason) {
    const auto message = client.Read(kIo);
    EXPECT_EQ(message.ec, boost::beast::websocket::error::closed) << message.ec.message();
    EXPECT_EQ(client.CloseCode(), code);
    EXPECT_EQ(client.CloseReason(), reason);
  }

  std::unique_ptr<LocalDataPlane> plane_;
};

// Clients on both loops, for the tests that need them.
class LocalDataPlaneClientsTest : public LocalDataPlaneTest {
 protected:
  // Clients gone first, so the gateway's stop need not wait for them.
  void TearDown() override {
    clients_.clear();
    LocalDataPlaneTest::TearDown();
  }

  void Connect(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      clients_.push_back(std::make_unique<WsClient>());
      ids_.push_back(ConnectActive(*clients_.back()));
      ASSERT_FALSE(ids_.back().empty()) << i;
    }
    std::set<std::size_t> loops;
    for (const auto& id : ids_) loops.insert(LoopOf(id));
    ASSERT_EQ(loops.size(), std::min<std::size_t>(count, 2)) << "connections are spread round-robin";
  }

  std::vector<std::unique_ptr<WsClient>> clients_;
  std::vector<std::string> ids_;
};

// A push to connections on both loops answers in the order of the ids, with
// ids of no connection (ours unused, malformed, empty) as not found; every
// live connection gets the frame.
TEST_F(LocalDataPlaneClientsTest, PushAnswersInTheOrderOfTheIdsAcrossLoops) {
  Connect(3);
  const auto results = Push({ids_[1], UnusedId(ids_[0]), ids_[0], "not-an-id", ids_[2], ""}, Text("hello"));
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ(Outcomes(*results), (std::vector{Outcome::kOk, Outcome::kNotFound, Outcome::kOk, Outcome::kNotFound,
                                             Outcome::kOk, Outcome::kNotFound}));
  EXPECT_EQ((*results)[0].state, v1::CONNECTION_STATE_ACTIVE);
  EXPECT_EQ((*results)[1].state, v1::CONNECTION_STATE_UNSPECIFIED);
  for (auto& client : clients_) ExpectText(*client, "hello");
}

// One id: one answer, found or not.
TEST_F(LocalDataPlaneClientsTest, PushToOneIdAnswersOnce) {
  Connect(1);
  const auto found = Push({ids_[0]}, Text("one"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(Outcomes(*found), std::vector{Outcome::kOk});
  ExpectText(*clients_[0], "one");
  const auto missing = Push({"garbage"}, Text("none"));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(Outcomes(*missing), std::vector{Outcome::kNotFound});
}

// A batch's pushes and closes reach each connection in order: the frames
// queued before a close arrive before it; a close code 0 is a 1000.
TEST_F(LocalDataPlaneClientsTest, DeliverKeepsTheOrderOfEachConnectionAndCloses) {
  Connect(3);
  std::vector<Delivery> batch;
  batch.push_back({ids_[0], Delivery::Kind::kPush, Text("one")});
  batch.push_back({ids_[1], Delivery::Kind::kPush, Text("x")});
  batch.push_back({ids_[0], Delivery::Kind::kPush, Text("two")});
  batch.push_back({ids_[0], Delivery::Kind::kClose, MakeCloseFrame(4000, "bye")});
  batch.push_back({UnusedId(ids_[1]), Delivery::Kind::kPush, Text("lost")});
  batch.push_back({ids_[2], Delivery::Kind::kClose, MakeCloseFrame(0, "")});
  batch.push_back({ids_[0], Delivery::Kind::kPush, Text("too late")});
  const auto results = Deliver(std::move(batch));
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ(Outcomes(*results), (std::vector{Outcome::kOk, Outcome::kOk, Outcome::kOk, Outcome::kOk, Outcome::kNotFound,
                                             Outcome::kOk, Outcome::kNotActive}));
  EXPECT_EQ((*results)[6].state, v1::CONNECTION_STATE_CLOSING);

  ExpectText(*clients_[0], "one");
  ExpectText(*clients_[0], "two");
  ExpectClosed(*clients_[0], 4000, "bye");
  ExpectText(*clients_[1], "x");
  ExpectClosed(*clients_[2], 1000, "");
}

// A broadcast reaches the ACTIVE connections its filter matches, except
// those excluded; the others get nothing (the next frame they read is a
// later push).
TEST_F(LocalDataPlaneTest, BroadcastReachesMatchingConnectionsExceptExcluded) {
  WsClient a1;
  WsClient a2;
  WsClient b;
  WsClient a3;
  const auto id_a1 = ConnectActive(a1, "/a/1");
  const auto id_a2 = ConnectActive(a2, "/a/2");
  const auto id_b = ConnectActive(b, "/b");
  const auto id_a3 = ConnectActive(a3, "/a/3");
  ASSERT_FALSE(id_a1.empty() || id_a2.empty() || id_b.empty() || id_a3.empty());

  v1::ConnectionFilter filter;
  filter.set_path_prefix("/a/");
  const auto tally = Broadcast(filter, Text("to a"), {id_a2, "not-an-id"});
  ASSERT_TRUE(tally.has_value());
  EXPECT_EQ(tally->queued, 2u);
  EXPECT_EQ(tally->dropped_slow_consumers, 0u);
  EXPECT_EQ(tally->refused_invalid_utf8, 0u);

  const auto marker = Push({id_a2, id_b}, Text("marker"));
  ASSERT_TRUE(marker.has_value());
  ExpectText(a1, "to a");
  ExpectText(a3, "to a");
  ExpectText(a2, "marker");
  ExpectText(b, "marker");
}

// Close starts the close handshake of an ACTIVE connection only: one not
// upgraded yet, or already closing, is named with its state; an unknown id
// is not found.
TEST_F(LocalDataPlaneTest, CloseRefusesConnectionsThatAreNotActive) {
  RawTcpConnection raw(port_, kIo);
  ASSERT_TRUE(raw.connected());
  const auto raw_id = WaitForState(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION);
  ASSERT_FALSE(raw_id.empty());
  const auto early = Close(raw_id, 1000, "early");
  ASSERT_TRUE(early.has_value());
  EXPECT_EQ(early->outcome, Outcome::kNotActive);
  EXPECT_EQ(early->state, v1::CONNECTION_STATE_CONNECTION);
  EXPECT_FALSE(WaitForState(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION).empty()) << "still open";

  WsClient client;
  const auto id = ConnectActive(client);
  ASSERT_FALSE(id.empty());
  const auto first = Close(id, 0, "done");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->outcome, Outcome::kOk);
  EXPECT_EQ(first->state, v1::CONNECTION_STATE_ACTIVE);
  // The client has not answered the close yet: it reads nothing until below.
  const auto again = Close(id, 4001, "again");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->outcome, Outcome::kNotActive);
  EXPECT_EQ(again->state, v1::CONNECTION_STATE_CLOSING);
  ExpectClosed(client, 1000, "done");

  const auto unknown = Close(UnusedId(id), 1000, "");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->outcome, Outcome::kNotFound);
}

// Find and Describe answer for live connections, and not found for ids of
// no connection, malformed ones included.
TEST_F(LocalDataPlaneClientsTest, FindAndDescribeKnowOnlyLiveConnections) {
  Connect(1);
  const auto found = Find(ids_[0]);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->outcome, Outcome::kOk);
  EXPECT_EQ(found->state, v1::CONNECTION_STATE_ACTIVE);
  const auto described = Describe(ids_[0]);
  ASSERT_TRUE(described.has_value());
  EXPECT_EQ(described->first.outcome, Outcome::kOk);
  EXPECT_EQ(described->second.connection_id(), ids_[0]);
  EXPECT_EQ(described->second.remote_address(), clients_[0]->LocalAddress());

  for (const auto& unknown : {UnusedId(ids_[0]), std::string("not-an-id"), std::string()}) {
    const auto missing = Find(unknown);
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->outcome, Outcome::kNotFound) << unknown;
    EXPECT_EQ(missing->state, v1::CONNECTION_STATE_UNSPECIFIED) << unknown;
    const auto nothing = Describe(unknown);
    ASSERT_TRUE(nothing.has_value());
    EXPECT_EQ(nothing->first.outcome, Outcome::kNotFound) << unknown;
    EXPECT_TRUE(nothing->second.connection_id().empty()) << unknown;
  }
}

// Small pages walk both loops' connections, each once, loop by loop in id
// order; a token this process did not issue is refused.
TEST_F(LocalDataPlaneClientsTest, ListPagesAcrossLoopsAndRefusesForeignTokens) {
  Connect(5);
  std::vector<std::string> listed;
  for (const auto& info : ListAll(2)) listed.push_back(info.connection_id());
  std::vector<std::string> expected = ids_;
  std::sort(expected.begin(), expected.end(), [](const std::string& a, const std::string& b) {
    const auto x = *ParseConnectionId(a);
    const auto y = *ParseConnectionId(b);
    return std::pair(x.loop, x.counter) < std::pair(y.loop, y.counter);
  });
  EXPECT_EQ(listed, expected);

  const auto first = List(2, "");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->connections.size(), 2u);
  EXPECT_EQ(first->next_page_token, first->connections.back().connection_id());

  v1::ConnectionFilter none;
  none.set_path_prefix("/nowhere");
  const auto empty = List(2, "", none);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->connections.empty());
  EXPECT_TRUE(empty->next_page_token.empty());

  const auto bad = List(2, "garbage");
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(bad->bad_page_token);
  EXPECT_TRUE(bad->connections.empty());
}

// Joining is all or nothing at the per-connection limit; leaving frees
// room; an unknown connection is not found.
TEST_F(LocalDataPlaneClientsTest, ChangeGroupsStopsAtTheLimitAllOrNothing) {
  Connect(1);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < kMaxGroupsPerConnection; ++i) names.push_back("g" + std::to_string(1000 + i));
  const auto full = ChangeGroups(ids_[0], {GroupChange::Kind::kJoin, names});
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->result.outcome, Outcome::kOk);
  EXPECT_EQ(full->groups, names);

  const auto over = ChangeGroups(ids_[0], {GroupChange::Kind::kJoin, {names.front(), "zz-one-more"}});
  ASSERT_TRUE(over.has_value());
  EXPECT_EQ(over->result.outcome, Outcome::kTooManyGroups);
  EXPECT_EQ(over->member_of, kMaxGroupsPerConnection);
  EXPECT_EQ(over->joining, 1u);

  const auto left = ChangeGroups(ids_[0], {GroupChange::Kind::kLeave, {names.front()}});
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->result.outcome, Outcome::kOk);
  EXPECT_EQ(left->groups.size(), kMaxGroupsPerConnection - 1);
  const auto joined = ChangeGroups(ids_[0], {GroupChange::Kind::kJoin, {"zz-one-more"}});
  ASSERT_TRUE(joined.has_value());
  EXPECT_EQ(joined->result.outcome, Outcome::kOk);
  EXPECT_EQ(joined->groups.back(), "zz-one-more");

  const auto unknown = ChangeGroups(UnusedId(ids_[0]), {GroupChange::Kind::kJoin, {"a"}});
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->result.outcome, Outcome::kNotFound);
}

using LocalDataPlaneSlowConsumerTest = testing::WithSmallSendQueue<LocalDataPlaneTest>;

// Pushing to a client that never reads ends in kQueueFull: the client was
// closed as a slow consumer, and is then gone.
TEST_F(LocalDataPlaneSlowConsumerTest, PushToAClientThatDoesNotReadEndsInQueueFull) {
  WsClient reads_nothing;
  reads_nothing.SetReceiveBufferSize(4096);
  const auto id = ConnectActive(reads_nothing);
  ASSERT_FALSE(id.empty());
  std::optional<ConnectionResult> last;
  for (int i = 0; i < kMaxLargeFrames; ++i) {
    const auto results =
        Push({id}, OutboundFrame{FrameType::kBinary, std::make_shared<const std::string>(kLargeFrameBytes, 's'), 0});
    ASSERT_TRUE(results.has_value());
    last = results->front();
    if (last->outcome != Outcome::kOk) break;
  }
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->outcome, Outcome::kQueueFull);
  EXPECT_EQ(last->state, v1::CONNECTION_STATE_ACTIVE);
  EXPECT_EQ(metrics_.slow_consumer_closes().Value(), 1);
  // Its socket was closed at once; the session leaves once the loop has
  // seen its read end.
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  std::optional<ConnectionResult> found;
  do {
    found = Find(id);
    ASSERT_TRUE(found.has_value());
  } while (found->outcome != Outcome::kNotFound && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(found->outcome, Outcome::kNotFound);
}

}  // namespace
}  // namespace wsgateway
