#pragma once
// Paces the closing of connections during a graceful drain: on average
// `per_second` of them, the first at once. Spreading the closes keeps a
// fleet of clients from reconnecting to the remaining replicas in one
// stampede.

#include <chrono>
#include <cstddef>

namespace wsgateway {

class DrainPacer {
 public:
  using Clock = std::chrono::steady_clock;

  DrainPacer(double per_second, Clock::time_point start);

  // How many more connections may be closed by `now`; what is returned
  // counts as taken whether or not the caller uses it all.
  std::size_t Take(Clock::time_point now);

  // When the next connection may be closed.
  Clock::time_point NextDue() const;

 private:
  double per_second_;
  Clock::time_point start_;
  std::size_t taken_ = 0;
};

}  // namespace wsgateway
