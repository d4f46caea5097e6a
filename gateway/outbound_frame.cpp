#include "gateway/outbound_frame.hpp"

#include "gateway/protocol_rules.hpp"

namespace wsgateway {

OutboundFrameCheck MakeOutboundFrame(v1::Frame&& frame, std::size_t max_message_bytes) {
  OutboundFrameCheck check;
  const auto& payload = frame.payload();
  switch (frame.opcode()) {
    case v1::OPCODE_UNSPECIFIED:
    case v1::OPCODE_TEXT:
      check.frame.type = FrameType::kText;
      break;
    case v1::OPCODE_BINARY:
      check.frame.type = FrameType::kBinary;
      break;
    case v1::OPCODE_PING:
      check.frame.type = FrameType::kPing;
      break;
    case v1::OPCODE_PONG:
      check.frame.type = FrameType::kPong;
      break;
    default:
      check.error = "opcode " + std::to_string(frame.opcode()) +
                    " cannot be pushed: use OPCODE_TEXT, OPCODE_BINARY, OPCODE_PING or OPCODE_PONG "
                    "(close a connection with Disconnect)";
      return check;
  }
  const bool control = check.frame.type == FrameType::kPing || check.frame.type == FrameType::kPong;
  if (control && payload.size() > kMaxControlPayloadBytes) {
    check.error = "ping and pong payloads are limited to 125 bytes; got " + std::to_string(payload.size());
    return check;
  }
  const bool fin = !frame.has_fin() || frame.fin();
  if (control && (!fin || frame.continuation())) {
    check.error = "ping and pong frames cannot be fragmented: leave fin unset and continuation false";
    return check;
  }
  check.frame.fin = fin;
  check.frame.continuation = frame.continuation();
  if (frame.has_compress()) check.frame.compress = frame.compress() ? CompressMode::kAlways : CompressMode::kNever;
  if (payload.size() > max_message_bytes) {
    check.error = "payload is " + std::to_string(payload.size()) + " bytes; the limit (max_message_bytes) is " +
                  std::to_string(max_message_bytes);
    return check;
  }
  // A fragment may end inside a character; the whole message is what must
  // be UTF-8, which the gateway cannot see, so only unfragmented text is
  // checked.
  if (check.frame.type == FrameType::kText && fin && !frame.continuation() && !IsValidUtf8(payload)) {
    check.error = "text payload is not valid UTF-8; send it as OPCODE_BINARY";
    return check;
  }
  check.frame.payload = std::make_shared<const std::string>(std::move(*frame.mutable_payload()));
  return check;
}

OutboundFrame MakeCloseFrame(std::uint16_t code, std::string reason) {
  return OutboundFrame{FrameType::kClose, std::make_shared<const std::string>(std::move(reason)), code};
}

}  // namespace wsgateway
