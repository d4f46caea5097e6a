#pragma once
// The metrics listener: /metrics in the Prometheus text format, and the
// probes Kubernetes asks: /healthz (the process answers) and /readyz (200
// when the gateway should get new clients, else 503 with the reason). It
// runs on its own thread so that scrapes and probes never wait for the data
// plane or the control thread.
//
// Thread-safety: construct and destroy on one thread; the readiness probe
// is called on the server's thread.

#include <prometheus/collectable.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace wsgateway::metrics {

class MetricsServer {
 public:
  // Why the gateway is not ready; empty when it is.
  using ReadinessProbe = std::function<std::string()>;

  // Binds `endpoint` (port 0 picks a free one). Throws on failure:
  // start-up only.
  MetricsServer(const boost::asio::ip::tcp::endpoint& endpoint,
                std::vector<std::shared_ptr<prometheus::Collectable>> collectables, ReadinessProbe readiness);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

  // What the listener serves, shared with its connections.
  struct Content {
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
    ReadinessProbe readiness;
  };

 private:
  void DoAccept();

  boost::asio::io_context io_context_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  // Waits out a failed accept (out of file descriptors) instead of retrying
  // at once, which would spin a core and starve the probes.
  boost::asio::steady_timer accept_retry_;
  std::shared_ptr<const Content> content_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace wsgateway::metrics
