// The backend dies (SIGKILL) and comes back on the same port while clients
// keep sending: client connections stay open, and every message is echoed
// back exactly once, in order, as sent — the gateway buffers what clients
// sent meanwhile and replays what the dead backend had not acknowledged.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

constexpr std::size_t kClients = 4;
constexpr std::size_t kPerPhase = 300;

std::string Payload(std::size_t client, std::size_t i) {
  return "client " + std::to_string(client) + " message " + std::to_string(i) + " " + std::string(i % 53, '.');
}

class BackendRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = EchoStack::Start({}, &error_);
    ASSERT_NE(stack_, nullptr) << error_;
    ASSERT_EQ(swarm_.ConnectAll(stack_->gateway->ws_port(), {"/r/0", "/r/1", "/r/2", "/r/3"}, kClients,
                                std::chrono::seconds(20)),
              kClients);
  }

  // Queues messages [from, to) on every client.
  void SendRange(std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      for (std::size_t c = 0; c < kClients; ++c) swarm_.Send(c, Payload(c, i), /*binary=*/i % 2 == 1);
    }
  }

  // Every client got exactly messages [0, count) back, in order, as sent.
  void ExpectAllEchoedOnceInOrder(std::size_t count) {
    const bool complete = swarm_.WaitForTotalReceived(kClients * count, std::chrono::seconds(90));
    EXPECT_TRUE(complete) << "received " << swarm_.TotalReceived() << " of " << kClients * count;
    for (std::size_t c = 0; c < kClients; ++c) {
      const auto state = swarm_.State(c);
      EXPECT_FALSE(state.closed) << "client " << c << " was disconnected: " << state.error.message() << " (close code "
                                 << state.close_code << ")";
      EXPECT_EQ(state.messages.size(), count) << "client " << c << " (more means duplicates, fewer means losses)";
      for (std::size_t i = 0; i < std::min(count, state.messages.size()); ++i) {
        ASSERT_EQ(state.messages[i].payload, Payload(c, i)) << "client " << c << " position " << i;
        ASSERT_EQ(state.messages[i].binary, i % 2 == 1) << "client " << c << " position " << i;
      }
    }
  }

  std::unique_ptr<EchoStack> stack_;
  std::string error_;
  ClientSwarm swarm_;
};

// Kill the backend mid-stream, keep sending while it is down, restart it on
// the same port, keep sending: all 900 messages per client come back once,
// in order, and no client is disconnected.
TEST_F(BackendRestartTest, MessagesSurviveABackendKillAndRestart) {
  auto& gateway = *stack_->gateway;
  const std::uint16_t backend_port = stack_->backend->port();

  // Phase 1: traffic flows; kill the backend while sends are still in flight.
  SendRange(0, kPerPhase);
  ASSERT_TRUE(swarm_.WaitForTotalReceived(kClients * 20, std::chrono::seconds(30)));
  const std::size_t before_kill = gateway.process().LineCount();
  stack_->backend->process().Signal(SIGKILL);
  ASSERT_TRUE(stack_->backend->process().Wait(std::chrono::seconds(20)));
  stack_->backend.reset();
  ASSERT_TRUE(gateway.WaitForBackendDown(before_kill)) << "gateway never logged 'backend stream down'";

  // Phase 2: clients keep sending while no backend is there.
  SendRange(kPerPhase, 2 * kPerPhase);
  for (std::size_t c = 0; c < kClients; ++c) {
    EXPECT_TRUE(swarm_.WaitForSent(c, 2 * kPerPhase, std::chrono::seconds(30)))
        << "client " << c << " could not send while the backend was down";
  }
  {
    // New clients are refused while the backend is down.
    WsClient newcomer;
    EXPECT_EQ(newcomer.Connect(gateway.ws_port(), "/r/new").http_status, 503u);
  }

  // Phase 3: the backend comes back on the same port; traffic continues.
  const std::size_t before_restart = gateway.process().LineCount();
  std::string error;
  stack_->backend = EchoBackendProcess::Start(backend_port, &error);
  ASSERT_NE(stack_->backend, nullptr) << error;
  ASSERT_TRUE(gateway.WaitForBackendUp(before_restart)) << "gateway never logged 'backend stream up' again";
  SendRange(2 * kPerPhase, 3 * kPerPhase);

  ExpectAllEchoedOnceInOrder(3 * kPerPhase);

  // And the gateway accepts new clients again.
  WsClient newcomer;
  EXPECT_EQ(newcomer.Connect(gateway.ws_port(), "/r/after").http_status, 101u);
}

// Killing the backend twice in a row, with traffic in between, loses and
// repeats nothing either.
TEST_F(BackendRestartTest, MessagesSurviveTwoConsecutiveRestarts) {
  auto& gateway = *stack_->gateway;
  const std::uint16_t backend_port = stack_->backend->port();
  for (int round = 0; round < 2; ++round) {
    SendRange(round * kPerPhase, (round + 1) * kPerPhase);
    ASSERT_TRUE(swarm_.WaitForTotalReceived(kClients * (round * kPerPhase + 10), std::chrono::seconds(60)));
    const std::size_t before_kill = gateway.process().LineCount();
    stack_->backend->process().Signal(SIGKILL);
    ASSERT_TRUE(stack_->backend->process().Wait(std::chrono::seconds(20)));
    stack_->backend.reset();
    ASSERT_TRUE(gateway.WaitForBackendDown(before_kill));
    const std::size_t before_restart = gateway.process().LineCount();
    std::string error;
    stack_->backend = EchoBackendProcess::Start(backend_port, &error);
    ASSERT_NE(stack_->backend, nullptr) << error;
    ASSERT_TRUE(gateway.WaitForBackendUp(before_restart));
  }
  ExpectAllEchoedOnceInOrder(2 * kPerPhase);
}

// A backend unreachable from start-up shows in
// wsgateway_backend_stream_failures_total: every failed attempt to reach it
// counts, so an alert on the series fires for a backend that never came up.
TEST(BackendUnreachableTest, FailedDialsCountAsStreamFailures) {
  std::uint16_t closed_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  GatewayProcess::Options options;
  options.backend = "127.0.0.1:" + std::to_string(closed_port);
  options.wait_for_backend = false;
  options.args = {"--backend-reconnect-min", "100ms", "--backend-reconnect-max", "200ms"};
  std::string error;
  const auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  double failures = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (failures < 2 && std::chrono::steady_clock::now() < deadline) {
    const auto scrape = ScrapeMetrics(gateway->metrics_port());
    ASSERT_TRUE(scrape.has_value());
    failures = scrape->Sum("wsgateway_backend_stream_failures_total");
    // Scrapes are paced by the gateway's reconnect backoff, not by a sleep
    // standing in for it: the count only grows per failed attempt.
    if (failures < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(failures, 2) << "failed connection attempts to the backend are not counted";
}

}  // namespace
}  // namespace wsgateway::testing
