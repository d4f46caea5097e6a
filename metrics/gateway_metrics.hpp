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

// One backend target's stream metrics, children of labelled families.
struct BackendMetrics {
  prometheus::Gauge* up = nullptr;
  prometheus::Counter* connects = nullptr;
  prometheus::Counter* disconnects = nullptr;
  prometheus::Gauge* buffered_events = nullptr;
  prometheus::Gauge* buffered_bytes = nullptr;
  prometheus::Counter* events_sent = nullptr;
  prometheus::Counter* batches_sent = nullptr;
  prometheus::Counter* events_lost = nullptr;
};

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
  // Client connections refused or dropped before their upgrade by the
  // listener's protections (origin, limits, slow or oversized requests).
  prometheus::Counter& Rejected(RejectionReason reason) { return *rejected_[static_cast<std::size_t>(reason)]; }
  // Handshake hook calls that failed (timeout, error, bad_response).
  prometheus::Counter& HandshakeHookFailed(std::string_view reason);
  // Backend.HandleRequest calls that failed (timeout, error) or answered
  // what the gateway cannot send (bad_status, bad_header,
  // bad_content_length, bad_body); the client got 504 or 502. Every reason
  // is exported from start-up at 0.
  static constexpr std::array<std::string_view, 6> kHttpForwardingFailureReasons = {
      "timeout", "error", "bad_status", "bad_header", "bad_content_length", "bad_body"};
  prometheus::Counter& HttpForwardingFailed(std::string_view reason);

  // The metrics of the event stream to one backend target (label
  // `backend`); call once per target at start-up.
  BackendMetrics Backend(std::string_view target);
  prometheus::Gauge& backend_paused_connections() { return *backend_paused_connections_; }

  prometheus::Counter& slow_consumer_closes() { return *slow_consumer_closes_; }
  // Reads paused by the per-connection rates.
  prometheus::Counter& throttled_messages() { return *throttled_messages_; }
  prometheus::Counter& throttled_bytes() { return *throttled_bytes_; }
  // Connections closed for pending_messages_max_bytes, and the bytes held.
  prometheus::Counter& pending_messages_closes() { return *pending_messages_closes_; }
  // 100 ms pauses of the WebSocket listener: at the descriptor reserve, or
  // after a failed accept.
  prometheus::Counter& listener_backoffs_descriptors() { return *listener_backoffs_descriptors_; }
  prometheus::Counter& listener_backoffs_errors() { return *listener_backoffs_errors_; }
  prometheus::Gauge& pending_message_bytes() { return *pending_message_bytes_; }
  prometheus::Counter& heartbeat_timeouts() { return *heartbeat_timeouts_; }
  prometheus::Gauge& draining() { return *draining_; }
  // Cluster mode only (the children appear with the first use).
  prometheus::Gauge& cluster_nodes() { return cluster_nodes_->Add({}); }
  prometheus::Gauge& cluster_redis_up() { return cluster_redis_up_->Add({}); }
  prometheus::Counter& ClusterForwarded(std::string_view method, std::string_view code);
  prometheus::Counter& cluster_lost_nodes_reported() { return cluster_lost_nodes_->Add({}); }
  prometheus::Counter& cluster_lost_connections_reported() { return cluster_lost_connections_->Add({}); }
  prometheus::Counter& cluster_fenced() { return cluster_fenced_->Add({}); }

  prometheus::Histogram& AdminLatency(std::string_view method, std::string_view code);

  // TLS on the public listener: certificate reloads by result ("ok",
  // "error"), and the current certificate's notAfter in Unix seconds.
  prometheus::Counter& TlsReloads(std::string_view result);
  prometheus::Gauge& TlsCertificateExpiry();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<LoopCountersCollector> loop_counters_;

  std::array<prometheus::Gauge*, static_cast<std::size_t>(StateLabel::kCount)> connections_{};
  prometheus::Counter* opened_ = nullptr;
  prometheus::Counter* accepted_ = nullptr;
  prometheus::Family<prometheus::Counter>* closed_ = nullptr;
  // Children of closed_ by (close code label, closed_by), resolved on first
  // use: 1000-1015, 3xxx, 4xxx, other; client, server, backend, error,
  // node_lost.
  static constexpr std::size_t kCodeLabels = 19;
  static constexpr std::size_t kClosedByValues = 5;
  static std::optional<std::size_t> ClosedSlot(unsigned code, std::string_view closed_by);
  std::array<std::atomic<prometheus::Counter*>, kCodeLabels * kClosedByValues> closed_cache_{};

  prometheus::Family<prometheus::Counter>* handshake_rejections_ = nullptr;
  prometheus::Family<prometheus::Counter>* handshake_hook_failures_ = nullptr;
  prometheus::Family<prometheus::Counter>* http_forwarding_failures_ = nullptr;
  std::array<prometheus::Counter*, kHttpForwardingFailureReasons.size()> http_forwarding_failed_{};
  std::array<prometheus::Counter*, kRejectionReasons> rejected_{};

  prometheus::Family<prometheus::Gauge>* backend_up_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* backend_connects_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* backend_disconnects_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* backend_buffered_events_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* backend_buffered_bytes_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* backend_events_sent_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* backend_batches_sent_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* backend_events_lost_family_ = nullptr;
  prometheus::Gauge* backend_paused_connections_ = nullptr;

  prometheus::Counter* slow_consumer_closes_ = nullptr;
  prometheus::Counter* throttled_messages_ = nullptr;
  prometheus::Counter* throttled_bytes_ = nullptr;
  prometheus::Counter* pending_messages_closes_ = nullptr;
  prometheus::Counter* listener_backoffs_descriptors_ = nullptr;
  prometheus::Counter* listener_backoffs_errors_ = nullptr;
  prometheus::Gauge* pending_message_bytes_ = nullptr;
  prometheus::Counter* heartbeat_timeouts_ = nullptr;
  prometheus::Gauge* draining_ = nullptr;
  prometheus::Family<prometheus::Gauge>* cluster_nodes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* cluster_redis_up_ = nullptr;
  prometheus::Family<prometheus::Counter>* cluster_forwarded_ = nullptr;
  prometheus::Family<prometheus::Counter>* cluster_lost_nodes_ = nullptr;
  prometheus::Family<prometheus::Counter>* cluster_lost_connections_ = nullptr;
  prometheus::Family<prometheus::Counter>* cluster_fenced_ = nullptr;
  prometheus::Family<prometheus::Histogram>* admin_latency_ = nullptr;
  prometheus::Family<prometheus::Counter>* tls_reloads_ = nullptr;
  prometheus::Family<prometheus::Gauge>* tls_certificate_expiry_ = nullptr;
};

}  // namespace wsgateway::metrics
