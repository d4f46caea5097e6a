#include "cluster/membership.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/redis_client.hpp"

namespace wsgateway::cluster {
namespace {

using std::chrono::steady_clock;

// KEYS[1] members (ZSET: node id -> lease deadline, ms on Redis's clock),
// KEYS[2] nodes (HASH: node id -> NodeInfo). ARGV[1] node id, ARGV[2] lease
// ms, ARGV[3] NodeInfo. Renews this node, drops expired ones, and returns
// whether this node held a live lease before (1 or 0), then the live
// members as id, NodeInfo pairs. A node that (re)joins says so on the
// channel ARGV[4], so the others read the membership at once.
constexpr const char* kRenewScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if before <= now then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local live = {before > now and 1 or 0}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  live[#live + 1] = id
  live[#live + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return live
)lua";

// KEYS as above, ARGV[1] node id, ARGV[2] the channel.
constexpr const char* kLeaveScript = R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
)lua";

// How long the hint listener waits for a message before it subscribes
// anew (a check that the connection still works).
constexpr auto kHintQuietPeriod = std::chrono::seconds(60);

bool ByNodeId(const v1::NodeInfo& a, const v1::NodeInfo& b) { return a.node_id() < b.node_id(); }

struct Members {
  // This node held a live lease before the renewal.
  bool continued = false;
  std::vector<v1::NodeInfo> nodes;
};

// The renew script's answer; nullopt if it is not one.
std::optional<Members> ParseMembers(const RedisValue& reply) {
  if (reply.type != RedisValue::Type::kArray || reply.elements.size() % 2 != 1 ||
      reply.elements[0].type != RedisValue::Type::kInteger) {
    return std::nullopt;
  }
  Members members;
  members.continued = reply.elements[0].integer == 1;
  auto& nodes = members.nodes;
  for (std::size_t i = 1; i < reply.elements.size(); i += 2) {
    v1::NodeInfo node;
    // A member whose details are missing or unreadable still counts: it
    // renews its lease, so it is alive.
    if (!node.ParseFromString(reply.elements[i + 1].text)) node.Clear();
    node.set_node_id(reply.elements[i].text);
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(), ByNodeId);
  return members;
}

// `fresh` plus the nodes of `previous` it lacks, in node id order.
std::vector<v1::NodeInfo> Merged(std::vector<v1::NodeInfo> fresh, const std::vector<v1::NodeInfo>& previous) {
  for (const auto& node : previous) {
    if (!std::binary_search(fresh.begin(), fresh.end(), node, ByNodeId)) fresh.push_back(node);
  }
  std::sort(fresh.begin(), fresh.end(), ByNodeId);
  return fresh;
}

}  // namespace

Membership::Membership(MembershipOptions options, v1::NodeInfo self)
    : options_(std::move(options)),
      node_id_(self.node_id()),
      self_(std::move(self)),
      view_(std::make_shared<const View>()) {}

Membership::~Membership() { Stop(); }

std::string Membership::members_key() const { return "{" + options_.key_prefix + "}:members"; }
std::string Membership::nodes_key() const { return "{" + options_.key_prefix + "}:nodes"; }
std::string Membership::changes_channel() const { return "{" + options_.key_prefix + "}:changes"; }

void Membership::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  hint_thread_ = std::jthread([this](std::stop_token stop) { ListenForHints(stop); });
}

void Membership::ListenForHints(std::stop_token stop) {
  // Connecting and subscribing are bounded like every command; only the
  // wait for a message is long.
  RedisClient redis(options_.redis, options_.redis_timeout);
  const std::stop_callback interrupt(stop, [&redis] { redis.Interrupt(); });
  while (!stop.stop_requested()) {
    const auto subscribed = redis.Command({"SUBSCRIBE", changes_channel()});
    while (subscribed.ok() && !stop.stop_requested()) {
      const auto message = redis.NextReply(kHintQuietPeriod);
      if (!message.ok()) break;
      // ["message", channel, node id]: someone joined or left.
      std::lock_guard lock(mutex_);
      hinted_ = true;
      wake_.notify_all();
    }
    // Redis away: try again after a renewal interval (or at stop).
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, options_.renew_interval, [] { return false; });
  }
}

