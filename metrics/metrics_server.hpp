#pragma once
// Serves the registry on /metrics (prometheus-cpp's civetweb exposer).

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace wsgateway::metrics {

class MetricsServer {
 public:
  // Binds `address` ("host:port", port 0 picks a free one). Throws on
  // failure: start-up only.
  MetricsServer(const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  int port() const;

 private:
  prometheus::Exposer exposer_;
};

}  // namespace wsgateway::metrics
