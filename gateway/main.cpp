// wsgateway: wiring only. Reads the configuration, starts the metrics
// listener, the data plane and the admin API, and stops them on SIGINT or
// SIGTERM; SIGHUP re-reads what can change without a restart.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <exception>
#include <functional>

#include "admin/admin_server.hpp"
#include "gateway/config_loader.hpp"
#include "gateway/gateway.hpp"
#include "gateway/logging.hpp"
#include "gateway/open_file_limit.hpp"
#include "metrics/gateway_metrics.hpp"
#include "metrics/metrics_server.hpp"

namespace {

int Run(const wsgateway::Config& config) {
  wsgateway::metrics::GatewayMetrics metrics;
  boost::asio::io_context control{1};

  wsgateway::metrics::MetricsServer metrics_server(config.metrics_listen, metrics.collectables());
  spdlog::info("metrics listener on {}:{}", config.metrics_listen.substr(0, config.metrics_listen.rfind(':')),
               metrics_server.port());

  wsgateway::Gateway gateway(config, metrics, control.get_executor());
  // Reads the admin TLS and token files first: a bad one stops start-up
  // before the gateway listens.
  wsgateway::admin::AdminServer admin(config.admin_listen, gateway, metrics);
  gateway.Start();

  admin.Start();
  // Handled before the admin listener is announced: from then on a SIGHUP
  // must reload, not take the default action (exit).
  boost::asio::signal_set hangups(control, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_hangup = [&](boost::system::error_code ec, int) {
    if (ec) return;
    spdlog::info("SIGHUP received: reloading");
    admin.ReloadTokens();
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);
  spdlog::info("admin listener on {}:{}", config.admin_listen.substr(0, config.admin_listen.rfind(':')), admin.port());

  boost::asio::signal_set signals(control, SIGINT, SIGTERM);
  signals.async_wait([&control](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received: shutting down", signal);
    control.stop();
  });
  control.run();

  admin.Shutdown(std::chrono::seconds(1));
  gateway.Stop(config.handshake_timeout);
  // Let the cancelled accept and timers complete now: their handlers hold
  // sockets of the loops, which go away with the gateway.
  control.restart();
  control.poll();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto loaded = wsgateway::LoadConfig(argc, argv);
  if (!loaded.config) return loaded.exit_code;
  const auto& config = *loaded.config;
  wsgateway::SetupLogging(config.log_level, config.log_format);
  // A peer closing mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  const auto files = wsgateway::RaiseOpenFileLimit();
  spdlog::info("open-file limit {} (was {})", files.after, files.before);
  try {
    return Run(config);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
