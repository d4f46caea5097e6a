#pragma once
// This node's live connections, mirrored into Redis ("{<prefix>}:conns:<node
// id>", a HASH connection id -> backend target) so that, if the node is lost,
// a survivor can tell the backends which connections went with it.
//
// Opens and closes are queued (a mutex and a push on the caller's thread)
// and written by a thread of its own in batches: one round trip every
// flush_interval or max_batch changes, never one per connection, so the
// message path never waits on Redis. An open and a close of the same id
// that are both still queued cancel out.
//
// Whenever Redis may have missed changes (at start, after any failed
// command, after the queue overflowed, on Resync or Rename) the registry
// resyncs: it lists every live connection, writes the list to a scratch key
// and renames that over the live key, so readers see the old contents or
// the new, never a mix; changes that arrived meanwhile are applied after.
//
// Once the node's tombstone exists (it was reaped while alive), the
// registry writes nothing more under its id: the key was handed to the loss
// reporter. It starts again under a new key on Rename.
//
// It also knows which open connections Redis has not confirmed holding
// (written by no flush or resync that succeeded): if the node is reaped,
// the survivors cannot report those, so the node must (TakeUnregistered).
//
// Threads: one of its own; every public method may be called from any
// thread, before Start and after Stop too (then they do nothing).

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/config/redis_url.hpp"

namespace wsgateway::cluster {

class RedisClient;

struct ConnectionRegistryOptions {
  RedisEndpoint redis;
  std::string key_prefix = "wsgateway";
  std::chrono::milliseconds redis_timeout{1000};
  // At most one round trip per this, or per max_batch changes.
  std::chrono::milliseconds flush_interval{5};
  std::size_t max_batch = 1000;
  // Beyond this many queued changes the queue is dropped and the registry
  // resyncs: memory stays bounded while Redis is slow or away.
  std::size_t max_pending = 100000;
  // An idle registry checks its connection this often, so that a Redis that
  // restarted (empty) is noticed and refilled without waiting for traffic.
  std::chrono::milliseconds idle_check_interval{1000};
  // Every live connection (id, backend target), for a full resync. Called on
  // the registry's thread; may block (the gateway asks every event loop and
  // waits). Changes reported while it runs are applied after it.
  std::function<std::vector<std::pair<std::string, std::string>>()> list_live;
};

class ConnectionRegistry {
 public:
  ConnectionRegistry(ConnectionRegistryOptions options, std::string node_id);
  ~ConnectionRegistry();
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // Starts the thread (with its own Redis connection); the first thing it
  // does is a full resync.
  void Start();
  // Stops the thread; what is still queued is dropped (the next Start
  // resyncs). The key is left as it is.
  void Stop();

  // Any thread; cheap (a mutex and a push).
  void Opened(std::string_view id, std::string_view backend_target);
  void Closed(std::string_view id);
  // Asks for a full resync (e.g. after Redis came back empty).
  void Resync();
  // A fenced node continues under a new id: resyncs into the new key; the
  // old key is left alone (it belongs to the lost node now). Ends
  // HoldUnregistered.
  void Rename(std::string node_id);

  // The node is being fenced: its connections are about to be closed
  // without Close events. From now until Rename, a close no longer makes
  // the registry forget that a connection was never confirmed in Redis.
  void HoldUnregistered();
  // The connections of the current node id that opened and that Redis was
  // never confirmed to hold (id, backend target), forgotten as they are
  // returned. A write whose answer was lost counts as unconfirmed: at least
  // once.
  std::vector<std::pair<std::string, std::string>> TakeUnregistered();

  // "{<prefix>}:conns:<node id>".
  std::string key() const;
  // Round trips to Redis so far (flushes, resyncs, checks), for tests.
  std::uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }
  // Full resyncs that completed, for tests.
  std::uint64_t resyncs() const { return resyncs_.load(std::memory_order_relaxed); }
  // The node's tombstone was found; until Rename (tests).
  bool fenced() const;

 private:
  // A queued change of one id: opened (with its target) or closed.
  struct Change {
    bool open = false;
    std::string backend_target;
    // Queued while a resync was under way: the list may hold the id, so a
    // later close must still reach Redis instead of cancelling the open.
    bool during_resync = false;
  };
  using Changes = std::unordered_map<std::string, Change>;
  enum class Work { kResync, kFlush, kCheck };

  void Run(std::stop_token stop);
  // Waits until there is something to do (or stop): a resync, a flush, or
  // (idle for idle_check_interval) a check.
  Work WaitForWork(std::stop_token stop);
  // Lists, writes and swaps in; false when Redis failed.
  bool FullResync(RedisClient& redis);
  // Writes up to max_batch queued changes; false when Redis failed.
  bool Flush(RedisClient& redis);
  // Liveness probe while idle; false when Redis failed.
  bool Check(RedisClient& redis);
  // The node's tombstone exists: nothing is written until Rename. The
  // caller holds mutex_.
  void Fence(const std::string& node_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Counts one round trip and tracks reachability for the logs.
  void NoteOutcome(bool reached);
  // Redis holds these (a write that named them succeeded).
  void Confirm(const std::vector<std::string>& ids);
  // Queues a change; the caller holds mutex_.
  void Enqueue(std::string_view id, Change change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const ConnectionRegistryOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::string node_id_ ABSL_GUARDED_BY(mutex_);
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  bool resync_requested_ ABSL_GUARDED_BY(mutex_) = false;
  bool resyncing_ ABSL_GUARDED_BY(mutex_) = false;
  // The node was reaped (its tombstone exists); cleared by Rename.
  bool fenced_ ABSL_GUARDED_BY(mutex_) = false;
  Changes pending_ ABSL_GUARDED_BY(mutex_);
  // Open connections (id -> backend target) that no successful write
  // confirmed; erased on close unless holding_.
  std::unordered_map<std::string, std::string> unregistered_ ABSL_GUARDED_BY(mutex_);
  bool holding_ ABSL_GUARDED_BY(mutex_) = false;

  // The registry thread's own.
  bool reachable_ = true;
  std::atomic<std::uint64_t> round_trips_{0};
  std::atomic<std::uint64_t> resyncs_{0};
  std::jthread thread_;
};

}  // namespace wsgateway::cluster
