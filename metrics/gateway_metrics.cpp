#include "metrics/gateway_metrics.hpp"

namespace wsgateway::metrics {
namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(StateLabel::kCount)> kStateLabels = {
    "connection", "handshake", "active", "closing"};

template <typename Metric>
Metric* Child(prometheus::Family<Metric>& family, const prometheus::Labels& labels) {
  return &family.Add(labels);
}

}  // namespace

GatewayMetrics::GatewayMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), loop_counters_(std::make_shared<LoopCountersCollector>()) {
  auto& connections = prometheus::BuildGauge()
                          .Name("wsgateway_connections")
                          .Help("Client connections currently open, by state.")
                          .Register(*registry_);
  for (std::size_t i = 0; i < kStateLabels.size(); ++i) {
    connections_[i] = Child(connections, {{"state", std::string(kStateLabels[i])}});
  }
  accepted_ = Child(prometheus::BuildCounter()
                        .Name("wsgateway_tcp_connections_accepted_total")
                        .Help("TCP connections accepted on the public listener.")
                        .Register(*registry_),
                    {});
  opened_ = Child(prometheus::BuildCounter()
                      .Name("wsgateway_connections_opened_total")
                      .Help("WebSocket handshakes completed.")
                      .Register(*registry_),
                  {});
  closed_ = &prometheus::BuildCounter()
                 .Name("wsgateway_connections_closed_total")
                 .Help("WebSocket connections closed, by close code and by who closed them.")
                 .Register(*registry_);

  handshake_rejections_ = &prometheus::BuildCounter()
                               .Name("wsgateway_handshake_rejections_total")
                               .Help("Upgrade requests and plain HTTP requests refused, by reason.")
                               .Register(*registry_);

  // Every reason exists from the start, at 0, so that dashboards and
  // alerts see the series before the first refusal.
  auto& rejected = prometheus::BuildCounter()
                       .Name("wsgateway_rejected_connections_total")
                       .Help("Client connections refused or dropped before the upgrade by the listener's "
                             "protections, by reason.")
                       .Register(*registry_);
  for (std::size_t i = 0; i < kRejectionReasons; ++i) {
    rejected_[i] = Child(rejected, {{"reason", std::string(RejectionReasonLabel(static_cast<RejectionReason>(i)))}});
  }

  handshake_hook_failures_ = &prometheus::BuildCounter()
                                  .Name("wsgateway_handshake_hook_failures_total")
                                  .Help("Backend.Handshake calls that failed, timed out or answered something "
                                        "the gateway could not honour; the upgrade failed with 503 or 502.")
                                  .Register(*registry_);
  http_forwarding_failures_ = &prometheus::BuildCounter()
                                   .Name("wsgateway_http_forwarding_failures_total")
                                   .Help(
                                       "Backend.HandleRequest calls that failed, timed out or answered what the "
                                       "gateway cannot send; the client got 504 or 502.")
                                   .Register(*registry_);
  for (std::size_t i = 0; i < kHttpForwardingFailureReasons.size(); ++i) {
    http_forwarding_failed_[i] =
        Child(*http_forwarding_failures_, {{"reason", std::string(kHttpForwardingFailureReasons[i])}});
  }
  backend_up_family_ = &prometheus::BuildGauge()
                          .Name("wsgateway_backend_up")
                          .Help("1 while the event stream to the backend is established, else 0; by backend target.")
                          .Register(*registry_);
  backend_connects_family_ = &prometheus::BuildCounter()
                                .Name("wsgateway_backend_stream_connects_total")
                                .Help("Event streams to the backend that became established.")
                                .Register(*registry_);
  backend_disconnects_family_ = &prometheus::BuildCounter()
                                   .Name("wsgateway_backend_stream_failures_total")
                                   .Help("Event streams to the backend that ended or failed to start.")
                                   .Register(*registry_);
  backend_buffered_events_family_ = &prometheus::BuildGauge()
                                       .Name("wsgateway_backend_buffered_events")
                                       .Help("Events held for the backend: not yet sent or not yet acknowledged.")
                                       .Register(*registry_);
  backend_buffered_bytes_family_ = &prometheus::BuildGauge()
                                      .Name("wsgateway_backend_buffered_bytes")
                                      .Help("Bytes of events held for the backend.")
                                      .Register(*registry_);
  backend_events_sent_family_ = &prometheus::BuildCounter()
                                   .Name("wsgateway_backend_events_sent_total")
                                   .Help("Events written to the backend stream, redeliveries included.")
                                   .Register(*registry_);
  backend_batches_sent_family_ = &prometheus::BuildCounter()
                                    .Name("wsgateway_backend_batches_sent_total")
                                    .Help("Event batches (stream messages) written to the backend.")
                                    .Register(*registry_);
  backend_events_lost_family_ = &prometheus::BuildCounter()
                                   .Name("wsgateway_backend_events_lost_total")
                                   .Help("Events given up on because the backend did not acknowledge them in time; "
                                         "their connections were closed with 1011.")
                                   .Register(*registry_);
  backend_paused_connections_ =
      Child(prometheus::BuildGauge()
                .Name("wsgateway_backend_paused_connections")
                .Help("Connections whose reads are paused because the backend buffer is full.")
                .Register(*registry_),
            {});
  auto& throttled = prometheus::BuildCounter()
                        .Name("wsgateway_client_throttled_total")
                        .Help("Times a client's reads were paused for passing client_message_rate or client_byte_rate.")
                        .Register(*registry_);
  throttled_messages_ = &throttled.Add({{"limit", "messages"}});
  throttled_bytes_ = &throttled.Add({{"limit", "bytes"}});
  auto& backoffs = prometheus::BuildCounter()
                       .Name("wsgateway_listener_backoffs_total")
                       .Help(
                           "100 ms pauses of the WebSocket listener: reason=\"descriptor_reserve\" while the "
                           "client connections fill the open-file limit less its reserve, \"accept_error\" after "
                           "a failed accept.")
                       .Register(*registry_);
  listener_backoffs_descriptors_ = &backoffs.Add({{"reason", "descriptor_reserve"}});
  listener_backoffs_errors_ = &backoffs.Add({{"reason", "accept_error"}});
  pending_messages_closes_ =
      Child(prometheus::BuildCounter()
                .Name("wsgateway_limit_closes_total")
                .Help("Connections closed for a gateway-wide limit (1013): limit=\"pending_messages\" is "
                      "pending_messages_max_bytes.")
                .Register(*registry_),
            {{"limit", "pending_messages"}});
  pending_message_bytes_ = Child(prometheus::BuildGauge()
                                     .Name("wsgateway_pending_message_bytes")
                                     .Help("Bytes held in client messages that have not fully arrived, all "
                                           "connections together (bounded by pending_messages_max_bytes).")
                                     .Register(*registry_),
                                 {});
  slow_consumer_closes_ = Child(prometheus::BuildCounter()
                                    .Name("wsgateway_slow_consumer_closes_total")
                                    .Help("Connections closed because their send queue passed its bound.")
                                    .Register(*registry_),
                                {});
  heartbeat_timeouts_ = Child(prometheus::BuildCounter()
                                  .Name("wsgateway_heartbeat_timeouts_total")
                                  .Help("Connections closed as dead: no reply within pong_timeout of a ping.")
                                  .Register(*registry_),
                              {});
  draining_ = Child(prometheus::BuildGauge()
                        .Name("wsgateway_draining")
                        .Help("1 while the gateway drains its connections before exiting (after SIGTERM), else 0.")
                        .Register(*registry_),
                    {});
  cluster_nodes_ = &prometheus::BuildGauge()
                        .Name("wsgateway_cluster_nodes")
                        .Help("Cluster mode: live nodes in this node's view of the membership, itself included.")
                        .Register(*registry_);
  cluster_redis_up_ = &prometheus::BuildGauge()
                           .Name("wsgateway_cluster_redis_up")
                           .Help(
                               "Cluster mode: 1 while this node's lease renewals reach Redis, else 0 (routing "
                               "goes on with the last view).")
                           .Register(*registry_);
  cluster_forwarded_ = &prometheus::BuildCounter()
                            .Name("wsgateway_cluster_forwarded_calls_total")
                            .Help(
                                "Cluster mode: calls sent to the replica owning the connections, by method "
                                "and gRPC status code.")
                            .Register(*registry_);
  cluster_lost_nodes_ = &prometheus::BuildCounter()
                             .Name("wsgateway_cluster_lost_nodes_reported_total")
                             .Help("Cluster mode: lost nodes whose connections this node reported closed.")
                             .Register(*registry_);
  cluster_lost_connections_ = &prometheus::BuildCounter()
                                   .Name("wsgateway_cluster_lost_connections_reported_total")
                                   .Help(
                                       "Cluster mode: Close events this node sent for connections of lost "
                                       "nodes (CLOSED_BY_NODE_LOST).")
                                   .Register(*registry_);
  cluster_fenced_ = &prometheus::BuildCounter()
                         .Name("wsgateway_cluster_fenced_total")
                         .Help(
                             "Cluster mode: times this node found it had been reported lost while it ran, and "
                             "closed its connections with 1012 to rejoin under a new id.")
                         .Register(*registry_);
  admin_latency_ = &prometheus::BuildHistogram()
                        .Name("wsgateway_admin_request_duration_seconds")
                        .Help("Admin API call latency, by method and gRPC status code.")
                        .Register(*registry_);
  // Children appear with the first use: a gateway without TLS exports none.
  tls_reloads_ = &prometheus::BuildCounter()
                      .Name("wsgateway_tls_reloads_total")
                      .Help("Reloads of the public listener's TLS certificate (SIGHUP or a changed file), by result; "
                            "a failed one keeps the current certificate.")
                      .Register(*registry_);
  tls_certificate_expiry_ = &prometheus::BuildGauge()
                                 .Name("wsgateway_tls_certificate_expiry_timestamp_seconds")
                                 .Help("notAfter of the certificate new TLS connections get, in Unix seconds.")
                                 .Register(*registry_);
}

