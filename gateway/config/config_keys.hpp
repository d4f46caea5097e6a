#pragma once
// The configuration keys as one table, in the order of docs/configuration.md:
// the loader registers its flags and WSGATEWAY_* variables from it,
// --print-config writes it out, and a test holds the reference table in the
// docs to it. A new key is one row here plus its field in config.hpp.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/config/config.hpp"

namespace wsgateway {

// How a key's value is written and read back.
enum class ConfigForm {
  kText,        // as is
  kFile,        // a path; --check-config checks the file can be read
  kCount,       // a whole number >= 0
  kInteger,     // a whole number
  kBool,        // true or false
  kBytes,       // a size: 2MiB, 64KiB, 1048576
  kDuration,    // 500ms, 30s, 5m
  kList,        // comma-separated, or a YAML list
  kSecretList,  // a list never printed back
  kRedisUrl,    // a redis:// URL whose password is never printed back
  kRoutes,      // YAML only: the list of route mappings
};

struct ConfigKey {
  using Field = std::variant<std::string Config::*, unsigned Config::*, int Config::*, std::size_t Config::*,
                             bool Config::*, std::chrono::milliseconds Config::*, std::vector<std::string> Config::*,
                             std::vector<RouteConfig> Config::*>;

  // As written in the YAML file and the docs: "max_message_bytes".
  std::string_view name;
  ConfigForm form;
  Field field;
  // One line for --help.
  std::string_view help;
};

// Every key, in the order of docs/configuration.md. `config` itself (the
// file's name) is a command-line option only and not part of the table.
std::span<const ConfigKey> ConfigKeys();

// The keys a `routes` entry may set, in the order --print-config writes them.
std::span<const std::string_view> RouteKeys();

// Text printed in place of a secret.
inline constexpr std::string_view kRedacted = "<redacted>";

// "max_message_bytes" -> "max-message-bytes".
std::string FlagName(std::string_view key);
// "max_message_bytes" -> "WSGATEWAY_MAX_MESSAGE_BYTES".
std::string EnvName(std::string_view key);

// The value of a scalar key in the form the docs use ("2MiB", "10s", "true",
// "" when unset); a list's elements (secrets redacted) in FormatList. Not
// for kRoutes.
std::string FormatScalar(const ConfigKey& key, const Config& config);
std::vector<std::string> FormatList(const ConfigKey& key, const Config& config);

// True for the forms that hold a list.
bool IsList(ConfigForm form);

// Sets the key's field from text as given in a flag, a variable or the file
// (a list comma-separated); false when the text is not of the key's form.
bool ParseValue(const ConfigKey& key, std::string_view text, Config& config);

// What ParseValue accepts, for error messages: "a size such as 2MiB".
std::string_view ExpectedForm(ConfigForm form);

}  // namespace wsgateway
