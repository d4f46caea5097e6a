#pragma once
// --print-config: the effective configuration as a YAML file that
// wsgateway reads back to the same configuration (secrets excepted: they are
// printed as "<redacted>", which loading refuses).

#include <string>

#include "gateway/config/config.hpp"

namespace wsgateway {

// Every key of ConfigKeys() in its order, sizes and durations in the form
// the docs use, lists as YAML lists, routes with the options they set.
std::string PrintConfig(const Config& config);

}  // namespace wsgateway
