// Nicknames: where the backend finds one (the upgrade's query string) and
// which ones it accepts. The page checks the same rules before connecting;
// these are the ones that count, since anyone can open a WebSocket.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway_examples {

inline constexpr std::size_t kMaxNameCharacters = 32;

// The value of `key` in a query string ("name=ann%20b&x=1", no leading '?')
// decoded as a form does it: '+' is a space, %XX a byte. Nullopt when the key
// is absent; `*malformed` is set (and nullopt returned) when the value has a
// '%' not followed by two hex digits.
std::optional<std::string> QueryParameter(std::string_view query, std::string_view key, bool* malformed);

// Why `name` cannot be a nickname, as a sentence for the person who chose
// it, or empty when it can: 1-32 characters (code points) of valid UTF-8,
// none of them a control character or an invisible formatting character
// (bidirectional overrides, zero-width spaces: they let one name pass for
// another), and no space at either end.
std::string NameProblem(std::string_view name);

}  // namespace wsgateway_examples
