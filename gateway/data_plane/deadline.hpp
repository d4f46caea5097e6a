#pragma once
// A gRPC call's deadline (the system clock; time_point::max() when there is
// none) as a data plane deadline (the steady clock, which no clock
// adjustment moves).

#include <chrono>

namespace wsgateway {

inline std::chrono::steady_clock::time_point SteadyDeadline(std::chrono::system_clock::time_point deadline) {
  // A year is as good as never, and keeps the arithmetic from overflowing.
  constexpr auto kNever = std::chrono::hours(24 * 365);
  const auto left = deadline - std::chrono::system_clock::now();
  if (left >= kNever) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

}  // namespace wsgateway
