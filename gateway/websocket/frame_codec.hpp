#pragma once
// WebSocket frames on the wire (RFC 6455, section 5.2): the gateway's
// counterpart of Swoole's WebSocket\Server::pack() and ::unpack(). Used by
// the raw-frame test client to write frames a well-behaved library never
// would, and to read exactly what the gateway sent.
//
// The codec only encodes and decodes; whether a frame is allowed where it
// appears (control frame rules, UTF-8, close codes) is the protocol's
// business (protocol_rules.hpp). It does reject what cannot be a frame at
// all: a 64-bit length with its most significant bit set.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway::frame_codec {

inline constexpr std::uint8_t kContinuation = 0x0;
inline constexpr std::uint8_t kText = 0x1;
inline constexpr std::uint8_t kBinary = 0x2;
inline constexpr std::uint8_t kClose = 0x8;
inline constexpr std::uint8_t kPing = 0x9;
inline constexpr std::uint8_t kPong = 0xA;

struct Frame {
  bool fin = true;
  bool rsv1 = false;  // permessage-deflate's "compressed" bit
  bool rsv2 = false;
  bool rsv3 = false;
  std::uint8_t opcode = kText;  // 4 bits
  // Clients mask every frame they send; servers never do.
  std::optional<std::array<std::uint8_t, 4>> mask;
  std::string payload;  // unmasked
};

// Appends `frame` to `out`, with the shortest length encoding and the
// payload masked when frame.mask is set.
void Pack(const Frame& frame, std::string& out);
std::string Pack(const Frame& frame);

struct Unpacked {
  enum class Status { kFrame, kNeedMore, kInvalid };
  Status status = Status::kNeedMore;
  Frame frame;               // kFrame: the frame, payload unmasked
  std::size_t consumed = 0;  // kFrame: bytes of `data` it took
  std::string error;         // kInvalid: why
};

// The fixed part of a frame, without its payload: what a reader needs to
// decide about a frame before its payload has arrived.
struct Header {
  bool fin = true;
  bool rsv1 = false;
  bool rsv2 = false;
  bool rsv3 = false;
  std::uint8_t opcode = kText;
  bool masked = false;
  std::array<std::uint8_t, 4> mask{};
  std::uint64_t length = 0;
  // Bytes the header takes on the wire (2 to 14).
  std::size_t size = 0;
  // The length used the shortest encoding, as RFC 6455 section 5.2 requires.
  bool minimal_length = true;
};
inline constexpr std::size_t kMaxHeaderBytes = 14;

enum class HeaderStatus { kComplete, kNeedMore, kInvalid };
// Reads the header at the start of `data`. kInvalid only for a 64-bit
// length with its most significant bit set, which no frame can have.
HeaderStatus ParseHeader(std::string_view data, Header& header);

// Writes an unmasked header (the server side) into `out`, returning its
// size.
std::size_t WriteHeader(bool fin, bool rsv1, std::uint8_t opcode, std::uint64_t length,
                        std::uint8_t (&out)[kMaxHeaderBytes]);

// XORs `data` with `mask`, starting at byte `offset` of the mask cycle, so a
// payload can be unmasked in pieces as it arrives.
void ApplyMask(char* data, std::size_t size, const std::array<std::uint8_t, 4>& mask, std::size_t offset);

// Decodes the frame at the start of `data`. Payloads larger than
// `max_payload` are kInvalid, so a peer cannot make the reader buffer
// without bound.
Unpacked Unpack(std::string_view data, std::uint64_t max_payload);

}  // namespace wsgateway::frame_codec
