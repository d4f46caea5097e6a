#pragma once
// A frame queued for a client. The payload is shared and immutable so one
// broadcast is serialised once and referenced by every recipient's queue.

#include <cstdint>
#include <memory>
#include <string>

#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

enum class FrameType : std::uint8_t { kText, kBinary, kPing, kPong, kClose };

// Whether a message is sent compressed where permessage-deflate was agreed.
enum class CompressMode : std::uint8_t { kBySize, kAlways, kNever };

struct OutboundFrame {
  FrameType type = FrameType::kText;
  std::shared_ptr<const std::string> payload;
  // Only for kClose.
  std::uint16_t close_code = 0;
  // Data frames: the last frame of its message.
  bool fin = true;
  // Data frames: carries on the fragmented message open on the connection.
  bool continuation = false;
  CompressMode compress = CompressMode::kBySize;
  // Set by the session once `payload` holds the deflated message (RSV1).
  bool compressed = false;

  std::size_t size() const { return payload ? payload->size() : 0; }
  bool is_data() const { return type == FrameType::kText || type == FrameType::kBinary; }
};

// Checks a frame from the API (Admin.Push, Broadcast, backend commands)
// and, if it is acceptable, turns it into an OutboundFrame. `error` says
// what is wrong otherwise. The payload is moved out of `frame`.
struct OutboundFrameCheck {
  std::string error;
  OutboundFrame frame;
};
OutboundFrameCheck MakeOutboundFrame(v1::Frame&& frame, std::size_t max_message_bytes);

// A close frame with an already validated code and reason.
OutboundFrame MakeCloseFrame(std::uint16_t code, std::string reason);

// The RFC 6455 opcode the frame goes out with (continuation for a piece
// after the first).
std::uint8_t WireOpcode(const OutboundFrame& frame);

// What precedes the payload on the wire: the frame header and, for a close
// frame with a code, the code. At most this many bytes.
constexpr std::size_t kMaxOutboundHeaderBytes = 16;
// Writes it into `out`; returns its size.
std::size_t WriteOutboundHeader(const OutboundFrame& frame, std::uint8_t* out);

}  // namespace wsgateway
