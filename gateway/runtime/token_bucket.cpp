#include "gateway/runtime/token_bucket.hpp"

#include <algorithm>

namespace wsgateway {

TokenBucket::Clock::duration TokenBucket::Draw(double amount, double rate, double burst, Clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  drawn_ = std::max(0.0, drawn_ - elapsed * rate) + amount;
  last_ = now;
  if (drawn_ <= burst) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((drawn_ - burst) / rate));
}

}  // namespace wsgateway
