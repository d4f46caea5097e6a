// The backend command path: a CommandBatch as it comes off the backend
// stream (parsed onto an arena, as backend_link.cpp does), applied by
// Gateway::ApplyCommands (validation, routing by connection id, the loops'
// part run here), and each command's frame taken through the same checks
// (MakeOutboundFrame, CheckCloseRequest) into what the session puts on the
// wire: the frame header, the close code, and the deflated message. The
// wire bytes must decode to the frame the backend asked for.
//
// Input: the serialized CommandBatch.

#include <google/protobuf/arena.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/data_plane/connection_id.hpp"
#include "gateway/websocket/deflate_codec.hpp"
#include "gateway/websocket/frame_codec.hpp"
#include "gateway/websocket/loop_compression.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "gateway/websocket/protocol_rules.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/fuzz/idle_gateway.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace {

using namespace wsgateway;
namespace fc = frame_codec;

void CheckFrame(const OutboundFrame& frame) {
  FUZZ_CHECK(frame.payload != nullptr);
  switch (frame.type) {
    case FrameType::kText:
      FUZZ_CHECK(!frame.fin || frame.continuation || IsValidUtf8(*frame.payload));
      [[fallthrough]];
    case FrameType::kBinary:
      FUZZ_CHECK(frame.size() <= fuzz::kIdleGatewayMaxMessageBytes);
      break;
    case FrameType::kPing:
    case FrameType::kPong:
      FUZZ_CHECK(frame.fin && !frame.continuation);
      FUZZ_CHECK(frame.size() <= kMaxControlPayloadBytes);
      break;
    case FrameType::kClose:
      FUZZ_CHECK(frame.fin && !frame.continuation);
      FUZZ_CHECK(frame.close_code == 1000 || (frame.close_code >= 3000 && frame.close_code <= 4999));
      FUZZ_CHECK(frame.size() <= kMaxCloseReasonBytes);
      FUZZ_CHECK(IsValidUtf8(*frame.payload));
      break;
  }
}

// What the session writes for `frame` (session_frames.cpp), decoded again.
void CheckWire(OutboundFrame frame, LoopCompression& compression) {
  if (frame.is_data() && frame.fin && !frame.continuation && frame.compress != CompressMode::kNever &&
      frame.size() > 0) {
    if (auto deflated = compression.Compress(frame.payload, 15)) {
      FUZZ_CHECK(deflated->size() < frame.size());
      MessageInflater inflater(15);
      std::string inflated;
      FUZZ_CHECK(inflater.Feed(*deflated, inflated, frame.size()) == MessageInflater::Result::kOk);
      FUZZ_CHECK(inflater.Finish(inflated, frame.size(), true) == MessageInflater::Result::kOk);
      FUZZ_CHECK(inflated == *frame.payload);
      frame.payload = std::move(deflated);
      frame.compressed = true;
    }
  }
  const bool close = frame.type == FrameType::kClose;
  const std::size_t code_bytes = close && frame.close_code != 0 ? 2 : 0;
  std::uint8_t header[kMaxOutboundHeaderBytes];
  const std::size_t header_size = WriteOutboundHeader(frame, header);
  std::string wire(reinterpret_cast<const char*>(header), header_size);
  wire.append(*frame.payload);

  const auto unpacked = fc::Unpack(wire, wire.size());
  FUZZ_CHECK(unpacked.status == fc::Unpacked::Status::kFrame);
  FUZZ_CHECK(unpacked.consumed == wire.size());
  FUZZ_CHECK(unpacked.frame.fin == frame.fin);
  FUZZ_CHECK(unpacked.frame.rsv1 == frame.compressed);
  FUZZ_CHECK(!unpacked.frame.rsv2 && !unpacked.frame.rsv3 && !unpacked.frame.mask);
  FUZZ_CHECK(unpacked.frame.opcode == WireOpcode(frame));
  FUZZ_CHECK(std::string_view(unpacked.frame.payload).substr(code_bytes) == *frame.payload);
}

void CheckId(const std::string& id) {
  if (const auto parsed = ParseConnectionId(id)) FUZZ_CHECK(FormatConnectionId(*parsed) == id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Arena arena;
  auto* batch = google::protobuf::Arena::CreateMessage<v1::CommandBatch>(&arena);
  if (!batch->ParseFromArray(data, static_cast<int>(size))) return 0;  // the stream read fails
  const v1::CommandBatch copy = *batch;

  auto& idle = fuzz::TheIdleGateway();
  idle.gateway->ApplyCommands(*batch);
  idle.Poll();

  LoopCompression compression(idle.config.compression_level);
  for (const auto& command : copy.commands()) {
    if (command.has_push()) {
      for (const auto& id : command.push().connection_ids()) CheckId(id);
      v1::Frame frame = command.push().frame();
      auto check = MakeOutboundFrame(std::move(frame), idle.config.max_message_bytes);
      if (!check.error.empty()) continue;
      CheckFrame(check.frame);
      CheckWire(std::move(check.frame), compression);
    } else if (command.has_disconnect()) {
      const auto& disconnect = command.disconnect();
      CheckId(disconnect.connection_id());
      if (!CheckCloseRequest(disconnect.code(), disconnect.reason()).empty()) continue;
      const auto code = static_cast<std::uint16_t>(disconnect.code() == 0 ? 1000 : disconnect.code());
      const auto frame = MakeCloseFrame(code, disconnect.reason());
      CheckFrame(frame);
      CheckWire(frame, compression);
    }
  }
  return 0;
}
