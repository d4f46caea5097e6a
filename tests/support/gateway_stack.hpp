#pragma once
// The usual integration set-up: a backend and a gateway connected to it, both
// on ports chosen by the OS. The backend is either examples/echo_backend
// (EchoStack) or an in-process ScriptedBackend whose answers the test
// scripts (ScriptedStack); nothing else about the set-up differs.
//
// Thread-safety: one object per test or suite, used from the test's thread.

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/support/processes.hpp"
#include "tests/support/scripted_backend.hpp"

namespace wsgateway::testing {

template <typename Backend>
struct GatewayStack {
  // Declared first so it is destroyed last: the gateway hands its final
  // Close events to a backend that is still there.
  std::unique_ptr<Backend> backend;
  std::unique_ptr<GatewayProcess> gateway;

  // Starts the backend, then the gateway with `gateway_args`, and waits for
  // the backend stream. Nullptr and *error on failure.
  static std::unique_ptr<GatewayStack> Start(const std::vector<std::string>& gateway_args, std::string* error) {
    auto stack = std::make_unique<GatewayStack>();
    stack->backend = StartBackend(error);
    if (!stack->backend) return nullptr;
    GatewayProcess::Options options;
    options.backend = stack->backend->target();
    options.args = gateway_args;
    stack->gateway = GatewayProcess::Start(options, error);
    if (!stack->gateway) return nullptr;
    return stack;
  }

 private:
  // The two backends start differently: the echo backend is a process that
  // takes a port (0: the OS chooses), the scripted one always lets the OS
  // choose.
  static std::unique_ptr<Backend> StartBackend(std::string* error) {
    if constexpr (std::is_same_v<Backend, EchoBackendProcess>) {
      return Backend::Start(0, error);
    } else {
      return Backend::Start(error);
    }
  }
};

using EchoStack = GatewayStack<EchoBackendProcess>;
using ScriptedStack = GatewayStack<ScriptedBackend>;

}  // namespace wsgateway::testing
