#include "gateway/websocket/protocol_rules.hpp"

#include "gateway/websocket/utf8_validator.hpp"

namespace wsgateway {

bool IsValidUtf8(std::string_view text) {
  Utf8Validator validator;
  return validator.Feed(text) && validator.Complete();
}

bool IsValidReceivedCloseCode(std::uint32_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

std::string CheckCloseRequest(std::uint32_t code, std::string_view reason) {
  if (code != 0 && code != 1000 && (code < 3000 || code > 4999)) {
    return "close code " + std::to_string(code) + " is not allowed: use 1000 or 3000-4999";
  }
  if (reason.size() > kMaxCloseReasonBytes) {
    return "close reason is " + std::to_string(reason.size()) + " bytes; at most " +
           std::to_string(kMaxCloseReasonBytes) + " fit in a close frame";
  }
  if (!IsValidUtf8(reason)) return "close reason is not valid UTF-8";
  return {};
}

}  // namespace wsgateway
