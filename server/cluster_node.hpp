#pragma once
// Cluster mode for this process (cluster_redis set): the node-to-node
// listener (wsgateway.v1.Cluster on cluster_listen, guarded by the shared
// token of cluster_token_file), this node's lease in Redis, and the router
// that the admin API and the backend's commands go through. The token and
// the Redis password files are read when it is made.
//
// Order: Make, then Listen (binds; the advertised address may need the
// bound port), then Join once the gateway runs; after the drain, Leave and
// then Shutdown.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

#include "admin/bearer_tokens.hpp"
#include "cluster/cluster_data_plane.hpp"
#include "cluster/cluster_service.hpp"
#include "cluster/connection_registry.hpp"
#include "cluster/loss_reporter.hpp"
#include "cluster/membership.hpp"
#include "gateway/config/config.hpp"
#include "gateway/runtime/connection_observer.hpp"
#include "gateway/runtime/gateway.hpp"
#include "metrics/gateway_metrics.hpp"
#include "server/self_node.hpp"

namespace wsgateway {

class ClusterNode final : private ConnectionObserver {
 public:
  // Null when cluster mode is off. Throws when a file cannot be used:
  // start-up only.
  static std::unique_ptr<ClusterNode> Make(const Config& config, Gateway& gateway, SelfNode& self,
                                           metrics::GatewayMetrics& metrics);
  ~ClusterNode();

  // Binds the node-to-node listener and serves it. Throws on failure.
  void Listen();
  // Registers in the membership and starts renewing, keeping this node's
  // connection registry in Redis and reporting lost nodes' connections.
  void Join();
  // Stops the registry and the reporting, then leaves the membership at
  // once (the other nodes drop this one within a renewal) and stops
  // renewing. After the drain: the connections are closed and their Close
  // events sent, so the registry is deleted, not reported.
  void Leave();
  // Finishes node-to-node calls in progress, cancelling those still running
  // at `deadline`.
  void Shutdown(std::chrono::milliseconds deadline);

  // Re-reads cluster_token_file (SIGHUP): the tokens accepted and the one
  // sent. A file that cannot be read or holds no token changes nothing,
  // and the error is logged. Thread-safe.
  void ReloadTokens();

  // The router: every replica's connections. Any thread.
  DataPlane& data_plane() { return router_; }
  // The live members (ListNodes). Any thread.
  std::vector<v1::NodeInfo> Nodes() const;
  // The node has registered at least once.
  bool joined_once() const;
  int port() const { return port_; }

 private:
  ClusterNode(const Config& config, Gateway& gateway, SelfNode& self, metrics::GatewayMetrics& metrics,
              std::string token, cluster::MembershipOptions membership_options);
  std::shared_ptr<const cluster::Membership::View> View() const;

  // ConnectionObserver, on loop threads: feeds the registry.
  void Opened(std::string_view connection_id, std::size_t backend) override;
  void Closed(std::string_view connection_id) override;
  // Membership thread: this node was reported lost while it ran.
  void OnFenced();
  // cluster_fence eager: closes every connection while the last renewal
  // is nearly a lease old (thread of its own).
  void WatchForEagerFence(std::stop_token stop);
  cluster::ConnectionRegistryOptions RegistryOptions();
  cluster::LossReporterOptions ReporterOptions();

  const Config& config_;
  Gateway& gateway_;
  SelfNode& self_;
  metrics::GatewayMetrics& metrics_;
  // Redis and the key prefix, read at Make (the password file too).
  const cluster::MembershipOptions membership_options_;
  admin::BearerTokens tokens_;
  cluster::ClusterService service_;
  cluster::ClusterDataPlane router_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Made by Join, once the advertised address is known; read by the
  // router from any thread after that.
  std::atomic<std::shared_ptr<cluster::Membership>> membership_;
  // This node's live connections in Redis, and the reporting of lost
  // nodes' connections; made at once (the observer feeds the registry from
  // the first connection), started by Join.
  cluster::ConnectionRegistry registry_;
  cluster::LossReporter reporter_;
  std::jthread eager_fence_;
};

}  // namespace wsgateway
