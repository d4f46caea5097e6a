#pragma once
// One synchronous connection to Redis (hiredis), for one thread: the
// membership's, the connection registry's or the loss reporter's. Redis is
// never on the per-message path, so blocking calls with a timeout on a
// thread of their own are the simple, safe choice. A command that fails
// drops the connection; the next one reconnects (and authenticates and
// selects the database again).
//
// Thread-safety: none; one owner thread.

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/config/redis_url.hpp"

struct redisContext;

namespace wsgateway::cluster {

// A reply, copied out of hiredis.
struct RedisValue {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  long long integer = 0;
  // kString, kStatus and kError.
  std::string text;
  std::vector<RedisValue> elements;
};

struct RedisResult {
  // Set when Redis answered (possibly with an error reply).
  std::unique_ptr<RedisValue> value;
  // Why there is no answer (connection refused, timeout, ...); empty when
  // there is one.
  std::string error;
  bool ok() const { return value != nullptr && value->type != RedisValue::Type::kError; }
  // The error reply or the transport error, for logs.
  std::string Describe() const;
};

class RedisClient {
 public:
  // `timeout` bounds the connect and each command.
  RedisClient(RedisEndpoint endpoint, std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command; arguments are binary-safe.
  RedisResult Command(const std::vector<std::string>& args);
  // Runs several commands in one round trip: one write, then their replies
  // in order. A transport error gives every reply not yet read that error
  // (and drops the connection, as Command does); error replies stay per
  // command.
  std::vector<RedisResult> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // The next reply Redis pushes on this connection (after SUBSCRIBE),
  // waiting at most `timeout`; an error (the connection is then dropped)
  // when none came.
  RedisResult NextReply(std::chrono::milliseconds timeout);
  // Makes a NextReply blocked on another thread return at once (with an
  // error). Thread-safe against the thread using the client.
  void Interrupt();

 private:
  // Connects, authenticates and selects the database; empty or the error.
  std::string Connect();
  void Drop();
  // Queues one command in hiredis's output buffer; false when it cannot.
  bool Append(const std::vector<std::string>& args);
  // The transport error of the connection, for a result.
  std::string TransportError() const;

  RedisEndpoint endpoint_;
  std::chrono::milliseconds timeout_;
  redisContext* context_ = nullptr;
  // The connection's socket while connected, for Interrupt; -1 otherwise.
  std::mutex fd_mutex_;
  int fd_ ABSL_GUARDED_BY(fd_mutex_) = -1;
};

}  // namespace wsgateway::cluster
