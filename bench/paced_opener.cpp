#include "paced_opener.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace wsbench {

void PacedOpener::Start(std::uint64_t count, double rate, Open open) {
  count_ = count;
  rate_ = rate;
  open_ = std::move(open);
  start_ = Clock::now();
  if (rate_ <= 0) {
    for (; opened_ < count_; ++opened_) open_(opened_);
    return;
  }
  OpenDue();
}

void PacedOpener::OpenDue() {
  const double elapsed = Seconds(Clock::now() - start_);
  const auto due = std::min<std::uint64_t>(count_, static_cast<std::uint64_t>(std::floor(elapsed * rate_)) + 1);
  for (; opened_ < due; ++opened_) open_(opened_);
  if (opened_ == count_) return;
  timer_.expires_at(start_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(static_cast<double>(opened_) / rate_)));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) OpenDue();
  });
}

}  // namespace wsbench
