#pragma once
// Waiting for a condition in a test: polls it until it holds or a deadline
// passes. The short pause between probes only paces the polling; the
// outcome is decided by the condition, never by the pause.
//
// Thread-safety: the calling thread only.

#include <chrono>
#include <thread>

namespace wsgateway::testing {

// Calls `probe` until it returns something true-ish or the deadline passes;
// returns the last result.
template <typename Probe>
auto PollUntil(std::chrono::milliseconds timeout, Probe&& probe) -> decltype(probe()) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto result = probe();
    if (result || std::chrono::steady_clock::now() >= deadline) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace wsgateway::testing
