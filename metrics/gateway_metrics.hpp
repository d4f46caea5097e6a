#pragma once
// Every metric the gateway exports, built once at start-up. Children with
// fixed label values are resolved here so the message path only touches an
// atomic; label values are bounded (never a connection or user id).
//
// Thread-safety: all members may be used from any thread (prometheus-cpp
// metrics are atomic); the families map lookups in ClosedCounter and
// AdminLatency take prometheus-cpp's family lock, so they stay off the
// per-message path.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/loop_counters_collector.hpp"
#include "metrics/metric_labels.hpp"

namespace wsgateway::metrics {

class GatewayMetrics {
 public:
  GatewayMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The per-message counters, kept per event loop.
  LoopCountersCollector& loop_counters() { return *loop_counters_; }
  // Everything a scrape must collect.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const { return {registry_, loop_counters_}; }

  prometheus::Gauge& Connections(StateLabel s) { return *connections_[static_cast<std::size_t>(s)]; }
  prometheus::Counter& opened() { return *opened_; }
  prometheus::Counter& accepted() { return *accepted_; }
  prometheus::Counter& Closed(unsigned code, std::string_view closed_by);

  prometheus::Counter& HandshakeRejected(std::string_view reason);

  prometheus::Gauge& backend_up() { return *backend_up_; }
  prometheus::Counter& backend_connects() { return *backend_connects_; }
  prometheus::Counter& backend_disconnects() { return *backend_disconnects_; }
  prometheus::Gauge& backend_buffered_events() { return *backend_buffered_events_; }
  prometheus::Gauge& backend_buffered_bytes() { return *backend_buffered_bytes_; }
  prometheus::Counter& backend_events_sent() { return *backend_events_sent_; }
  prometheus::Counter& backend_batches_sent() { return *backend_batches_sent_; }
  prometheus::Counter& backend_events_lost() { return *backend_events_lost_; }
  prometheus::Gauge& backend_paused_connections() { return *backend_paused_connections_; }

  prometheus::Counter& slow_consumer_closes() { return *slow_consumer_closes_; }
  prometheus::Counter& heartbeat_timeouts() { return *heartbeat_timeouts_; }

  prometheus::Histogram& AdminLatency(std::string_view method, std::string_view code);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<LoopCountersCollector> loop_counters_;

  std::array<prometheus::Gauge*, static_cast<std::size_t>(StateLabel::kCount)> connections_{};
  prometheus::Counter* opened_ = nullptr;
  prometheus::Counter* accepted_ = nullptr;
  prometheus::Family<prometheus::Counter>* closed_ = nullptr;
  // Children of closed_ by (close code label, closed_by), resolved on first
  // use: 1000-1015, 3xxx, 4xxx, other; client, server, backend, error.
  static constexpr std::size_t kCodeLabels = 19;
  static constexpr std::size_t kClosedByValues = 4;
  static std::optional<std::size_t> ClosedSlot(unsigned code, std::string_view closed_by);
  std::array<std::atomic<prometheus::Counter*>, kCodeLabels * kClosedByValues> closed_cache_{};

  prometheus::Family<prometheus::Counter>* handshake_rejections_ = nullptr;

  prometheus::Gauge* backend_up_ = nullptr;
  prometheus::Counter* backend_connects_ = nullptr;
  prometheus::Counter* backend_disconnects_ = nullptr;
  prometheus::Gauge* backend_buffered_events_ = nullptr;
  prometheus::Gauge* backend_buffered_bytes_ = nullptr;
  prometheus::Counter* backend_events_sent_ = nullptr;
  prometheus::Counter* backend_batches_sent_ = nullptr;
  prometheus::Counter* backend_events_lost_ = nullptr;
  prometheus::Gauge* backend_paused_connections_ = nullptr;

  prometheus::Counter* slow_consumer_closes_ = nullptr;
  prometheus::Counter* heartbeat_timeouts_ = nullptr;
  prometheus::Family<prometheus::Histogram>* admin_latency_ = nullptr;
};

}  // namespace wsgateway::metrics
