#pragma once
// Incremental UTF-8 validation for text messages that arrive in fragments
// (RFC 6455, section 8.1). It fails fast, as the Autobahn testsuite
// (section 6) expects: a message is refused at the first byte after which
// no continuation could make it valid, not when the message ends, so a
// client cannot make the gateway buffer a message that is already lost.

#include <cstdint>
#include <string_view>

namespace wsgateway {

class Utf8Validator {
 public:
  // Feeds the next bytes of a message. False once the bytes so far cannot be
  // the start of valid UTF-8; it stays false until Reset.
  bool Feed(std::string_view bytes);

  // True when everything fed ends on a code-point boundary (call at the end
  // of a message).
  bool Complete() const;

  // Starts a new message.
  void Reset();

 private:
  // A state of the byte-class DFA in utf8_validator.cpp: 0 is "on a
  // code-point boundary", 1 is "invalid", the rest count the continuation
  // bytes still owed and which of them are restricted.
  std::uint32_t state_ = 0;
};

}  // namespace wsgateway
