// The probes Kubernetes and operators use: /healthz and /readyz on the
// metrics listener, and grpc.health.v1 on the admin listener, follow the
// backend stream (readiness means clients can be served) while liveness
// only says that the process answers.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <csignal>
#include <optional>
#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;
using grpc::health::v1::HealthCheckResponse;

std::optional<HealthStatus> HealthOf(std::uint16_t admin_port, const std::string& service = "") {
  return HealthStatusOf(LoopbackChannel(admin_port), service);
}

bool HealthBecomes(std::uint16_t admin_port, HealthStatus wanted) {
  return PollUntil(20s, [&] { return HealthOf(admin_port) == wanted; });
}

// Polls /readyz until it answers `status`; returns the last answer.
HttpResult ReadyzBecomes(std::uint16_t metrics_port, unsigned status) {
  HttpResult last;
  PollUntil(20s, [&] {
    last = HttpGet(metrics_port, "/readyz");
    return last.status == status;
  });
  return last;
}

TEST(HealthProbesTest, ReadyWhileTheBackendStreamIsUpAndNotAfter) {
  std::string error;
  auto stack = EchoStack::Start({}, &error);
  ASSERT_NE(stack, nullptr) << error;
  const auto metrics_port = stack->gateway->metrics_port();
  const auto admin_port = stack->gateway->admin_port();

  const auto healthz = HttpGet(metrics_port, "/healthz");
  EXPECT_EQ(healthz.status, 200u);
  EXPECT_EQ(healthz.body, "ok\n");
  const auto ready = ReadyzBecomes(metrics_port, 200);
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(ready.body, "ready\n");
  EXPECT_TRUE(HealthBecomes(admin_port, HealthCheckResponse::SERVING));
  EXPECT_EQ(HealthOf(admin_port, "wsgateway.v1.Admin"), HealthCheckResponse::SERVING);

  stack->backend->process().Signal(SIGKILL);
  const auto not_ready = ReadyzBecomes(metrics_port, 503);
  EXPECT_EQ(not_ready.status, 503u) << not_ready.body;
  EXPECT_EQ(not_ready.body, "not ready: backend stream to " + stack->backend->target() + " is down\n");
  EXPECT_TRUE(HealthBecomes(admin_port, HealthCheckResponse::NOT_SERVING));
  // Liveness does not follow the backend: restarting the gateway would not
  // bring it back.
  EXPECT_EQ(HttpGet(metrics_port, "/healthz").status, 200u);
}

TEST(HealthProbesTest, WithoutABackendNotReadyUnlessUpgradesAreAcceptedAnyway) {
  std::string error;
  GatewayProcess::Options options;
  auto refusing = GatewayProcess::Start(options, &error);
  ASSERT_NE(refusing, nullptr) << error;
  const auto answer = HttpGet(refusing->metrics_port(), "/readyz");
  EXPECT_EQ(answer.status, 503u);
  EXPECT_EQ(answer.body, "not ready: no backend configured\n");
  EXPECT_TRUE(HealthBecomes(refusing->admin_port(), HealthCheckResponse::NOT_SERVING));

  options.args = {"--reject-upgrades-without-backend", "false"};
  auto accepting = GatewayProcess::Start(options, &error);
  ASSERT_NE(accepting, nullptr) << error;
  EXPECT_EQ(HttpGet(accepting->metrics_port(), "/readyz").status, 200u);
  EXPECT_TRUE(HealthBecomes(accepting->admin_port(), HealthCheckResponse::SERVING));
}

TEST(HealthProbesTest, OtherPathsAndMethodsAreRefused) {
  std::string error;
  auto gateway = GatewayProcess::Start({}, &error);
  ASSERT_NE(gateway, nullptr) << error;
  const auto port = gateway->metrics_port();
  EXPECT_EQ(HttpGet(port, "/").status, 404u);
  EXPECT_EQ(HttpGet(port, "/metrics/extra").status, 404u);
  const auto post = RawHttpExchange(port, "POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(post.headers.count("allow"), 1u);
  const auto metrics = HttpGet(port, "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.body.find("wsgateway_draining 0"), std::string::npos);
}

}  // namespace
}  // namespace wsgateway::testing
