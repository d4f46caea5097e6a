#pragma once
// The payloads wsbench sends: a 16-character header (12 hex digits of a
// sequence number, 4 of a tag such as the connection number) and a filler
// that depends on both, so that a reply can be checked byte for byte and a
// wrong one says what it is (another connection's, another message's, or
// altered). Text payloads are printable ASCII, so valid UTF-8.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsbench {

inline constexpr std::size_t kPayloadHeaderSize = 16;

// Writes the `size`-byte payload for message `seq` with `tag` into `out`;
// `size` is at least kPayloadHeaderSize.
inline void FillPayload(std::string& out, std::size_t size, std::uint64_t seq, std::uint64_t tag, bool binary) {
  out.resize(size);
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 12; ++i) out[i] = kHex[(seq >> (4 * (11 - i))) & 0xf];
  for (int i = 0; i < 4; ++i) out[12 + i] = kHex[(tag >> (4 * (3 - i))) & 0xf];
  const std::uint64_t base = seq * 7 + tag * 13;
  for (std::size_t i = kPayloadHeaderSize; i < size; ++i) {
    out[i] = binary ? static_cast<char>((base + i * 31) & 0xff) : static_cast<char>('a' + (base + i) % 26);
  }
}

// Reads a hex field of the header; nullopt when it is not lower-case hex.
inline std::optional<std::uint64_t> ParseHex(std::string_view digits) {
  std::uint64_t value = 0;
  for (const char c : digits) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      value |= static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return value;
}

// The sequence number and tag in a payload's header; nullopt when it has
// none.
struct PayloadHeader {
  std::uint64_t seq;
  std::uint64_t tag;
};
inline std::optional<PayloadHeader> ParseHeader(std::string_view payload) {
  if (payload.size() < kPayloadHeaderSize) return std::nullopt;
  const auto seq = ParseHex(payload.substr(0, 12));
  const auto tag = ParseHex(payload.substr(12, 4));
  if (!seq || !tag) return std::nullopt;
  return PayloadHeader{*seq, *tag};
}

}  // namespace wsbench
