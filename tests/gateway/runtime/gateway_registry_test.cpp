// The registry and the connection state machine, in-process: a Gateway on
// loopback port 0 with two event loops and no backend, driven by Boost.Beast
// clients on the test thread. Sessions are only ever looked at from their own
// loop (by posting to it); what the test thread sees are copies handed back
// through promises, waited for with a deadline.

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/websocket/error.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/data_plane/connection_id.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/gateway.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "metrics/gateway_metrics.hpp"
#include "tests/gateway/runtime/in_process_gateway.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway {
namespace {

using namespace std::chrono_literals;
using metrics::StateLabel;
using wsgateway::testing::RawTcpConnection;
using wsgateway::testing::WsClient;

// How long the test waits for the gateway to reach a state.
constexpr auto kDeadline = 10s;
// How long a client waits for one network operation.
constexpr auto kIo = std::chrono::milliseconds(10'000);

// A copy of what a loop knows about one of its sessions, taken on the loop.
struct SessionView {
  std::size_t loop = 0;
  std::uint64_t counter = 0;
  std::string id;
  v1::ConnectionState state = v1::CONNECTION_STATE_UNSPECIFIED;
  std::string remote_address;
  std::string path;
};

using Sessions = std::vector<SessionView>;

const SessionView* FindByAddress(const Sessions& sessions, const std::string& address) {
  const auto it = std::find_if(sessions.begin(), sessions.end(),
                               [&](const SessionView& view) { return view.remote_address == address; });
  return it == sessions.end() ? nullptr : &*it;
}

// Predicate: the client at `address` is registered in `state`.
auto InState(std::string address, v1::ConnectionState state) {
  return [address = std::move(address), state](const Sessions& sessions) {
    const auto* view = FindByAddress(sessions, address);
    return view != nullptr && view->state == state;
  };
}

bool Empty(const Sessions& sessions) { return sessions.empty(); }

OutboundFrame TextFrame(std::string text) {
  return OutboundFrame{FrameType::kText, std::make_shared<const std::string>(std::move(text)), 0};
}

class GatewayRegistryTest : public testing::InProcessGatewayTest {
 protected:
  // Runs `inspect(loop)` on loop `index`; nullopt if it did not answer in time.
  template <typename Inspect>
  auto OnLoop(std::size_t index, Inspect inspect) -> std::optional<std::invoke_result_t<Inspect&, EventLoop&>> {
    using Result = std::invoke_result_t<Inspect&, EventLoop&>;
    auto promise = std::make_shared<std::promise<Result>>();
    auto future = promise->get_future();
    EventLoop& loop = gateway_->loop(index);
    loop.Post([promise, &loop, inspect = std::move(inspect)]() mutable { promise->set_value(inspect(loop)); });
    if (future.wait_for(kDeadline) != std::future_status::ready) return std::nullopt;
    return future.get();
  }

  // Gateway::WithSession, with `work`'s result handed back; nullopt if the
  // owning loop did not answer in time.
  template <typename Work>
  auto WithSession(const std::string& id, Work work) -> std::optional<std::invoke_result_t<Work&, Session*>> {
    using Result = std::invoke_result_t<Work&, Session*>;
    auto promise = std::make_shared<std::promise<Result>>();
    auto future = promise->get_future();
    gateway_->WithSession(
        id, [promise, work = std::move(work)](Session* session) mutable { promise->set_value(work(session)); });
    if (future.wait_for(kDeadline) != std::future_status::ready) return std::nullopt;
    return future.get();
  }

  // Every loop's registry, each copied on its own loop.
  Sessions Snapshot() {
    Sessions all;
    for (std::size_t i = 0; i < gateway_->loop_count(); ++i) {
      auto views = OnLoop(i, [i](EventLoop& loop) {
        Sessions out;
        for (const auto& [counter, session] : loop.sessions()) {
          v1::ClientInfo info;
          session->Describe(&info);
          out.push_back({i, counter, session->id(), session->state(), info.remote_address(), session->path()});
        }
        return out;
      });
      EXPECT_TRUE(views.has_value()) << "loop " << i << " did not answer";
      if (views) all.insert(all.end(), views->begin(), views->end());
    }
    return all;
  }

  // Snapshots the registries until `done` holds for one (returned) or the
  // deadline passes (nullopt). Each round trip goes through every loop, so
  // the gateway's own work queued before it has run.
  template <typename Done>
  std::optional<Sessions> WaitForSessions(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
      auto sessions = Snapshot();
      if (done(sessions)) return sessions;
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::yield();
    }
  }

  // Waits until the client at `address` is registered in `state`.
  std::optional<SessionView> WaitForState(const std::string& address, v1::ConnectionState state) {
    const auto sessions = WaitForSessions(InState(address, state));
    if (!sessions) return std::nullopt;
    return *FindByAddress(*sessions, address);
  }

  // A WebSocket client that completed its upgrade, and its ACTIVE session.
  std::optional<SessionView> ConnectActive(WsClient& client, const std::string& target = "/") {
    const auto upgrade = client.Connect(port_, target, {}, kIo);
    EXPECT_FALSE(upgrade.ec) << upgrade.ec.message();
    EXPECT_EQ(upgrade.http_status, 101u);
    if (upgrade.ec) return std::nullopt;
    return WaitForState(client.LocalAddress(), v1::CONNECTION_STATE_ACTIVE);
  }

  double Gauge(StateLabel state) { return metrics_.Connections(state).Value(); }

  void ExpectGauges(double connection, double handshake, double active, double closing) {
    EXPECT_EQ(Gauge(StateLabel::kConnection), connection);
    EXPECT_EQ(Gauge(StateLabel::kHandshake), handshake);
    EXPECT_EQ(Gauge(StateLabel::kActive), active);
    EXPECT_EQ(Gauge(StateLabel::kClosing), closing);
  }
};

// A TCP connection that has sent nothing is registered in state CONNECTION,
// under an id that names its loop and its counter.
TEST_F(GatewayRegistryTest, SilentTcpConnectionIsRegisteredInStateConnection) {
  RawTcpConnection raw(port_, kIo);
  ASSERT_TRUE(raw.connected());
  const auto view = WaitForState(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION);
  ASSERT_TRUE(view.has_value()) << "no session in CONNECTION for " << raw.LocalAddress();

  const auto id = ParseConnectionId(view->id);
  ASSERT_TRUE(id.has_value()) << view->id;
  EXPECT_EQ(id->loop, view->loop);
  EXPECT_EQ(id->counter, view->counter);
  EXPECT_EQ(Snapshot().size(), 1u);
  ExpectGauges(1, 0, 0, 0);
  EXPECT_EQ(metrics_.accepted().Value(), 1);
  EXPECT_EQ(metrics_.opened().Value(), 0);
}

// The first bytes of the HTTP request move the connection to HANDSHAKE, where
// it stays until the request is complete.
TEST_F(GatewayRegistryTest, HalfAnHttpRequestMovesTheConnectionToHandshake) {
  RawTcpConnection raw(port_, kIo);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(WaitForState(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION).has_value());

  ASSERT_TRUE(raw.Write("GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web", kIo));
  const auto view = WaitForState(raw.LocalAddress(), v1::CONNECTION_STATE_HANDSHAKE);
  ASSERT_TRUE(view.has_value()) << "no session in HANDSHAKE for " << raw.LocalAddress();
  ExpectGauges(0, 1, 0, 0);
  EXPECT_EQ(metrics_.opened().Value(), 0);
}

// A completed WebSocket upgrade makes the session ACTIVE and counts it as
// opened; the session knows the path it was opened on.
TEST_F(GatewayRegistryTest, CompletedUpgradeIsActive) {
  WsClient client;
  const auto view = ConnectActive(client, "/chat/room-1?user=7");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->path, "/chat/room-1");
  EXPECT_EQ(Snapshot().size(), 1u);
  ExpectGauges(0, 0, 1, 0);
  EXPECT_EQ(metrics_.opened().Value(), 1);
  EXPECT_EQ(metrics_.accepted().Value(), 1);
}

