// What one client can make the gateway do, whatever it sends: every
// resource it can consume on the gateway is bounded, and the bound costs
// only that client. Frames are written with the raw client, so a test
// sends what a hostile peer would, as fast as the socket takes it.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/websocket/frame_codec.hpp"
#include "gateway/websocket/protocol_rules.hpp"
#include "tests/support/admin_client.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;

constexpr std::chrono::milliseconds kDeadline = 20s;

// A 125-byte ping payload (the most a control frame carries) numbered `n`.
std::string NumberedPayload(int n) {
  std::string payload = std::to_string(n);
  payload.resize(kMaxControlPayloadBytes, '.');
  return payload;
}

int PayloadNumber(const std::string& payload) { return std::stoi(payload.substr(0, payload.find('.'))); }

// Without the message rate, which would slow the flood itself.
class PingFloodTest : public SharedEchoStack<PingFloodTest> {
 public:
  static std::vector<std::string> Flags() { return {"--client-message-rate", "0"}; }
};

// A client that sends pings and does not read gets its pings answered with
// one pending pong carrying the newest payload (RFC 6455 section 5.5.3),
// not one queued pong per ping: what the gateway holds for it stays bounded,
// and the answers it reads are in order and end with the last ping's.
TEST_F(PingFloodTest, PingsFromAClientThatDoesNotReadAreAnsweredWithTheLatestPongOnly) {
  RawWsClient client;
  const auto handshake = client.Connect(port(), UniquePath("pingflood"), {}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  constexpr int kPings = 20'000;
  constexpr int kPerWrite = 500;
  for (int sent = 0; sent < kPings; sent += kPerWrite) {
    std::vector<fc::Frame> frames;
    for (int i = sent; i < sent + kPerWrite; ++i) frames.push_back(MakeFrame(fc::kPing, NumberedPayload(i)));
    ASSERT_FALSE(client.SendFrames(std::move(frames), kDeadline)) << "after " << sent << " pings";
  }
  int pongs = 0;
  int last = -1;
  while (last != kPings - 1) {
    const auto read = client.ReadFrame(kDeadline);
    ASSERT_TRUE(read.is_frame()) << "after " << pongs << " pongs: " << read.Describe();
    ASSERT_EQ(read.frame.opcode, fc::kPong) << DescribeFrame(read.frame);
    const int number = PayloadNumber(read.frame.payload);
    ASSERT_GT(number, last) << "pongs out of order";
    last = number;
    ++pongs;
  }
  EXPECT_LT(pongs, kPings / 2) << "every ping got a pong of its own: unread pongs pile up on the gateway";
  // The connection still works.
  ASSERT_FALSE(client.SendFrame(MakeFrame(fc::kText, "still here")));
  const auto echo = client.ReadMessage(kDeadline);
  ASSERT_TRUE(echo.complete) << echo.Describe();
  EXPECT_EQ(echo.payload, "still here");
}

double MetricSum(std::uint16_t metrics_port, const std::string& name,
                 const std::map<std::string, std::string>& labels = {}) {
  const auto scrape = ScrapeMetrics(metrics_port);
  EXPECT_TRUE(scrape.has_value());
  return scrape ? scrape->Sum(name, labels) : -1;
}

// Waits (scraping) until `name` reaches `at_least`; its last value.
double WaitForMetric(std::uint16_t metrics_port, const std::string& name, double at_least) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  double value = MetricSum(metrics_port, name);
  while (value < at_least && std::chrono::steady_clock::now() < deadline) value = MetricSum(metrics_port, name);
  return value;
}

// ---- Per-connection rates -------------------------------------------------

class ClientRateTest : public SharedEchoStack<ClientRateTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--client-message-rate", "100",   "--client-message-burst", "100", "--client-byte-rate", "64KiB",
            "--client-byte-burst",   "64KiB", "--permessage-deflate",   "true"};
  }

 protected:
  static double Throttled(const std::string& limit) {
    return MetricSum(metrics_port(), "wsgateway_client_throttled_total", {{"limit", limit}});
  }

  // Sends `count` numbered messages at once and checks every echo arrives,
  // in order.
  static void SendAndExpectEchoes(WsClient& client, int count, const std::string& tag, std::size_t size = 0) {
    for (int i = 0; i < count; ++i) {
      std::string payload = tag + " " + std::to_string(i);
      payload.resize(std::max(size, payload.size()), '.');
      ASSERT_FALSE(client.SendText(payload));
    }
    for (int i = 0; i < count; ++i) {
      const auto echo = client.Read(kDeadline);
      ASSERT_FALSE(echo.ec) << "echo " << i << ": " << echo.ec.message();
      ASSERT_EQ(echo.payload.substr(0, echo.payload.find('.')), tag + " " + std::to_string(i));
    }
  }
};

// Just under the message burst: nothing is throttled.
TEST_F(ClientRateTest, BurstOfMessagesWithinTheLimitIsNotThrottled) {
  WsClient client;
  Connect(client, "rate");
  const double before = Throttled("messages");
  SendAndExpectEchoes(client, 100, "within");
  EXPECT_EQ(Throttled("messages"), before);
}

