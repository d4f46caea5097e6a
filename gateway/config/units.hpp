#pragma once
// Parsing of human-friendly sizes ("2MiB", "64KiB", "1024") and durations
// ("500ms", "30s", "5m") used by the configuration.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

std::optional<std::size_t> ParseBytes(std::string_view text);
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

std::string FormatBytes(std::size_t bytes);
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace wsgateway
