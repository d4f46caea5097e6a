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
  if (payload.size() > max_message_bytes) {
    check.error = "payload is " + std::to_string(payload.size()) + " bytes; the limit (max_message_bytes) is " +
                  std::to_string(max_message_bytes);
    return check;
  }
  if (check.frame.type == FrameType::kText && !IsValidUtf8(payload)) {
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
