#pragma once
// The counters bumped for every message: frames and bytes in and out, and
// backend command results. Each event loop owns one LoopCounters and is its
// only writer, so a count is a plain load and store on a cache line no other
// core writes; prometheus-cpp's counters would be a compare-and-swap on a
// line shared by every loop. LoopCountersCollector sums them at scrape time.

#include <array>
#include <atomic>
#include <cstdint>

#include "metrics/metric_labels.hpp"

namespace wsgateway::metrics {

class alignas(64) LoopCounters {
 public:
  // `single_writer`: only one thread ever counts here (an event loop).
  // Otherwise counts are atomic read-modify-writes.
  explicit LoopCounters(bool single_writer) : single_writer_(single_writer) {}

  void Received(FrameKind kind, std::uint64_t bytes) {
    Add(messages_in_[Index(kind)], 1);
    Add(bytes_in_[Index(kind)], bytes);
  }
  void Sent(FrameKind kind, std::uint64_t bytes) {
    Add(messages_out_[Index(kind)], 1);
    Add(bytes_out_[Index(kind)], bytes);
  }
  void Command(CommandKind command, CommandResult result) {
    Add(commands_[static_cast<std::size_t>(command)][static_cast<std::size_t>(result)], 1);
  }

  using PerKind = std::array<std::atomic<std::uint64_t>, kFrameKinds>;
  using PerCommand = std::array<std::array<std::atomic<std::uint64_t>, kCommandResults>, kCommandKinds>;

  // Readers (the collector) may load these from any thread.
  const PerKind& messages_in() const { return messages_in_; }
  const PerKind& bytes_in() const { return bytes_in_; }
  const PerKind& messages_out() const { return messages_out_; }
  const PerKind& bytes_out() const { return bytes_out_; }
  const PerCommand& commands() const { return commands_; }

 private:
  static std::size_t Index(FrameKind kind) { return static_cast<std::size_t>(kind); }

  void Add(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
    if (single_writer_) {
      counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    } else {
      counter.fetch_add(n, std::memory_order_relaxed);
    }
  }

  const bool single_writer_;
  PerKind messages_in_{};
  PerKind bytes_in_{};
  PerKind messages_out_{};
  PerKind bytes_out_{};
  PerCommand commands_{};
};

}  // namespace wsgateway::metrics
