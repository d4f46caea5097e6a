#include "chat_protocol.hpp"

#include <cstdio>

namespace wsgateway_examples {

std::string JsonString(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size() + 2);
  out.push_back('"');
  for (const char c : utf8) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          // The other control characters have no short escape in JSON.
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out.push_back(c);  // Bytes of multi-byte UTF-8 sequences pass as they are.
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string ChatLineJson(std::string_view from, std::string_view text) {
  return R"({"type":"message","from":)" + JsonString(from) + R"(,"text":)" + JsonString(text) + "}";
}

std::string PresenceJson(std::string_view type, std::string_view name, const std::vector<std::string>& online) {
  std::string json = R"({"type":)" + JsonString(type) + R"(,"name":)" + JsonString(name) + R"(,"online":[)";
  for (std::size_t i = 0; i < online.size(); ++i) {
    if (i > 0) json.push_back(',');
    json += JsonString(online[i]);
  }
  json += "]}";
  return json;
}

}  // namespace wsgateway_examples
