// Graceful drain, as Kubernetes drives it: SIGTERM turns readiness off at
// once, closes every client with 1001 Going Away at drain_rate, hands every
// Close event to the backend, and exits 0 before drain_timeout; a second
// signal ends the process at once.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using grpc::health::v1::HealthCheckResponse;

std::size_t CountCloses(const std::vector<v1::Event>& events, std::uint32_t code) {
  return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [code](const v1::Event& event) {
    return event.has_close() && event.close().code() == code && event.close().closed_by() == v1::CLOSED_BY_SERVER;
  }));
}

std::size_t CountOpens(const std::vector<v1::Event>& events) {
  return static_cast<std::size_t>(
      std::count_if(events.begin(), events.end(), [](const v1::Event& event) { return event.has_open(); }));
}

std::vector<std::string> Targets(std::size_t count) {
  std::vector<std::string> targets;
  for (std::size_t i = 0; i < count; ++i) targets.push_back("/drain?client=" + std::to_string(i));
  return targets;
}

TEST(DrainTest, SigtermClosesEveryClientWith1001AtThePaceAndExitsZero) {
  constexpr std::size_t kClients = 500;
  constexpr double kRate = 250;
  constexpr auto kDrainTimeout = 20s;
  std::string error;
  auto stack = ScriptedStack::Start({"--drain-rate", "250", "--drain-timeout", "20s"}, &error);
  ASSERT_NE(stack, nullptr) << error;
  auto& gateway = *stack->gateway;

  ClientSwarm swarm;
  ASSERT_EQ(swarm.ConnectAll(gateway.ws_port(), Targets(kClients), 100, 60s), kClients);
  ASSERT_TRUE(stack->backend->WaitUntil([](const auto& events) { return CountOpens(events) == kClients; }, 30s));
  ASSERT_TRUE(PollUntil(10s, [&] { return HttpGet(gateway.metrics_port(), "/readyz").status == 200; }));

  const auto signalled = Clock::now();
  gateway.process().Signal(SIGTERM);

  // Readiness turns off while connections are still being closed; the
  // metrics listener and the admin API keep answering meanwhile.
  const auto readyz = PollUntil(5s, [&] {
    auto result = HttpGet(gateway.metrics_port(), "/readyz");
    return result.status == 503 ? std::optional(result) : std::nullopt;
  });
  ASSERT_TRUE(readyz) << "/readyz never answered 503 during the drain";
  EXPECT_EQ(readyz->body, "not ready: draining\n");
  EXPECT_EQ(HealthStatusOf(LoopbackChannel(gateway.admin_port())), HealthCheckResponse::NOT_SERVING);

  Clock::time_point first_close = Clock::time_point::max();
  Clock::time_point last_close = Clock::time_point::min();
  for (std::size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(swarm.WaitForClosed(i, 30s)) << "client " << i << " was never closed";
    const auto state = swarm.State(i);
    EXPECT_EQ(state.close_code, 1001) << "client " << i << ": " << state.error.message();
    first_close = std::min(first_close, state.closed_at);
    last_close = std::max(last_close, state.closed_at);
  }
  // The pace: 500 closes at 250 a second take about two seconds. Only a
  // lower bound is asserted: a slow machine stretches the drain, it can
  // never shorten it.
  const double spread = std::chrono::duration<double>(last_close - first_close).count();
  EXPECT_GE(spread, 0.8 * (kClients - 1) / kRate) << "closes came faster than drain_rate";

  EXPECT_TRUE(stack->backend->WaitUntil([](const auto& events) { return CountCloses(events, 1001) == kClients; }, 30s))
      << "the backend got " << CountCloses(stack->backend->events(), 1001) << " Close events with 1001";

  const auto status = gateway.process().Wait(kDrainTimeout + 10s);
  ASSERT_TRUE(status) << "the gateway did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_LT(Clock::now() - signalled, kDrainTimeout) << "the gateway exited after drain_timeout";
}

TEST(DrainTest, SecondSignalEndsTheProcessAtOnce) {
  std::string error;
  // A pace so slow that the drain would take minutes.
  auto stack = ScriptedStack::Start({"--drain-rate", "1", "--drain-timeout", "5m"}, &error);
  ASSERT_NE(stack, nullptr) << error;
  auto& gateway = *stack->gateway;
  ClientSwarm swarm;
  ASSERT_EQ(swarm.ConnectAll(gateway.ws_port(), Targets(20), 20, 30s), 20u);
  ASSERT_TRUE(stack->backend->WaitUntil([](const auto& events) { return CountOpens(events) == 20; }, 30s));

  const auto from = gateway.process().LineCount();
  gateway.process().Signal(SIGTERM);
  ASSERT_TRUE(gateway.process().WaitForLine("a second signal exits at once", 10s, from));
  gateway.process().Signal(SIGTERM);
  const auto status = gateway.process().Wait(10s);
  ASSERT_TRUE(status) << "the gateway did not end on the second signal";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGTERM) << "wait status " << *status;
}

// A drain with nothing to close ends at once.
TEST(DrainTest, IdleGatewayExitsAtOnce) {
  std::string error;
  auto stack = ScriptedStack::Start({"--drain-timeout", "30s"}, &error);
  ASSERT_NE(stack, nullptr) << error;
  const auto signalled = Clock::now();
  stack->gateway->process().Signal(SIGTERM);
  const auto status = stack->gateway->process().Wait(30s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_LT(Clock::now() - signalled, 30s);
}

}  // namespace
}  // namespace wsgateway::testing
