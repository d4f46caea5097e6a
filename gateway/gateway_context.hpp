#pragma once
// What every loop and session of one gateway shares. All members outlive the
// loops; none is owned here.

#include <cstdint>

#include "gateway/config.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway {

class BackendLink;

struct GatewayContext {
  const Config& config;
  metrics::GatewayMetrics& metrics;
  BackendLink& backend;
  // Identifies this process in connection ids.
  std::uint64_t epoch;
};

}  // namespace wsgateway
