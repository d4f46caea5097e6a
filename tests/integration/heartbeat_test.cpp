// Heartbeats (--ping-interval, --pong-timeout): the gateway pings a silent
// connection; a client that answers stays open, a client that sends
// nothing is closed as dead (1006 to the backend, closed by the server, and
// counted), and a client that keeps sending data is never pinged out.
//
// The intervals are short (200 ms) so a test sees several of them; the
// deadlines stay generous, and every wait is on a condition.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "gateway/websocket/frame_codec.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kPingInterval = 200ms;
constexpr std::chrono::milliseconds kPongTimeout = 200ms;
constexpr std::chrono::milliseconds kDeadline = 20s;
// Pings a responsive client must get (and survive) before the test ends it.
constexpr int kPingsToSurvive = 5;

class HeartbeatTest : public SharedScriptedStack<HeartbeatTest> {
 public:
  static std::vector<std::string> Flags() { return {"--ping-interval", "200ms", "--pong-timeout", "200ms"}; }

 protected:
  // Connects `client` on a path of its own; returns the connection id.
  static std::string Open(RawWsClient& client) {
    const std::string path = UniquePath("hb");
    const auto handshake = client.Connect(port(), path, {}, kDeadline);
    EXPECT_TRUE(handshake.ok()) << handshake.Describe();
    const auto open = backend().WaitForOpen(path, kDeadline);
    EXPECT_TRUE(open.has_value()) << "no Open event for " << path;
    return open ? open->connection_id() : "";
  }

  static double HeartbeatTimeouts() {
    const auto scrape = ScrapeMetrics(metrics_port());
    EXPECT_TRUE(scrape.has_value());
    return scrape ? scrape->Sum("wsgateway_heartbeat_timeouts_total") : -1;
  }

  // Ends a live connection with a normal close handshake; the backend must
  // see that close, not a heartbeat timeout.
  static void CloseNormally(RawWsClient& client, const std::string& id) {
    ASSERT_FALSE(client.SendClose(1000, "done"));
    const auto close = client.ExpectClose(kDeadline);
    ASSERT_TRUE(close.received) << "the connection was not alive any more: " << close.Describe();
    EXPECT_EQ(close.code, 1000) << close.Describe();
    // The gateway closes TCP first and waits for the client's FIN before
    // it reports the Close.
    EXPECT_TRUE(client.ReadUntilEof(kDeadline).eof());
    client.Close();
    const auto closed = backend().WaitForClose(id, kDeadline);
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->close().code(), 1000u);
    EXPECT_EQ(closed->close().closed_by(), v1::CLOSED_BY_CLIENT);
  }
};

// A client that answers every ping with a pong stays open across many
// ping intervals.
TEST_F(HeartbeatTest, ClientAnsweringPingsStaysOpen) {
  RawWsClient client;
  const std::string id = Open(client);
  ASSERT_FALSE(id.empty());
  const double timeouts_before = HeartbeatTimeouts();
  int pings = 0;
  const auto deadline = Clock::now() + kDeadline;
  while (pings < kPingsToSurvive && Clock::now() < deadline) {
    const auto read = client.ReadFrame(kDeadline);
    ASSERT_TRUE(read.is_frame()) << "after " << pings << " pings: " << read.Describe();
    ASSERT_EQ(read.frame.opcode, fc::kPing) << "after " << pings << " pings: " << read.Describe();
    EXPECT_FALSE(read.frame.mask) << "a server must not mask";
    ++pings;
    ASSERT_FALSE(client.SendFrame(MakeFrame(fc::kPong, read.frame.payload)));
  }
  EXPECT_EQ(pings, kPingsToSurvive);
  ASSERT_NO_FATAL_FAILURE(CloseNormally(client, id));
  EXPECT_EQ(HeartbeatTimeouts(), timeouts_before);
}

// A client that stops answering (and sends nothing) is closed once
// pong_timeout has passed after a ping: the backend gets Close 1006 by the
// server, and wsgateway_heartbeat_timeouts_total counts it.
TEST_F(HeartbeatTest, SilentClientIsClosedAsDead) {
  RawWsClient client;
  const auto opened = Clock::now();
  const std::string id = Open(client);
  ASSERT_FALSE(id.empty());
  const double timeouts_before = HeartbeatTimeouts();
  int pings = 0;
  RawRead read;
  for (;;) {
    read = client.ReadFrame(kDeadline);
    if (!read.is_frame()) break;
    ASSERT_EQ(read.frame.opcode, fc::kPing) << "expected only pings before the end; got " << read.Describe();
    ++pings;
  }
  const auto lived = Clock::now() - opened;
  EXPECT_TRUE(read.outcome == RawRead::Outcome::kEof || read.outcome == RawRead::Outcome::kReset)
      << "the gateway did not drop the dead connection: " << read.Describe();
  EXPECT_GE(pings, 1) << "closed without being pinged first";
  EXPECT_GE(lived, kPingInterval + kPongTimeout) << "closed before ping_interval + pong_timeout";

  const auto closed = backend().WaitForClose(id, kDeadline);
  ASSERT_TRUE(closed.has_value()) << "no Close event for the dead connection";
  EXPECT_EQ(closed->close().code(), 1006u);
  EXPECT_EQ(closed->close().closed_by(), v1::CLOSED_BY_SERVER);
  EXPECT_EQ(HeartbeatTimeouts(), timeouts_before + 1);
}

// A client that keeps sending data, and never answers a ping, is alive:
// data counts as a sign of life, so it is never pinged out.
TEST_F(HeartbeatTest, ClientSendingDataIsNeverPingedOut) {
  RawWsClient client;
  const std::string id = Open(client);
  ASSERT_FALSE(id.empty());
  const double timeouts_before = HeartbeatTimeouts();
  // Several full ping + pong windows, with a message every quarter of an
  // interval; waiting for the gateway's frames paces the sending.
  const auto until = Clock::now() + 5 * (kPingInterval + kPongTimeout);
  int sent = 0;
  while (Clock::now() < until) {
    ASSERT_FALSE(client.SendFrame(MakeFrame(fc::kText, "tick " + std::to_string(sent)))) << "after " << sent;
    ++sent;
    const auto read = client.ReadFrame(kPingInterval / 4);
    if (read.is_frame()) {
      ASSERT_EQ(read.frame.opcode, fc::kPing) << "the connection ended: " << read.Describe();
    } else {
      ASSERT_EQ(read.outcome, RawRead::Outcome::kTimeout) << "the connection ended: " << read.Describe();
    }
  }
  ASSERT_NO_FATAL_FAILURE(CloseNormally(client, id));
  int messages = 0;
  for (const auto& event : backend().EventsOf(id)) messages += event.has_message() ? 1 : 0;
  EXPECT_EQ(messages, sent);
  EXPECT_EQ(HeartbeatTimeouts(), timeouts_before);
}

}  // namespace
}  // namespace wsgateway::testing
