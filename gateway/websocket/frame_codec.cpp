#include "gateway/websocket/frame_codec.hpp"

#include <cstring>

namespace wsgateway::frame_codec {

HeaderStatus ParseHeader(std::string_view data, Header& header) {
  if (data.size() < 2) return HeaderStatus::kNeedMore;
  const auto byte = [&data](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  header.fin = (byte(0) & 0x80) != 0;
  header.rsv1 = (byte(0) & 0x40) != 0;
  header.rsv2 = (byte(0) & 0x20) != 0;
  header.rsv3 = (byte(0) & 0x10) != 0;
  header.opcode = byte(0) & 0x0F;
  header.masked = (byte(1) & 0x80) != 0;

  std::size_t offset = 2;
  std::uint64_t length = byte(1) & 0x7F;
  const std::size_t extended = length == 126 ? 2 : length == 127 ? 8 : 0;
  if (data.size() < offset + extended + (header.masked ? 4 : 0)) return HeaderStatus::kNeedMore;
  if (extended > 0) {
    length = 0;
    for (std::size_t i = 0; i < extended; ++i) length = (length << 8) | byte(offset + i);
    offset += extended;
    if (extended == 8 && (length >> 63) != 0) return HeaderStatus::kInvalid;
  }
  header.minimal_length = extended == 0 || (extended == 2 && length > 125) || (extended == 8 && length > 0xFFFF);
  header.length = length;
  if (header.masked) {
    for (std::size_t i = 0; i < 4; ++i) header.mask[i] = byte(offset + i);
    offset += 4;
  }
  header.size = offset;
  return HeaderStatus::kComplete;
}

std::size_t WriteHeader(bool fin, bool rsv1, std::uint8_t opcode, std::uint64_t length,
                        std::uint8_t (&out)[kMaxHeaderBytes]) {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | (rsv1 ? 0x40 : 0x00) | (opcode & 0x0F));
  if (length <= 125) {
    out[1] = static_cast<std::uint8_t>(length);
    return 2;
  }
  if (length <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<std::uint8_t>(length >> 8);
    out[3] = static_cast<std::uint8_t>(length);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(length >> (56 - 8 * i));
  return 10;
}

void ApplyMask(char* data, std::size_t size, const std::array<std::uint8_t, 4>& mask, std::size_t offset) {
  std::uint8_t rotated[8];
  for (std::size_t i = 0; i < 8; ++i) rotated[i] = mask[(offset + i) % 4];
  std::uint64_t wide;
  std::memcpy(&wide, rotated, 8);
  std::size_t i = 0;
  // Eight bytes at a time: unmasking runs over every byte a client sends.
  for (; i + 8 <= size; i += 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, data + i, 8);
    chunk ^= wide;
    std::memcpy(data + i, &chunk, 8);
  }
  for (; i < size; ++i) data[i] = static_cast<char>(static_cast<std::uint8_t>(data[i]) ^ rotated[i % 8]);
}

void Pack(const Frame& frame, std::string& out) {
  std::uint8_t header[kMaxHeaderBytes];
  std::size_t size = WriteHeader(frame.fin, frame.rsv1, frame.opcode, frame.payload.size(), header);
  if (frame.rsv2) header[0] |= 0x20;
  if (frame.rsv3) header[0] |= 0x10;
  if (frame.mask) {
    header[1] |= 0x80;
    for (const auto byte : *frame.mask) header[size++] = byte;
  }
  out.append(reinterpret_cast<const char*>(header), size);
  const std::size_t payload_start = out.size();
  out.append(frame.payload);
  if (frame.mask) ApplyMask(out.data() + payload_start, frame.payload.size(), *frame.mask, 0);
}

std::string Pack(const Frame& frame) {
  std::string out;
  Pack(frame, out);
  return out;
}

Unpacked Unpack(std::string_view data, std::uint64_t max_payload) {
  Unpacked result;
  Header header;
  switch (ParseHeader(data, header)) {
    case HeaderStatus::kNeedMore:
      return result;
    case HeaderStatus::kInvalid:
      result.status = Unpacked::Status::kInvalid;
      result.error = "64-bit payload length with the most significant bit set (RFC 6455, section 5.2)";
      return result;
    case HeaderStatus::kComplete:
      break;
  }
  if (header.length > max_payload) {
    result.status = Unpacked::Status::kInvalid;
    result.error =
        "payload of " + std::to_string(header.length) + " bytes is over the limit of " + std::to_string(max_payload);
    return result;
  }
  if (data.size() - header.size < header.length) return result;
  Frame& frame = result.frame;
  frame.fin = header.fin;
  frame.rsv1 = header.rsv1;
  frame.rsv2 = header.rsv2;
  frame.rsv3 = header.rsv3;
  frame.opcode = header.opcode;
  if (header.masked) frame.mask = header.mask;
  frame.payload.assign(data.substr(header.size, static_cast<std::size_t>(header.length)));
  if (frame.mask) ApplyMask(frame.payload.data(), frame.payload.size(), *frame.mask, 0);
  result.status = Unpacked::Status::kFrame;
  result.consumed = header.size + static_cast<std::size_t>(header.length);
  return result;
}

}  // namespace wsgateway::frame_codec
