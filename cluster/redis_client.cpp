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
  RedisResult result;
  if (context_ == nullptr) {
    result.error = Connect();
    if (!result.error.empty()) return result;
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply =
      static_cast<redisReply*>(redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  if (reply == nullptr) {
    result.error =
        "Redis at " + RedactedRedisUrl(endpoint_) + ": " + (context_->err != 0 ? context_->errstr : "no reply");
    Drop();
    return result;
  }
  result.value = std::make_unique<RedisValue>(Copy(*reply));
  freeReplyObject(reply);
  return result;
}

}  // namespace wsgateway::cluster
