#include "server/memory_trimmer.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

namespace wsgateway {

MemoryTrimmer::MemoryTrimmer(boost::asio::any_io_executor executor, std::chrono::milliseconds period,
                             std::size_t threshold_bytes)
    : timer_(std::move(executor)), period_(period), threshold_bytes_(threshold_bytes) {}

void MemoryTrimmer::Start() { Schedule(); }

void MemoryTrimmer::Schedule() {
  timer_.expires_after(period_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    TrimIfWorthIt();
    Schedule();
  });
}

void MemoryTrimmer::TrimIfWorthIt() {
  // Free bytes in every arena: chunks in the bins and the top of each heap.
  const struct mallinfo2 info = mallinfo2();
  const std::size_t free_bytes = info.fordblks;
  if (free_bytes < threshold_bytes_) return;
  const auto started = std::chrono::steady_clock::now();
  malloc_trim(0);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  spdlog::debug("gave {} free heap bytes back to the system in {} us", free_bytes, took.count());
}

}  // namespace wsgateway
