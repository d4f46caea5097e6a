#include "gateway/config/config_keys.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "gateway/config/redis_url.hpp"
#include "gateway/config/units.hpp"

namespace wsgateway {
namespace {

using F = ConfigForm;

// The rows, in the order of docs/configuration.md.
const ConfigKey kKeys[] = {
    {"listen", F::kText, &Config::listen, "Public WebSocket/HTTP listener, host:port"},
    {"admin_listen", F::kText, &Config::admin_listen, "Admin gRPC listener, host:port"},
    {"metrics_listen", F::kText, &Config::metrics_listen, "Prometheus /metrics listener, host:port"},
    {"backend", F::kText, &Config::backend, "gRPC target of the backend, e.g. 127.0.0.1:50052 or dns:///svc:50052"},
    {"threads", F::kCount, &Config::threads, "Event-loop threads; 0 means one per core"},
    {"max_message_bytes", F::kBytes, &Config::max_message_bytes, "Largest message accepted from or pushed to a client"},
    {"send_queue_max_bytes", F::kBytes, &Config::send_queue_max_bytes,
     "Bytes queued for one client before it is closed as a slow consumer"},
    {"max_handshake_bytes", F::kBytes, &Config::max_handshake_bytes, "Largest HTTP upgrade request header"},
    {"client_message_rate", F::kCount, &Config::client_message_rate,
     "Messages per second one connection may send (control frames included; 0: no limit)"},
    {"client_message_burst", F::kCount, &Config::client_message_burst,
     "Messages one connection may send at once above client_message_rate"},
    {"client_byte_rate", F::kBytes, &Config::client_byte_rate,
     "Bytes per second one connection may send, counted after decompression (0: no limit)"},
    {"client_byte_burst", F::kBytes, &Config::client_byte_burst,
     "Bytes one connection may send at once above client_byte_rate"},
    {"pending_messages_max_bytes", F::kBytes, &Config::pending_messages_max_bytes,
     "Bytes held in unfinished messages across all connections; past it the connection closes with 1013"},
    {"handshake_timeout", F::kDuration, &Config::handshake_timeout,
     "Time allowed for an HTTP request and its upgrade (or the handshake hook)"},
    {"ping_interval", F::kDuration, &Config::ping_interval,
     "Ping a connection silent this long (0ms disables heartbeats)"},
    {"pong_timeout", F::kDuration, &Config::pong_timeout, "Close a pinged connection that stays silent this long"},
    {"close_timeout", F::kDuration, &Config::close_timeout,
     "Wait this long for the client's close frame, and then for its TCP close"},
    {"subprotocols", F::kList, &Config::subprotocols, "Subprotocols accepted in Sec-WebSocket-Protocol"},
    {"response_headers", F::kList, &Config::response_headers, "Headers added to every 101 response, as 'Name: value'"},
    {"permessage_deflate", F::kBool, &Config::permessage_deflate,
     "Negotiate permessage-deflate (RFC 7692) with clients that offer it"},
    {"compression_threshold", F::kBytes, &Config::compression_threshold,
     "Compress pushed messages from this size up (unless the push says otherwise)"},
    {"compression_level", F::kInteger, &Config::compression_level, "zlib level, 1 (fastest) to 9 (smallest)"},
    {"forward_close_frames", F::kBool, &Config::forward_close_frames, "Send clients' close frames to the backend"},
    {"forward_ping_frames", F::kBool, &Config::forward_ping_frames, "Send clients' ping frames to the backend"},
    {"forward_pong_frames", F::kBool, &Config::forward_pong_frames, "Send clients' pong frames to the backend"},
    {"handshake_hook", F::kBool, &Config::handshake_hook, "Let the backend decide every upgrade (Backend.Handshake)"},
    {"handshake_hook_timeout", F::kDuration, &Config::handshake_hook_timeout,
     "Deadline of a Backend.Handshake call; past it the upgrade fails with 503"},
    {"http_forwarding", F::kBool, &Config::http_forwarding,
     "Answer plain HTTP requests through the backend (Backend.HandleRequest) instead of with 400"},
    {"max_request_body_bytes", F::kBytes, &Config::max_request_body_bytes, "Largest plain HTTP request body forwarded"},
    {"http_request_timeout", F::kDuration, &Config::http_request_timeout, "Deadline of a Backend.HandleRequest call"},
    {"http_keepalive_timeout", F::kDuration, &Config::http_keepalive_timeout,
     "How long a plain HTTP connection may wait between requests"},
    {"http_keepalive_requests", F::kCount, &Config::http_keepalive_requests,
     "Requests one plain HTTP connection may carry"},
    {"routes", F::kRoutes, &Config::routes, "Path-prefix routes (YAML file only)"},
    {"backend_buffer_bytes", F::kBytes, &Config::backend_buffer_bytes,
     "Events held for the backend before client reads pause"},
    {"backend_max_message_bytes", F::kBytes, &Config::backend_max_message_bytes,
     "Largest event batch sent to the backend: its gRPC receive limit"},
    {"backend_event_timeout", F::kDuration, &Config::backend_event_timeout,
     "Give up on an event unacknowledged this long: its connection closes with 1011"},
    {"backend_batch_interval", F::kDuration, &Config::backend_batch_interval,
     "Least time between two event batches of one event loop; events after a quiet spell go at once (0: no wait)"},
    {"backend_reconnect_min", F::kDuration, &Config::backend_reconnect_min, "First reconnect delay to the backend"},
    {"backend_reconnect_max", F::kDuration, &Config::backend_reconnect_max, "Largest reconnect delay to the backend"},
    {"reject_upgrades_without_backend", F::kBool, &Config::reject_upgrades_without_backend,
     "Answer upgrades with 503 while the backend stream is down"},
    {"tls_cert_file", F::kFile, &Config::tls_cert_file,
     "PEM certificate chain for wss:// on the public listener (with --tls-key-file)"},
    {"tls_key_file", F::kFile, &Config::tls_key_file, "PEM private key for --tls-cert-file"},
    {"allowed_origins", F::kList, &Config::allowed_origins,
     "Origins allowed to open WebSockets, e.g. https://app.example.com or https://*.example.com; empty allows all"},
    {"max_connections", F::kCount, &Config::max_connections,
     "Most client connections at once (0: no limit); past it 503"},
    {"max_connections_per_address", F::kCount, &Config::max_connections_per_address,
     "Most connections from one client address (0: no limit); past it 429"},
    {"retry_after", F::kDuration, &Config::retry_after, "Retry-After sent with 503 and 429 refusals"},
    {"admin_tls_cert_file", F::kFile, &Config::admin_tls_cert_file,
     "PEM certificate chain for TLS on the admin listener"},
    {"admin_tls_key_file", F::kFile, &Config::admin_tls_key_file, "PEM private key for --admin-tls-cert-file"},
    {"admin_tls_client_ca_file", F::kFile, &Config::admin_tls_client_ca_file,
     "PEM CA bundle; when set, admin clients must present a certificate it signed (mutual TLS)"},
    {"admin_token_file", F::kFile, &Config::admin_token_file,
     "File of bearer tokens for the admin API, one per line (re-read on SIGHUP)"},
    {"admin_tokens", F::kSecretList, &Config::admin_tokens,
     "Bearer tokens for the admin API; prefer --admin-token-file or WSGATEWAY_ADMIN_TOKENS"},
    {"cluster_redis", F::kRedisUrl, &Config::cluster_redis,
     "Redis of cluster mode, redis://[:password@]host:port[/db]; unset: this gateway runs alone"},
    {"cluster_redis_password_file", F::kFile, &Config::cluster_redis_password_file,
     "File holding the Redis password (wins over the URL's)"},
    {"cluster_key_prefix", F::kText, &Config::cluster_key_prefix,
     "Prefix of cluster mode's Redis keys; replicas of one gateway share it"},
    {"cluster_listen", F::kText, &Config::cluster_listen,
     "Node-to-node gRPC listener of cluster mode, host:port (never exposed by a Service)"},
    {"cluster_advertise", F::kText, &Config::cluster_advertise,
     "host:port where the other replicas reach this one's cluster listener (in Kubernetes: the pod IP)"},
    {"cluster_token_file", F::kFile, &Config::cluster_token_file,
     "File of the replicas' shared bearer token for node-to-node calls (required in cluster mode)"},
    {"cluster_lease", F::kDuration, &Config::cluster_lease,
     "How long a replica's membership lasts unrenewed (renewed every second; at least 2s)"},
    {"cluster_reap_grace", F::kDuration, &Config::cluster_reap_grace,
     "After a lease ran out, how long before a survivor reports the replica's connections closed"},
    {"cluster_fence", F::kText, &Config::cluster_fence,
     "lazy or eager: whether a replica cut off from Redis closes its connections before its lease runs out"},
    {"drain_timeout", F::kDuration, &Config::drain_timeout,
     "After SIGTERM, close connections within this time, then exit 0"},
    {"drain_rate", F::kCount, &Config::drain_rate, "Connections closed per second while draining (at least 1)"},
    {"log_level", F::kText, &Config::log_level, "trace, debug, info, warn, error, critical or off"},
    {"log_format", F::kText, &Config::log_format, "text or json"},
};

constexpr std::array<std::string_view, 10> kRouteKeys = {"path_prefix",          "backend",
                                                         "handshake_hook",       "http_forwarding",
                                                         "forward_close_frames", "forward_ping_frames",
                                                         "forward_pong_frames",  "permessage_deflate",
                                                         "subprotocols",         "max_message_bytes"};

template <typename T>
T& FieldOf(const ConfigKey& key, Config& config) {
  return config.*std::get<T Config::*>(key.field);
}

template <typename T>
const T& FieldOf(const ConfigKey& key, const Config& config) {
  return config.*std::get<T Config::*>(key.field);
}

// A whole number that fits T, with nothing after it.
template <typename T>
bool ParseNumber(std::string_view text, T& target) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return false;
  target = value;
  return true;
}

// The count fields are unsigned or std::size_t.
bool ParseCount(const ConfigKey& key, std::string_view text, Config& config) {
  if (std::holds_alternative<unsigned Config::*>(key.field)) return ParseNumber(text, FieldOf<unsigned>(key, config));
  return ParseNumber(text, FieldOf<std::size_t>(key, config));
}

bool ParseBool(std::string_view text, bool& target) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* yes : {"true", "yes", "on", "1"}) {
    if (lower == yes) return target = true, true;
  }
  for (const char* no : {"false", "no", "off", "0"}) {
    if (lower == no) return target = false, true;
  }
  return false;
}

