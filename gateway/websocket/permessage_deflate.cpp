#include "gateway/websocket/permessage_deflate.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace wsgateway {
namespace {

constexpr std::string_view kExtensionName = "permessage-deflate";
constexpr std::string_view kServerNoContextTakeover = "server_no_context_takeover";
constexpr std::string_view kClientNoContextTakeover = "client_no_context_takeover";
constexpr std::string_view kServerMaxWindowBits = "server_max_window_bits";
constexpr std::string_view kClientMaxWindowBits = "client_max_window_bits";

constexpr int kMinWindowBits = 8;
constexpr int kMaxWindowBits = 15;
// zlib refuses a raw deflate stream with an 8-bit window (see deflate_codec.hpp).
constexpr int kMinDeflateWindowBits = 9;

// ------------------------------------------------------------------ syntax
// RFC 7230 3.2.6.
bool IsTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar); }

std::string_view TrimOws(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

// Splits at `separator` outside quoted-strings, so a quoted value cannot cut
// an offer or a parameter in two. An unterminated quote runs to the end and
// leaves a piece that will not parse, which declines only that offer.
std::vector<std::string_view> SplitOutsideQuotes(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == separator) {
      pieces.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  pieces.push_back(text.substr(std::min(start, text.size())));
  return pieces;
}

// RFC 7230 qdtext and the second octet of a quoted-pair (obs-text included).
bool IsQuotedTextChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7F);
}

// The content of a quoted-string that is all of `text`, unescaped.
std::optional<std::string> Unquote(std::string_view text) {
  if (text.size() < 2 || text.front() != '"') return std::nullopt;
  std::string value;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      if (i + 1 != text.size()) return std::nullopt;
      return value;
    }
    if (c == '\\') {
      if (++i == text.size()) return std::nullopt;
    }
    if (!IsQuotedTextChar(text[i])) return std::nullopt;
    value.push_back(text[i]);
  }
  return std::nullopt;  // no closing quote
}

struct Param {
  std::string_view name;
  std::optional<std::string> value;
};

// extension-param = token [ "=" (token | quoted-string) ]; a quoted value
// must still be a token once unquoted (RFC 6455 9.1).
std::optional<Param> ParseParam(std::string_view text) {
  const auto equals = text.find('=');
  Param param{TrimOws(text.substr(0, equals)), std::nullopt};
  if (!IsToken(param.name)) return std::nullopt;
  if (equals == std::string_view::npos) return param;
  const std::string_view raw = TrimOws(text.substr(equals + 1));
  if (!raw.empty() && raw.front() == '"') {
    param.value = Unquote(raw);
  } else if (IsToken(raw)) {
    param.value = std::string(raw);
  }
  if (!param.value || !IsToken(*param.value)) return std::nullopt;
  return param;
}

// ------------------------------------------------------------- semantics
// A permessage-deflate offer, its parameters checked one by one.
struct Offer {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool has_client_max_window_bits = false;
  std::optional<int> client_max_window_bits;  // the value, when it has one
};

// RFC 7692 7.1.2: "a decimal integer value without leading zeroes between 8
// to 15, inclusive".
std::optional<int> ParseWindowBits(std::string_view value) {
  if (value.empty() || value.size() > 2 || value.front() == '0') return std::nullopt;
  int bits = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    bits = bits * 10 + (c - '0');
  }
  if (bits < kMinWindowBits || bits > kMaxWindowBits) return std::nullopt;
  return bits;
}

// A parameter without a value, given once.
bool SetFlag(const Param& param, bool& flag) {
  if (flag || param.value) return false;
  flag = true;
  return true;
}

// False when the parameter declines the offer (RFC 7692 section 7: unknown,
// invalid value, or given twice).
bool Apply(const Param& param, Offer& offer) {
  if (EqualsIgnoreCase(param.name, kServerNoContextTakeover)) return SetFlag(param, offer.server_no_context_takeover);
  if (EqualsIgnoreCase(param.name, kClientNoContextTakeover)) return SetFlag(param, offer.client_no_context_takeover);
  if (EqualsIgnoreCase(param.name, kServerMaxWindowBits)) {
    if (offer.server_max_window_bits || !param.value) return false;
    offer.server_max_window_bits = ParseWindowBits(*param.value);
    return offer.server_max_window_bits.has_value();
  }
  if (EqualsIgnoreCase(param.name, kClientMaxWindowBits)) {
    if (offer.has_client_max_window_bits) return false;
    offer.has_client_max_window_bits = true;
    if (!param.value) return true;
    offer.client_max_window_bits = ParseWindowBits(*param.value);
    return offer.client_max_window_bits.has_value();
  }
  return false;
}