// WithSession runs its work on the owning loop's thread with that session.
TEST_F(GatewayRegistryTest, WithSessionFindsTheSessionOnItsOwnLoop) {
  WsClient client;
  const auto view = ConnectActive(client);
  ASSERT_TRUE(view.has_value());
  const auto loop_thread = OnLoop(view->loop, [](EventLoop&) { return std::this_thread::get_id(); });
  ASSERT_TRUE(loop_thread.has_value());

  struct Seen {
    std::string id;
    v1::ConnectionState state = v1::CONNECTION_STATE_UNSPECIFIED;
    std::thread::id thread;
  };
  const auto seen = WithSession(view->id, [](Session* session) {
    Seen out;
    out.thread = std::this_thread::get_id();
    if (session != nullptr) {
      out.id = session->id();
      out.state = session->state();
    }
    return out;
  });
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->id, view->id);
  EXPECT_EQ(seen->state, v1::CONNECTION_STATE_ACTIVE);
  EXPECT_EQ(seen->thread, *loop_thread);
  EXPECT_NE(seen->thread, std::this_thread::get_id());
}

// Ids that are malformed, of another process (epoch), of a loop that does
// not exist or of a counter never handed out find no session.
TEST_F(GatewayRegistryTest, WithSessionGivesNullForUnknownMalformedAndForeignIds) {
  WsClient client;
  const auto view = ConnectActive(client);
  ASSERT_TRUE(view.has_value());
  const auto id = ParseConnectionId(view->id);
  ASSERT_TRUE(id.has_value());

  std::string upper = view->id;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  const std::vector<std::string> others = {
      FormatConnectionId({id->epoch, id->loop, id->counter + 1000}),
      FormatConnectionId({id->epoch, 1 - id->loop, id->counter + 1000}),
      FormatConnectionId({id->epoch ^ 1, id->loop, id->counter}),
      FormatConnectionId({id->epoch, 2, id->counter}),
      FormatConnectionId({id->epoch, 0xffffffffu, id->counter}),
      "",
      "not-an-id",
      view->id + "0",
      view->id + " ",
      upper == view->id ? view->id + "x" : upper,
  };
  for (const auto& other : others) {
    const auto found = WithSession(other, [](Session* session) { return session != nullptr; });
    ASSERT_TRUE(found.has_value()) << "'" << other << "'";
    EXPECT_FALSE(*found) << "'" << other << "'";
  }
  // The lookups disturbed nothing.
  EXPECT_TRUE(WaitForState(client.LocalAddress(), v1::CONNECTION_STATE_ACTIVE).has_value());
}

