// Cluster mode's membership, process level: gateways started with
// --cluster-redis register in a Redis of the test's own, publish their
// record (the node id is the epoch their connection ids start with, the
// connections they hold), are not ready before they have joined, and leave
// at once after a SIGTERM drain.

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <chrono>

#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/redis_client.hpp"
#include "gateway/config/redis_url.hpp"
#include "tests/support/admin_client.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/redis_process.hpp"
#include "tests/support/ws_client.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPrefix = "itest";

class ClusterMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    redis_ = RedisProcess::Start(&error);
    ASSERT_TRUE(redis_) << error;
    backend_ = EchoBackendProcess::Start(0, &error);
    ASSERT_TRUE(backend_) << error;
  }

  std::unique_ptr<GatewayProcess> StartGateway(const std::string& redis_url, const std::string& pod,
                                               const std::vector<std::string>& extra_args = {}) {
    GatewayProcess::Options options;
    options.backend = backend_->target();
    options.args = {"--cluster-redis",      redis_url,   "--cluster-key-prefix", kPrefix,
                    "--cluster-token-file", TokenFile(), "--cluster-listen",     "127.0.0.1:0"};
    options.args.insert(options.args.end(), extra_args.begin(), extra_args.end());
    options.env = {{"POD_NAME", pod}};
    std::string error;
    auto gateway = GatewayProcess::Start(options, &error);
    EXPECT_TRUE(gateway) << error;
    return gateway;
  }

  // The replicas' shared token for node-to-node calls.
  static std::string TokenFile() {
    const std::string path = ::testing::TempDir() + "/cluster-token";
    std::ofstream(path) << "cluster-test-token\n";
    return path;
  }

  // The members' records as Redis holds them.
  std::vector<v1::NodeInfo> Members() {
    cluster::RedisClient redis(*ParseRedisUrl(redis_->url()).endpoint, 1s);
    const auto result = redis.Command({"HVALS", "{" + std::string(kPrefix) + "}:nodes"});
    std::vector<v1::NodeInfo> nodes;
    if (!result.ok()) return nodes;
    for (const auto& value : result.value->elements) {
      v1::NodeInfo node;
      if (node.ParseFromString(value.text)) nodes.push_back(std::move(node));
    }
    return nodes;
  }

  long long MemberCount(const std::string& password = "") {
    auto endpoint = *ParseRedisUrl(redis_->url()).endpoint;
    endpoint.password = password;
    cluster::RedisClient redis(endpoint, 1s);
    const auto result = redis.Command({"ZCARD", "{" + std::string(kPrefix) + "}:members"});
    return result.ok() ? result.value->integer : -1;
  }

  std::optional<v1::NodeInfo> MemberNamed(const std::string& pod) {
    for (auto& node : Members()) {
      if (node.pod_name() == pod) return node;
    }
    return std::nullopt;
  }

  std::unique_ptr<RedisProcess> redis_;
  std::unique_ptr<EchoBackendProcess> backend_;
};

TEST_F(ClusterMembershipTest, GatewaysRegisterPublishTheirConnectionsAndLeaveAfterDraining) {
  auto a = StartGateway(redis_->url(), "gateway-a");
  auto b = StartGateway(redis_->url(), "gateway-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(PollUntil(20s, [&] { return MemberCount() == 2; })) << MemberCount();

  WsClient client;
  const auto upgrade = client.Connect(a->ws_port(), "/member", {}, 10s);
  ASSERT_FALSE(upgrade.ec) << upgrade.ec.message();
  AdminClient admin(a->admin_port());
  const auto info = admin.WaitForOne("/member", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());

  // The node id is what the connection id starts with, and the record
  // follows the connections the node holds.
  ASSERT_TRUE(PollUntil(20s, [&] {
    const auto node = MemberNamed("gateway-a");
    return node && node->connections() == 1;
  }));
  const auto node = MemberNamed("gateway-a");
  EXPECT_EQ(info->connection_id().substr(0, 17), node->node_id() + "-");
  EXPECT_FALSE(node->version().empty());
  EXPECT_TRUE(node->has_started_at());
  EXPECT_EQ(node->state(), v1::NODE_STATE_SERVING);

  // SIGTERM: the drain closes the client with 1001, then the node leaves,
  // so Redis has dropped it by the time the process is gone (its lease
  // would have lasted seconds more).
  b->process().Signal(SIGTERM);
  ASSERT_TRUE(b->process().Wait(30s).has_value());
  EXPECT_EQ(MemberCount(), 1);
  EXPECT_TRUE(MemberNamed("gateway-a").has_value());
  EXPECT_FALSE(MemberNamed("gateway-b").has_value());
}

// A gateway that cannot reach its Redis is not ready (it has not joined
// the cluster), and says why.
TEST_F(ClusterMembershipTest, NotReadyUntilItHasJoined) {
  const std::string unreachable = "redis://127.0.0.1:" + std::to_string(redis_->port());
  redis_->Kill();
  auto gateway = StartGateway(unreachable, "gateway-alone");
  ASSERT_TRUE(gateway);
  ASSERT_TRUE(gateway->WaitForBackendUp());
  const auto readyz = HttpGet(gateway->metrics_port(), "/readyz");
  EXPECT_EQ(readyz.status, 503u);
  EXPECT_NE(readyz.body.find("not joined the cluster"), std::string::npos) << readyz.body;

  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  EXPECT_TRUE(PollUntil(20s, [&] { return HttpGet(gateway->metrics_port(), "/readyz").status == 200u; }));
}

// The password can come from a file (a mounted Secret) instead of the URL;
// a file without one stops start-up, naming the key and the path.
TEST_F(ClusterMembershipTest, ThePasswordComesFromItsFile) {
  std::string error;
  redis_ = RedisProcess::Start(&error, "s3cret");
  ASSERT_TRUE(redis_) << error;
  const std::string dir = ::testing::TempDir();
  const std::string password_file = dir + "/cluster-redis-password";
  std::ofstream(password_file) << "s3cret\n";
  auto gateway = StartGateway(redis_->url(), "gateway-secret", {"--cluster-redis-password-file", password_file});
  ASSERT_TRUE(gateway);
  EXPECT_TRUE(PollUntil(20s, [&] { return MemberCount("s3cret") == 1; }));

  const std::string empty_file = dir + "/cluster-redis-password-empty";
  std::ofstream(empty_file) << "\n";
  ChildProcess::Options refused_options;
  refused_options.program = WsgatewayPath();
  refused_options.args = {"--cluster-redis", redis_->url(),          "--cluster-redis-password-file",
                          empty_file,        "--cluster-token-file", TokenFile()};
  refused_options.name = "wsgateway";
  ChildProcess refused(refused_options);
  const auto status = refused.Wait(20s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_TRUE(refused.WaitForLine("--cluster-redis-password-file '" + empty_file + "': is empty", 5s))
      << refused.Tail();
}

}  // namespace
}  // namespace wsgateway::testing
