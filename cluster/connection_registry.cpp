#include "cluster/connection_registry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

#include "cluster/cluster_keys.hpp"
#include "cluster/redis_client.hpp"

namespace wsgateway::cluster {
namespace {

// Fields per HSET of a resync: large enough to keep the round trips few,
// small enough that no single command blocks Redis noticeably.
constexpr std::size_t kResyncChunk = 1000;

// How long to wait before trying Redis again after a failure.
constexpr auto kRetryInterval = std::chrono::milliseconds(100);

// The scripts refuse to write once the node's tombstone exists: the node was
// reaped (its registry renamed to "lost" and being reported), and writing
// would only leave behind a key nobody reaps.
//
// KEYS[1] the node's connections, KEYS[2] its tombstone. ARGV[1] how many
// opens; then the opens as id, target pairs; then the ids closed. In
// commands of at most 1000 fields (Lua's unpack has a limit). -1 when
// fenced, 0 otherwise.
constexpr const char* kFlushScript = R"lua(
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local last_open = 1 + 2 * tonumber(ARGV[1])
for first = 2, last_open, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + 1999, last_open)))
end
for first = last_open + 1, #ARGV, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return 0
)lua";

// KEYS[1] the scratch key holding the new list, KEYS[2] the node's
// connections, KEYS[3] its tombstone. ARGV[1] 1 if the list is not empty
// (an empty one is never written, so the scratch key does not exist).
constexpr const char* kSwapScript = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
if ARGV[1] == '1' then redis.call('RENAME', KEYS[1], KEYS[2]) else redis.call('DEL', KEYS[1], KEYS[2]) end
return 0
)lua";

using Command = std::vector<std::string>;

bool AllOk(const std::vector<RedisResult>& results) {
  return std::all_of(results.begin(), results.end(), [](const RedisResult& result) { return result.ok(); });
}

// A script's -1: the node is fenced.
bool Fenced(const RedisResult& result) {
  return result.ok() && result.value->type == RedisValue::Type::kInteger && result.value->integer == -1;
}

// DEL the scratch key (left over by an attempt cut short), then the list in HSETs of at most kResyncChunk
// fields.
std::vector<Command> ScratchWrites(const std::string& scratch,
                                   const std::vector<std::pair<std::string, std::string>>& live) {
  std::vector<Command> commands{{"DEL", scratch}};
  for (std::size_t begin = 0; begin < live.size(); begin += kResyncChunk) {
    const auto end = std::min(live.size(), begin + kResyncChunk);
    Command hset{"HSET", scratch};
    hset.reserve(2 + 2 * (end - begin));
    for (auto i = begin; i < end; ++i) {
      hset.push_back(live[i].first);
      hset.push_back(live[i].second);
    }
    commands.push_back(std::move(hset));
  }
  return commands;
}

}  // namespace

ConnectionRegistry::ConnectionRegistry(ConnectionRegistryOptions options, std::string node_id)
    : options_(std::move(options)), node_id_(std::move(node_id)) {}

ConnectionRegistry::~ConnectionRegistry() { Stop(); }

bool ConnectionRegistry::fenced() const {
  std::lock_guard lock(mutex_);
  return fenced_;
}

std::string ConnectionRegistry::key() const {
  std::lock_guard lock(mutex_);
  return ConnectionsKey(options_.key_prefix, node_id_);
}

void ConnectionRegistry::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    running_ = true;
    resync_requested_ = true;
  }
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void ConnectionRegistry::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    running_ = false;
    pending_.clear();
    unregistered_.clear();
  }
  thread_.request_stop();
  thread_.join();
}

void ConnectionRegistry::Opened(std::string_view id, std::string_view backend_target) {
  std::lock_guard lock(mutex_);
  if (running_) unregistered_.insert_or_assign(std::string(id), std::string(backend_target));
  Enqueue(id, Change{true, std::string(backend_target), false});
}

