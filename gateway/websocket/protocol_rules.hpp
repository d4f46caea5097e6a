#pragma once
// RFC 6455 rules the API enforces on what it is asked to send: close codes
// and reasons, UTF-8 text, control-frame sizes. Shared by the admin API and
// the backend command path so both refuse the same things the same way.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgateway {

inline constexpr std::size_t kMaxCloseReasonBytes = 123;
inline constexpr std::size_t kMaxControlPayloadBytes = 125;

// Complete, well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view text);

// A close code a peer may send (RFC 6455 section 7.4 and the IANA
// registry): 1000-1003, 1007-1014 and 3000-4999. 1004-1006 and 1015 are
// reserved, everything else unassigned.
bool IsValidReceivedCloseCode(std::uint32_t code);

// Empty when a backend may close with this code and reason; otherwise a
// sentence that says what is wrong. Code 0 stands for 1000.
std::string CheckCloseRequest(std::uint32_t code, std::string_view reason);

// The close code a request's code stands for: 0 (left unset) is a normal
// closure, 1000; any other code was checked by CheckCloseRequest.
constexpr std::uint16_t RequestedCloseCode(std::uint32_t code) {
  return code == 0 ? 1000 : static_cast<std::uint16_t>(code);
}

}  // namespace wsgateway
