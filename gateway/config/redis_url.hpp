#pragma once
// Where cluster mode's Redis is: parsed from cluster_redis,
// redis://[[user]:password@]host:port[/db] (host may be [v6]). The password
// may also come from a file (cluster_redis_password_file), which wins.
// Plain values: any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 6379;
  std::string user;      // empty: the default user
  std::string password;  // empty: no AUTH
  int database = 0;
};

struct RedisEndpointParse {
  std::optional<RedisEndpoint> endpoint;
  // What is wrong with the URL, as a sentence; empty on success.
  std::string error;
};

RedisEndpointParse ParseRedisUrl(std::string_view url);

// The URL with the password replaced by `mask`, for logs and --print-config.
std::string RedactedRedisUrl(const RedisEndpoint& endpoint, std::string_view mask = "***");

}  // namespace wsgateway
