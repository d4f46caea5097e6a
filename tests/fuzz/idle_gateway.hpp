#pragma once
// A real Gateway for the targets that need one (the command path, page
// tokens), constructed once and never started: no listener, no loop
// threads, no backend dial. Work it posts to a loop waits in the loop's
// io_context, which the target runs on its own thread (Poll), standing in
// for the loop's thread. Built on first use and never destroyed, so the
// leak checker sees it reachable.

#include <boost/asio/io_context.hpp>

#include "gateway/config/config.hpp"
#include "gateway/runtime/gateway.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway::fuzz {

inline constexpr std::size_t kIdleGatewayLoops = 3;
inline constexpr std::size_t kIdleGatewayMaxMessageBytes = 64 * 1024;

struct IdleGateway {
  Config config;
  boost::asio::io_context control;
  metrics::GatewayMetrics metrics;
  std::unique_ptr<Gateway> gateway;

  IdleGateway() {
    config.threads = kIdleGatewayLoops;
    config.max_message_bytes = kIdleGatewayMaxMessageBytes;
    config.log_level = "off";
    gateway = std::make_unique<Gateway>(config, metrics, control.get_executor());
  }

  // Runs what was posted to the loops, as their threads would.
  void Poll() {
    for (std::size_t i = 0; i < gateway->loop_count(); ++i) gateway->loop(i).io_context().poll();
  }
};

inline IdleGateway& TheIdleGateway() {
  static IdleGateway* idle = new IdleGateway();
  return *idle;
}

}  // namespace wsgateway::fuzz
