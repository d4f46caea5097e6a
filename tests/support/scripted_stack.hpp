#pragma once
// A gateway in front of a ScriptedBackend, both on ports chosen by the OS:
// the set-up of the tests that script the backend's answers (handshake
// hook, HTTP forwarding, frame forwarding, heartbeats, compression).

#include <memory>
#include <string>
#include <vector>

#include "tests/support/processes.hpp"
#include "tests/support/scripted_backend.hpp"

namespace wsgateway::testing {

struct ScriptedStack {
  // Declared first so it is destroyed last: the gateway hands its final
  // Close events to a backend that is still there.
  std::unique_ptr<ScriptedBackend> backend;
  std::unique_ptr<GatewayProcess> gateway;

  // Starts the backend, then the gateway with `gateway_args`, and waits for
  // the backend stream. Nullptr and *error on failure.
  static std::unique_ptr<ScriptedStack> Start(const std::vector<std::string>& gateway_args, std::string* error) {
    auto stack = std::make_unique<ScriptedStack>();
    stack->backend = ScriptedBackend::Start(error);
    if (!stack->backend) return nullptr;
    GatewayProcess::Options options;
    options.backend = stack->backend->target();
    options.args = gateway_args;
    stack->gateway = GatewayProcess::Start(options, error);
    if (!stack->gateway) return nullptr;
    return stack;
  }
};

}  // namespace wsgateway::testing
