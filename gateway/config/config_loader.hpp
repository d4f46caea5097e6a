#pragma once
// Reads the configuration: defaults < YAML file (--config) < environment
// (WSGATEWAY_<FLAG>) < command-line flags, with the keys of ConfigKeys().
// Unknown keys and bad values are reported with the key's name and the
// expected form. --check-config and --print-config are answered here too.

#include <optional>
#include <string>

#include "gateway/config/config.hpp"

namespace wsgateway {

struct ConfigLoadResult {
  // Set when the gateway should start.
  std::optional<Config> config;
  // Exit code when it should not: 0 after --help, --version, --check-config
  // or --print-config; 2 when the configuration is refused.
  int exit_code = 0;
};

// Parses argv. Prints help, --print-config, "configuration OK" and errors
// to stdout/stderr itself.
ConfigLoadResult LoadConfig(int argc, const char* const* argv);

}  // namespace wsgateway
