#include "gateway/config_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "gateway/origin_policy.hpp"
#include "gateway/units.hpp"

namespace wsgateway {
namespace {

// One setting from the YAML file: its key as a flag name and its text.
struct FileSetting {
  std::string flag;
  std::vector<std::string> values;
};

template <typename T>
std::optional<T> Scalar(const YAML::Node& node, const std::string& where) {
  if (!node) return std::nullopt;
  if (!node.IsScalar()) throw CLI::ConversionError(where + " must be a single value");
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw CLI::ConversionError(where + ": '" + node.Scalar() + "' is not a valid value");
  }
}

// One `routes` entry: a mapping with path_prefix and any of the per-route
// options; an unknown key is an error so a typo cannot hide.
RouteConfig ReadRoute(const YAML::Node& node, std::size_t index) {
  const std::string where = "routes[" + std::to_string(index) + "]";
  if (!node.IsMap()) throw CLI::ConversionError(where + " must be a mapping with path_prefix and options");
  static const std::vector<std::string> kKeys = {
      "path_prefix",         "backend",           "handshake_hook",     "http_forwarding",
      "forward_close_frames", "forward_ping_frames", "forward_pong_frames", "permessage_deflate",
      "subprotocols",        "max_message_bytes"};
  for (const auto& entry : node) {
    auto key = entry.first.as<std::string>();
    std::replace(key.begin(), key.end(), '-', '_');
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      throw CLI::ConversionError(where + ": unknown key '" + key + "'");
    }
  }
  const auto get = [&node](const char* key) {
    if (node[key]) return node[key];
    std::string dashed = key;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    return node[dashed];
  };
  RouteConfig route;
  const auto prefix = Scalar<std::string>(get("path_prefix"), where + ".path_prefix");
  if (!prefix || prefix->empty() || prefix->front() != '/') {
    throw CLI::ConversionError(where + ".path_prefix must be a path starting with '/'");
  }
  route.path_prefix = *prefix;
  route.backend = Scalar<std::string>(get("backend"), where + ".backend");
  route.handshake_hook = Scalar<bool>(get("handshake_hook"), where + ".handshake_hook");
  route.http_forwarding = Scalar<bool>(get("http_forwarding"), where + ".http_forwarding");
  route.forward_close_frames = Scalar<bool>(get("forward_close_frames"), where + ".forward_close_frames");
  route.forward_ping_frames = Scalar<bool>(get("forward_ping_frames"), where + ".forward_ping_frames");
  route.forward_pong_frames = Scalar<bool>(get("forward_pong_frames"), where + ".forward_pong_frames");
  route.permessage_deflate = Scalar<bool>(get("permessage_deflate"), where + ".permessage_deflate");
  if (const auto size = Scalar<std::string>(get("max_message_bytes"), where + ".max_message_bytes")) {
    route.max_message_bytes = ParseBytes(*size);
    if (!route.max_message_bytes || *route.max_message_bytes == 0) {
      throw CLI::ConversionError(where + ".max_message_bytes: '" + *size + "' is not a size such as 64KiB");
    }
  }
  if (const auto list = get("subprotocols")) {
    if (!list.IsSequence()) throw CLI::ConversionError(where + ".subprotocols must be a list");
    route.subprotocols.emplace();
    for (const auto& item : list) route.subprotocols->push_back(item.as<std::string>());
  }
  return route;
}

