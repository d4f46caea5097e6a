#pragma once
// Serves the collectables (the registry and the per-loop counters) on /metrics (prometheus-cpp's civetweb exposer).

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace wsgateway::metrics {

class MetricsServer {
 public:
  // Binds `address` ("host:port", port 0 picks a free one). Throws on
  // failure: start-up only.
  MetricsServer(const std::string& address, const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

  int port() const;

 private:
  prometheus::Exposer exposer_;
};

}  // namespace wsgateway::metrics
