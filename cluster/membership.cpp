#include "cluster/membership.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "cluster/cluster_keys.hpp"
#include "cluster/redis_client.hpp"

namespace wsgateway::cluster {
namespace {

using std::chrono::steady_clock;

// KEYS[1] members (ZSET: node id -> lease deadline, ms on Redis's clock),
// KEYS[2] nodes (HASH: node id -> NodeInfo), KEYS[3] this node's tombstone,
// KEYS[4] the lost stream. ARGV[1] node id, ARGV[2] lease ms, ARGV[3]
// NodeInfo, ARGV[4] the changes channel, ARGV[5] may reap (1 or 0), ARGV[6]
// reap grace ms, ARGV[7] the key prefix with its braces, ARGV[8] the
// reporters' group.
//
// A node with a tombstone was reaped: it gets {-1} and stays out. Otherwise
// it renews and gets {continued (1 or 0), reaped count, reaped as (id,
// connections, ms since its lease ran out)..., live members as (id,
// NodeInfo)...}. Reaping needs the caller's own lease to have been live
// before this renewal as well as ARGV[5]: a node that lost its own lease
// (Redis stalled, or it was cut off) cannot tell who else is dead. A node
// that (re)joins or reaps says so on the channel, so the others read the
// membership at once.
constexpr const char* kRenewScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1} end
local before = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if before <= now then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local reaped = {}
if ARGV[5] == '1' and before > now then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[6]), 'WITHSCORES')
  for i = 1, #expired, 2 do
    local id = expired[i]
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    -- A week: a node cut off for longer than its tombstone lasts would
    -- come back under its old id with connections already reported closed.
    redis.call('SET', ARGV[7] .. ':reaped:' .. id, '1', 'PX', 604800000)
    local conns = ARGV[7] .. ':conns:' .. id
    local n = 0
    if redis.call('EXISTS', conns) == 1 then
      n = redis.call('HLEN', conns)
      redis.call('RENAME', conns, ARGV[7] .. ':lost:' .. id)
    end
    -- A record even for a node with no connections: the backends hear of
    -- every lost node (NodeLostEvent with 0).
    redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[8], '$', 'MKSTREAM')
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', '10000', '*', 'node', id, 'connections', n)
    reaped[#reaped + 1] = id
    reaped[#reaped + 1] = n
    reaped[#reaped + 1] = now - tonumber(expired[i + 1])
  end
  if #reaped > 0 then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
end
local answer = {before > now and 1 or 0, #reaped / 3}
for _, v in ipairs(reaped) do answer[#answer + 1] = v end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  answer[#answer + 1] = id
  answer[#answer + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return answer
)lua";

// KEYS as above plus KEYS[3] this node's connection registry, ARGV[1] node
// id, ARGV[2] the channel. The node's connections were all closed (and
// reported to the backends) before it left: the registry goes too.
constexpr const char* kLeaveScript = R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
)lua";

// How long the hint listener waits for a message before it subscribes
// anew (a check that the connection still works).
constexpr auto kHintQuietPeriod = std::chrono::seconds(60);

bool ByNodeId(const v1::NodeInfo& a, const v1::NodeInfo& b) { return a.node_id() < b.node_id(); }

struct Reaped {
  std::string node_id;
  long long connections = 0;
  long long expired_ms_ago = 0;
};

bool IsInteger(const RedisValue& value) { return value.type == RedisValue::Type::kInteger; }

}  // namespace

struct RenewAnswer {
  // This node's tombstone exists: it did not renew.
  bool fenced = false;
  // This node held a live lease before the renewal.
  bool continued = false;
  std::vector<Reaped> reaped;
  std::vector<v1::NodeInfo> nodes;
};

namespace {

// The renew script's answer; nullopt if it is not one.
std::optional<RenewAnswer> ParseAnswer(const RedisValue& reply) {
  const auto& elements = reply.elements;
  if (reply.type != RedisValue::Type::kArray || elements.empty() || !IsInteger(elements[0])) return std::nullopt;
  RenewAnswer answer;
  if (elements[0].integer == -1) {
    answer.fenced = true;
    return answer;
  }
  if (elements.size() < 2 || !IsInteger(elements[1]) || elements[1].integer < 0) return std::nullopt;
  const auto reaped = static_cast<std::size_t>(elements[1].integer);
  const std::size_t first_node = 2 + 3 * reaped;
  if (elements.size() < first_node || (elements.size() - first_node) % 2 != 0) return std::nullopt;
  answer.continued = elements[0].integer == 1;
  for (std::size_t i = 2; i < first_node; i += 3) {
    answer.reaped.push_back({elements[i].text, elements[i + 1].integer, elements[i + 2].integer});
  }
  for (std::size_t i = first_node; i < elements.size(); i += 2) {
    v1::NodeInfo node;
    // A member whose details are missing or unreadable still counts: it
    // renews its lease, so it is alive.
    if (!node.ParseFromString(elements[i + 1].text)) node.Clear();
    node.set_node_id(elements[i].text);
    answer.nodes.push_back(std::move(node));
  }
  std::sort(answer.nodes.begin(), answer.nodes.end(), ByNodeId);
  return answer;
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
    : options_(std::move(options)), self_(std::move(self)), view_(std::make_shared<const View>()) {}

Membership::~Membership() { Stop(); }

std::string Membership::members_key() const { return "{" + options_.key_prefix + "}:members"; }
std::string Membership::nodes_key() const { return "{" + options_.key_prefix + "}:nodes"; }
std::string Membership::changes_channel() const { return "{" + options_.key_prefix + "}:changes"; }

std::string Membership::node_id() const {
  std::lock_guard lock(mutex_);
  return self_.node_id();
}

void Membership::Rename(v1::NodeInfo self) {
  std::lock_guard lock(mutex_);
  self_ = std::move(self);
  renamed_ = true;
  hinted_ = true;
  wake_.notify_all();
}

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

std::optional<steady_clock::duration> Membership::since_renewal() const {
  const auto ticks = renewed_at_.load(std::memory_order_acquire);
  if (ticks == 0) return std::nullopt;
  return steady_clock::now() - steady_clock::time_point{steady_clock::duration(ticks)};
}

void Membership::Run(std::stop_token stop) {
  RedisClient redis(options_.redis, options_.redis_timeout);
  bool reachable = true;
  while (!stop.stop_requested()) {
    AdoptNewId();
    // A fenced node stays out of Redis altogether: even once its tombstone
    // expires, its old id must not come back.
    if (!fenced()) {
      const bool renewed = Renew(redis);
      if (options_.observe) options_.observe(renewed, view()->nodes.size());
      if (renewed != reachable) {
        if (renewed) {
          spdlog::info("cluster: Redis at {} reachable again; registered as {}", RedactedRedisUrl(options_.redis),
                       node_id());
        } else {
          spdlog::warn("cluster: Redis at {} unreachable; routing on the last view", RedactedRedisUrl(options_.redis));
        }
        reachable = renewed;
      }
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
  if (leave && !fenced()) LeaveNow(redis);
}

void Membership::AdoptNewId() {
  {
    std::lock_guard lock(mutex_);
    if (!renamed_) return;
    renamed_ = false;
  }
  fenced_.store(false, std::memory_order_release);
  streak_since_.reset();
  registered_before_ = false;
}

bool Membership::MayReap(steady_clock::time_point now) const {
  return streak_since_ && now - *streak_since_ >= options_.lease;
}

bool Membership::Renew(RedisClient& redis) {
  std::string details;
  std::string id;
  {
    std::lock_guard lock(mutex_);
    if (options_.refresh) options_.refresh(self_);
    self_.SerializeToString(&details);
    id = self_.node_id();
  }
  const auto sent = steady_clock::now();
  const auto& prefix = options_.key_prefix;
  const auto result = redis.Command(
      {"EVAL", kRenewScript, "4", members_key(), nodes_key(), TombstoneKey(prefix, id), LostStreamKey(prefix), id,
       std::to_string(options_.lease.count()), details, changes_channel(), MayReap(sent) ? "1" : "0",
       std::to_string(options_.reap_grace.count()), KeyPrefix(prefix), kLostReportersGroup});
  if (!result.ok()) {
    spdlog::debug("cluster: lease renewal failed: {}", result.Describe());
    last_renewal_reached_redis_ = false;
    streak_since_.reset();
    return false;
  }
  auto answer = ParseAnswer(*result.value);
  if (!answer) {
    spdlog::warn("cluster: unexpected answer to the lease renewal");
    streak_since_.reset();
    return false;
  }
  return Apply(std::move(*answer), sent);
}

bool Membership::Apply(RenewAnswer answer, steady_clock::time_point sent) {
  if (answer.fenced) {
    streak_since_.reset();
    renewed_at_.store(0, std::memory_order_release);
    fenced_.store(true, std::memory_order_release);
    spdlog::error("cluster: node {} was reported lost while cut off from Redis; it stays out until renamed", node_id());
    if (options_.on_fenced) options_.on_fenced();
    return true;
  }
  for (const auto& reaped : answer.reaped) {
    reaps_.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("cluster: reaped node {} ({} connections), lease expired {} ms ago", reaped.node_id,
                 reaped.connections, reaped.expired_ms_ago);
  }
  // Any renewal that did not find this node's lease live breaks the streak
  // that allows reaping.
  if (!answer.continued) {
    streak_since_.reset();
  } else if (!streak_since_) {
    streak_since_ = sent;
  }
  if (!answer.continued && registered_before_ && options_.on_registered_anew) options_.on_registered_anew();
  registered_before_ = true;
  const auto now = steady_clock::now();
  renewed_at_.store(now.time_since_epoch().count(), std::memory_order_release);
  // After a gap (Redis away, or back without its data) the others may not
  // have renewed yet: for a lease, a node missing from Redis stays in the
  // view rather than have its connections answered as gone.
  std::lock_guard lock(mutex_);
  const bool after_gap = !answer.continued || !last_renewal_reached_redis_;
  if (after_gap && view_->renewals > 0) settle_until_ = now + options_.lease;
  last_renewal_reached_redis_ = true;
  auto view = std::make_shared<View>();
  view->nodes = now < settle_until_ ? Merged(std::move(answer.nodes), view_->nodes) : std::move(answer.nodes);
  view->renewals = view_->renewals + 1;
  view_ = std::move(view);
  return true;
}

void Membership::LeaveNow(RedisClient& redis) {
  const auto id = node_id();
  const auto result = redis.Command({"EVAL", kLeaveScript, "3", members_key(), nodes_key(),
                                     ConnectionsKey(options_.key_prefix, id), id, changes_channel()});
  if (!result.ok()) {
    spdlog::warn("cluster: could not leave the membership ({}); the lease runs out in {} ms", result.Describe(),
                 options_.lease.count());
    return;
  }
  renewed_at_.store(0, std::memory_order_release);
  spdlog::info("cluster: {} left the membership", id);
}

}  // namespace wsgateway::cluster
