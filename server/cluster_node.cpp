#include "server/cluster_node.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "gateway/config/configured_file.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/config/redis_url.hpp"
#include "gateway/data_plane/connection_id.hpp"

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
      gateway_(gateway),
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
                                 .on_forwarded =
                                     [&metrics](std::string_view method, int code) {
                                       metrics.ClusterForwarded(method, metrics::GrpcCodeLabel(code)).Increment();
                                     }}),
      registry_(RegistryOptions(), self.id()),
      reporter_(ReporterOptions(), self.id()) {
  gateway.ObserveConnections(*this);
}

cluster::ConnectionRegistryOptions ClusterNode::RegistryOptions() {
  cluster::ConnectionRegistryOptions options;
  options.redis = membership_options_.redis;
  options.key_prefix = membership_options_.key_prefix;
  options.list_live = [this] { return gateway_.ListOpenConnections(std::chrono::seconds(10)); };
  return options;
}

cluster::LossReporterOptions ClusterNode::ReporterOptions() {
  cluster::LossReporterOptions options;
  options.redis = membership_options_.redis;
  options.key_prefix = membership_options_.key_prefix;
  options.report_closes = [this](const std::string&, const std::vector<cluster::LostConnection>& lost) {
    std::vector<std::pair<std::string, std::string>> id_and_target;
    id_and_target.reserve(lost.size());
    for (const auto& connection : lost) id_and_target.emplace_back(connection.id, connection.backend_target);
    gateway_.ReportLostConnections(id_and_target);
    metrics_.cluster_lost_connections_reported().Increment(static_cast<double>(lost.size()));
  };
  options.report_summary = [this](const std::string& lost_node, const std::map<std::string, std::uint64_t>& counts) {
    gateway_.ReportNodeLost(lost_node, counts);
    metrics_.cluster_lost_nodes_reported().Increment();
  };
  options.acknowledged_mark = [this] { return gateway_.AcknowledgedMark(); };
  return options;
}

void ClusterNode::Opened(std::string_view connection_id, std::size_t backend) {
  registry_.Opened(connection_id, gateway_.backend_target(backend));
}

void ClusterNode::Closed(std::string_view connection_id) { registry_.Closed(connection_id); }

void ClusterNode::OnFenced() {
  metrics_.cluster_fenced().Increment();
  // The survivors report what Redis held at the reap; connections that
  // never reached it (opened while this node was cut off) are reported
  // here, or the backend would never see them close: Fence closes the old
  // connections without Close events.
  registry_.HoldUnregistered();
  const auto id = FormatEpoch(gateway_.Fence());
  // Every loop has run the closes Fence posted (and so told the registry
  // of every old connection that opened) once it answers.
  gateway_.ListOpenConnections(std::chrono::seconds(10));
  if (const auto unregistered = registry_.TakeUnregistered(); !unregistered.empty()) {
    spdlog::warn("cluster: reporting {} connections closed that the survivors could not know of", unregistered.size());
    gateway_.ReportLostConnections(unregistered);
  }
  router_.SetSelfId(id);
  registry_.Rename(id);
  reporter_.Rename(id);
  if (const auto membership = membership_.load()) membership->Rename(self_.Now());
  spdlog::info("cluster: rejoining as node {}", id);
}

void ClusterNode::WatchForEagerFence(std::stop_token stop) {
  // Closed a second before the lease could run out at Redis (the lease
  // counts from Redis's receipt of the renewal, after it was sent), so the
  // close handshakes finish before a survivor may report the connections.
  const auto threshold = config_.cluster_lease - std::chrono::seconds(1);
  std::mutex mutex;
  std::condition_variable_any wake;
  bool was_cut_off = false;
  while (!stop.stop_requested()) {
    const auto membership = membership_.load();
    const auto since = membership ? membership->since_renewal() : std::nullopt;
    const bool cut_off = since && *since >= threshold;
    if (cut_off && !was_cut_off) {
      spdlog::warn("cluster: no lease renewal for {} ms (cluster_fence eager): closing every connection with 1012",
                   std::chrono::duration_cast<std::chrono::milliseconds>(*since).count());
    }
    if (cut_off) {
      // Reported by this node itself: if Redis as a whole is away, no
      // survivor will report them. Connections that open meanwhile are
      // closed on the next round; those closing already finish.
      gateway_.CloseActiveConnections(1012, "cut off from the cluster", v1::CLOSED_BY_SERVER);
    }
    was_cut_off = cut_off;
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, std::chrono::milliseconds(250), [] { return false; });
  }
}

ClusterNode::~ClusterNode() {
  if (eager_fence_.joinable()) {
    eager_fence_.request_stop();
    eager_fence_.join();
  }
  // The membership's callbacks use the registry and the reporter.
  if (const auto membership = membership_.load()) membership->Stop();
  reporter_.Stop();
  registry_.Stop();
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
  options.lease = config_.cluster_lease;
  options.reap_grace = config_.cluster_reap_grace;
  options.on_fenced = [this] { OnFenced(); };
  options.on_registered_anew = [this] { registry_.Resync(); };
  registry_.Start();
  reporter_.Start();
  auto membership = std::make_shared<cluster::Membership>(std::move(options), self_.Now());
  membership->Start();
  membership_.store(std::move(membership));
  if (config_.cluster_fence == "eager") {
    eager_fence_ = std::jthread([this](std::stop_token stop) { WatchForEagerFence(stop); });
  }
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
  if (eager_fence_.joinable()) {
    eager_fence_.request_stop();
    eager_fence_.join();
  }
  reporter_.Stop();
  registry_.Stop();
  if (const auto membership = membership_.load()) membership->Leave();
}

void ClusterNode::Shutdown(std::chrono::milliseconds deadline) {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + deadline);
}

std::vector<v1::NodeInfo> ClusterNode::Nodes() const { return View()->nodes; }

bool ClusterNode::joined_once() const { return View()->renewals > 0; }

}  // namespace wsgateway
