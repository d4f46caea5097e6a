#include "gateway/http/http_response_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace wsgateway {

namespace http = boost::beast::http;

namespace {

// RFC 9110 section 5.6.2.
bool IsTokenChar(char c) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || kSpecials.find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar); }

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

// A header name for a message: whole when it is a short token, else only
// its size (the backend's bytes could be anything, and long).
std::string Shown(std::string_view name) {
  constexpr std::size_t kMaxShown = 64;
  if (IsToken(name) && name.size() <= kMaxShown) return "'" + std::string(name) + "'";
  return "of " + std::to_string(name.size()) + " bytes";
}

// RFC 9110 section 7.6.1, plus Proxy-Connection, which some clients still
// send and no proxy forwards.
bool IsHopByHop(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 7> kHopByHop = {"connection", "keep-alive", "transfer-encoding", "te",
                                                                "trailer",    "upgrade",    "proxy-connection"};
  return std::find(kHopByHop.begin(), kHopByHop.end(), lower_name) != kHopByHop.end();
}

// Content-Length is 1*DIGIT (RFC 9110 section 8.6).
std::optional<std::uint64_t> ParseContentLength(std::string_view value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t length = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return length;
}

}  // namespace

std::string CheckResponseHeader(std::string_view name, std::string_view value, bool upgrade) {
  if (!IsToken(name)) return "header name " + Shown(name) + " is not an HTTP token";
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "value of header " + Shown(name) + " contains CR, LF or NUL";
  }
  const auto lower = Lower(name);
  static constexpr std::array<std::string_view, 3> kFraming = {"content-length", "transfer-encoding", "connection"};
  if (std::find(kFraming.begin(), kFraming.end(), lower) != kFraming.end()) {
    return "header " + Shown(name) + " is set by the gateway";
  }
  if (upgrade && (lower == "upgrade" || lower.starts_with("sec-websocket-"))) {
    return "header " + Shown(name) + " belongs to the WebSocket handshake and is set by the gateway";
  }
  return {};
}

std::optional<InvalidAnswer> ToHttpResponse(const v1::HttpResponse& from, HttpResponse& to, bool to_head) {
  const unsigned status = from.status() == 0 ? 200 : from.status();
  // 1xx cannot end an exchange, and 101 would claim an upgrade.
  if (status < 200 || status > 599) {
    return InvalidAnswer{"bad_status", "status " + std::to_string(status) + " is not 200-599"};
  }
  const bool no_body_allowed = status == 204 || status == 304;
  if (no_body_allowed && !from.body().empty()) {
    return InvalidAnswer{"bad_body", "status " + std::to_string(status) + " cannot have a body; the answer has " +
                                         std::to_string(from.body().size()) + " bytes"};
  }
  // Without a body, the answer to HEAD and a 304 state the length of the
  // representation a GET would get; otherwise the length is the body's.
  const bool length_of_representation = from.body().empty() && (to_head || status == 304);

  // Connection names further hop-by-hop headers (RFC 9110 section 7.6.1).
  std::vector<std::string> named_by_connection;
  for (const auto& header : from.headers()) {
    if (Lower(header.name()) != "connection") continue;
    for (const auto token : http::token_list(header.value())) {
      named_by_connection.push_back(Lower(std::string_view(token.data(), token.size())));
    }
  }

  to.result(status);
  to.version(11);
  std::optional<std::uint64_t> declared_length;
  for (const auto& header : from.headers()) {
    const std::string_view name = header.name();
    const std::string_view value = header.value();
    if (!IsToken(name)) return InvalidAnswer{"bad_header", "header name " + Shown(name) + " is not an HTTP token"};
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return InvalidAnswer{"bad_header", "value of header " + Shown(name) + " contains CR, LF or NUL"};
    }
    const auto lower = Lower(name);
    if (lower == "content-length") {
      const auto length = ParseContentLength(value);
      if (!length) {
        return InvalidAnswer{"bad_content_length", "Content-Length " + Shown(value) + " is not a number"};
      }
      if (declared_length && *declared_length != *length) {
        return InvalidAnswer{"bad_content_length", "Content-Length is given twice, as " +
                                                       std::to_string(*declared_length) + " and " +
                                                       std::to_string(*length)};
      }
      declared_length = length;
      if (length_of_representation) {
        if (to.count(http::field::content_length) == 0) to.set(http::field::content_length, value);
        continue;
      }
      if (*length != from.body().size()) {
        return InvalidAnswer{"bad_content_length", "Content-Length is " + std::to_string(*length) +
                                                       " but the body has " + std::to_string(from.body().size()) +
                                                       " bytes"};
      }
      continue;  // the gateway states the length itself
    }
    // A 426 must say which protocol to upgrade to (RFC 9110 section 15.5.22).
    if (lower == "upgrade" && status == 426) {
      to.insert(name, value);
      continue;
    }
    if (IsHopByHop(lower)) continue;
    if (std::find(named_by_connection.begin(), named_by_connection.end(), lower) != named_by_connection.end()) {
      continue;
    }
    to.insert(name, value);
  }
  to.body() = from.body();
  return std::nullopt;
}

}  // namespace wsgateway
