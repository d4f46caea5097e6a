#pragma once
// Gives memory back to the operating system after a spike. glibc keeps the
// heap pages that freed objects leave behind (one arena per thread that
// allocated), so after thousands of connections close, or a backend outage
// ends and the replayed events are acknowledged, the resident size stays
// at the peak. Every period the trimmer asks malloc how much it holds free
// and, past a threshold, releases it with malloc_trim. malloc_trim walks
// the arenas under their locks, so it only runs when there is something to
// give back, not on a quiet gateway every time.
//
// Thread-safety: control thread only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>

namespace wsgateway {

class MemoryTrimmer {
 public:
  MemoryTrimmer(boost::asio::any_io_executor executor, std::chrono::milliseconds period, std::size_t threshold_bytes);

  void Start();

 private:
  void Schedule();
  void TrimIfWorthIt();

  boost::asio::steady_timer timer_;
  const std::chrono::milliseconds period_;
  const std::size_t threshold_bytes_;
};

}  // namespace wsgateway
