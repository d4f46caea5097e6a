#include "gateway/data_plane/connection_id.hpp"

#include <charconv>
#include <random>

namespace wsgateway {
namespace {

// Canonical lowercase hex: digits 0-9a-f only, no leading zero (except a
// single "0"), at most `max_digits`; with `exact_width`, exactly that many
// digits, leading zeros included. Rejecting every other spelling gives each
// connection exactly one id, without formatting it again to compare.
template <typename T>
std::optional<T> ParseCanonicalHex(std::string_view text, std::size_t max_digits, bool exact_width) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  if (exact_width ? text.size() != max_digits : (text.size() > 1 && text.front() == '0')) return std::nullopt;
  T value = 0;
  for (const char c : text) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    value = static_cast<T>((value << 4) | digit);
  }
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

std::string_view NodeIdOf(std::string_view connection_id) {
  const auto dash = connection_id.find('-');
  return dash == std::string_view::npos ? std::string_view{} : connection_id.substr(0, dash);
}

std::string FormatEpoch(std::uint64_t epoch) {
  std::string out;
  AppendHex(out, epoch, 16);
  return out;
}

std::optional<ConnectionId> ParseConnectionId(std::string_view text) {
  const auto first = text.find('-');
  if (first != 16) return std::nullopt;
  const auto second = text.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto epoch = ParseCanonicalHex<std::uint64_t>(text.substr(0, first), 16, true);
  const auto loop = ParseCanonicalHex<std::uint32_t>(text.substr(first + 1, second - first - 1), 8, false);
  const auto counter = ParseCanonicalHex<std::uint64_t>(text.substr(second + 1), 16, false);
  if (!epoch || !loop || !counter) return std::nullopt;
  return ConnectionId{*epoch, *loop, *counter};
}

std::uint64_t DrawEpoch() {
  std::random_device device;
  std::uint64_t epoch = 0;
  while (epoch == 0) epoch = (static_cast<std::uint64_t>(device()) << 32) | device();
  return epoch;
}

}  // namespace wsgateway
