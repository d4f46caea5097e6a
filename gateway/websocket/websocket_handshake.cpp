#include "gateway/websocket/websocket_handshake.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace wsgateway {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool HasToken(const UpgradeRequest& request, http::field field, std::string_view token) {
  const auto [first, last] = request.equal_range(field);
  return std::any_of(first, last, [&](const auto& value) { return http::token_list(value.value()).exists(token); });
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// The key is the base64 encoding of 16 random bytes: 22 characters and "==".
bool IsValidKey(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  return std::all_of(key.begin(), key.begin() + 22, IsBase64Char);
}

}  // namespace

bool IsWebSocketUpgrade(const UpgradeRequest& request) { return HasToken(request, http::field::upgrade, "websocket"); }

std::optional<UpgradeRefusal> CheckUpgradeRequest(const UpgradeRequest& request) {
  const auto refuse = [](std::string_view label, std::string_view message) {
    return UpgradeRefusal{http::status::bad_request, label, message};
  };
  if (request.method() != http::verb::get) return refuse("malformed", "a WebSocket upgrade must use GET");
  if (request.version() < 11) return refuse("malformed", "a WebSocket upgrade needs HTTP/1.1");
  if (request.count(http::field::host) == 0) return refuse("malformed", "the upgrade request has no Host header");
  if (!HasToken(request, http::field::connection, "upgrade")) {
    return refuse("malformed", "the upgrade request's Connection header does not name Upgrade");
  }
  const auto version = request[http::field::sec_websocket_version];
  if (version != "13") {
    return UpgradeRefusal{http::status::upgrade_required, "bad_version",
                          "this server speaks WebSocket version 13 (RFC 6455)"};
  }
  if (!IsValidKey(request[http::field::sec_websocket_key])) {
    return refuse("malformed", "Sec-WebSocket-Key must be the base64 encoding of 16 bytes");
  }
  return std::nullopt;
}

std::string WebSocketAccept(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kAcceptGuid.size());
  input.append(key).append(kAcceptGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr);
  std::string accept(4 * ((digest_size + 2) / 3) + 1, '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(accept.data()), digest, static_cast<int>(digest_size));
  accept.resize(static_cast<std::size_t>(written));
  return accept;
}

std::vector<std::string_view> OfferedSubprotocols(const UpgradeRequest& request) {
  std::vector<std::string_view> offered;
  const auto [first, last] = request.equal_range(http::field::sec_websocket_protocol);
  for (auto value = first; value != last; ++value) {
    for (const auto token : http::token_list(value->value())) offered.emplace_back(token.data(), token.size());
  }
  return offered;
}

std::string SelectSubprotocol(const UpgradeRequest& request, std::span<const std::string> supported) {
  if (supported.empty()) return {};
  for (const auto offered : OfferedSubprotocols(request)) {
    if (std::find(supported.begin(), supported.end(), offered) != supported.end()) return std::string(offered);
  }
  return {};
}

std::string JoinedFieldValues(const UpgradeRequest& request, http::field field) {
  std::string joined;
  const auto [first, last] = request.equal_range(field);
  for (auto value = first; value != last; ++value) {
    if (!joined.empty()) joined += ", ";
    joined.append(value->value().data(), value->value().size());
  }
  return joined;
}

std::string BuildUpgradeResponse(const UpgradeResponseParts& parts) {
  std::string response;
  response.reserve(160 + parts.subprotocol.size() + parts.extensions.size() + parts.extra_header_lines.size());
  response.append(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Server: wsgateway\r\n"
      "Sec-WebSocket-Accept: ");
  response.append(parts.accept).append("\r\n");
  if (!parts.subprotocol.empty()) response.append("Sec-WebSocket-Protocol: ").append(parts.subprotocol).append("\r\n");
  if (!parts.extensions.empty()) response.append("Sec-WebSocket-Extensions: ").append(parts.extensions).append("\r\n");
  response.append(parts.extra_header_lines).append("\r\n");
  return response;
}

}  // namespace wsgateway
