#include "metrics/metrics_server.hpp"

namespace wsgateway::metrics {

MetricsServer::MetricsServer(const std::string& address, std::shared_ptr<prometheus::Registry> registry)
    : exposer_(address, /*num_threads=*/1) {
  exposer_.RegisterCollectable(registry, "/metrics");
}

int MetricsServer::port() const {
  const auto ports = exposer_.GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace wsgateway::metrics
