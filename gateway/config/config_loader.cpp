#include "gateway/config/config_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "gateway/config/config_keys.hpp"
#include "gateway/config/config_printer.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/config/redis_url.hpp"
#include "gateway/config/units.hpp"
#include "gateway/http/origin_policy.hpp"

namespace wsgateway {
namespace {

// One setting from the YAML file: the table's key and its text.
struct FileSetting {
  const ConfigKey* key;
  std::string value;
};

template <typename T>
std::optional<T> Scalar(const YAML::Node& node, const std::string& where, std::string_view expected) {
  if (!node) return std::nullopt;
  if (!node.IsScalar()) throw CLI::ConversionError(where + " must be " + std::string(expected));
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw CLI::ConversionError(where + ": '" + node.Scalar() + "' is not " + std::string(expected));
  }
}

std::string Joined(std::span<const std::string_view> words) {
  std::string text;
  for (const auto word : words) text += (text.empty() ? "" : ", ") + std::string(word);
  return text;
}

const ConfigKey* FindKey(std::string_view name) {
  const auto flag = FlagName(name);
  for (const auto& key : ConfigKeys()) {
    if (FlagName(key.name) == flag) return &key;
  }
  return nullptr;
}

// One `routes` entry: a mapping with path_prefix and any of the per-route
// options; an unknown key is an error so a typo cannot hide.
RouteConfig ReadRoute(const YAML::Node& node, std::size_t index) {
  const std::string where = "routes[" + std::to_string(index) + "]";
  if (!node.IsMap()) throw CLI::ConversionError(where + " must be a mapping with path_prefix and options");
  const auto keys = RouteKeys();
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) throw CLI::ConversionError(where + " has a key that is not a name");
    auto key = entry.first.Scalar();
    std::replace(key.begin(), key.end(), '-', '_');
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      throw CLI::ConversionError(where + ": unknown key '" + key + "' (a route may set " + Joined(keys) + ")");
    }
  }
  const auto get = [&node](const char* key) {
    if (node[key]) return node[key];
    std::string dashed = key;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    return node[dashed];
  };
  const auto text = [&](const char* key) { return Scalar<std::string>(get(key), where + "." + key, "a single value"); };
  const auto flag = [&](const char* key) {
    return Scalar<bool>(get(key), where + "." + key, ExpectedForm(ConfigForm::kBool));
  };
  RouteConfig route;
  const auto prefix = text("path_prefix");
  if (!prefix || prefix->empty() || prefix->front() != '/') {
    throw CLI::ConversionError(where + ".path_prefix must be a path starting with '/', such as /chat");
  }
  route.path_prefix = *prefix;
  route.backend = text("backend");
  route.handshake_hook = flag("handshake_hook");
  route.http_forwarding = flag("http_forwarding");
  route.forward_close_frames = flag("forward_close_frames");
  route.forward_ping_frames = flag("forward_ping_frames");
  route.forward_pong_frames = flag("forward_pong_frames");
  route.permessage_deflate = flag("permessage_deflate");
  if (const auto size = text("max_message_bytes")) {
    route.max_message_bytes = ParseBytes(*size);
    if (!route.max_message_bytes || *route.max_message_bytes == 0) {
      throw CLI::ConversionError(where + ".max_message_bytes: '" + *size + "' is not " +
                                 std::string(ExpectedForm(ConfigForm::kBytes)));
    }
  }
  if (const auto list = get("subprotocols")) {
    if (!list.IsSequence()) throw CLI::ConversionError(where + ".subprotocols must be a YAML list such as [chat.v1]");
    route.subprotocols.emplace();
    for (const auto& item : list) {
      if (!item.IsScalar()) throw CLI::ConversionError(where + ".subprotocols must be a list of names");
      route.subprotocols->push_back(item.Scalar());
    }
  }
  return route;
}

