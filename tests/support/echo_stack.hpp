#pragma once
// The usual integration set-up: an echo backend and a gateway connected to
// it, both on ports chosen by the OS; plus small helpers shared by the
// integration tests.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/processes.hpp"

namespace wsgateway::testing {

struct EchoStack {
  std::unique_ptr<EchoBackendProcess> backend;
  std::unique_ptr<GatewayProcess> gateway;

  // Starts the echo backend, then the gateway with `gateway_args`, and waits
  // for the backend stream. Nullptr and *error on failure.
  static std::unique_ptr<EchoStack> Start(const std::vector<std::string>& gateway_args, std::string* error) {
    auto stack = std::make_unique<EchoStack>();
    stack->backend = EchoBackendProcess::Start(0, error);
    if (!stack->backend) return nullptr;
    GatewayProcess::Options options;
    options.backend = stack->backend->target();
    options.args = gateway_args;
    stack->gateway = GatewayProcess::Start(options, error);
    if (!stack->gateway) return nullptr;
    return stack;
  }
};

// A request path no other test uses: /<prefix>/<test name>/<n>, n with six
// digits so that no such path is a prefix of another.
inline std::string UniquePath(const std::string& prefix = "t") {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  char n[16];
  std::snprintf(n, sizeof n, "%06d", ++counter);
  return "/" + prefix + "/" + (info != nullptr ? info->name() : "none") + "/" + n;
}

}  // namespace wsgateway::testing
