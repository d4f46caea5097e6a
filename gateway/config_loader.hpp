#pragma once
// Reads the configuration: defaults < YAML file (--config) < environment
// (WSGATEWAY_<FLAG>) < command-line flags. Unknown keys and bad values are
// reported with the key's name and the expected form.

#include <optional>
#include <string>

#include "gateway/config.hpp"

namespace wsgateway {

struct ConfigLoadResult {
  // Set when the gateway should start.
  std::optional<Config> config;
  // Exit code when it should not (0 after --help, 1 or 2 on errors).
  int exit_code = 0;
};

// Parses argv. Prints help and errors to stdout/stderr itself.
ConfigLoadResult LoadConfig(int argc, const char* const* argv);

}  // namespace wsgateway
