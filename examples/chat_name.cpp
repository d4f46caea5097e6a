#include "chat_name.hpp"

#include <vector>

namespace wsgateway_examples {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> FormDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] != '%') {
      out.push_back(text[i]);
    } else {
      if (text.size() - i < 3) return std::nullopt;
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
  }
  return out;
}

// What a UTF-8 lead byte says: how long its sequence is (0: it cannot start
// one), its value bits, and the smallest code point that needs this length
// (anything smaller is an overlong form).
struct Lead {
  std::size_t length;
  char32_t bits;
  char32_t minimum;
};

Lead ReadLead(unsigned char byte) {
  if (byte < 0x80) return {1, byte, 0};
  if ((byte & 0xE0) == 0xC0) return {2, byte & 0x1Fu, 0x80};
  if ((byte & 0xF0) == 0xE0) return {3, byte & 0x0Fu, 0x800};
  if ((byte & 0xF8) == 0xF0) return {4, byte & 0x07u, 0x10000};
  return {0, 0, 0};
}

// The code points of `text`, or nullopt if it is not valid UTF-8 (overlong
// forms, surrogates and values past U+10FFFF included).
std::optional<std::vector<char32_t>> DecodeUtf8(std::string_view text) {
  std::vector<char32_t> code_points;
  std::size_t i = 0;
  while (i < text.size()) {
    const Lead lead = ReadLead(static_cast<unsigned char>(text[i]));
    if (lead.length == 0 || i + lead.length > text.size()) return std::nullopt;
    char32_t value = lead.bits;
    for (std::size_t k = 1; k < lead.length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return std::nullopt;
      value = (value << 6) | (next & 0x3F);
    }
    if (value < lead.minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return std::nullopt;
    code_points.push_back(value);
    i += lead.length;
  }
  return code_points;
}

// Control characters (C0, DEL, C1) and the invisible formatting characters
// that can make one name look like another.
bool IsUnprintable(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xAD || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) || c == 0xFEFF;
}

bool IsSpace(char32_t c) { return c == ' ' || c == 0xA0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200A); }

}  // namespace

std::optional<std::string> QueryParameter(std::string_view query, std::string_view key, bool* malformed) {
  *malformed = false;
  while (!query.empty()) {
    const auto end = query.find('&');
    const auto pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    const auto equals = pair.find('=');
    // Keys are compared undecoded: the page never encodes "name".
    if (pair.substr(0, equals) != key) continue;
    if (equals == std::string_view::npos) return std::string();
    auto value = FormDecode(pair.substr(equals + 1));
    if (!value) *malformed = true;
    return value;
  }
  return std::nullopt;
}

std::string NameProblem(std::string_view name) {
  const auto code_points = DecodeUtf8(name);
  if (!code_points) return "The name is not valid UTF-8.";
  if (code_points->empty()) return "The name is empty.";
  if (code_points->size() > kMaxNameCharacters) {
    return "The name is longer than " + std::to_string(kMaxNameCharacters) + " characters.";
  }
  for (const char32_t c : *code_points) {
    if (IsUnprintable(c)) return "The name contains a control or invisible character.";
  }
  if (IsSpace(code_points->front()) || IsSpace(code_points->back())) {
    return "The name starts or ends with a space.";
  }
  return {};
}

}  // namespace wsgateway_examples
