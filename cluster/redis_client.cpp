#include "cluster/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace wsgateway::cluster {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

RedisValue Copy(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      value.type = reply.type == REDIS_REPLY_STRING   ? RedisValue::Type::kString
                   : reply.type == REDIS_REPLY_STATUS ? RedisValue::Type::kStatus
                                                      : RedisValue::Type::kError;
      value.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      value.elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i) value.elements.push_back(Copy(*reply.element[i]));
      break;
    default:
      break;
  }
  return value;
}

}  // namespace

std::string RedisResult::Describe() const {
  if (!error.empty()) return error;
  if (value && value->type == RedisValue::Type::kError) return value->text;
  return "ok";
}

RedisClient::RedisClient(RedisEndpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}

RedisClient::~RedisClient() { Drop(); }

void RedisClient::Drop() {
  {
    std::lock_guard lock(fd_mutex_);
    fd_ = -1;
  }
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

void RedisClient::Interrupt() {
  std::lock_guard lock(fd_mutex_);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

RedisResult RedisClient::NextReply(std::chrono::milliseconds timeout) {
  RedisResult result;
  if (context_ == nullptr) {
    result.error = "not connected";
    return result;
  }
  redisSetTimeout(context_, ToTimeval(timeout));
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    result.error =
        "Redis at " + RedactedRedisUrl(endpoint_) + ": " + (context_->err != 0 ? context_->errstr : "no reply");
    Drop();
    return result;
  }
  auto* reply = static_cast<redisReply*>(raw);
  result.value = std::make_unique<RedisValue>(Copy(*reply));
  freeReplyObject(reply);
  return result;
}

std::string RedisClient::Connect() {
  const timeval timeout = ToTimeval(timeout_);
  context_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, timeout);
  if (context_ == nullptr) return "cannot allocate a Redis connection";
  if (context_->err != 0) {
    std::string error = "cannot connect to Redis at " + RedactedRedisUrl(endpoint_) + ": " + context_->errstr;
    Drop();
    return error;
  }
  redisSetTimeout(context_, timeout);
  {
    std::lock_guard lock(fd_mutex_);
    fd_ = context_->fd;
  }
  std::vector<std::vector<std::string>> setup;
  if (!endpoint_.password.empty()) {
    setup.push_back(endpoint_.user.empty() ? std::vector<std::string>{"AUTH", endpoint_.password}
                                           : std::vector<std::string>{"AUTH", endpoint_.user, endpoint_.password});
  }
  if (endpoint_.database != 0) setup.push_back({"SELECT", std::to_string(endpoint_.database)});
  for (const auto& command : setup) {
    auto result = Command(command);
    if (!result.ok()) {
      // Not left connected unauthenticated: the next command starts over.
      Drop();
      return "Redis at " + RedactedRedisUrl(endpoint_) + " refused " + command[0] + ": " + result.Describe();
    }
  }
  return {};
}

RedisResult RedisClient::Command(const std::vector<std::string>& args) {
  auto results = Pipeline({args});
  return std::move(results.front());
}

bool RedisClient::Append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()) == REDIS_OK;
}

std::string RedisClient::TransportError() const {
  return "Redis at " + RedactedRedisUrl(endpoint_) + ": " +
         (context_ != nullptr && context_->err != 0 ? context_->errstr : "no reply");
}

std::vector<RedisResult> RedisClient::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<RedisResult> results(commands.size());
  if (commands.empty()) return results;
  std::string error;
  if (context_ == nullptr) error = Connect();
  std::size_t read = 0;
  if (error.empty()) {
    for (const auto& args : commands) {
      if (!Append(args)) {
        error = TransportError();
        break;
      }
    }
  }
  // hiredis writes the whole buffer at the first redisGetReply, then reads
  // replies in order.
  for (; error.empty() && read < commands.size(); ++read) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      error = TransportError();
      break;
    }
    auto* reply = static_cast<redisReply*>(raw);
    results[read].value = std::make_unique<RedisValue>(Copy(*reply));
    freeReplyObject(reply);
  }
  if (error.empty()) return results;
  // Replies still owed would be read as answers to later commands.
  Drop();
  for (std::size_t i = read; i < results.size(); ++i) results[i].error = error;
  return results;
}

}  // namespace wsgateway::cluster
