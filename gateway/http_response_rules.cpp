#include "gateway/http_response_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace wsgateway {

namespace http = boost::beast::http;

namespace {

// RFC 9110 section 5.6.2.
bool IsTokenChar(char c) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || kSpecials.find(c) != std::string_view::npos;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

}  // namespace

std::string CheckResponseHeader(std::string_view name, std::string_view value, bool upgrade) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
    return "header name '" + std::string(name) + "' is not an HTTP token";
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "value of header '" + std::string(name) + "' contains CR, LF or NUL";
  }
  const auto lower = Lower(name);
  static constexpr std::array<std::string_view, 3> kFraming = {"content-length", "transfer-encoding", "connection"};
  if (std::find(kFraming.begin(), kFraming.end(), lower) != kFraming.end()) {
    return "header '" + std::string(name) + "' is set by the gateway";
  }
  if (upgrade && (lower == "upgrade" || lower.starts_with("sec-websocket-"))) {
    return "header '" + std::string(name) + "' belongs to the WebSocket handshake and is set by the gateway";
  }
  return {};
}

std::string ToHttpResponse(const v1::HttpResponse& from, HttpResponse& to) {
  const unsigned status = from.status() == 0 ? 200 : from.status();
  // 1xx cannot end an exchange, and 101 would claim an upgrade.
  if (status < 200 || status > 599) return "status " + std::to_string(status) + " is not 200-599";
  to.result(status);
  to.version(11);
  for (const auto& header : from.headers()) {
    if (auto error = CheckResponseHeader(header.name(), header.value(), /*upgrade=*/false); !error.empty()) {
      return error;
    }
    to.insert(header.name(), header.value());
  }
  to.body() = from.body();
  return {};
}

}  // namespace wsgateway
