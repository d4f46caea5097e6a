#pragma once
// Opens a run's connections at a fixed rate: connection i falls due at
// start + i / rate, and each wake-up opens all that fell due meanwhile, so a
// late timer does not lower the rate. Some servers refuse a burst of a
// thousand simultaneous opens, and what a new connection costs a server is
// only comparable at a known rate.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <utility>

#include "bench_common.hpp"

namespace wsbench {

class PacedOpener {
 public:
  using Open = std::function<void(std::uint64_t index)>;

  // The pacing timer runs on `executor`.
  explicit PacedOpener(boost::asio::any_io_executor executor) : timer_(std::move(executor)) {}

  // Calls `open` for 0 .. count - 1, in order, `rate` per second from now;
  // all of them at once when `rate` is not positive. Call it on the executor
  // or before it runs, once.
  void Start(std::uint64_t count, double rate, Open open);

  // When Start was called.
  Clock::time_point start() const { return start_; }

 private:
  void OpenDue();

  boost::asio::steady_timer timer_;
  std::uint64_t count_ = 0;
  double rate_ = 0;
  Open open_;
  Clock::time_point start_;
  std::uint64_t opened_ = 0;
};

}  // namespace wsbench
