#pragma once
// What SIGTERM or SIGINT sets off. The first signal starts a drain:
// readiness turns off, the listener closes, and connections are closed with
// 1001 at drain_rate; the control loop stops once none is left, or when
// only a reserve for the last close handshakes is left of drain_timeout.
// Finish then closes what remains and waits for the backend to take the
// close events, so that the process exits 0 before the deadline. The signal
// handlers are removed when the drain starts, so a second signal ends the
// process at once with the default action.
//
// Thread-safety: control thread only.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>

#include "gateway/runtime/gateway.hpp"

namespace wsgateway {

class GracefulShutdown {
 public:
  using Clock = std::chrono::steady_clock;

  // `on_drain_start` runs once the drain has begun (to publish readiness).
  GracefulShutdown(boost::asio::io_context& control, Gateway& gateway, std::function<void()> on_drain_start);

  // Waits for the first SIGTERM or SIGINT.
  void Arm();

  // After the control loop returned: closes what is still open and waits
  // for the backend, within the drain deadline.
  void Finish();

 private:
  void OnSignal(int signal);
  void WatchDrain();
  std::chrono::milliseconds Remaining() const;

  boost::asio::io_context& control_;
  Gateway& gateway_;
  std::function<void()> on_drain_start_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer poll_;
  std::optional<Clock::time_point> deadline_;
  Clock::time_point stop_closing_at_;
};

}  // namespace wsgateway