void ConnectionRegistry::Closed(std::string_view id) {
  std::lock_guard lock(mutex_);
  if (!holding_) unregistered_.erase(std::string(id));
  Enqueue(id, Change{false, {}, false});
}

void ConnectionRegistry::HoldUnregistered() {
  std::lock_guard lock(mutex_);
  holding_ = true;
}

std::vector<std::pair<std::string, std::string>> ConnectionRegistry::TakeUnregistered() {
  std::lock_guard lock(mutex_);
  const auto prefix = node_id_ + "-";
  std::vector<std::pair<std::string, std::string>> taken;
  for (auto it = unregistered_.begin(); it != unregistered_.end();) {
    if (it->first.starts_with(prefix)) {
      taken.emplace_back(it->first, std::move(it->second));
      it = unregistered_.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

void ConnectionRegistry::Confirm(const std::vector<std::string>& ids) {
  std::lock_guard lock(mutex_);
  for (const auto& id : ids) unregistered_.erase(id);
}

void ConnectionRegistry::Resync() {
  std::lock_guard lock(mutex_);
  if (!running_ || fenced_) return;
  resync_requested_ = true;
  wake_.notify_one();
}

void ConnectionRegistry::Rename(std::string node_id) {
  std::lock_guard lock(mutex_);
  node_id_ = std::move(node_id);
  // The old id's connections are closed; the new id's may have opened
  // already and are not confirmed yet either.
  const auto prefix = node_id_ + "-";
  std::erase_if(unregistered_, [&](const auto& entry) { return !entry.first.starts_with(prefix); });
  holding_ = false;
  fenced_ = false;
  resync_requested_ = true;
  wake_.notify_one();
}

void ConnectionRegistry::Enqueue(std::string_view id, Change change) {
  // A resync is due and has not started: the list it takes holds this.
  if (!running_ || fenced_ || (resync_requested_ && !resyncing_)) return;
  change.during_resync = resyncing_;
  const auto it = pending_.find(std::string(id));
  if (it != pending_.end()) {
    // Opened and closed before Redis heard of it: nothing to write. Not so
    // if queued during a resync, whose list may hold the id.
    if (!change.open && it->second.open && !it->second.during_resync) {
      pending_.erase(it);
      return;
    }
    change.during_resync = change.during_resync || it->second.during_resync;
    it->second = std::move(change);
    return;
  }
  if (pending_.size() >= options_.max_pending) {
    pending_.clear();
    resync_requested_ = true;
    wake_.notify_one();
    return;
  }
  pending_.emplace(std::string(id), std::move(change));
  // Only the transitions the thread waits for are worth a wake-up.
  if (pending_.size() == 1 || pending_.size() == options_.max_batch) wake_.notify_one();
}

ConnectionRegistry::Work ConnectionRegistry::WaitForWork(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  const bool due = wake_.wait_for(lock, stop, options_.idle_check_interval,
                                  [this] { return resync_requested_ || !pending_.empty(); });
  if (!due) return Work::kCheck;
  if (resync_requested_) return Work::kResync;
  // Let changes gather for a flush interval, unless a batch is full.
  wake_.wait_for(lock, stop, options_.flush_interval,
                 [this] { return resync_requested_ || pending_.size() >= options_.max_batch; });
  return resync_requested_ ? Work::kResync : Work::kFlush;
}

void ConnectionRegistry::Run(std::stop_token stop) {
  RedisClient redis(options_.redis, options_.redis_timeout);
  const std::stop_callback interrupt(stop, [this, &redis] {
    redis.Interrupt();
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  });
  while (!stop.stop_requested()) {
    const auto work = WaitForWork(stop);
    if (stop.stop_requested()) break;
    const bool ok = work == Work::kResync ? FullResync(redis) : work == Work::kFlush ? Flush(redis) : Check(redis);
    if (ok) continue;
    // Redis may have lost what was written, or a batch was lost on the
    // way: only a full resync makes the key right again.
    std::unique_lock lock(mutex_);
    resyncing_ = false;
    resync_requested_ = true;
    pending_.clear();
    wake_.wait_for(lock, stop, kRetryInterval, [] { return false; });
  }
}

bool ConnectionRegistry::FullResync(RedisClient& redis) {
  std::string node_id;
  {
    std::lock_guard lock(mutex_);
    resync_requested_ = false;
    resyncing_ = true;
    // Whatever was queued is in the list below.
    pending_.clear();
    node_id = node_id_;
  }
  const auto live = options_.list_live ? options_.list_live() : std::vector<std::pair<std::string, std::string>>{};
  const auto key = ConnectionsKey(options_.key_prefix, node_id);
  const auto scratch = key + ":resync";
  if (!live.empty()) {
    const bool written = AllOk(redis.Pipeline(ScratchWrites(scratch, live)));
    NoteOutcome(written);
    if (!written) return false;
  }
  // Only a complete list replaces the live one, in one step.
  const auto swapped = redis.Command(
      {"EVAL", kSwapScript, "3", scratch, key, TombstoneKey(options_.key_prefix, node_id), live.empty() ? "0" : "1"});
  NoteOutcome(swapped.ok());
  if (!swapped.ok()) return false;
  std::lock_guard lock(mutex_);
  resyncing_ = false;
  if (Fenced(swapped)) {
    Fence(node_id);
    return true;
  }
  for (const auto& [id, target] : live) unregistered_.erase(id);
  resyncs_.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("cluster: connection registry {} resynced ({} connections)", key, live.size());
  return true;
}

bool ConnectionRegistry::Flush(RedisClient& redis) {
  std::string node_id;
  Command opens;
  Command closes;
  std::vector<std::string> opened;
  {
    std::lock_guard lock(mutex_);
    node_id = node_id_;
    for (std::size_t taken = 0; taken < options_.max_batch && !pending_.empty(); ++taken) {
      auto node = pending_.extract(pending_.begin());
      if (node.mapped().open) {
        opened.push_back(node.key());
        opens.push_back(std::move(node.key()));
        opens.push_back(std::move(node.mapped().backend_target));
      } else {
        closes.push_back(std::move(node.key()));
      }
    }
  }
  if (opens.empty() && closes.empty()) return true;
  Command eval{"EVAL",
               kFlushScript,
               "2",
               ConnectionsKey(options_.key_prefix, node_id),
               TombstoneKey(options_.key_prefix, node_id),
               std::to_string(opens.size() / 2)};
  eval.reserve(eval.size() + opens.size() + closes.size());
  std::move(opens.begin(), opens.end(), std::back_inserter(eval));
  std::move(closes.begin(), closes.end(), std::back_inserter(eval));
  const auto result = redis.Command(eval);
  NoteOutcome(result.ok());
  if (!result.ok()) return false;
  if (Fenced(result)) {
    std::lock_guard lock(mutex_);
    Fence(node_id);
    return true;
  }
  Confirm(opened);
  return true;
}

void ConnectionRegistry::Fence(const std::string& node_id) {
  // Renamed meanwhile: the new id is not fenced.
  if (node_id != node_id_) return;
  fenced_ = true;
  pending_.clear();
  spdlog::warn("cluster: node {} was reported lost; its connection registry is not written until it is renamed",
               node_id);
}

bool ConnectionRegistry::Check(RedisClient& redis) {
  const bool ok = redis.Command({"PING"}).ok();
  NoteOutcome(ok);
  return ok;
}

void ConnectionRegistry::NoteOutcome(bool reached) {
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  // A command cut short by Stop says nothing about Redis.
  if (reached == reachable_ || thread_.get_stop_token().stop_requested()) return;
  reachable_ = reached;
  if (reached) {
    spdlog::info("cluster: connection registry reaches Redis at {} again; resyncing", RedactedRedisUrl(options_.redis));
  } else {
    spdlog::warn("cluster: connection registry cannot reach Redis at {}; will resync when it is back",
                 RedactedRedisUrl(options_.redis));
  }
}

}  // namespace wsgateway::cluster