// Reads a flat YAML mapping; keys are those of ConfigKeys(), written with
// '_' or '-'. Unknown keys and nested mappings are rejected so a typo cannot
// hide; the one structured key, `routes`, goes to `routes`.
std::vector<FileSetting> ReadConfigFile(const std::string& path, std::vector<RouteConfig>& routes) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    throw CLI::FileError("--config: cannot read '" + path + "' (" + (exists ? "not readable" : "no such file") +
                         "): expected a readable YAML file");
  } catch (const YAML::Exception& e) {
    throw CLI::ConversionError("--config: '" + path + "' is not valid YAML: " + std::string(e.what()));
  }
  std::vector<FileSetting> settings;
  if (root.IsNull()) return settings;
  if (!root.IsMap()) throw CLI::ConversionError("--config: '" + path + "' must be a YAML mapping of key: value");
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) {
      throw CLI::ConversionError("--config: '" + path + "' has a key that is not a name; the keys are the flag names");
    }
    const auto name = entry.first.Scalar();
    const ConfigKey* key = FindKey(name);
    if (key == nullptr) {
      throw CLI::ConversionError("unknown key '" + name + "' in config file '" + path +
                                 "' (the keys are the flag names, see --help and docs/configuration.md)");
    }
    const auto& value = entry.second;
    if (key->form == ConfigForm::kRoutes) {
      if (!value.IsSequence())
        throw CLI::ConversionError("config key 'routes' must be " + std::string(ExpectedForm(ConfigForm::kRoutes)));
      std::size_t index = 0;
      for (const auto& route : value) routes.push_back(ReadRoute(route, index++));
      continue;
    }
    if (value.IsNull()) {
      settings.push_back({key, ""});
    } else if (value.IsScalar()) {
      settings.push_back({key, value.as<std::string>()});
    } else if (value.IsSequence()) {
      // Lists are one comma-separated value, so a flag replaces a file's list.
      std::string joined;
      for (const auto& element : value) {
        if (!element.IsScalar())
          throw CLI::ConversionError("config key '" + name + "' must be a list of single values");
        joined += (joined.empty() ? "" : ",") + element.Scalar();
      }
      settings.push_back({key, joined});
    } else {
      throw CLI::ConversionError("config key '" + name + "' must be a single value or a list, not a mapping");
    }
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

