#include "server/cluster_node.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string_view>

#include "gateway/config/configured_file.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/config/redis_url.hpp"

namespace wsgateway {
namespace {

constexpr std::string_view kTokenKey = "cluster-token-file";

std::string ReadPasswordFile(const std::string& path) {
  constexpr std::string_view kKey = "cluster-redis-password-file";
  std::string error;
  auto password = ReadConfiguredFile(kKey, path, &error);
  if (!password) throw std::runtime_error(error);
  password->erase(password->find_last_not_of(" \t\r\n") + 1);
  if (password->empty()) throw std::runtime_error(ConfiguredFileError(kKey, path, "is empty"));
  return *password;
}

// The token this node sends: the file's first (BearerTokens has already
// refused a file without one).
std::optional<std::string> FirstToken(const std::string& path, std::string* error) {
  const auto text = ReadConfiguredFile(kTokenKey, path, error);
  if (!text) return std::nullopt;
  const auto tokens = admin::TokenLines(*text);
  if (tokens.empty()) {
    *error = ConfiguredFileError(kTokenKey, path, "holds no token");
    return std::nullopt;
  }
  return tokens.front();
}

// cluster_advertise, else the listen address with its bound port and, for
// a wildcard address, this host's name in place of it.
std::string AdvertisedAddress(const Config& config, int port) {
  if (!config.cluster_advertise.empty()) return config.cluster_advertise;
  const auto endpoint = ParseEndpoint(config.cluster_listen);
  std::string host;
  if (endpoint && !endpoint->address().is_unspecified()) {
    host = endpoint->address().is_v6() ? "[" + endpoint->address().to_string() + "]" : endpoint->address().to_string();
  } else {
    char name[256] = {};
    host = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return host + ":" + std::to_string(port);
}

}  // namespace

std::unique_ptr<ClusterNode> ClusterNode::Make(const Config& config, Gateway& gateway, SelfNode& self,
                                               metrics::GatewayMetrics& metrics) {
  if (config.cluster_redis.empty()) return nullptr;
  // Read before anything listens, so a bad file stops start-up.
  std::string error;
  auto token = FirstToken(config.cluster_token_file, &error);
  if (!token) throw std::runtime_error(error);
  cluster::MembershipOptions options;
  // Validated with the configuration.
  options.redis = *ParseRedisUrl(config.cluster_redis).endpoint;
  if (!config.cluster_redis_password_file.empty()) {
    options.redis.password = ReadPasswordFile(config.cluster_redis_password_file);
  }
  options.key_prefix = config.cluster_key_prefix;
  return std::unique_ptr<ClusterNode>(
      new ClusterNode(config, gateway, self, metrics, std::move(*token), std::move(options)));
}

ClusterNode::ClusterNode(const Config& config, Gateway& gateway, SelfNode& self, metrics::GatewayMetrics& metrics,
                         std::string token, cluster::MembershipOptions membership_options)
    : config_(config),
      self_(self),
      metrics_(metrics),
      membership_options_(std::move(membership_options)),
      tokens_(config.cluster_token_file, {}, kTokenKey),
      service_(
          gateway.data_plane(), [this](const grpc::ServerContextBase& context) { return tokens_.Check(context); },
          config.max_message_bytes),
      router_(
          gateway.data_plane(), [this] { return View(); },
          cluster::RouterOptions{.self_id = self.id(),
                                 .token = std::move(token),
                                 .on_forwarded = [&metrics](std::string_view method, int code) {
                                   metrics.ClusterForwarded(method, metrics::GrpcCodeLabel(code)).Increment();
                                 }}) {}

ClusterNode::~ClusterNode() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::shared_ptr<const cluster::Membership::View> ClusterNode::View() const {
  static const auto kEmpty = std::make_shared<const cluster::Membership::View>();
  const auto membership = membership_.load();
  return membership ? membership->view() : kEmpty;
}

void ClusterNode::Listen() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.cluster_listen, grpc::InsecureServerCredentials(), &port_);
  // A forwarded push or broadcast carries up to max_message_bytes, a
  // backend's command batch up to backend_max_message_bytes.
  const auto largest = std::max(config_.max_message_bytes, config_.backend_max_message_bytes) + 1024 * 1024;
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<std::size_t>(largest, INT32_MAX)));
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("cannot listen on cluster address " + config_.cluster_listen);
  self_.SetAdvertisedAddress(AdvertisedAddress(config_, port_));
}

void ClusterNode::Join() {
  auto options = membership_options_;
  const auto redis_url = RedactedRedisUrl(options.redis);
  options.refresh = [this](v1::NodeInfo& record) {
    const auto now = self_.Now();
    record.set_connections(now.connections());
    record.set_state(now.state());
  };
  options.observe = [&metrics = metrics_](bool reached_redis, std::size_t nodes) {
    metrics.cluster_redis_up().Set(reached_redis ? 1 : 0);
    metrics.cluster_nodes().Set(static_cast<double>(nodes));
  };
  auto membership = std::make_shared<cluster::Membership>(std::move(options), self_.Now());
  membership->Start();
  membership_.store(std::move(membership));
  spdlog::info("cluster: node {} on {}, advertised as {}, Redis {}", self_.id(), config_.cluster_listen,
               self_.Now().advertised_address(), redis_url);
}

void ClusterNode::ReloadTokens() {
  if (auto error = tokens_.Reload(); !error.empty()) {
    spdlog::error("cluster tokens not reloaded: {}", error);
    return;
  }
  std::string error;
  auto token = FirstToken(config_.cluster_token_file, &error);
  if (!token) {
    spdlog::error("cluster token to send not reloaded: {}", error);
    return;
  }
  router_.SetToken(std::move(*token));
  spdlog::info("cluster tokens reloaded from {}: {} token(s) accepted", config_.cluster_token_file, tokens_.count());
}

void ClusterNode::Leave() {
  if (const auto membership = membership_.load()) membership->Leave();
}

void ClusterNode::Shutdown(std::chrono::milliseconds deadline) {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + deadline);
}

std::vector<v1::NodeInfo> ClusterNode::Nodes() const { return View()->nodes; }

bool ClusterNode::joined_once() const { return View()->renewals > 0; }

}  // namespace wsgateway
