// A backend's gRPC receive limit (4 MiB unless the backend raised it, as in
// Python's grpc.server()) is part of the event stream's contract: one client
// message too large for it costs only that client, and the stream every
// connection shares keeps flowing.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

constexpr std::chrono::milliseconds kDeadline = 30s;
const std::string kGrpcDefaultLimit = std::to_string(4 * 1024 * 1024);

// An echo backend with gRPC's default receive limit, and a gateway whose
// max_message_bytes (6 MiB) is above what that backend takes.
class BackendLimitTest : public ::testing::Test {
 protected:
  void StartStack(const std::vector<std::string>& gateway_args) {
    backend_ = EchoBackendProcess::Start(0, &error_, {"--max-receive-bytes", kGrpcDefaultLimit});
    ASSERT_NE(backend_, nullptr) << error_;
    GatewayProcess::Options options;
    options.backend = backend_->target();
    options.args = gateway_args;
    gateway_ = GatewayProcess::Start(options, &error_);
    ASSERT_NE(gateway_, nullptr) << error_;
  }

  double Metric(const std::string& name) {
    const auto scrape = ScrapeMetrics(gateway_->metrics_port());
    EXPECT_TRUE(scrape.has_value());
    return scrape ? scrape->Sum(name) : -1;
  }

  // An innocent client's message comes back.
  void ExpectEcho(WsClient& client, const std::string& payload) {
    ASSERT_FALSE(client.SendText(payload));
    const auto echo = client.Read(kDeadline);
    ASSERT_FALSE(echo.ec) << "no echo for an innocent client: " << echo.ec.message() << " (close " << client.CloseCode()
                          << ")";
    EXPECT_EQ(echo.payload, payload);
  }

  std::unique_ptr<EchoBackendProcess> backend_;
  std::unique_ptr<GatewayProcess> gateway_;
  std::string error_;
};

// With the default backend_max_message_bytes (4 MiB), a 5 MiB client
// message is refused with 1009 as it arrives; the backend stream never
// fails and other clients are served as before.
TEST_F(BackendLimitTest, MessageTooLargeForTheBackendClosesOnlyItsConnectionWith1009) {
  StartStack({"--max-message-bytes", "6MiB"});
  WsClient innocent;
  ASSERT_EQ(innocent.Connect(gateway_->ws_port(), "/innocent").http_status, 101u);
  ExpectEcho(innocent, "before");
  WsClient big;
  ASSERT_EQ(big.Connect(gateway_->ws_port(), "/big").http_status, 101u);
  ASSERT_FALSE(big.SendBinary(std::string(5 * 1024 * 1024, 'b'), kDeadline));
  const auto refused = big.Read(kDeadline);
  ASSERT_TRUE(refused.ec) << "a 5 MiB message was echoed through a 4 MiB backend";
  EXPECT_EQ(big.CloseCode(), 1009);
  ExpectEcho(innocent, "after");
  EXPECT_EQ(Metric("wsgateway_backend_stream_failures_total"), 0);
  EXPECT_EQ(Metric("wsgateway_backend_stream_connects_total"), 1);
}

// A gateway told the backend takes more than it does (backend_max_message_bytes
// 8 MiB against 4 MiB) has one batch refused: it gives that batch up (its
// connection closes with 1011 and the events count as lost), cuts later
// batches to the limit the backend stated, and does not replay the batch
// forever; other clients are served.
TEST_F(BackendLimitTest, BatchRefusedAsTooLargeIsGivenUpNotReplayed) {
  StartStack({"--max-message-bytes", "6MiB", "--backend-max-message-bytes", "8MiB"});
  WsClient innocent;
  ASSERT_EQ(innocent.Connect(gateway_->ws_port(), "/innocent").http_status, 101u);
  ExpectEcho(innocent, "before");
  WsClient big;
  ASSERT_EQ(big.Connect(gateway_->ws_port(), "/big").http_status, 101u);
  ASSERT_FALSE(big.SendBinary(std::string(5 * 1024 * 1024, 'b'), kDeadline));
  const auto refused = big.Read(kDeadline);
  ASSERT_TRUE(refused.ec) << "a 5 MiB message was echoed through a 4 MiB backend";
  EXPECT_EQ(big.CloseCode(), 1011);
  ExpectEcho(innocent, "after");
  EXPECT_GE(Metric("wsgateway_backend_events_lost_total"), 1);
  // One failure and one reconnect, not a replay loop.
  EXPECT_LE(Metric("wsgateway_backend_stream_failures_total"), 2);
  EXPECT_LE(Metric("wsgateway_backend_stream_connects_total"), 3);
}

}  // namespace
}  // namespace wsgateway::testing
