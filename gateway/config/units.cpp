#include "gateway/config/units.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace wsgateway {
namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

// Splits "123abc" into 123 and "abc"; nullopt if no digits lead.
std::optional<std::pair<std::uint64_t, std::string_view>> SplitNumber(std::string_view text) {
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  return std::pair{value, text.substr(static_cast<std::size_t>(ptr - text.data()))};
}

template <std::size_t N>
std::optional<std::uint64_t> Scale(std::string_view text, const Unit (&units)[N]) {
  const auto split = SplitNumber(text);
  if (!split) return std::nullopt;
  for (const auto& unit : units) {
    if (split->second != unit.suffix) continue;
    if (split->first > std::numeric_limits<std::uint64_t>::max() / unit.factor) return std::nullopt;
    return split->first * unit.factor;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::size_t> ParseBytes(std::string_view text) {
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KiB", 1ULL << 10},
                                    {"MiB", 1ULL << 20},
                                    {"GiB", 1ULL << 30},
                                    {"KB", 1000},
                                    {"MB", 1000 * 1000},
                                    {"GB", 1000ULL * 1000 * 1000}};
  const auto value = Scale(text, kUnits);
  if (!value) return std::nullopt;
  return static_cast<std::size_t>(*value);
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  static constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
  const auto value = Scale(text, kUnits);
  if (!value || *value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*value));
}

std::string FormatBytes(std::size_t bytes) {
  if (bytes != 0 && bytes % (1ULL << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ULL << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ULL << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace wsgateway