// Reads a flat YAML mapping; keys are the long flag names, written with
// '_' or '-'. Nested mappings are rejected so a typo cannot hide; the one
// structured key, `routes`, goes to `routes`.
std::vector<FileSetting> ReadConfigFile(const std::string& path, std::vector<RouteConfig>& routes) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw CLI::FileError("cannot read config file '" + path + "'");
  } catch (const YAML::Exception& e) {
    throw CLI::ConversionError("config file '" + path + "' is not valid YAML: " + std::string(e.what()));
  }
  std::vector<FileSetting> settings;
  if (root.IsNull()) return settings;
  if (!root.IsMap()) throw CLI::ConversionError("config file '" + path + "' must be a YAML mapping of key: value");
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    if (key == "routes") {
      if (!entry.second.IsSequence()) throw CLI::ConversionError("config key 'routes' must be a list of mappings");
      std::size_t index = 0;
      for (const auto& route : entry.second) routes.push_back(ReadRoute(route, index++));
      continue;
    }
    FileSetting setting{key, {}};
    std::replace(setting.flag.begin(), setting.flag.end(), '_', '-');
    const auto& value = entry.second;
    if (value.IsScalar()) {
      setting.values.push_back(value.as<std::string>());
    } else if (value.IsSequence()) {
      // Lists are one comma-separated value, so a flag replaces a file's list.
      std::string joined;
      for (const auto& element : value) joined += (joined.empty() ? "" : ",") + element.as<std::string>();
      setting.values.push_back(joined);
    } else {
      throw CLI::ConversionError("config key '" + key + "' must be a scalar or a list, not a mapping");
    }
    settings.push_back(std::move(setting));
  }
  return settings;
}

// The --config value from the command line, else from WSGATEWAY_CONFIG.
std::string FindConfigPath(const std::vector<std::string>& args) {
  std::string path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (args[i].starts_with("--config=")) path = args[i].substr(9);
  }
  if (path.empty()) {
    if (const char* env = std::getenv("WSGATEWAY_CONFIG")) path = env;
  }
  return path;
}

std::string EnvName(const std::string& flag) {
  std::string env = "WSGATEWAY_";
  for (char c : flag) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return env;
}

// Registers a flag whose text is converted after parsing; keeps the raw
// text so an error can quote it.
class Binder {
 public:
  explicit Binder(CLI::App& app) : app_(app) {}

  template <typename T>
  void Plain(const std::string& flag, T& target, const std::string& help) {
    app_.add_option("--" + flag, target, help)->envname(EnvName(flag))->capture_default_str();
  }

  void Bool(const std::string& flag, bool& target, const std::string& help) {
    app_.add_option("--" + flag, target, help + " (true/false)")->envname(EnvName(flag))->capture_default_str();
  }

  void Bytes(const std::string& flag, std::size_t& target, const std::string& help) {
    Converted(flag, help, FormatBytes(target), "a size such as 2MiB, 64KiB or 1048576",
              [&target](const std::string& s) {
                const auto v = ParseBytes(s);
                if (v) target = *v;
                return v.has_value();
              });
  }

  void List(const std::string& flag, std::vector<std::string>& target, const std::string& help) {
    Converted(flag, help + " (comma-separated)", "", "a comma-separated list", [&target](const std::string& s) {
      target.clear();
      std::size_t start = 0;
      while (start <= s.size()) {
        const auto end = std::min(s.find(',', start), s.size());
        auto item = s.substr(start, end - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) target.push_back(item);
        start = end + 1;
      }
      return true;
    });
  }

  void Duration(const std::string& flag, std::chrono::milliseconds& target, const std::string& help) {
    Converted(flag, help, FormatDuration(target), "a duration such as 500ms, 30s or 5m",
              [&target](const std::string& s) {
                const auto v = ParseDuration(s);
                if (v) target = *v;
                return v.has_value();
              });
  }

 private:
  void Converted(const std::string& flag, const std::string& help, const std::string& default_text,
                 const std::string& expected, std::function<bool(const std::string&)> convert) {
    app_.add_option_function<std::string>(
            "--" + flag,
            [flag, expected, convert](const std::string& text) {
              if (!convert(text)) {
                throw CLI::ValidationError("--" + flag, "'" + text + "' is not " + expected);
              }
            },
            help)
        ->envname(EnvName(flag))
        ->default_str(default_text);
  }

  CLI::App& app_;
};

