#pragma once
// This node's membership of the cluster, and its view of the others. A
// lease in Redis: a ZSET of node ids scored by a deadline taken from Redis's
// own clock (TIME, inside a Lua script, so the nodes' clocks never matter),
// renewed every renew_interval, plus a hash of each node's NodeInfo. Each
// renewal also drops expired members and reads the live ones, so one round
// trip a renew_interval per node is all the load Redis sees, whatever the
// message rate. A node that joins or leaves also publishes a hint on a
// channel every node listens to (a second connection, idle otherwise), so
// the others read the membership at once rather than at their next renewal.
//
// The view is cached: while Redis is away, routing goes on with the last
// view (the nodes are still there; only the registry is gone). When Redis
// comes back, even empty, the next renewal registers the node again, and
// for one lease after such a gap a node missing from Redis stays in the
// view (the others may not have renewed yet): nodes then drop out when
// their lease would have run out, not at once.
//
// Keys: "{<prefix>}:members" and "{<prefix>}:nodes"; the braces are a hash
// tag, so both live in one slot and the scripts stay valid on Redis Cluster.
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
#include <string>
#include <thread>
#include <vector>

#include "gateway/config/redis_url.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway::cluster {

class RedisClient;

struct MembershipOptions {
  RedisEndpoint redis;
  std::string key_prefix = "wsgateway";
  // How often the lease is renewed and the view read.
  std::chrono::milliseconds renew_interval{1000};
  // How long a lease lasts unrenewed: a node that stops renewing (a crash)
  // is dropped this long after its last renewal.
  std::chrono::milliseconds lease{5000};
  // Bounds the connect and each command.
  std::chrono::milliseconds redis_timeout{1000};
  // Updates this node's record before each renewal (connections, drain);
  // runs on the membership's thread.
  std::function<void(v1::NodeInfo&)> refresh;
  // Told after each renewal whether it reached Redis, and how many nodes
  // the view holds (metrics); on the membership's thread.
  std::function<void(bool reached_redis, std::size_t nodes)> observe;
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
  void Leave();
  // Stops renewing without leaving: the lease runs out, as after a crash.
  void Stop();

  // The latest view (never null; empty before the first renewal).
  std::shared_ptr<const View> view() const;
  // The last renewal reached Redis less than a lease ago.
  bool joined() const;

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
  void LeaveNow(RedisClient& redis);

  const MembershipOptions options_;
  const std::string node_id_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  v1::NodeInfo self_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const View> view_ ABSL_GUARDED_BY(mutex_);
  bool leave_ ABSL_GUARDED_BY(mutex_) = false;
  // A hint came: renew now.
  bool hinted_ ABSL_GUARDED_BY(mutex_) = false;
  // The membership thread's own: whether the last renewal reached Redis,
  // and until when nodes missing from Redis stay in the view.
  bool last_renewal_reached_redis_ = false;
  std::chrono::steady_clock::time_point settle_until_;
  // steady_clock ticks of the last renewal that reached Redis; 0 before.
  std::atomic<std::int64_t> renewed_at_{0};
  std::jthread thread_;
  std::jthread hint_thread_;
};

}  // namespace wsgateway::cluster
