#pragma once
// Exports the per-loop message counters (loop_counters.hpp) as ordinary
// Prometheus counter families, summed over the loops at scrape time:
//   wsgateway_messages_received_total{opcode}, wsgateway_received_bytes_total{opcode},
//   wsgateway_messages_sent_total{opcode}, wsgateway_sent_bytes_total{opcode},
//   wsgateway_backend_commands_total{command,result}.
//
// Thread-safety: AddLoop at start-up; Collect from the metrics listener's thread
// while the loops count.

#include <absl/base/thread_annotations.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <mutex>
#include <vector>

#include "metrics/loop_counters.hpp"

namespace wsgateway::metrics {

class LoopCountersCollector : public prometheus::Collectable {
 public:
  LoopCountersCollector();

  // A new set of counters with a single writer (one event loop). It lives
  // as long as the collector.
  LoopCounters& AddLoop();
  // Counters for every other thread (atomic increments).
  LoopCounters& shared() { return *shared_; }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<LoopCounters>> counters_ ABSL_GUARDED_BY(mutex_);  // shared_ first
  // Set in the constructor, never changed: read without the mutex.
  LoopCounters* shared_ = nullptr;
};

}  // namespace wsgateway::metrics
