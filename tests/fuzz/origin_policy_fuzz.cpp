// Origin matching (gateway/http/origin_policy.*): allowed_origins entries as the
// configuration gives them and Origin header values as browsers (or anyone)
// send them. Every entry CheckOriginPattern accepts builds a policy without
// throwing, and a policy allows an entry that names one exact origin when
// that origin is sent, in any letter case.
//
// Input: lines; the last is the Origin value (a lone "-" for no header),
// the ones before it the allowed_origins entries.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/origin_policy.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace wsgateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  for (;;) {
    const auto end = text.find('\n');
    lines.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  const std::string origin_line = lines.back();
  lines.pop_back();
  const std::optional<std::string_view> origin =
      origin_line == "-" ? std::nullopt : std::optional<std::string_view>(origin_line);

  std::vector<std::string> allowed;
  for (const auto& entry : lines) {
    if (CheckOriginPattern(entry).empty()) {
      allowed.push_back(entry);
    } else {
      bool threw = false;
      try {
        OriginPolicy refused({entry});
      } catch (const std::invalid_argument&) {
        threw = true;
      }
      FUZZ_CHECK(threw);
    }
  }
  const OriginPolicy policy(allowed);  // must not throw: every entry passed the check
  const bool allows = policy.Allows(origin);
  if (!origin || allowed.empty()) FUZZ_CHECK(allows);

  // An exact entry allows itself, however its letters are cased.
  for (const auto& entry : allowed) {
    if (entry.find('*') != std::string::npos) continue;
    const OriginPolicy single({entry});
    FUZZ_CHECK(single.Allows(entry));
    std::string upper = entry;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (upper != "NULL") FUZZ_CHECK(single.Allows(upper));
  }
  return 0;
}
