#include "gateway/connection_id.hpp"

#include <charconv>
#include <random>

namespace wsgateway {
namespace {

template <typename T>
std::optional<T> ParseHex(std::string_view text, std::size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  T value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

void AppendHex(std::string& out, std::uint64_t value, int min_width) {
  char buf[16];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, 16);
  (void)ec;
  for (auto width = end - buf; width < min_width; ++width) out.push_back('0');
  out.append(buf, end);
}

}  // namespace

std::string FormatConnectionId(const ConnectionId& id) {
  std::string out;
  out.reserve(32);
  AppendHex(out, id.epoch, 16);
  out.push_back('-');
  AppendHex(out, id.loop, 1);
  out.push_back('-');
  AppendHex(out, id.counter, 1);
  return out;
}

std::optional<ConnectionId> ParseConnectionId(std::string_view text) {
  const auto first = text.find('-');
  if (first != 16) return std::nullopt;
  const auto second = text.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto epoch = ParseHex<std::uint64_t>(text.substr(0, first), 16);
  const auto loop = ParseHex<std::uint32_t>(text.substr(first + 1, second - first - 1), 8);
  const auto counter = ParseHex<std::uint64_t>(text.substr(second + 1), 16);
  if (!epoch || !loop || !counter) return std::nullopt;
  // Reject non-canonical spellings so every connection has exactly one id.
  ConnectionId id{*epoch, *loop, *counter};
  if (FormatConnectionId(id) != text) return std::nullopt;
  return id;
}

std::uint64_t DrawEpoch() {
  std::random_device device;
  std::uint64_t epoch = 0;
  while (epoch == 0) epoch = (static_cast<std::uint64_t>(device()) << 32) | device();
  return epoch;
}

}  // namespace wsgateway
