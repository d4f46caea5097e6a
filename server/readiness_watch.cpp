#include "server/readiness_watch.hpp"

namespace wsgateway {

ReadinessWatch::ReadinessWatch(boost::asio::any_io_executor executor, std::chrono::milliseconds period, Probe probe,
                               OnChange on_change)
    : timer_(std::move(executor)), period_(period), probe_(std::move(probe)), on_change_(std::move(on_change)) {}

void ReadinessWatch::Start() {
  CheckNow();
  Schedule();
}

void ReadinessWatch::CheckNow() {
  auto reason = probe_();
  if (last_reason_ && *last_reason_ == reason) return;
  on_change_(reason.empty(), reason);
  last_reason_ = std::move(reason);
}

void ReadinessWatch::Schedule() {
  timer_.expires_after(period_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    CheckNow();
    Schedule();
  });
}

}  // namespace wsgateway
