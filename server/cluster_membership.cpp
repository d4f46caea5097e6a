#include "server/cluster_membership.hpp"

#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "gateway/config/configured_file.hpp"
#include "gateway/config/redis_url.hpp"
#include "gateway/data_plane/connection_id.hpp"

namespace wsgateway {
namespace {

std::string ReadPasswordFile(const std::string& path) {
  constexpr std::string_view kKey = "cluster-redis-password-file";
  std::string error;
  auto password = ReadConfiguredFile(kKey, path, &error);
  if (!password) throw std::runtime_error(error);
  password->erase(password->find_last_not_of(" \t\r\n") + 1);
  if (password->empty()) throw std::runtime_error(ConfiguredFileError(kKey, path, "is empty"));
  return *password;
}

// POD_NAME in Kubernetes (the chart sets it), else the host name.
std::string PodName() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return {};
  return host;
}

}  // namespace

std::unique_ptr<cluster::Membership> MakeClusterMembership(const Config& config, const Gateway& gateway) {
  if (config.cluster_redis.empty()) return nullptr;
  cluster::MembershipOptions options;
  // Validated with the configuration.
  options.redis = *ParseRedisUrl(config.cluster_redis).endpoint;
  if (!config.cluster_redis_password_file.empty()) {
    options.redis.password = ReadPasswordFile(config.cluster_redis_password_file);
  }
  options.key_prefix = config.cluster_key_prefix;
  options.refresh = [&gateway](v1::NodeInfo& self) {
    self.set_connections(gateway.connection_count());
    self.set_draining(gateway.draining());
  };
  v1::NodeInfo self;
  self.set_node_id(FormatEpoch(gateway.epoch()));
  self.set_pod_name(PodName());
  self.set_version(WSGATEWAY_VERSION);
  *self.mutable_started_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  return std::make_unique<cluster::Membership>(std::move(options), std::move(self));
}

}  // namespace wsgateway
