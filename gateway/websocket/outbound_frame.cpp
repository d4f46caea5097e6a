#include "gateway/websocket/outbound_frame.hpp"

#include "gateway/websocket/frame_codec.hpp"
#include "gateway/websocket/protocol_rules.hpp"
#include "gateway/websocket/utf8_validator.hpp"

namespace wsgateway {
namespace {

// A pushed close frame: code and reason come from Frame.close, checked as
// Disconnect checks them.
OutboundFrameCheck MakePushedClose(v1::Frame&& frame) {
  OutboundFrameCheck check;
  if (!frame.payload().empty()) {
    check.error = "a close frame carries its code and reason in close, not in payload";
    return check;
  }
  if ((frame.has_fin() && !frame.fin()) || frame.continuation()) {
    check.error = "close frames cannot be fragmented: leave fin unset and continuation false";
    return check;
  }
  if (frame.has_compress()) {
    check.error = "close frames are never compressed: leave compress unset";
    return check;
  }
  const auto& close = frame.close();
  if (auto error = CheckCloseRequest(close.code(), close.reason()); !error.empty()) {
    check.error = std::move(error);
    return check;
  }
  check.frame = MakeCloseFrame(RequestedCloseCode(close.code()), std::move(*frame.mutable_close()->mutable_reason()));
  return check;
}

}  // namespace

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
    case v1::OPCODE_CLOSE:
      return MakePushedClose(std::move(frame));
    default:
      check.error = "opcode " + std::to_string(frame.opcode()) +
                    " cannot be pushed: use OPCODE_TEXT, OPCODE_BINARY, OPCODE_PING, OPCODE_PONG or OPCODE_CLOSE";
      return check;
  }
  if (frame.has_close()) {
    check.error = "close is only for OPCODE_CLOSE frames; put the message in payload";
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
  // A whole message must be UTF-8, and the first piece of a fragmented one
  // must be able to start it (it may end inside a character). Later pieces
  // depend on the pieces before them: the session checks them against the
  // message it has open (Session::Enqueue).
  if (check.frame.type == FrameType::kText && !frame.continuation()) {
    Utf8Validator validator;
    if (fin ? !IsValidUtf8(payload) : !validator.Feed(payload)) {
      check.error = "text payload is not valid UTF-8; send it as OPCODE_BINARY";
      return check;
    }
  }
  check.frame.payload = std::make_shared<const std::string>(std::move(*frame.mutable_payload()));
  return check;
}

OutboundFrame MakeCloseFrame(std::uint16_t code, std::string reason) {
  return OutboundFrame{FrameType::kClose, std::make_shared<const std::string>(std::move(reason)), code};
}

std::uint8_t WireOpcode(const OutboundFrame& frame) {
  namespace fc = frame_codec;
  switch (frame.type) {
    case FrameType::kText:
      return frame.continuation ? fc::kContinuation : fc::kText;
    case FrameType::kBinary:
      return frame.continuation ? fc::kContinuation : fc::kBinary;
    case FrameType::kPing:
      return fc::kPing;
    case FrameType::kPong:
      return fc::kPong;
    case FrameType::kClose:
      break;
  }
  return fc::kClose;
}

std::size_t WriteOutboundHeader(const OutboundFrame& frame, std::uint8_t* out) {
  static_assert(kMaxOutboundHeaderBytes >= frame_codec::kMaxHeaderBytes + 2);
  const std::size_t code_bytes = frame.type == FrameType::kClose && frame.close_code != 0 ? 2 : 0;
  auto& header = *reinterpret_cast<std::uint8_t(*)[frame_codec::kMaxHeaderBytes]>(out);
  std::size_t size =
      frame_codec::WriteHeader(frame.fin, frame.compressed, WireOpcode(frame), frame.size() + code_bytes, header);
  if (code_bytes != 0) {
    out[size++] = static_cast<std::uint8_t>(frame.close_code >> 8);
    out[size++] = static_cast<std::uint8_t>(frame.close_code);
  }
  return size;
}

}  // namespace wsgateway