prometheus::Counter& GatewayMetrics::TlsReloads(std::string_view result) {
  return tls_reloads_->Add({{"result", std::string(result)}});
}

prometheus::Gauge& GatewayMetrics::TlsCertificateExpiry() { return tls_certificate_expiry_->Add({}); }

prometheus::Counter& GatewayMetrics::Closed(unsigned code, std::string_view closed_by) {
  // Family::Add hashes the labels under the family's lock; every close
  // would pay it, so resolved children are remembered.
  const auto slot = ClosedSlot(code, closed_by);
  if (slot) {
    if (auto* cached = closed_cache_[*slot].load(std::memory_order_acquire)) return *cached;
  }
  auto& counter = closed_->Add({{"code", CloseCodeLabel(code)}, {"closed_by", std::string(closed_by)}});
  if (slot) closed_cache_[*slot].store(&counter, std::memory_order_release);
  return counter;
}

std::optional<std::size_t> GatewayMetrics::ClosedSlot(unsigned code, std::string_view closed_by) {
  static constexpr std::array<std::string_view, kClosedByValues> kClosedBy = {"client", "server", "backend", "error",
                                                                              "node_lost"};
  std::size_t by = 0;
  while (by < kClosedBy.size() && kClosedBy[by] != closed_by) ++by;
  if (by == kClosedBy.size()) return std::nullopt;
  std::size_t code_index = kCodeLabels - 1;  // "other"
  if (code >= 1000 && code <= 1015) code_index = code - 1000;
  if (code >= 3000 && code <= 3999) code_index = 16;
  if (code >= 4000 && code <= 4999) code_index = 17;
  return code_index * kClosedByValues + by;
}

