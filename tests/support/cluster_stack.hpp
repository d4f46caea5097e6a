#pragma once
// Several gateway processes acting as one (cluster mode) on loopback: a
// redis-server of the test's own, a shared token file, and N gateways with
// their node-to-node listeners on ports the OS picks. Start returns once
// every node lists every other one.
//
// Thread-safety: the test's thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/redis_process.hpp"

namespace wsgateway::testing {

class ClusterStack {
 public:
  struct Options {
    std::size_t nodes = 3;
    // gRPC target of the backend every node dials; empty for none.
    std::string backend{};
    // Extra flags for every node.
    std::vector<std::string> args{};
    // Wait for each node's "backend stream up" (when backend is set).
    bool wait_for_backend = true;
    // Extra flags for node i only, after `args`.
    std::map<std::size_t, std::vector<std::string>> node_args{};
    // The --cluster-redis of node i, given the stack's Redis (e.g. a
    // TcpProxy in front of it, to cut that node off); unset or empty: the
    // Redis itself.
    std::function<std::string(std::size_t node, const RedisProcess& redis)> redis_url_of{};
  };

  // Nullptr and *error on failure.
  static std::unique_ptr<ClusterStack> Start(const Options& options, std::string* error);

  std::size_t size() const { return nodes_.size(); }
  GatewayProcess& node(std::size_t i) { return *nodes_[i]; }
  AdminClient& admin(std::size_t i) { return *admins_[i]; }
  RedisProcess& redis() { return *redis_; }
  // The replicas' shared token file (cluster_token_file).
  const std::string& token_file() const { return token_file_; }
  // The node's id (ListNodes, ClientInfo.node_id).
  const std::string& node_id(std::size_t i) const { return node_ids_[i]; }

  // Starts one more node with the same settings (node size()); false and
  // *error on failure. It is not waited for in the others' views.
  bool AddNode(std::string* error);
  // Stops node i's process for good (SIGKILL); its slot stays, empty.
  void Forget(std::size_t i);

  // The nodes that node i lists (ListNodes); empty when the call fails.
  std::vector<v1::NodeInfo> Nodes(std::size_t i);
  // Waits until node i lists exactly `ids` (in any order).
  bool WaitForMembers(std::size_t i, std::vector<std::string> ids, std::chrono::milliseconds timeout);
  // Every live node's id.
  std::vector<std::string> live_ids() const;

 private:
  ClusterStack() = default;
  bool Launch(std::string* error);

  Options options_;
  std::string token_file_;
  std::unique_ptr<RedisProcess> redis_;
  std::vector<std::unique_ptr<GatewayProcess>> nodes_;
  std::vector<std::unique_ptr<AdminClient>> admins_;
  std::vector<std::string> node_ids_;
};

}  // namespace wsgateway::testing
