#pragma once
// A token bucket kept as the amount drawn and not yet refilled, so that a
// full bucket is all zeroes and an idle connection's pair of them costs 32
// bytes and no timer. Draining past the burst is allowed (a message is
// never split or refused for its size); the bucket then says how long the
// owner must wait before the balance is back within the burst. Not
// thread-safe: each belongs to one connection on its loop.

#include <chrono>

namespace wsgateway {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Draws `amount` at `now`, refilling at `rate` per second up to `burst`.
  // Returns how long to wait before drawing again: zero while the amount
  // drawn is within the burst.
  Clock::duration Draw(double amount, double rate, double burst, Clock::time_point now);

 private:
  double drawn_ = 0;
  Clock::time_point last_{};
};

}  // namespace wsgateway