BackendMetrics GatewayMetrics::Backend(std::string_view target) {
  const prometheus::Labels labels = {{"backend", std::string(target)}};
  return BackendMetrics{
      .up = &backend_up_family_->Add(labels),
      .connects = &backend_connects_family_->Add(labels),
      .disconnects = &backend_disconnects_family_->Add(labels),
      .buffered_events = &backend_buffered_events_family_->Add(labels),
      .buffered_bytes = &backend_buffered_bytes_family_->Add(labels),
      .events_sent = &backend_events_sent_family_->Add(labels),
      .batches_sent = &backend_batches_sent_family_->Add(labels),
      .events_lost = &backend_events_lost_family_->Add(labels),
  };
}

prometheus::Counter& GatewayMetrics::HandshakeHookFailed(std::string_view reason) {
  return handshake_hook_failures_->Add({{"reason", std::string(reason)}});
}

prometheus::Counter& GatewayMetrics::HttpForwardingFailed(std::string_view reason) {
  for (std::size_t i = 0; i < kHttpForwardingFailureReasons.size(); ++i) {
    if (kHttpForwardingFailureReasons[i] == reason) return *http_forwarding_failed_[i];
  }
  return http_forwarding_failures_->Add({{"reason", std::string(reason)}});
}

prometheus::Counter& GatewayMetrics::HandshakeRejected(std::string_view reason) {
  return handshake_rejections_->Add({{"reason", std::string(reason)}});
}

prometheus::Counter& GatewayMetrics::ClusterForwarded(std::string_view method, std::string_view code) {
  return cluster_forwarded_->Add({{"method", std::string(method)}, {"code", std::string(code)}});
}

prometheus::Histogram& GatewayMetrics::AdminLatency(std::string_view method, std::string_view code) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                   0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
  return admin_latency_->Add({{"method", std::string(method)}, {"code", std::string(code)}}, kBuckets);
}

}  // namespace wsgateway::metrics
