#pragma once
// A log-linear histogram of non-negative integers (nanoseconds here), in the
// manner of HdrHistogram: values below 256 have a bucket each; above that,
// every power-of-two range is split into 128 equal buckets, so a reported
// value is at most 1/128 (< 0.8 %) above the true one. Fixed size (58 KiB),
// no allocation while recording. Not thread-safe: keep one per thread and
// Merge() at the end.

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>

namespace wsbench {

class Histogram {
 public:
  void Record(std::uint64_t value) {
    ++counts_[IndexOf(value)];
    ++total_;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
  }

  void Merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ == 0 ? 0 : max_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }

  // The smallest bucket upper bound at or below which `percentile` % of the
  // recorded values lie (clamped to the exact maximum); 0 when empty.
  std::uint64_t Percentile(double percentile) const {
    if (total_ == 0) return 0;
    const double wanted = percentile / 100.0 * static_cast<double>(total_);
    std::uint64_t target = static_cast<std::uint64_t>(wanted);
    if (static_cast<double>(target) < wanted) ++target;
    target = std::clamp<std::uint64_t>(target, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= target) return std::min(UpperBoundOf(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 7;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // 128 buckets per power of two
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  static std::size_t IndexOf(std::uint64_t value) {
    if (value < 2 * kSub) return static_cast<std::size_t>(value);
    const unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(value));
    const unsigned shift = msb - kSubBits;
    return static_cast<std::size_t>((shift + 1) * kSub + ((value >> shift) - kSub));
  }

  static std::uint64_t UpperBoundOf(std::size_t index) {
    if (index < 2 * kSub) return index;
    const unsigned shift = static_cast<unsigned>(index / kSub) - 1;
    const std::uint64_t sub = index % kSub + kSub;
    if (shift + kSubBits + 1 >= 64 && sub == 2 * kSub - 1) return std::numeric_limits<std::uint64_t>::max();
    return ((sub + 1) << shift) - 1;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace wsbench