void Validate(const Config& c) {
  auto require = [](bool ok, const std::string& key, const std::string& message) {
    if (!ok) throw CLI::ValidationError("--" + key, message);
  };
  require(c.max_message_bytes >= 1, "max-message-bytes", "must be at least 1 byte");
  require(c.send_queue_max_bytes >= 1, "send-queue-max-bytes", "must be at least 1 byte");
  require(c.max_handshake_bytes >= 1024, "max-handshake-bytes", "must be at least 1KiB");
  require(c.handshake_timeout.count() > 0, "handshake-timeout", "must be positive");
  require(c.backend_buffer_bytes >= 64 * 1024, "backend-buffer-bytes", "must be at least 64KiB");
  require(c.backend_max_message_bytes >= 64 * 1024, "backend-max-message-bytes", "must be at least 64KiB");
  require(c.client_message_rate == 0 || c.client_message_burst >= 1, "client-message-burst",
          "must be at least 1 while client-message-rate is on");
  require(c.client_byte_rate == 0 || c.client_byte_burst >= 1, "client-byte-burst",
          "must be at least 1 byte while client-byte-rate is on");
  require(c.pending_messages_max_bytes >= 64 * 1024, "pending-messages-max-bytes", "must be at least 64KiB");
  require(c.backend_event_timeout.count() > 0, "backend-event-timeout", "must be positive");
  require(c.backend_batch_interval <= std::chrono::milliseconds(100), "backend-batch-interval",
          "must be at most 100ms (it delays events by up to that much)");
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
      if (c.routes[i].path_prefix == c.routes[j].path_prefix) {
        throw CLI::ValidationError("routes[" + std::to_string(i) + "].path_prefix",
                                   "'" + c.routes[i].path_prefix + "' twice (also routes[" + std::to_string(j) +
                                       "]): each path_prefix may appear once");
      }
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
  require(std::find(c.admin_tokens.begin(), c.admin_tokens.end(), kRedacted) == c.admin_tokens.end(), "admin-tokens",
          "'" + std::string(kRedacted) + "' is what --print-config writes in place of a token: give the real tokens");
  require(c.threads <= 256, "threads", "must be between 0 (one per core) and 256");
  if (!c.cluster_redis.empty()) {
    const auto parsed = ParseRedisUrl(c.cluster_redis);
    require(parsed.endpoint.has_value(), "cluster-redis", parsed.error);
    require(parsed.endpoint->password != kRedacted, "cluster-redis",
            "'" + std::string(kRedacted) +
                "' is what --print-config writes in place of the password: give the real one, or "
                "--cluster-redis-password-file");
    require(!c.cluster_token_file.empty(), "cluster-token-file",
            "is required with --cluster-redis: node-to-node calls carry the replicas' shared token (a file holding "
            "one random line, the same on every replica)");
    require(ParseEndpoint(c.cluster_listen).has_value(), "cluster-listen",
            "'" + c.cluster_listen + "' is not host:port");
    require(c.cluster_advertise.empty() || c.cluster_advertise.rfind(':') != std::string::npos, "cluster-advertise",
            "'" + c.cluster_advertise + "' is not host:port");
  }
  require(!c.cluster_key_prefix.empty() && c.cluster_key_prefix.find_first_of("{}") == std::string::npos,
          "cluster-key-prefix", "must be non-empty and without braces (the gateway puts it in a Redis hash tag)");
  const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  require(std::find(levels.begin(), levels.end(), c.log_level) != levels.end(), "log-level",
          "must be one of trace, debug, info, warn, error, critical, off");
  require(c.log_format == "text" || c.log_format == "json", "log-format", "must be text or json");
  require(c.cluster_fence == "lazy" || c.cluster_fence == "eager", "cluster-fence", "must be lazy or eager");
  require(c.cluster_lease >= std::chrono::seconds(2), "cluster-lease",
          "must be at least 2s: leases are renewed every second");
}

// --check-config: every file the configuration names exists and can be
// read. What is in them is checked when the gateway starts.
void CheckFilesReadable(const Config& c) {
  for (const auto& key : ConfigKeys()) {
    if (key.form != ConfigForm::kFile) continue;
    const auto path = FormatScalar(key, c);
    if (path.empty()) continue;
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    std::string problem;
    if (!std::filesystem::exists(status)) {
      problem = "does not exist";
    } else if (!std::filesystem::is_regular_file(status)) {
      problem = "is not a regular file";
    } else if (!std::ifstream(path)) {
      problem = "cannot be read";
    }
    if (!problem.empty()) {
      throw CLI::ValidationError("--" + FlagName(key.name),
                                 "'" + path + "' " + problem + ": expected " + std::string(ExpectedForm(key.form)));
    }
  }
}

// The word --help shows for a key's value.
std::string TypeName(ConfigForm form) {
  switch (form) {
    case ConfigForm::kText:
      return "TEXT";
    case ConfigForm::kFile:
      return "FILE";
    case ConfigForm::kCount:
      return "UINT";
    case ConfigForm::kInteger:
      return "INT";
    case ConfigForm::kBool:
      return "BOOLEAN";
    case ConfigForm::kBytes:
      return "SIZE";
    case ConfigForm::kDuration:
      return "DURATION";
    case ConfigForm::kRedisUrl:
      return "URL";
    case ConfigForm::kList:
    case ConfigForm::kSecretList:
    case ConfigForm::kRoutes:
      break;
  }
  return "LIST";
}