// Resolve routes an id of this gateway to its loop and counter, and refuses
// ids this gateway cannot have issued.
TEST_F(GatewayRegistryTest, ResolveRoutesIdsToTheirLoopAndCounter) {
  std::vector<std::unique_ptr<WsClient>> clients;
  Sessions views;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    const auto view = ConnectActive(*clients.back());
    ASSERT_TRUE(view.has_value()) << i;
    views.push_back(*view);
  }
  std::set<std::size_t> loops_used;
  for (const auto& view : views) {
    const auto route = gateway_->Resolve(view.id);
    ASSERT_TRUE(route.has_value()) << view.id;
    EXPECT_EQ(route->loop, view.loop) << view.id;
    EXPECT_EQ(route->counter, view.counter) << view.id;
    loops_used.insert(view.loop);
  }
  // Connections are spread over the loops round-robin.
  EXPECT_EQ(loops_used.size(), 2u);

  const auto id = ParseConnectionId(views.front().id);
  ASSERT_TRUE(id.has_value());
  // Routing does not need a live session: any counter of ours resolves.
  const auto unused = gateway_->Resolve(FormatConnectionId({id->epoch, 1, 0xabcdef}));
  ASSERT_TRUE(unused.has_value());
  EXPECT_EQ(unused->loop, 1u);
  EXPECT_EQ(unused->counter, 0xabcdefu);

  EXPECT_EQ(gateway_->Resolve(FormatConnectionId({id->epoch ^ 1, id->loop, id->counter})), std::nullopt);
  EXPECT_EQ(gateway_->Resolve(FormatConnectionId({id->epoch, 2, id->counter})), std::nullopt);
  EXPECT_EQ(gateway_->Resolve(""), std::nullopt);
  EXPECT_EQ(gateway_->Resolve("garbage"), std::nullopt);
  EXPECT_EQ(gateway_->Resolve(views.front().id + "-1"), std::nullopt);
}

