#include "cluster/loss_reporter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "cluster/cluster_keys.hpp"
#include "cluster/redis_client.hpp"

namespace wsgateway::cluster {
namespace {

using std::chrono::steady_clock;
using Type = RedisValue::Type;

// How often the backends' acknowledgement is polled.
constexpr auto kAcknowledgementPoll = std::chrono::milliseconds(20);
// How long to wait before trying Redis again after a failure.
constexpr auto kRetryInterval = std::chrono::milliseconds(100);
// The longest XREADGROUP BLOCK: a bound on how long a new record waits when
// the reporter is also due to look for stale ones.
constexpr auto kLongestBlock = std::chrono::milliseconds(500);

// The value of `field` in a stream entry's flat field list, or "".
std::string FieldValue(const RedisValue& fields, const std::string& field) {
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (fields.elements[i].text == field) return fields.elements[i + 1].text;
  }
  return {};
}

// The first entry of a list of [id, fields] entries, if any. A trimmed
// entry has nil fields: its id with no node.
template <typename Record>
std::optional<Record> FirstEntry(const RedisValue& entries) {
  if (entries.type != Type::kArray || entries.elements.empty()) return std::nullopt;
  const auto& entry = entries.elements.front();
  if (entry.type != Type::kArray || entry.elements.size() != 2) return std::nullopt;
  return Record{entry.elements[0].text, FieldValue(entry.elements[1], "node")};
}

// XREADGROUP's answer: nil, or [[stream, entries]].
template <typename Record>
std::optional<Record> FromReadGroup(const RedisValue& reply) {
  if (reply.type != Type::kArray || reply.elements.empty()) return std::nullopt;
  const auto& stream = reply.elements.front();
  if (stream.type != Type::kArray || stream.elements.size() != 2) return std::nullopt;
  return FirstEntry<Record>(stream.elements[1]);
}

// XAUTOCLAIM's answer: [next start, entries, (deleted ids)].
template <typename Record>
std::optional<Record> FromAutoClaim(const RedisValue& reply) {
  if (reply.type != Type::kArray || reply.elements.size() < 2) return std::nullopt;
  return FirstEntry<Record>(reply.elements[1]);
}

}  // namespace

LossReporter::LossReporter(LossReporterOptions options, std::string consumer)
    : options_(std::move(options)), stream_(LostStreamKey(options_.key_prefix)), consumer_(std::move(consumer)) {}

LossReporter::~LossReporter() { Stop(); }

void LossReporter::Start() {
  if (thread_.joinable()) return;
  read_own_pending_ = true;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void LossReporter::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void LossReporter::Rename(std::string consumer) {
  std::lock_guard lock(mutex_);
  consumer_ = std::move(consumer);
}

std::string LossReporter::consumer() const {
  std::lock_guard lock(mutex_);
  return consumer_;
}

void LossReporter::Run(std::stop_token stop) {
  RedisClient redis(options_.redis, options_.redis_timeout);
  const std::stop_callback interrupt(stop, [this, &redis] {
    redis.Interrupt();
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  });
  bool group_ready = false;
  while (!stop.stop_requested()) {
    const bool reached = Step(redis, stop, &group_ready);
    // A command cut short by Stop says nothing about Redis.
    if (stop.stop_requested()) break;
    NoteReachability(reached);
    if (reached) continue;
    // Redis may have restarted (without the group), and a record cut short
    // is still ours to report.
    group_ready = false;
    read_own_pending_ = true;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, kRetryInterval, [] { return false; });
  }
}

bool LossReporter::Step(RedisClient& redis, std::stop_token stop, bool* group_ready) {
  if (!*group_ready) *group_ready = EnsureGroup(redis);
  if (!*group_ready) return false;
  bool failed = false;
  const auto record = NextRecord(redis, &failed);
  if (failed) return false;
  return !record || Report(redis, stop, *record) != Outcome::kRedisFailed;
}

void LossReporter::NoteReachability(bool reached) {
  if (reached == reachable_) return;
  reachable_ = reached;
  if (reached) {
    spdlog::info("cluster: loss reporter reaches Redis at {} again", RedactedRedisUrl(options_.redis));
  } else {
    spdlog::warn("cluster: loss reporter cannot reach Redis at {}", RedactedRedisUrl(options_.redis));
  }
}

bool LossReporter::EnsureGroup(RedisClient& redis) {
  const auto result = redis.Command({"XGROUP", "CREATE", stream_, kLostReportersGroup, "$", "MKSTREAM"});
  if (result.ok()) return true;
  // BUSYGROUP: it exists already, as it should.
  return result.value != nullptr && result.value->text.rfind("BUSYGROUP", 0) == 0;
}

