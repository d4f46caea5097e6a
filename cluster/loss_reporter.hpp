#pragma once
// Reports lost nodes to the backends. The membership's reap appends a record
// per lost node to the "{<prefix>}:lost" stream; every node runs a
// LossReporter reading it through one consumer group, so each record goes
// to one survivor. That survivor hands the lost node's connections to
// report_closes in batches, then report_summary, waits until the backends
// acknowledged all of it, and only then acknowledges the record and deletes
// the lost node's registry.
//
// At least once: a reporter that dies (or stops) before acknowledging stops
// touching its claim; after claim_idle another reporter claims the record
// and reports it again. While a reporter waits for the backends it touches
// its claim every claim_idle / 3, so a slow backend does not cause a second
// report from a live node.
//
// Threads: one of its own, with its own Redis connection; the callbacks run
// on it. Start, Stop and Rename may be called from any thread.

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "gateway/config/redis_url.hpp"

namespace wsgateway::cluster {

class RedisClient;

struct LostConnection {
  std::string id;
  std::string backend_target;
};

struct LossReporterOptions {
  RedisEndpoint redis;
  std::string key_prefix = "wsgateway";
  std::chrono::milliseconds redis_timeout{1000};
  // A record unacknowledged this long by a reporter that stopped touching it
  // is claimed by another.
  std::chrono::milliseconds claim_idle{3000};
  // Connections read per round trip (HSCAN COUNT).
  std::size_t batch = 1000;
  // Hands the Close events of some of a lost node's connections to the
  // backend links (called several times per record).
  std::function<void(const std::string& lost_node, const std::vector<LostConnection>&)> report_closes;
  // After the last report_closes of a record: one NodeLostEvent per backend
  // target.
  std::function<void(const std::string& lost_node, const std::map<std::string, std::uint64_t>& per_target)>
      report_summary;
  // Called after report_summary; returns a predicate that turns true once
  // everything handed over so far was acknowledged by the backends. Unset:
  // acknowledged at once.
  std::function<std::function<bool()>()> acknowledged_mark;
};

class LossReporter {
 public:
  // `consumer` is this node's id (its name in the consumer group).
  LossReporter(LossReporterOptions options, std::string consumer);
  ~LossReporter();
  LossReporter(const LossReporter&) = delete;
  LossReporter& operator=(const LossReporter&) = delete;

  void Start();
  // Stops promptly, even mid-record: that record stays unacknowledged and is
  // reported again (by this node's next start, or another after claim_idle).
  void Stop();
  // Reads as `consumer` from now on. Records the old name held are claimed
  // after claim_idle like a dead reporter's.
  void Rename(std::string consumer);

  // Records reported and acknowledged so far (tests).
  std::uint64_t reported() const { return reported_.load(std::memory_order_relaxed); }

 private:
  // One stream entry: its id and the lost node ("" when the entry was
  // trimmed away, or malformed).
  struct Record {
    std::string id;
    std::string node;
  };
  enum class Outcome { kDone, kRedisFailed, kStopped };

  void Run(std::stop_token stop);
  // Makes sure of the group, then reports the next record if there is one;
  // false when Redis failed.
  bool Step(RedisClient& redis, std::stop_token stop, bool* group_ready);
  // Logs when Redis goes away and when it is back.
  void NoteReachability(bool reached);
  // Creates the consumer group if it is missing; false when Redis failed.
  bool EnsureGroup(RedisClient& redis);
  // The next record to report: own pending ones first, then stale ones of
  // dead reporters, then new ones (blocking briefly). nullopt when none;
  // *failed when Redis failed.
  std::optional<Record> NextRecord(RedisClient& redis, bool* failed);
  Outcome Report(RedisClient& redis, std::stop_token stop, const Record& record);
  // Reads the lost node's registry and hands it over; fills per_target.
  Outcome HandOver(RedisClient& redis, std::stop_token stop, const Record& record,
                   std::map<std::string, std::uint64_t>* per_target);
  Outcome AwaitAcknowledgement(RedisClient& redis, std::stop_token stop, const Record& record);
  // Keeps the record ours (XCLAIM JUSTID) if it has not been touched for a
  // third of claim_idle; false when Redis failed.
  bool TouchIfDue(RedisClient& redis, const Record& record);
  std::string consumer() const;

  const LossReporterOptions options_;
  const std::string stream_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::string consumer_ ABSL_GUARDED_BY(mutex_);

  // The reporter thread's own.
  bool read_own_pending_ = true;
  bool reachable_ = true;
  std::chrono::steady_clock::time_point touched_;
  std::atomic<std::uint64_t> reported_{0};
  std::jthread thread_;
};

}  // namespace wsgateway::cluster
