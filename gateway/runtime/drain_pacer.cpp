#include "gateway/runtime/drain_pacer.hpp"

#include <algorithm>
#include <cmath>

namespace wsgateway {

DrainPacer::DrainPacer(double per_second, Clock::time_point start)
    : per_second_(std::max(per_second, 1e-3)), start_(start) {}

std::size_t DrainPacer::Take(Clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(std::max(now - start_, Clock::duration::zero())).count();
  const auto allowed = 1 + static_cast<std::size_t>(std::floor(elapsed * per_second_));
  if (allowed <= taken_) return 0;
  const auto more = allowed - taken_;
  taken_ = allowed;
  return more;
}

DrainPacer::Clock::time_point DrainPacer::NextDue() const {
  const auto offset = std::chrono::duration<double>(static_cast<double>(taken_) / per_second_);
  return start_ + std::chrono::duration_cast<Clock::duration>(offset);
}

}  // namespace wsgateway
