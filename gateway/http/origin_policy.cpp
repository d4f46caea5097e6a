#include "gateway/http/origin_policy.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace wsgateway {
namespace {

constexpr std::string_view kOpaqueOrigin = "null";

struct ParsedOrigin {
  std::string scheme;
  std::string host;
  bool any_subdomain = false;
  std::uint32_t port = 0;
};

std::string Lowered(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// RFC 3986 section 3.1.
bool IsScheme(std::string_view scheme) {
  if (scheme.empty() || !IsAlpha(scheme.front())) return false;
  return std::all_of(scheme.begin(), scheme.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.'; });
}

// A registered name or an IPv4 address: non-empty dot-separated labels.
bool IsDomain(std::string_view host) {
  if (host.empty() || host.front() == '.' || host.back() == '.') return false;
  if (host.find("..") != std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_' || c == '.'; });
}

bool IsIpv6Literal(std::string_view host) {
  if (host.size() < 3 || host.front() != '[' || host.back() != ']') return false;
  const auto inner = host.substr(1, host.size() - 2);
  return std::all_of(inner.begin(), inner.end(), [](char c) { return IsHexDigit(c) || c == ':' || c == '.'; });
}

// The port a browser leaves out of the origin (RFC 6454 section 6.2).
std::uint32_t DefaultPort(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

// Parses "scheme://host[:port]", with "scheme://*.domain" where
// `wildcard_allowed`; on failure sets *error to why.
std::optional<ParsedOrigin> ParseOrigin(std::string_view text, bool wildcard_allowed, std::string* error) {
  const auto fail = [error](std::string why) {
    *error = std::move(why);
    return std::nullopt;
  };
  const auto separator = text.find("://");
  if (separator == std::string_view::npos) return fail("it has no scheme:// part");
  ParsedOrigin origin;
  origin.scheme = Lowered(text.substr(0, separator));
  if (!IsScheme(origin.scheme)) return fail("'" + origin.scheme + "' is not a scheme");
  const auto authority = text.substr(separator + 3);
  if (authority.find_first_of("/?#") != std::string_view::npos) {
    return fail("an origin has no path, query or fragment (not even a trailing /)");
  }
  if (authority.find('@') != std::string_view::npos) return fail("an origin has no user name");

  const auto host_end = authority.starts_with('[') ? authority.find(']') + 1 : authority.find(':');
  if (host_end == 0) return fail("its IPv6 address has no closing ]");
  origin.host = Lowered(authority.substr(0, host_end));
  if (wildcard_allowed && origin.host.starts_with("*.")) {
    origin.any_subdomain = true;
    origin.host.erase(0, 1);
    if (!IsDomain(std::string_view(origin.host).substr(1)))
      return fail("'" + origin.host.substr(1) + "' is not a domain");
  } else if (!IsDomain(origin.host) && !IsIpv6Literal(origin.host)) {
    return fail(origin.host.empty() ? "it has no host" : "'" + origin.host + "' is not a host name or address");
  }

  origin.port = DefaultPort(origin.scheme);
  if (host_end != std::string_view::npos && host_end < authority.size()) {
    const auto port = authority.substr(host_end);
    std::uint32_t value = 0;
    const auto* first = port.data() + 1;
    const auto* last = port.data() + port.size();
    const auto parsed = std::from_chars(first, last, value);
    if (port.front() != ':' || port.size() < 2 || port.size() > 6 || parsed.ec != std::errc() || parsed.ptr != last ||
        value > 65535) {
      return fail("'" + std::string(port) + "' is not a :port");
    }
    origin.port = value;
  }
  return origin;
}

}  // namespace

std::string CheckOriginPattern(std::string_view entry) {
  if (entry == "*" || entry == kOpaqueOrigin) return {};
  std::string error;
  ParseOrigin(entry, /*wildcard_allowed=*/true, &error);
  return error;
}

OriginPolicy::OriginPolicy(const std::vector<std::string>& allowed) : every_origin_(allowed.empty()) {
  for (const auto& entry : allowed) {
    if (entry == "*") {
      every_origin_ = true;
      continue;
    }
    if (entry == kOpaqueOrigin) {
      null_allowed_ = true;
      continue;
    }
    std::string error;
    auto parsed = ParseOrigin(entry, /*wildcard_allowed=*/true, &error);
    if (!parsed) throw std::invalid_argument("allowed origin '" + entry + "': " + error);
    patterns_.push_back({std::move(parsed->scheme), std::move(parsed->host), parsed->any_subdomain, parsed->port});
  }
}

bool OriginPolicy::Allows(std::optional<std::string_view> origin) const {
  if (every_origin_ || !origin) return true;
  if (*origin == kOpaqueOrigin) return null_allowed_;
  std::string ignored;
  const auto parsed = ParseOrigin(*origin, /*wildcard_allowed=*/false, &ignored);
  if (!parsed) return false;
  return std::any_of(patterns_.begin(), patterns_.end(), [&](const Pattern& pattern) {
    if (pattern.scheme != parsed->scheme || pattern.port != parsed->port) return false;
    if (!pattern.any_subdomain) return pattern.host == parsed->host;
    // ".example.com" and at least one label in front of it.
    return parsed->host.size() > pattern.host.size() && parsed->host.ends_with(pattern.host);
  });
}

}  // namespace wsgateway