// Every connection gets an id of its own, and ids are not handed out again
// after their connections closed: counters only grow.
TEST_F(GatewayRegistryTest, IdsAreUniqueAndNeverReusedAfterClose) {
  constexpr int kRounds = 5;
  constexpr int kPerRound = 6;
  std::set<std::string> seen;
  std::map<std::size_t, std::uint64_t> highest_counter;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<RawTcpConnection>> connections;
    std::vector<std::string> addresses;
    for (int i = 0; i < kPerRound; ++i) {
      connections.push_back(std::make_unique<RawTcpConnection>(port_, kIo));
      ASSERT_TRUE(connections.back()->connected());
      addresses.push_back(connections.back()->LocalAddress());
    }
    const auto sessions = WaitForSessions([&](const Sessions& all) {
      return std::all_of(addresses.begin(), addresses.end(),
                         [&](const std::string& address) { return FindByAddress(all, address) != nullptr; });
    });
    ASSERT_TRUE(sessions.has_value()) << "round " << round;
    ASSERT_EQ(sessions->size(), static_cast<std::size_t>(kPerRound)) << "round " << round;

    std::map<std::size_t, std::uint64_t> lowest_this_round;
    for (const auto& view : *sessions) {
      EXPECT_TRUE(seen.insert(view.id).second) << "id reused: " << view.id;
      auto [it, inserted] = lowest_this_round.try_emplace(view.loop, view.counter);
      if (!inserted) it->second = std::min(it->second, view.counter);
    }
    for (const auto& [loop, lowest] : lowest_this_round) {
      EXPECT_GT(lowest, highest_counter[loop]) << "loop " << loop << " round " << round;
    }
    for (const auto& view : *sessions) {
      highest_counter[view.loop] = std::max(highest_counter[view.loop], view.counter);
    }

    connections.clear();
    ASSERT_TRUE(WaitForSessions(Empty).has_value()) << "round " << round;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kRounds * kPerRound));
  EXPECT_EQ(metrics_.accepted().Value(), kRounds * kPerRound);
}

// Closed connections leave the registry, the per-state gauges return to 0,
// and the counters count each connection once.
TEST_F(GatewayRegistryTest, ClosedConnectionsAreUnregisteredAndCounted) {
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    const auto view = ConnectActive(*clients.back());
    ASSERT_TRUE(view.has_value()) << i;
    ids.push_back(view->id);
  }
  auto raw = std::make_unique<RawTcpConnection>(port_, kIo);
  ASSERT_TRUE(raw->connected());
  ASSERT_TRUE(WaitForState(raw->LocalAddress(), v1::CONNECTION_STATE_CONNECTION).has_value());
  ExpectGauges(1, 0, 3, 0);
  EXPECT_EQ(metrics_.opened().Value(), 3);

  for (auto& client : clients) {
    const auto ec = client->Close(1000, "done", kIo);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(client->CloseCode(), 1000);
  }
  raw->Close();
  ASSERT_TRUE(WaitForSessions(Empty).has_value());

  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(metrics_.accepted().Value(), 4);
  EXPECT_EQ(metrics_.opened().Value(), 3);
  // Only connections that were opened count as closed, with the client's code.
  EXPECT_EQ(metrics_.Closed(1000, "client").Value(), 3);
  for (const auto& id : ids) {
    const auto found = WithSession(id, [](Session* session) { return session != nullptr; });
    ASSERT_TRUE(found.has_value());
    EXPECT_FALSE(*found) << id << " still found after it closed";
  }
}

// RequestClose from the loop sends the client a close frame with the code
// and reason; the session is CLOSING until the handshake ends, refuses a
// second close and new frames, and then leaves the registry.
TEST_F(GatewayRegistryTest, RequestCloseSendsCodeAndReasonToTheClient) {
  WsClient client;
  const auto view = ConnectActive(client);
  ASSERT_TRUE(view.has_value());

  struct Outcome {
    bool closed = false;
    v1::ConnectionState state = v1::CONNECTION_STATE_UNSPECIFIED;
    bool closed_again = true;
    Session::EnqueueResult enqueue = Session::EnqueueResult::kQueued;
  };
  const auto outcome = WithSession(view->id, [](Session* session) {
    Outcome out;
    if (session == nullptr) return out;
    out.closed = session->RequestClose(4321, "maintenance", v1::CLOSED_BY_SERVER);
    out.state = session->state();
    out.closed_again = session->RequestClose(1000, "again", v1::CLOSED_BY_SERVER);
    out.enqueue = session->Enqueue(TextFrame("too late"));
    return out;
  });
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->closed);
  EXPECT_EQ(outcome->state, v1::CONNECTION_STATE_CLOSING);
  EXPECT_FALSE(outcome->closed_again);
  EXPECT_EQ(outcome->enqueue, Session::EnqueueResult::kNotActive);

  const auto message = client.Read(kIo);
  EXPECT_EQ(message.ec, boost::beast::websocket::error::closed) << message.ec.message();
  EXPECT_EQ(client.CloseCode(), 4321);
  EXPECT_EQ(client.CloseReason(), "maintenance");

  ASSERT_TRUE(WaitForSessions(Empty).has_value());
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(metrics_.Closed(4321, "server").Value(), 1);
}

