#pragma once
// This node's membership of the cluster, and its view of the others. A
// lease in Redis: a ZSET of node ids scored by a deadline taken from Redis's
// own clock (TIME, inside a Lua script, so the nodes' clocks never matter),
// renewed every renew_interval, plus a hash of each node's NodeInfo. Each
// renewal also reaps members that expired and reads the live ones, so one
// round trip a renew_interval per node is all the load Redis sees, whatever
// the message rate. A node that joins or leaves also publishes a hint on a
// channel every node listens to (a second connection, idle otherwise), so
// the others read the membership at once rather than at their next renewal.
//
// Reaping: a member whose lease ran out more than reap_grace ago is removed
// by the first renewal of another node that may reap, in the same script,
// so exactly one survivor reaps it, once. The reap leaves a tombstone,
// renames the node's connection registry to "lost" and appends a record to
// the lost stream for a LossReporter. Only a node whose renewals have
// reached Redis, each finding its own lease live, for a whole lease may
// reap: a node cut off from Redis, or every node after Redis stalled or
// restarted, must not take the others' silence for their death.
//
// Fencing: a node that finds its own tombstone (it was cut off and reaped
// while alive) does not register again; it says so once (on_fenced) and
// waits for its owner to give it a new id (Rename).
//
// The view is cached: while Redis is away, routing goes on with the last
// view (the nodes are still there; only the registry is gone). When Redis
// comes back, even empty, the next renewal registers the node again, and
// for one lease after such a gap a node missing from Redis stays in the
// view (the others may not have renewed yet): nodes then drop out when
// their lease would have run out, not at once.
//
// Keys: see cluster_keys.hpp; "{<prefix>}:members" and "{<prefix>}:nodes"
// are the membership's own.
//
// Threads: a thread of its own renews, another listens for hints; every
// public method may be called from any thread.

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/config/redis_url.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway::cluster {

class RedisClient;
// The renewal script's answer, parsed (membership.cpp).
struct RenewAnswer;

struct MembershipOptions {
  RedisEndpoint redis;
  std::string key_prefix = "wsgateway";
  // How often the lease is renewed and the view read.
  std::chrono::milliseconds renew_interval{1000};
  // How long a lease lasts unrenewed: a node that stops renewing (a crash)
  // is dropped from the views this long after its last renewal, and reaped
  // reap_grace later. Also how long a node's renewals must have held before
  // it may reap.
  std::chrono::milliseconds lease{5000};
  // Bounds the connect and each command.
  std::chrono::milliseconds redis_timeout{1000};
  // Updates this node's record before each renewal (connections, drain);
  // runs on the membership's thread.
  std::function<void(v1::NodeInfo&)> refresh;
  // Told after each renewal whether it reached Redis, and how many nodes
  // the view holds (metrics); on the membership's thread.
  std::function<void(bool reached_redis, std::size_t nodes)> observe;
  // A member is reaped once its lease ran out this long ago (on Redis's
  // clock), so that a node merely late to renew is not.
  std::chrono::milliseconds reap_grace{1000};
  // This node's tombstone was found: it was reported lost (its connections
  // closed to the backends) while it was alive. Called once per fence, on
  // the membership's thread; the node stays out until Rename.
  std::function<void()> on_fenced;
  // A renewal found no live lease of this node's (Redis restarted empty, or
  // the node was away past its lease but not reaped): its connection
  // registry may be gone and should be resynced. On the membership's
  // thread; not called for the first registration.
  std::function<void()> on_registered_anew;
};

class Membership {
 public:
  struct View {
    // The live members in node id order, this node among them once it has
    // registered.
    std::vector<v1::NodeInfo> nodes;
    // Renewals that reached Redis so far.
    std::uint64_t renewals = 0;
  };

  Membership(MembershipOptions options, v1::NodeInfo self);
  // Stops renewing (without leaving) if still running.
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Registers and starts renewing.
  void Start();
  // Leaves the membership at once (with a hint, so the other nodes drop
  // this one without waiting for their next renewal), and stops renewing.
  // Its connection registry goes too: its connections were closed, and
  // reported, before it left. A fenced node leaves nothing.
  void Leave();
  // Stops renewing without leaving: the lease runs out, as after a crash.
  void Stop();
  // Continues under a new node id (a fenced node, whose old id is dead):
  // renews as `self` from the next renewal on. An old id still registered
  // is not left: it runs out and is reaped like a crashed node's.
  void Rename(v1::NodeInfo self);

  // The latest view (never null; empty before the first renewal).
  std::shared_ptr<const View> view() const;
  // The last renewal reached Redis less than a lease ago.
  bool joined() const;
  // Time since the last renewal that reached Redis; nullopt before the
  // first (or while fenced).
  std::optional<std::chrono::steady_clock::duration> since_renewal() const;
  // This node found its tombstone and has not been renamed since.
  bool fenced() const { return fenced_.load(std::memory_order_acquire); }
  // The node id it renews as.
  std::string node_id() const;
  // Members this node reaped so far (tests).
  std::uint64_t reaps() const { return reaps_.load(std::memory_order_relaxed); }

  std::string members_key() const;
  std::string nodes_key() const;
  // Where a node that joins or leaves says so, so that the others read the
  // membership at once instead of at their next renewal.
  std::string changes_channel() const;

 private:
  void Run(std::stop_token stop);
  // Subscribes to changes_channel() and wakes the renewal on each message.
  void ListenForHints(std::stop_token stop);
  // One renewal; false when Redis could not be reached.
  bool Renew(RedisClient& redis);
  // The renewal script's answer: the view, the reaped, or the fence.
  bool Apply(RenewAnswer answer, std::chrono::steady_clock::time_point sent);
  // Takes a Rename, if one came: a new id, no fence, no history.
  void AdoptNewId();
  // Whether this node may reap now (see the header comment).
  bool MayReap(std::chrono::steady_clock::time_point now) const;
  void LeaveNow(RedisClient& redis);

  const MembershipOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  v1::NodeInfo self_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const View> view_ ABSL_GUARDED_BY(mutex_);
  bool leave_ ABSL_GUARDED_BY(mutex_) = false;
  // A hint came: renew now.
  bool hinted_ ABSL_GUARDED_BY(mutex_) = false;
  // Rename was called; the membership thread has not taken it yet.
  bool renamed_ ABSL_GUARDED_BY(mutex_) = false;
  // The membership thread's own: whether the last renewal reached Redis,
  // and until when nodes missing from Redis stay in the view.
  bool last_renewal_reached_redis_ = false;
  std::chrono::steady_clock::time_point settle_until_;
  // Since when every renewal reached Redis and found this node's lease
  // live; nullopt while there is no such streak.
  std::optional<std::chrono::steady_clock::time_point> streak_since_;
  // This id registered once already (so a lost lease is a re-registration).
  bool registered_before_ = false;
  std::atomic<bool> fenced_{false};
  std::atomic<std::uint64_t> reaps_{0};
  // steady_clock ticks of the last renewal that reached Redis; 0 before.
  std::atomic<std::int64_t> renewed_at_{0};
  std::jthread thread_;
  std::jthread hint_thread_;
};

}  // namespace wsgateway::cluster