// Registers a key's flag and variable; its text is converted after parsing,
// so an error can quote it.
void Bind(CLI::App& app, const ConfigKey& key, Config& config) {
  std::string help(key.help);
  if (key.form == ConfigForm::kBool) help += " (true/false)";
  if (key.form == ConfigForm::kList || key.form == ConfigForm::kSecretList) help += " (comma-separated)";
  std::string default_text = FormatScalar(key, config);
  if (key.form == ConfigForm::kList) {
    for (const auto& item : FormatList(key, config)) default_text += (default_text.empty() ? "" : ",") + item;
  }
  const std::string flag = "--" + FlagName(key.name);
  app.add_option_function<std::string>(
         flag,
         [&key, &config, flag](const std::string& text) {
           if (!ParseValue(key, text, config)) {
             throw CLI::ValidationError(flag, "'" + text + "' is not " + std::string(ExpectedForm(key.form)));
           }
         },
         help)
      ->envname(EnvName(key.name))
      ->type_name(TypeName(key.form))
      ->default_str(default_text);
}

// The settings of the file, the environment and the command line, in that
// order, as one argument list.
std::vector<std::string> CollectArguments(const std::vector<std::string>& given, Config& config) {
  std::vector<std::string> args;
  if (const auto path = FindConfigPath(given); !path.empty()) {
    for (auto& setting : ReadConfigFile(path, config.routes)) {
      args.push_back("--" + FlagName(setting.key->name));
      args.push_back(std::move(setting.value));
    }
  }
  // Variables that name no key are left alone: Kubernetes, for one, sets
  // WSGATEWAY_PORT and WSGATEWAY_SERVICE_HOST for a Service of that name.
  for (const auto& key : ConfigKeys()) {
    if (key.form == ConfigForm::kRoutes) continue;
    if (const char* value = std::getenv(EnvName(key.name).c_str())) {
      args.push_back("--" + FlagName(key.name));
      args.push_back(value);
    }
  }
  args.insert(args.end(), given.begin(), given.end());
  return args;
}

}  // namespace

ConfigLoadResult LoadConfig(int argc, const char* const* argv) {
  Config config;
  CLI::App app{"wsgateway: holds WebSocket client connections and lets backend services drive them over gRPC",
               "wsgateway"};
  app.footer(
      "Every option is also a key of the --config file (written with _ or -) and a WSGATEWAY_<NAME> variable; "
      "precedence: flag > variable > file > default. The file alone sets routes. See docs/configuration.md.");
  // The file, the environment and the flags are fed to one parse in that
  // order; the last value of an option wins, which gives the precedence.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config_path;
  app.add_option("--config", config_path, "YAML configuration file; WSGATEWAY_* variables and flags override it")
      ->envname("WSGATEWAY_CONFIG");
  bool check_config = false;
  bool print_config = false;
  auto* check = app.add_flag("--check-config", check_config,
                             "Check the configuration, and that the files it names can be read; print "
                             "'configuration OK' and exit 0, or the error and exit 2");
  app.add_flag("--print-config", print_config,
               "Print the effective configuration as a YAML file (secrets redacted) and exit")
      ->excludes(check);
  app.set_version_flag("--version", "wsgateway 0.1.0");
  for (const auto& key : ConfigKeys()) {
    if (key.form != ConfigForm::kRoutes) Bind(app, key, config);
  }

  try {
    const std::vector<std::string> given(argv + std::min(argc, 1), argv + argc);
    auto args = CollectArguments(given, config);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    Validate(config);
    if (check_config) CheckFilesReadable(config);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return {std::nullopt, code == 0 ? 0 : 2};
  } catch (const YAML::Exception& e) {
    // A file YAML accepts but the loader cannot read, such as a list as a key.
    std::cerr << "--config: " << e.what() << "\n";
    return {std::nullopt, 2};
  }
  if (print_config) {
    std::cout << PrintConfig(config);
    return {std::nullopt, 0};
  }
  if (check_config) {
    std::cout << "configuration OK" << (config_path.empty() ? "" : ": " + config_path) << "\n";
    return {std::nullopt, 0};
  }
  if (config.threads == 0) config.threads = std::max(1u, std::thread::hardware_concurrency());
  return {config, 0};
}

}  // namespace wsgateway
