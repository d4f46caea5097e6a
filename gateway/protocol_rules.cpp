#include "gateway/protocol_rules.hpp"

namespace wsgateway {

bool IsValidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // Fast path for ASCII runs, eight bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t chunk;
      __builtin_memcpy(&chunk, s + i, 8);
      if (chunk & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string CheckCloseRequest(std::uint32_t code, std::string_view reason) {
  if (code != 0 && code != 1000 && (code < 3000 || code > 4999)) {
    return "close code " + std::to_string(code) + " is not allowed: use 1000 or 3000-4999";
  }
  if (reason.size() > kMaxCloseReasonBytes) {
    return "close reason is " + std::to_string(reason.size()) + " bytes; at most " +
           std::to_string(kMaxCloseReasonBytes) + " fit in a close frame";
  }
  if (!IsValidUtf8(reason)) return "close reason is not valid UTF-8";
  return {};
}

}  // namespace wsgateway
