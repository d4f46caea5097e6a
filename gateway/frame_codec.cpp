#include "gateway/frame_codec.hpp"

namespace wsgateway::frame_codec {
namespace {

void ApplyMask(std::string& payload, std::size_t from, const std::array<std::uint8_t, 4>& mask) {
  for (std::size_t i = from; i < payload.size(); ++i) {
    payload[i] = static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ mask[(i - from) % 4]);
  }
}

}  // namespace

void Pack(const Frame& frame, std::string& out) {
  std::uint8_t first = frame.opcode & 0x0F;
  if (frame.fin) first |= 0x80;
  if (frame.rsv1) first |= 0x40;
  if (frame.rsv2) first |= 0x20;
  if (frame.rsv3) first |= 0x10;
  out.push_back(static_cast<char>(first));

  const std::uint64_t length = frame.payload.size();
  const std::uint8_t mask_bit = frame.mask ? 0x80 : 0x00;
  if (length <= 125) {
    out.push_back(static_cast<char>(mask_bit | length));
  } else if (length <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    for (int shift = 8; shift >= 0; shift -= 8) out.push_back(static_cast<char>((length >> shift) & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((length >> shift) & 0xFF));
  }
  if (frame.mask) {
    for (const auto byte : *frame.mask) out.push_back(static_cast<char>(byte));
  }
  const std::size_t payload_start = out.size();
  out.append(frame.payload);
  if (frame.mask) ApplyMask(out, payload_start, *frame.mask);
}

std::string Pack(const Frame& frame) {
  std::string out;
  Pack(frame, out);
  return out;
}

Unpacked Unpack(std::string_view data, std::uint64_t max_payload) {
  Unpacked result;
  if (data.size() < 2) return result;
  const auto byte = [&data](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  Frame& frame = result.frame;
  frame.fin = (byte(0) & 0x80) != 0;
  frame.rsv1 = (byte(0) & 0x40) != 0;
  frame.rsv2 = (byte(0) & 0x20) != 0;
  frame.rsv3 = (byte(0) & 0x10) != 0;
  frame.opcode = byte(0) & 0x0F;
  const bool masked = (byte(1) & 0x80) != 0;

  std::size_t offset = 2;
  std::uint64_t length = byte(1) & 0x7F;
  const std::size_t extended = length == 126 ? 2 : length == 127 ? 8 : 0;
  if (data.size() < offset + extended) return result;
  if (extended > 0) {
    length = 0;
    for (std::size_t i = 0; i < extended; ++i) length = (length << 8) | byte(offset + i);
    offset += extended;
    if (extended == 8 && (length >> 63) != 0) {
      result.status = Unpacked::Status::kInvalid;
      result.error = "64-bit payload length with the most significant bit set (RFC 6455, section 5.2)";
      return result;
    }
  }
  if (length > max_payload) {
    result.status = Unpacked::Status::kInvalid;
    result.error =
        "payload of " + std::to_string(length) + " bytes is over the limit of " + std::to_string(max_payload);
    return result;
  }
  if (masked) {
    if (data.size() < offset + 4) return result;
    std::array<std::uint8_t, 4> mask{};
    for (std::size_t i = 0; i < 4; ++i) mask[i] = byte(offset + i);
    frame.mask = mask;
    offset += 4;
  }
  if (data.size() - offset < length) return result;
  frame.payload.assign(data.substr(offset, static_cast<std::size_t>(length)));
  if (frame.mask) ApplyMask(frame.payload, 0, *frame.mask);
  result.status = Unpacked::Status::kFrame;
  result.consumed = offset + static_cast<std::size_t>(length);
  return result;
}

}  // namespace wsgateway::frame_codec
