#include "server/graceful_shutdown.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>

namespace wsgateway {

namespace {

// How often the drain looks whether connections are left.
constexpr std::chrono::milliseconds kPollPeriod{50};

}  // namespace

GracefulShutdown::GracefulShutdown(boost::asio::io_context& control, Gateway& gateway,
                                   std::function<void()> on_drain_start)
    : control_(control),
      gateway_(gateway),
      on_drain_start_(std::move(on_drain_start)),
      signals_(control, SIGINT, SIGTERM),
      poll_(control) {}

void GracefulShutdown::Arm() {
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (!ec) OnSignal(signal);
  });
}

void GracefulShutdown::OnSignal(int signal) {
  const auto& config = gateway_.config();
  const auto now = Clock::now();
  deadline_ = now + config.drain_timeout;
  // The last close handshakes and the backend's acknowledgements need time
  // after the last close frame went out.
  const auto reserve = std::min<Clock::duration>(config.close_timeout, config.drain_timeout / 4);
  stop_closing_at_ = *deadline_ - reserve;
  // Back to the default action: a second signal ends the process at once.
  boost::system::error_code ignored;
  signals_.clear(ignored);
  spdlog::info("signal {} received: draining for at most {} ms (a second signal exits at once)", signal,
               config.drain_timeout.count());
  gateway_.BeginDrain();
  on_drain_start_();
  WatchDrain();
}

void GracefulShutdown::WatchDrain() {
  if (gateway_.connection_count() == 0) {
    spdlog::info("every connection closed");
    return control_.stop();
  }
  if (Clock::now() >= stop_closing_at_) {
    spdlog::warn("drain deadline near: closing the {} connections left at once", gateway_.connection_count());
    return control_.stop();
  }
  poll_.expires_after(kPollPeriod);
  poll_.async_wait([this](boost::system::error_code ec) {
    if (!ec) WatchDrain();
  });
}

std::chrono::milliseconds GracefulShutdown::Remaining() const {
  if (!deadline_) return gateway_.config().close_timeout;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max<Clock::duration>(*deadline_ - Clock::now(), Clock::duration::zero()));
}

void GracefulShutdown::Finish() {
  poll_.cancel();
  gateway_.Stop(Remaining());
  // Let the cancelled accept and timers complete now: their handlers hold
  // sockets of the loops, which go away with the gateway.
  control_.restart();
  control_.poll();
}

}  // namespace wsgateway