std::optional<LossReporter::Record> LossReporter::NextRecord(RedisClient& redis, bool* failed) {
  const auto me = consumer();
  if (read_own_pending_) {
    const auto pending =
        redis.Command({"XREADGROUP", "GROUP", kLostReportersGroup, me, "COUNT", "1", "STREAMS", stream_, "0"});
    if (!pending.ok()) {
      *failed = true;
      return std::nullopt;
    }
    if (auto record = FromReadGroup<Record>(*pending.value)) return record;
    read_own_pending_ = false;
  }
  const auto stale = redis.Command({"XAUTOCLAIM", stream_, kLostReportersGroup, me,
                                    std::to_string(options_.claim_idle.count()), "0-0", "COUNT", "1"});
  if (!stale.ok()) {
    *failed = true;
    return std::nullopt;
  }
  if (auto record = FromAutoClaim<Record>(*stale.value)) return record;
  // The command must come back well within the client's timeout.
  const auto block = std::min<std::chrono::milliseconds>(kLongestBlock, options_.redis_timeout / 2);
  const auto fresh = redis.Command({"XREADGROUP", "GROUP", kLostReportersGroup, me, "COUNT", "1", "BLOCK",
                                    std::to_string(block.count()), "STREAMS", stream_, ">"});
  if (!fresh.ok()) {
    *failed = true;
    return std::nullopt;
  }
  return FromReadGroup<Record>(*fresh.value);
}

LossReporter::Outcome LossReporter::Report(RedisClient& redis, std::stop_token stop, const Record& record) {
  // Delivering or claiming the record reset its idle time.
  touched_ = steady_clock::now();
  const auto lost = LostConnectionsKey(options_.key_prefix, record.node);
  std::map<std::string, std::uint64_t> per_target;
  if (!record.node.empty()) {
    if (const auto outcome = HandOver(redis, stop, record, &per_target); outcome != Outcome::kDone) return outcome;
    if (options_.report_summary) options_.report_summary(record.node, per_target);
    if (const auto outcome = AwaitAcknowledgement(redis, stop, record); outcome != Outcome::kDone) return outcome;
  }
  const auto done = redis.Pipeline({{"XACK", stream_, kLostReportersGroup, record.id}, {"DEL", lost}});
  if (!std::all_of(done.begin(), done.end(), [](const RedisResult& result) { return result.ok(); })) {
    return Outcome::kRedisFailed;
  }
  std::uint64_t connections = 0;
  for (const auto& [target, count] : per_target) connections += count;
  reported_.fetch_add(1, std::memory_order_relaxed);
  if (!record.node.empty()) spdlog::info("cluster: reported node {} lost: {} connections", record.node, connections);
  return Outcome::kDone;
}

LossReporter::Outcome LossReporter::HandOver(RedisClient& redis, std::stop_token stop, const Record& record,
                                             std::map<std::string, std::uint64_t>* per_target) {
  const auto lost = LostConnectionsKey(options_.key_prefix, record.node);
  // HSCAN may return an id twice; each is reported and counted once.
  std::unordered_set<std::string> seen;
  std::string cursor = "0";
  do {
    if (stop.stop_requested()) return Outcome::kStopped;
    const auto page = redis.Command({"HSCAN", lost, cursor, "COUNT", std::to_string(options_.batch)});
    if (!page.ok()) return Outcome::kRedisFailed;
    const auto& reply = *page.value;
    if (reply.type != Type::kArray || reply.elements.size() != 2) return Outcome::kRedisFailed;
    cursor = reply.elements[0].text;
    const auto& fields = reply.elements[1].elements;
    std::vector<LostConnection> batch;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      if (!seen.insert(fields[i].text).second) continue;
      ++(*per_target)[fields[i + 1].text];
      batch.push_back({fields[i].text, fields[i + 1].text});
    }
    if (!batch.empty() && options_.report_closes) options_.report_closes(record.node, batch);
    if (!TouchIfDue(redis, record)) return Outcome::kRedisFailed;
  } while (cursor != "0");
  return Outcome::kDone;
}

LossReporter::Outcome LossReporter::AwaitAcknowledgement(RedisClient& redis, std::stop_token stop,
                                                         const Record& record) {
  const auto acknowledged = options_.acknowledged_mark ? options_.acknowledged_mark() : std::function<bool()>{};
  while (acknowledged && !acknowledged()) {
    if (!TouchIfDue(redis, record)) return Outcome::kRedisFailed;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, kAcknowledgementPoll, [] { return false; });
    if (stop.stop_requested()) return Outcome::kStopped;
  }
  return Outcome::kDone;
}

bool LossReporter::TouchIfDue(RedisClient& redis, const Record& record) {
  const auto now = steady_clock::now();
  if (now - touched_ < options_.claim_idle / 3) return true;
  const auto result = redis.Command({"XCLAIM", stream_, kLostReportersGroup, consumer(), "0", record.id, "JUSTID"});
  if (!result.ok()) return false;
  touched_ = now;
  return true;
}

}  // namespace wsgateway::cluster