// Past the message rate the client is paused, not dropped: every message
// it sent is delivered, in order, and another client is served meanwhile.
TEST_F(ClientRateTest, ClientPastTheMessageRateIsSlowedAndLosesNothing) {
  WsClient greedy;
  WsClient other;
  Connect(greedy, "rate");
  Connect(other, "rate");
  const double before = Throttled("messages");
  for (int i = 0; i < 300; ++i) ASSERT_FALSE(greedy.SendText("greedy " + std::to_string(i)));
  SendAndExpectEchoes(other, 1, "other");
  for (int i = 0; i < 300; ++i) {
    const auto echo = greedy.Read(kDeadline);
    ASSERT_FALSE(echo.ec) << "echo " << i << ": " << echo.ec.message() << " (close " << greedy.CloseCode() << ")";
    ASSERT_EQ(echo.payload, "greedy " + std::to_string(i));
  }
  EXPECT_GT(Throttled("messages"), before);
}

// The byte rate counts what a compressed message inflates to: highly
// compressible messages that are tiny on the wire still pay their full
// size, so a client cannot make the gateway move far more than its rate.
TEST_F(ClientRateTest, ByteRateCountsDecompressedBytes) {
  WsClient client;
  client.OfferCompression();
  Connect(client, "rate");
  const double before = Throttled("bytes");
  // 48 KiB of one letter deflates to well under 1 KiB: within the burst.
  SendAndExpectEchoes(client, 1, "inflated", 48 * 1024);
  EXPECT_EQ(Throttled("bytes"), before);
  // Two more pass the 64 KiB burst after inflation.
  SendAndExpectEchoes(client, 2, "inflated", 48 * 1024);
  EXPECT_GT(Throttled("bytes"), before);
}

// ---- Unfinished messages across connections ----------------------------------

class PendingMessagesTest : public SharedEchoStack<PendingMessagesTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--pending-messages-max-bytes", "1MiB", "--max-message-bytes", "2MiB", "--client-byte-rate", "0"};
  }
};

// Bytes held in frames that have not fully arrived count for all
// connections together: one client holding 600 KiB is served; a second
// whose 500 KiB would pass the 1 MiB bound is closed with 1013 and counted,
// and the first finishes its message.
TEST_F(PendingMessagesTest, ConnectionPassingTheSharedBoundIsClosedWith1013) {
  RawWsClient first;
  RawWsClient second;
  ASSERT_TRUE(first.Connect(port(), UniquePath("pending"), {}, kDeadline).ok());
  ASSERT_TRUE(second.Connect(port(), UniquePath("pending"), {}, kDeadline).ok());
  const std::string frame = first.Encode(MakeFrame(fc::kBinary, std::string(1024 * 1024, 'a')));
  const std::size_t first_part = 600 * 1024;
  ASSERT_FALSE(first.SendRaw(frame.substr(0, first_part), kDeadline));
  ASSERT_GE(WaitForMetric(metrics_port(), "wsgateway_pending_message_bytes", first_part), first_part);
  const double closes_before = MetricSum(metrics_port(), "wsgateway_limit_closes_total");
  const std::string other = second.Encode(MakeFrame(fc::kBinary, std::string(1024 * 1024, 'b')));
  ASSERT_FALSE(second.SendRaw(other.substr(0, 500 * 1024), kDeadline));
  const auto close = second.ExpectClose(kDeadline);
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.code, 1013);
  EXPECT_EQ(MetricSum(metrics_port(), "wsgateway_limit_closes_total"), closes_before + 1);
  ASSERT_FALSE(first.SendRaw(frame.substr(first_part), kDeadline));
  const auto echo = first.ReadMessage(kDeadline);
  ASSERT_TRUE(echo.complete) << echo.Describe();
  EXPECT_EQ(echo.payload.size(), 1024u * 1024u);
}

// ---- Descriptors ----------------------------------------------------------------

// A gateway run out of descriptors by idle TCP connections keeps a reserve
// for the rest: /healthz and the admin API answer while the WebSocket port
// is saturated, and new clients are served once connections end.
TEST(DescriptorReserveTest, ProbesAndAdminAnswerWhileTheWebSocketPortIsSaturated) {
  std::string error;
  auto backend = EchoBackendProcess::Start(0, &error);
  ASSERT_NE(backend, nullptr) << error;
  GatewayProcess::Options options;
  options.backend = backend->target();
  options.open_file_limit = 256;
  options.args = {"--handshake-timeout", "60s"};
  auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  std::vector<std::unique_ptr<RawTcpConnection>> flood;
  for (int i = 0; i < 300; ++i) {
    flood.push_back(std::make_unique<RawTcpConnection>(gateway->ws_port(), kDeadline));
    ASSERT_TRUE(flood.back()->connected()) << i;
  }
  // The listener has reached its reserve.
  ASSERT_GE(WaitForMetric(gateway->metrics_port(), "wsgateway_listener_backoffs_total", 1), 1);
  const auto health =
      RawHttpExchange(gateway->metrics_port(), "GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n", std::chrono::seconds(5));
  EXPECT_EQ(health.status, 200u) << "the health probe is not answered while the WebSocket port is saturated";
  AdminClient admin(gateway->admin_port());
  const auto exist = admin.Exist("0-0-1");
  EXPECT_NE(exist.status.error_code(), grpc::StatusCode::UNAVAILABLE) << exist.status.error_message();
  flood.clear();
  WsClient client;
  const auto upgrade = client.Connect(gateway->ws_port(), "/after", {}, kDeadline);
  EXPECT_EQ(upgrade.http_status, 101u) << upgrade.ec.message();
}

}  // namespace
}  // namespace wsgateway::testing