void Membership::Leave() {
  {
    std::lock_guard lock(mutex_);
    leave_ = true;
  }
  Stop();
}

void Membership::Stop() {
  if (!thread_.joinable()) return;
  hint_thread_.request_stop();
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
  hint_thread_.join();
}

std::shared_ptr<const Membership::View> Membership::view() const {
  std::lock_guard lock(mutex_);
  return view_;
}

bool Membership::joined() const {
  const auto ticks = renewed_at_.load(std::memory_order_acquire);
  if (ticks == 0) return false;
  const steady_clock::time_point renewed{steady_clock::duration(ticks)};
  return steady_clock::now() - renewed < options_.lease;
}

void Membership::Run(std::stop_token stop) {
  RedisClient redis(options_.redis, options_.redis_timeout);
  bool reachable = true;
  while (!stop.stop_requested()) {
    const bool renewed = Renew(redis);
    if (options_.observe) options_.observe(renewed, view()->nodes.size());
    if (renewed != reachable) {
      if (renewed) {
        spdlog::info("cluster: Redis at {} reachable again; registered as {}", RedactedRedisUrl(options_.redis),
                     node_id_);
      } else {
        spdlog::warn("cluster: Redis at {} unreachable; routing on the last view", RedactedRedisUrl(options_.redis));
      }
      reachable = renewed;
    }
    // Next renewal after the interval, or at once on a hint.
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, options_.renew_interval, [this] { return hinted_; });
    hinted_ = false;
  }
  bool leave = false;
  {
    std::lock_guard lock(mutex_);
    leave = leave_;
  }
  if (leave) LeaveNow(redis);
}

bool Membership::Renew(RedisClient& redis) {
  std::string details;
  {
    std::lock_guard lock(mutex_);
    if (options_.refresh) options_.refresh(self_);
    self_.SerializeToString(&details);
  }
  const auto result = redis.Command({"EVAL", kRenewScript, "2", members_key(), nodes_key(), node_id_,
                                     std::to_string(options_.lease.count()), details, changes_channel()});
  if (!result.ok()) {
    spdlog::debug("cluster: lease renewal failed: {}", result.Describe());
    last_renewal_reached_redis_ = false;
    return false;
  }
  auto members = ParseMembers(*result.value);
  if (!members) {
    spdlog::warn("cluster: unexpected answer to the lease renewal");
    return false;
  }
  const auto now = steady_clock::now();
  renewed_at_.store(now.time_since_epoch().count(), std::memory_order_release);
  // After a gap (Redis away, or back without its data) the others may not
  // have renewed yet: for a lease, a node missing from Redis stays in the
  // view rather than have its connections answered as gone.
  std::lock_guard lock(mutex_);
  const bool after_gap = !members->continued || !last_renewal_reached_redis_;
  if (after_gap && view_->renewals > 0) settle_until_ = now + options_.lease;
  last_renewal_reached_redis_ = true;
  auto view = std::make_shared<View>();
  view->nodes = now < settle_until_ ? Merged(std::move(members->nodes), view_->nodes) : std::move(members->nodes);
  view->renewals = view_->renewals + 1;
  view_ = std::move(view);
  return true;
}

void Membership::LeaveNow(RedisClient& redis) {
  const auto result =
      redis.Command({"EVAL", kLeaveScript, "2", members_key(), nodes_key(), node_id_, changes_channel()});
  if (!result.ok()) {
    spdlog::warn("cluster: could not leave the membership ({}); the lease runs out in {} ms", result.Describe(),
                 options_.lease.count());
    return;
  }
  renewed_at_.store(0, std::memory_order_release);
  spdlog::info("cluster: {} left the membership", node_id_);
}

}  // namespace wsgateway::cluster