// Sessions still in CONNECTION or HANDSHAKE take no frames and cannot be
// closed with a close frame; the refusal leaves them open.
TEST_F(GatewayRegistryTest, EnqueueAndRequestCloseAreRefusedBeforeTheUpgrade) {
  RawTcpConnection raw(port_, kIo);
  ASSERT_TRUE(raw.connected());
  auto check = [&](v1::ConnectionState expected) {
    const auto view = WaitForState(raw.LocalAddress(), expected);
    ASSERT_TRUE(view.has_value()) << v1::ConnectionState_Name(expected);
    const auto refused = WithSession(view->id, [](Session* session) {
      if (session == nullptr) return std::make_pair(Session::EnqueueResult::kQueued, true);
      return std::make_pair(session->Enqueue(TextFrame("early")),
                            session->RequestClose(1000, "early", v1::CLOSED_BY_SERVER));
    });
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, Session::EnqueueResult::kNotActive) << v1::ConnectionState_Name(expected);
    EXPECT_FALSE(refused->second) << v1::ConnectionState_Name(expected);
    EXPECT_TRUE(WaitForState(raw.LocalAddress(), expected).has_value()) << v1::ConnectionState_Name(expected);
  };
  check(v1::CONNECTION_STATE_CONNECTION);
  ASSERT_TRUE(raw.Write("GET / HTTP/1.1\r\n", kIo));
  check(v1::CONNECTION_STATE_HANDSHAKE);
}

// Frames queued for an ACTIVE session reach the client in order.
TEST_F(GatewayRegistryTest, EnqueueDeliversFramesToAnActiveClient) {
  WsClient client;
  const auto view = ConnectActive(client);
  ASSERT_TRUE(view.has_value());
  const auto results = WithSession(view->id, [](Session* session) {
    std::vector<Session::EnqueueResult> out;
    if (session == nullptr) return out;
    out.push_back(session->Enqueue(TextFrame("first")));
    out.push_back(session->Enqueue(
        OutboundFrame{FrameType::kBinary, std::make_shared<const std::string>(std::string("\0\1\2", 3)), 0}));
    return out;
  });
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ(*results, (std::vector{Session::EnqueueResult::kQueued, Session::EnqueueResult::kQueued}));

  const auto first = client.Read(kIo);
  ASSERT_FALSE(first.ec) << first.ec.message();
  EXPECT_FALSE(first.binary);
  EXPECT_EQ(first.payload, "first");
  const auto second = client.Read(kIo);
  ASSERT_FALSE(second.ec) << second.ec.message();
  EXPECT_TRUE(second.binary);
  EXPECT_EQ(second.payload, std::string("\0\1\2", 3));
}

using GatewaySlowConsumerTest = testing::WithSmallSendQueue<GatewayRegistryTest>;

// A client that never reads fills its send queue: the frame that would pass
// send_queue_max_bytes is refused, the client is closed (1008) and counted as
// a slow consumer, and other state returns to zero.
TEST_F(GatewaySlowConsumerTest, SlowConsumerIsClosedAtQueueLimit) {
  WsClient client;
  client.SetReceiveBufferSize(4096);
  const auto view = ConnectActive(client);
  ASSERT_TRUE(view.has_value());

  std::optional<Session::EnqueueResult> last;
  int queued = 0;
  for (int i = 0; i < kMaxLargeFrames; ++i) {
    // Each frame owns its payload, so only the session's queue keeps it alive.
    last = WithSession(view->id, [](Session* session) -> std::optional<Session::EnqueueResult> {
             if (session == nullptr) return std::nullopt;
             return session->Enqueue(
                 OutboundFrame{FrameType::kBinary, std::make_shared<const std::string>(kLargeFrameBytes, 's'), 0});
           }).value_or(std::nullopt);
    if (last != Session::EnqueueResult::kQueued) break;
    ++queued;
  }
  ASSERT_TRUE(last.has_value()) << "the session went away after " << queued << " frames";
  ASSERT_EQ(*last, Session::EnqueueResult::kQueueFull) << "after " << queued << " frames";
  EXPECT_GE(queued, 2);
  RecordProperty("frames_queued_before_refusal", queued);
  EXPECT_EQ(metrics_.slow_consumer_closes().Value(), 1);

  ASSERT_TRUE(WaitForSessions(Empty).has_value());
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(metrics_.Closed(1008, "server").Value(), 1);
  EXPECT_EQ(metrics_.slow_consumer_closes().Value(), 1);
  const auto gone = WithSession(view->id, [](Session* session) { return session != nullptr; });
  ASSERT_TRUE(gone.has_value());
  EXPECT_FALSE(*gone);
}

}  // namespace
}  // namespace wsgateway
