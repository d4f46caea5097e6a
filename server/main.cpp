// wsgateway: wiring only. Reads the configuration, starts the metrics
// listener, the data plane and the admin API; drains and stops them on
// SIGTERM or SIGINT, and re-reads what can change without a restart on
// SIGHUP.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <csignal>
#include <exception>
#include <stdexcept>

#include "admin/admin_server.hpp"
#include "gateway/config/config_loader.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/runtime/gateway.hpp"
#include "metrics/gateway_metrics.hpp"
#include "metrics/metrics_server.hpp"
#include "server/cluster_node.hpp"
#include "server/graceful_shutdown.hpp"
#include "server/hangup_reloader.hpp"
#include "server/logging.hpp"
#include "server/memory_trimmer.hpp"
#include "server/open_file_limit.hpp"
#include "server/readiness_watch.hpp"
#include "server/self_node.hpp"

namespace {

// How often gRPC health follows the backend stream's state.
constexpr std::chrono::milliseconds kReadinessPeriod{100};

std::string Host(const std::string& address) { return address.substr(0, address.rfind(':')); }

boost::asio::ip::tcp::endpoint MetricsEndpoint(const std::string& address) {
  const auto endpoint = wsgateway::ParseEndpoint(address);
  if (!endpoint) throw std::runtime_error("--metrics-listen '" + address + "' is not host:port");
  return *endpoint;
}

int Run(const wsgateway::Config& config) {
  wsgateway::metrics::GatewayMetrics metrics;
  boost::asio::io_context control{1};
  wsgateway::Gateway gateway(config, metrics, control.get_executor());
  wsgateway::SelfNode self(gateway);
  // Cluster mode (null when this gateway runs alone): the admin API and the
  // backend's commands reach every replica's connections through its router.
  const auto cluster = wsgateway::ClusterNode::Make(config, gateway, self, metrics);
  wsgateway::DataPlane& data_plane = cluster ? cluster->data_plane() : gateway.data_plane();
  gateway.RouteCommandsThrough(data_plane);
  wsgateway::admin::NodeDirectory nodes = [&self, &cluster]() -> std::vector<wsgateway::v1::NodeInfo> {
    if (cluster) return cluster->Nodes();
    return {self.Now()};
  };
  // Not ready until the node has joined the cluster once; a Redis lost
  // later does not make it unready (routing goes on with the last view).
  const auto not_ready = [&gateway, &cluster]() -> std::string {
    auto reason = gateway.NotReadyReason();
    if (reason.empty() && cluster && !cluster->joined_once()) reason = "not joined the cluster yet";
    return reason;
  };

  wsgateway::metrics::MetricsServer metrics_server(MetricsEndpoint(config.metrics_listen), metrics.collectables(),
                                                   not_ready);
  spdlog::info("metrics listener on {}:{}", Host(config.metrics_listen), metrics_server.port());

  // The admin server reads its TLS and token files when constructed and
  // binds in Start: a bad file or a taken port stops start-up before the
  // public listener exists. The gateway starts last, so nothing of it is
  // pending on the control loop if start-up fails.
  // The admin API reaches connections through the data plane the
  // backend's commands go through.
  wsgateway::admin::AdminServer admin(config.admin_listen, data_plane, std::move(nodes), config, metrics);
  admin.Start();
  if (cluster) cluster->Listen();
  // Signal handling is installed before the listeners are announced: a
  // test (or an operator) that saw them may send SIGHUP, which must then
  // reload, or SIGTERM, which must then drain rather than kill the process.
  wsgateway::HangupReloader reloader(control, {[&admin] { admin.ReloadTokens(); }, [&gateway] { gateway.ReloadTls(); },
                                               [&cluster] {
                                                 if (cluster) cluster->ReloadTokens();
                                               }});
  wsgateway::ReadinessWatch readiness(control.get_executor(), kReadinessPeriod, not_ready,
                                      [&admin](bool ready, const std::string& reason) {
                                        admin.SetServing(ready);
                                        if (ready) {
                                          spdlog::info("ready");
                                        } else {
                                          spdlog::info("not ready: {}", reason);
                                        }
                                      });
  wsgateway::GracefulShutdown shutdown(control, gateway, [&readiness] { readiness.CheckNow(); });
  shutdown.Arm();
  gateway.Start();
  if (cluster) cluster->Join();
  spdlog::info("admin listener on {}:{}", Host(config.admin_listen), admin.port());
  readiness.Start();
  // Free heap past 8 MiB goes back to the system, checked every 10 s.
  wsgateway::MemoryTrimmer trimmer(control.get_executor(), std::chrono::seconds(10), 8 * 1024 * 1024);
  trimmer.Start();

  control.run();

  admin.Shutdown(std::chrono::milliseconds(500));
  shutdown.Finish();
  // After the drain: the node leaves, and the others hear of it at once.
  if (cluster) {
    cluster->Leave();
    cluster->Shutdown(std::chrono::milliseconds(500));
  }
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