// nullopt for another extension, and for a permessage-deflate offer that is
// malformed or invalid.
std::optional<Offer> ParseOffer(std::string_view element) {
  const std::vector<std::string_view> parts = SplitOutsideQuotes(element, ';');
  if (!EqualsIgnoreCase(TrimOws(parts.front()), kExtensionName)) return std::nullopt;
  Offer offer;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::optional<Param> param = ParseParam(parts[i]);
    if (!param || !Apply(*param, offer)) return std::nullopt;
  }
  return offer;
}

// A configuration outside the ranges zlib supports is brought into them
// rather than trusted.
DeflatePolicy Sanitize(DeflatePolicy policy) {
  policy.server_max_window_bits = std::clamp(policy.server_max_window_bits, kMinDeflateWindowBits, kMaxWindowBits);
  policy.client_max_window_bits = std::clamp(policy.client_max_window_bits, kMinWindowBits, kMaxWindowBits);
  return policy;
}

void AppendParam(std::string& response, std::string_view name) {
  response += "; ";
  response += name;
}

void AppendParam(std::string& response, std::string_view name, int value) {
  AppendParam(response, name);
  response += '=';
  response += std::to_string(value);
}

// RFC 7692 7.1: the response to one acceptable offer, or nullopt when the
// policy cannot honour it.
std::optional<DeflateAgreement> Agree(const Offer& offer, const DeflatePolicy& policy) {
  DeflateAgreement agreement;
  // 7.1.1.1: accepting server_no_context_takeover means echoing it; the
  // server may also add it unasked.
  agreement.server_no_context_takeover = offer.server_no_context_takeover || policy.server_no_context_takeover;
  // 7.1.1.2: the server may add client_no_context_takeover unasked. When the
  // client offers it, it is only a hint; echoing it makes it binding, so the
  // gateway can drop its inflate window between messages.
  agreement.client_no_context_takeover = offer.client_no_context_takeover || policy.client_no_context_takeover;

  // 7.1.2.1: accept with the same or a smaller value. Unoffered, the server
  // may still state a smaller window, but need not: the client inflates
  // with 15 bits, which reads any smaller window. Some clients (Firefox, at
  // least in the past) fail the connection on an unoffered
  // server_max_window_bits, so it is left out.
  agreement.server_max_window_bits =
      std::min(offer.server_max_window_bits.value_or(kMaxWindowBits), policy.server_max_window_bits);
  if (agreement.server_max_window_bits < kMinDeflateWindowBits) return std::nullopt;

  // 7.1.2.2: only answered when offered ("MUST NOT include" otherwise), with
  // a value no larger than the offered one. Without it the client may use
  // the full 15 bits whatever the policy says.
  if (offer.has_client_max_window_bits) {
    agreement.client_max_window_bits =
        std::min(offer.client_max_window_bits.value_or(kMaxWindowBits), policy.client_max_window_bits);
  }

  std::string& response = agreement.response;
  response = kExtensionName;
  if (agreement.server_no_context_takeover) AppendParam(response, kServerNoContextTakeover);
  if (agreement.client_no_context_takeover) AppendParam(response, kClientNoContextTakeover);
  if (offer.server_max_window_bits) AppendParam(response, kServerMaxWindowBits, agreement.server_max_window_bits);
  // 15 says nothing the client does not already assume; some clients
  // reject it, so only a real limit is stated.
  if (agreement.client_max_window_bits < kMaxWindowBits) {
    AppendParam(response, kClientMaxWindowBits, agreement.client_max_window_bits);
  }
  return agreement;
}

}  // namespace

std::optional<DeflateAgreement> NegotiateDeflate(std::string_view offers, const DeflatePolicy& policy) {
  if (!policy.enabled) return std::nullopt;
  const DeflatePolicy sane = Sanitize(policy);
  for (const std::string_view element : SplitOutsideQuotes(offers, ',')) {
    const std::optional<Offer> offer = ParseOffer(element);
    if (!offer) continue;
    if (auto agreement = Agree(*offer, sane)) return agreement;
  }
  return std::nullopt;
}

}  // namespace wsgateway