void Validate(const Config& c) {
  auto require = [](bool ok, const std::string& key, const std::string& message) {
    if (!ok) throw CLI::ValidationError("--" + key, message);
  };
  require(c.max_message_bytes >= 1, "max-message-bytes", "must be at least 1 byte");
  require(c.send_queue_max_bytes >= 1, "send-queue-max-bytes", "must be at least 1 byte");
  require(c.max_handshake_bytes >= 1024, "max-handshake-bytes", "must be at least 1KiB");
  require(c.handshake_timeout.count() > 0, "handshake-timeout", "must be positive");
  require(c.backend_buffer_bytes >= 64 * 1024, "backend-buffer-bytes", "must be at least 64KiB");
  require(c.backend_event_timeout.count() > 0, "backend-event-timeout", "must be positive");
  require(c.backend_reconnect_min.count() > 0 && c.backend_reconnect_min <= c.backend_reconnect_max,
          "backend-reconnect-min", "must be positive and not above --backend-reconnect-max");
  require(c.ping_interval.count() == 0 || c.pong_timeout.count() > 0, "pong-timeout",
          "must be positive while heartbeats are on");
  require(c.close_timeout.count() > 0, "close-timeout", "must be positive");
  require(c.handshake_hook_timeout.count() > 0, "handshake-hook-timeout", "must be positive");
  require(c.http_request_timeout.count() > 0, "http-request-timeout", "must be positive");
  require(c.http_keepalive_requests >= 1, "http-keepalive-requests", "must be at least 1");
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      require(c.routes[i].path_prefix != c.routes[j].path_prefix, "config",
              "routes list path_prefix '" + c.routes[i].path_prefix + "' twice");
    }
  }
  require(c.compression_level >= 1 && c.compression_level <= 9, "compression-level", "must be between 1 and 9");
  for (const auto& header : c.response_headers) {
    const auto colon = header.find(':');
    require(colon != std::string::npos && colon > 0 && header.find_first_of("\r\n") == std::string::npos,
            "response-headers", "'" + header + "' is not of the form 'Name: value'");
  }
  require(c.tls_cert_file.empty() == c.tls_key_file.empty(), c.tls_cert_file.empty() ? "tls-cert-file" : "tls-key-file",
          "is needed too: give both --tls-cert-file and --tls-key-file, or neither");
  require(c.admin_tls_cert_file.empty() == c.admin_tls_key_file.empty(),
          c.admin_tls_cert_file.empty() ? "admin-tls-cert-file" : "admin-tls-key-file",
          "is needed too: give both --admin-tls-cert-file and --admin-tls-key-file, or neither");
  require(c.admin_tls_client_ca_file.empty() || !c.admin_tls_cert_file.empty(), "admin-tls-client-ca-file",
          "needs --admin-tls-cert-file and --admin-tls-key-file: mutual TLS is TLS first");
  for (const auto& origin : c.allowed_origins) {
    const auto error = CheckOriginPattern(origin);
    require(error.empty(), "allowed-origins",
            "'" + origin + "' is not an origin such as https://app.example.com, https://*.example.com, null or * (" +
                error + ")");
  }
  require(c.retry_after.count() >= 1000, "retry-after", "must be at least 1s (Retry-After counts whole seconds)");
  require(c.drain_timeout.count() > 0, "drain-timeout", "must be positive");
  require(c.drain_rate >= 1, "drain-rate", "must be at least 1 connection per second");
  require(c.threads <= 256, "threads", "must be between 0 (one per core) and 256");
  const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  require(std::find(levels.begin(), levels.end(), c.log_level) != levels.end(), "log-level",
          "must be one of trace, debug, info, warn, error, critical, off");
  require(c.log_format == "text" || c.log_format == "json", "log-format", "must be text or json");
}

}  // namespace

