#include "gateway/config/redis_url.hpp"

#include <charconv>

namespace wsgateway {
namespace {

constexpr std::string_view kScheme = "redis://";

std::optional<unsigned> ParseNumber(std::string_view text, unsigned max) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value > max) return std::nullopt;
  return value;
}

RedisEndpointParse Fail(std::string error) { return {std::nullopt, std::move(error)}; }

}  // namespace

RedisEndpointParse ParseRedisUrl(std::string_view url) {
  const std::string quoted = "'" + std::string(url) + "'";
  if (!url.starts_with(kScheme)) {
    return Fail("cluster_redis " + quoted + " does not start with redis:// (redis://[:password@]host:port[/db])");
  }
  std::string_view rest = url.substr(kScheme.size());
  RedisEndpoint endpoint;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      endpoint.password = std::string(credentials);
    } else {
      endpoint.user = std::string(credentials.substr(0, colon));
      endpoint.password = std::string(credentials.substr(colon + 1));
    }
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = ParseNumber(rest.substr(slash + 1), 15'999);
    if (!db) return Fail("cluster_redis " + quoted + ": the database after '/' must be a number");
    endpoint.database = static_cast<int>(*db);
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return Fail("cluster_redis " + quoted + ": '[' without ']' around the host");
    host = rest.substr(1, close - 1);
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return Fail("cluster_redis " + quoted + ": expected ':port' after ']'");
      port = after.substr(1);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return Fail("cluster_redis " + quoted + " names no host");
  endpoint.host = std::string(host);
  if (!port.empty()) {
    const auto number = ParseNumber(port, 65'535);
    if (!number || *number == 0) return Fail("cluster_redis " + quoted + ": the port must be 1-65535");
    endpoint.port = static_cast<std::uint16_t>(*number);
  }
  return {endpoint, {}};
}

std::string RedactedRedisUrl(const RedisEndpoint& endpoint, std::string_view mask) {
  std::string url(kScheme);
  if (!endpoint.user.empty() || !endpoint.password.empty()) url += endpoint.user + ":" + std::string(mask) + "@";
  const bool v6 = endpoint.host.find(':') != std::string::npos;
  url += v6 ? "[" + endpoint.host + "]" : endpoint.host;
  url += ":" + std::to_string(endpoint.port);
  if (endpoint.database != 0) url += "/" + std::to_string(endpoint.database);
  return url;
}

}  // namespace wsgateway
