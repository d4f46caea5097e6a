#include "tests/support/cluster_stack.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>

#include "tests/support/poll_until.hpp"

namespace wsgateway::testing {

std::unique_ptr<ClusterStack> ClusterStack::Start(const Options& options, std::string* error) {
  std::unique_ptr<ClusterStack> stack(new ClusterStack());
  stack->options_ = options;
  stack->redis_ = RedisProcess::Start(error);
  if (!stack->redis_) return nullptr;
  static int stacks = 0;
  stack->token_file_ =
      ::testing::TempDir() + "/cluster-token-" + std::to_string(::getpid()) + "-" + std::to_string(++stacks);
  std::ofstream(stack->token_file_) << "cluster-stack-token\n";
  for (std::size_t i = 0; i < options.nodes; ++i) {
    if (!stack->AddNode(error)) return nullptr;
  }
  for (std::size_t i = 0; i < options.nodes; ++i) {
    if (!stack->WaitForMembers(i, stack->node_ids_, std::chrono::seconds(20))) {
      *error = "node " + std::to_string(i) + " did not list every node";
      return nullptr;
    }
  }
  return stack;
}

bool ClusterStack::AddNode(std::string* error) {
  GatewayProcess::Options options;
  options.backend = options_.backend;
  options.wait_for_backend = options_.wait_for_backend;
  const std::size_t index = nodes_.size();
  std::string redis_url = options_.redis_url_of ? options_.redis_url_of(index, *redis_) : std::string();
  if (redis_url.empty()) redis_url = redis_->url();
  options.args = {"--cluster-redis",  redis_url,     "--cluster-token-file", token_file_,
                  "--cluster-listen", "127.0.0.1:0", "--cluster-key-prefix", "stack"};
  options.args.insert(options.args.end(), options_.args.begin(), options_.args.end());
  if (const auto own = options_.node_args.find(index); own != options_.node_args.end()) {
    options.args.insert(options.args.end(), own->second.begin(), own->second.end());
  }
  options.env = {{"POD_NAME", "node-" + std::to_string(index)}};
  auto node = GatewayProcess::Start(options, error);
  if (!node) return false;
  auto admin = std::make_unique<AdminClient>(node->admin_port());
  // Its own id: the one node it lists before any other (it registers
  // itself), found by its pod name.
  std::string id;
  const auto pod = options.env["POD_NAME"];
  PollUntil(std::chrono::seconds(20), [&] {
    v1::ListNodesResponse response;
    auto context = admin->Context();
    if (!admin->stub().ListNodes(context.get(), v1::ListNodesRequest{}, &response).ok()) return false;
    for (const auto& listed : response.nodes()) {
      if (listed.pod_name() == pod) id = listed.node_id();
    }
    return !id.empty();
  });
  if (id.empty()) {
    *error = "node " + pod + " never listed itself:\n" + node->process().Tail();
    return false;
  }
  nodes_.push_back(std::move(node));
  admins_.push_back(std::move(admin));
  node_ids_.push_back(id);
  return true;
}

void ClusterStack::Forget(std::size_t i) {
  nodes_[i]->process().Signal(SIGKILL);
  nodes_[i]->process().Wait(std::chrono::seconds(10));
  node_ids_[i].clear();
}

std::vector<v1::NodeInfo> ClusterStack::Nodes(std::size_t i) {
  v1::ListNodesResponse response;
  auto context = admins_[i]->Context();
  if (!admins_[i]->stub().ListNodes(context.get(), v1::ListNodesRequest{}, &response).ok()) return {};
  return {response.nodes().begin(), response.nodes().end()};
}

bool ClusterStack::WaitForMembers(std::size_t i, std::vector<std::string> ids, std::chrono::milliseconds timeout) {
  std::erase(ids, std::string());
  std::sort(ids.begin(), ids.end());
  return PollUntil(timeout, [&] {
    std::vector<std::string> listed;
    for (const auto& node : Nodes(i)) listed.push_back(node.node_id());
    std::sort(listed.begin(), listed.end());
    return listed == ids;
  });
}

std::vector<std::string> ClusterStack::live_ids() const {
  std::vector<std::string> ids;
  for (const auto& id : node_ids_) {
    if (!id.empty()) ids.push_back(id);
  }
  return ids;
}

}  // namespace wsgateway::testing