ConfigLoadResult LoadConfig(int argc, const char* const* argv) {
  Config config;
  CLI::App app{"wsgateway: holds WebSocket client connections and lets backend services drive them over gRPC",
               "wsgateway"};
  // The file, the environment and the flags are fed to one parse in that
  // order; the last value of an option wins, which gives the precedence.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config_path;
  app.add_option("--config", config_path, "YAML configuration file; WSGATEWAY_* variables and flags override it")
      ->envname("WSGATEWAY_CONFIG");
  app.set_version_flag("--version", "wsgateway 0.1.0");

  Binder bind(app);
  bind.Plain("listen", config.listen, "Public WebSocket/HTTP listener, host:port");
  bind.Plain("admin-listen", config.admin_listen, "Admin gRPC listener, host:port");
  bind.Plain("metrics-listen", config.metrics_listen, "Prometheus /metrics listener, host:port");
  bind.Plain("backend", config.backend, "gRPC target of the backend, e.g. 127.0.0.1:50052 or dns:///svc:50052");
  bind.Plain("threads", config.threads, "Event-loop threads; 0 means one per core");
  bind.Bytes("max-message-bytes", config.max_message_bytes, "Largest message accepted from or pushed to a client");
  bind.Bytes("send-queue-max-bytes", config.send_queue_max_bytes,
             "Bytes queued for one client before it is closed as a slow consumer");
  bind.Bytes("max-handshake-bytes", config.max_handshake_bytes, "Largest HTTP upgrade request header");
  bind.Duration("handshake-timeout", config.handshake_timeout,
                "Time allowed for an HTTP request and its upgrade (or the handshake hook)");
  bind.Duration("ping-interval", config.ping_interval, "Ping a connection silent this long (0 disables heartbeats)");
  bind.Duration("pong-timeout", config.pong_timeout, "Close a pinged connection that stays silent this long");
  bind.Duration("close-timeout", config.close_timeout,
                "Wait this long for the client's close frame, and then for its TCP close");
  bind.List("subprotocols", config.subprotocols, "Subprotocols accepted in Sec-WebSocket-Protocol");
  bind.List("response-headers", config.response_headers, "Headers added to every 101 response, as 'Name: value'");
  bind.Bool("permessage-deflate", config.permessage_deflate,
            "Negotiate permessage-deflate (RFC 7692) with clients that offer it");
  bind.Bytes("compression-threshold", config.compression_threshold,
             "Compress pushed messages from this size up (unless the push says otherwise)");
  bind.Plain("compression-level", config.compression_level, "zlib level, 1 (fastest) to 9 (smallest)");
  bind.Bool("handshake-hook", config.handshake_hook, "Let the backend decide every upgrade (Backend.Handshake)");
  bind.Duration("handshake-hook-timeout", config.handshake_hook_timeout,
                "Deadline of a Backend.Handshake call; past it the upgrade fails with 503");
  bind.Bool("http-forwarding", config.http_forwarding,
            "Answer plain HTTP requests through the backend (Backend.HandleRequest) instead of with 400");
  bind.Bytes("max-request-body-bytes", config.max_request_body_bytes, "Largest plain HTTP request body forwarded");
  bind.Duration("http-request-timeout", config.http_request_timeout, "Deadline of a Backend.HandleRequest call");
  bind.Duration("http-keepalive-timeout", config.http_keepalive_timeout,
                "How long a plain HTTP connection may wait between requests");
  bind.Plain("http-keepalive-requests", config.http_keepalive_requests,
             "Requests one plain HTTP connection may carry");
  bind.Bool("forward-close-frames", config.forward_close_frames, "Send clients' close frames to the backend");
  bind.Bool("forward-ping-frames", config.forward_ping_frames, "Send clients' ping frames to the backend");
  bind.Bool("forward-pong-frames", config.forward_pong_frames, "Send clients' pong frames to the backend");
  bind.Bytes("backend-buffer-bytes", config.backend_buffer_bytes,
             "Events held for the backend before client reads pause");
  bind.Duration("backend-event-timeout", config.backend_event_timeout,
                "Give up on an event unacknowledged this long: its connection closes with 1011");
  bind.Duration("backend-reconnect-min", config.backend_reconnect_min, "First reconnect delay to the backend");
  bind.Duration("backend-reconnect-max", config.backend_reconnect_max, "Largest reconnect delay to the backend");
  bind.Bool("reject-upgrades-without-backend", config.reject_upgrades_without_backend,
            "Answer upgrades with 503 while the backend stream is down");
  bind.Plain("tls-cert-file", config.tls_cert_file,
             "PEM certificate chain for wss:// on the public listener (with --tls-key-file)");
  bind.Plain("tls-key-file", config.tls_key_file, "PEM private key for --tls-cert-file");
  bind.List("allowed-origins", config.allowed_origins,
            "Origins allowed to open WebSockets, e.g. https://app.example.com or https://*.example.com; "
            "empty allows all");
  bind.Plain("max-connections", config.max_connections, "Most client connections at once (0: no limit); past it 503");
  bind.Plain("max-connections-per-address", config.max_connections_per_address,
             "Most connections from one client address (0: no limit); past it 429");
  bind.Duration("retry-after", config.retry_after, "Retry-After sent with 503 and 429 refusals");
  bind.Plain("admin-tls-cert-file", config.admin_tls_cert_file, "PEM certificate chain for TLS on the admin listener");
  bind.Plain("admin-tls-key-file", config.admin_tls_key_file, "PEM private key for --admin-tls-cert-file");
  bind.Plain("admin-tls-client-ca-file", config.admin_tls_client_ca_file,
             "PEM CA bundle; when set, admin clients must present a certificate it signed (mutual TLS)");
  bind.Plain("admin-token-file", config.admin_token_file,
             "File of bearer tokens for the admin API, one per line (re-read on SIGHUP)");
  bind.List("admin-tokens", config.admin_tokens,
            "Bearer tokens for the admin API; prefer --admin-token-file or WSGATEWAY_ADMIN_TOKENS");
  bind.Duration("drain-timeout", config.drain_timeout,
                "After SIGTERM, close connections within this time, then exit 0");
  bind.Plain("drain-rate", config.drain_rate, "Connections closed per second while draining (at least 1)");
  bind.Plain("log-level", config.log_level, "trace, debug, info, warn, error, critical or off");
  bind.Plain("log-format", config.log_format, "text or json");

  try {
    const std::vector<std::string> given(argv + std::min(argc, 1), argv + argc);
    std::vector<std::string> args;
    if (const auto path = FindConfigPath(given); !path.empty()) {
      for (auto& setting : ReadConfigFile(path, config.routes)) {
        const auto* option = app.get_option_no_throw("--" + setting.flag);
        if (option == nullptr || setting.flag == "config") {
          throw CLI::ExtrasError(
              "unknown key '" + setting.flag + "' in config file '" + path + "' (keys are the flag names; see --help)",
              CLI::ExitCodes::ExtrasError);
        }
        for (auto& value : setting.values) {
          args.push_back("--" + setting.flag);
          args.push_back(std::move(value));
        }
      }
    }
    for (const auto* option : app.get_options()) {
      const auto& env = option->get_envname();
      if (env.empty() || env == "WSGATEWAY_CONFIG" || option->get_lnames().empty()) continue;
      if (const char* value = std::getenv(env.c_str())) {
        args.push_back("--" + option->get_lnames().front());
        args.push_back(value);
      }
    }
    args.insert(args.end(), given.begin(), given.end());
    std::reverse(args.begin(), args.end());
    app.parse(args);
    Validate(config);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return {std::nullopt, code == 0 ? 0 : 2};
  }
  if (config.threads == 0) config.threads = std::max(1u, std::thread::hardware_concurrency());
  return {config, 0};
}

}  // namespace wsgateway