// Comma-separated, each element trimmed, empty elements dropped.
std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(',', start), text.size());
    auto item = std::string(text.substr(start, end - start));
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(std::move(item));
    start = end + 1;
  }
  return items;
}

}  // namespace

std::span<const ConfigKey> ConfigKeys() { return kKeys; }

std::span<const std::string_view> RouteKeys() { return kRouteKeys; }

std::string FlagName(std::string_view key) {
  std::string flag(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string EnvName(std::string_view key) {
  std::string env = "WSGATEWAY_";
  for (char c : key) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return env;
}

bool IsList(ConfigForm form) { return form == F::kList || form == F::kSecretList || form == F::kRoutes; }

std::string FormatScalar(const ConfigKey& key, const Config& config) {
  switch (key.form) {
    case F::kText:
    case F::kFile:
      return FieldOf<std::string>(key, config);
    case F::kRedisUrl: {
      const auto& url = FieldOf<std::string>(key, config);
      const auto parsed = ParseRedisUrl(url);
      if (!parsed.endpoint || parsed.endpoint->password.empty()) return url;
      return RedactedRedisUrl(*parsed.endpoint, kRedacted);
    }
    case F::kCount:
      if (std::holds_alternative<unsigned Config::*>(key.field)) {
        return std::to_string(FieldOf<unsigned>(key, config));
      }
      return std::to_string(FieldOf<std::size_t>(key, config));
    case F::kInteger:
      return std::to_string(FieldOf<int>(key, config));
    case F::kBool:
      return FieldOf<bool>(key, config) ? "true" : "false";
    case F::kBytes:
      return FormatBytes(FieldOf<std::size_t>(key, config));
    case F::kDuration:
      return FormatDuration(FieldOf<std::chrono::milliseconds>(key, config));
    case F::kList:
    case F::kSecretList:
    case F::kRoutes:
      break;
  }
  return {};
}

std::vector<std::string> FormatList(const ConfigKey& key, const Config& config) {
  if (key.form == F::kList) return FieldOf<std::vector<std::string>>(key, config);
  if (key.form == F::kSecretList) {
    return std::vector<std::string>(FieldOf<std::vector<std::string>>(key, config).size(), std::string(kRedacted));
  }
  return {};
}

bool ParseValue(const ConfigKey& key, std::string_view text, Config& config) {
  switch (key.form) {
    case F::kText:
    case F::kFile:
    case F::kRedisUrl:  // checked whole by Validate, which says what is wrong
      FieldOf<std::string>(key, config) = std::string(text);
      return true;
    case F::kCount:
      return ParseCount(key, text, config);
    case F::kInteger:
      return ParseNumber(text, FieldOf<int>(key, config));
    case F::kBool:
      return ParseBool(text, FieldOf<bool>(key, config));
    case F::kBytes: {
      const auto bytes = ParseBytes(text);
      if (bytes) FieldOf<std::size_t>(key, config) = *bytes;
      return bytes.has_value();
    }
    case F::kDuration: {
      const auto duration = ParseDuration(text);
      if (duration) FieldOf<std::chrono::milliseconds>(key, config) = *duration;
      return duration.has_value();
    }
    case F::kList:
    case F::kSecretList:
      FieldOf<std::vector<std::string>>(key, config) = SplitList(text);
      return true;
    case F::kRoutes:
      break;
  }
  return false;
}

std::string_view ExpectedForm(ConfigForm form) {
  switch (form) {
    case F::kText:
      return "text";
    case F::kFile:
      return "the path of a readable file";
    case F::kRedisUrl:
      return "a URL such as redis://:password@redis:6379/0";
    case F::kCount:
      return "a whole number such as 0 or 100";
    case F::kInteger:
      return "a whole number";
    case F::kBool:
      return "true or false";
    case F::kBytes:
      return "a size such as 2MiB, 64KiB or 1048576";
    case F::kDuration:
      return "a duration such as 500ms, 30s or 5m";
    case F::kList:
    case F::kSecretList:
      return "a comma-separated list";
    case F::kRoutes:
      return "a YAML list of mappings with path_prefix and options";
  }
  return {};
}

}  // namespace wsgateway
