#include "metrics/metrics_server.hpp"

namespace wsgateway::metrics {

MetricsServer::MetricsServer(const std::string& address,
                             const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables)
    : exposer_(address, /*num_threads=*/1) {
  for (const auto& collectable : collectables) exposer_.RegisterCollectable(collectable, "/metrics");
}

int MetricsServer::port() const {
  const auto ports = exposer_.GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace wsgateway::metrics
