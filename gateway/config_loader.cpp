#include "gateway/config_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

#include "gateway/units.hpp"

namespace wsgateway {
namespace {

// Reads a flat YAML mapping; keys are the long flag names, written with
// '_' or '-'. Nested mappings are rejected so a typo cannot hide.
class YamlConfigFormat : public CLI::Config {
 public:
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return {}; }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    YAML::Node root;
    try {
      root = YAML::Load(input);
    } catch (const YAML::Exception& e) {
      throw CLI::ConversionError("config file is not valid YAML: " + std::string(e.what()));
    }
    std::vector<CLI::ConfigItem> items;
    if (root.IsNull()) return items;
    if (!root.IsMap()) throw CLI::ConversionError("config file must be a YAML mapping of key: value");
    for (const auto& entry : root) {
      auto key = entry.first.as<std::string>();
      std::replace(key.begin(), key.end(), '_', '-');
      CLI::ConfigItem item;
      item.name = key;
      const auto& value = entry.second;
      if (value.IsScalar()) {
        item.inputs.push_back(value.as<std::string>());
      } else if (value.IsSequence()) {
        for (const auto& element : value) item.inputs.push_back(element.as<std::string>());
      } else {
        throw CLI::ConversionError("config key '" + entry.first.as<std::string>() +
                                   "' must be a scalar or a list, not a mapping");
      }
      items.push_back(std::move(item));
    }
    return items;
  }
};

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
    Converted(flag, help, FormatBytes(target), "a size such as 2MiB, 64KiB or 1048576", [&target](const std::string& s) {
      const auto v = ParseBytes(s);
      if (v) target = *v;
      return v.has_value();
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
  app.config_formatter(std::make_shared<YamlConfigFormat>());
  app.set_config("--config", "", "YAML configuration file; flags and WSGATEWAY_* variables override it")
      ->envname("WSGATEWAY_CONFIG");
  app.allow_config_extras(CLI::config_extras_mode::error);
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
  bind.Duration("handshake-timeout", config.handshake_timeout, "Time allowed for the HTTP upgrade and the close handshake");
  bind.Duration("idle-timeout", config.idle_timeout,
                "Close a connection silent this long; pings are sent at half of it (0 disables)");
  bind.Bytes("backend-buffer-bytes", config.backend_buffer_bytes,
             "Events held for the backend before client reads pause");
  bind.Duration("backend-event-timeout", config.backend_event_timeout,
                "Give up on an event unacknowledged this long: its connection closes with 1011");
  bind.Duration("backend-reconnect-min", config.backend_reconnect_min, "First reconnect delay to the backend");
  bind.Duration("backend-reconnect-max", config.backend_reconnect_max, "Largest reconnect delay to the backend");
  bind.Bool("reject-upgrades-without-backend", config.reject_upgrades_without_backend,
            "Answer upgrades with 503 while the backend stream is down");
  bind.Plain("log-level", config.log_level, "trace, debug, info, warn, error, critical or off");
  bind.Plain("log-format", config.log_format, "text or json");

  try {
    app.parse(argc, argv);
    Validate(config);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return {std::nullopt, code == 0 ? 0 : 2};
  }
  if (config.threads == 0) config.threads = std::max(1u, std::thread::hardware_concurrency());
  return {config, 0};
}

}  // namespace wsgateway
