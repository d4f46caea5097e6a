// The frame reader (gateway/websocket/message_reader.*) on the bytes a client sends,
// as the session feeds it: in chunks as they arrive, the unconsumed rest
// kept (in-place unmasking included) and handed in again with the next
// chunk. Built twice: without permessage-deflate, and with it
// (WSG_FUZZ_DEFLATE), where the loop's shared inflater is then checked to
// still inflate another connection's message correctly.
//
// Input: 4 bytes of options, then the client's bytes.
//   [0] bit 0: client_no_context_takeover; bits 1-3: client window bits - 8
//   [1] chunk size (0: everything in one read)
//   [2..3] max_message_bytes / 32 - 1, little-endian (32 B to 2 MiB)

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "gateway/websocket/deflate_codec.hpp"
#include "gateway/websocket/message_reader.hpp"
#include "gateway/websocket/protocol_rules.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using wsgateway::MessageInflater;
using wsgateway::MessageReader;
namespace fc = wsgateway::frame_codec;

#ifdef WSG_FUZZ_DEFLATE
constexpr bool kCompression = true;
#else
constexpr bool kCompression = false;
#endif

// Runs the reader over `buffer` (the bytes not consumed yet) until it needs
// more; the bytes are passed in an allocation of exactly their size, so
// AddressSanitizer sees any read past them. False once it stopped.
bool Drain(MessageReader& reader, const MessageReader::Options& options, std::string& buffer) {
  for (;;) {
    const std::size_t size = buffer.size();
    std::unique_ptr<char[]> exact(new char[size == 0 ? 1 : size]);
    if (size > 0) std::memcpy(exact.get(), buffer.data(), size);
    const auto item = reader.Next(exact.get(), size);
    FUZZ_CHECK(item.consumed <= size);
    switch (item.kind) {
      case MessageReader::Kind::kNeedMore:
        break;
      case MessageReader::Kind::kMessage:
        FUZZ_CHECK(item.consumed > 0);
        FUZZ_CHECK(item.opcode == fc::kText || item.opcode == fc::kBinary);
        FUZZ_CHECK(item.payload.size() <= options.max_message_bytes);
        FUZZ_CHECK(item.opcode != fc::kText || wsgateway::IsValidUtf8(item.payload));
        FUZZ_CHECK(kCompression || !item.compressed);
        break;
      case MessageReader::Kind::kPing:
      case MessageReader::Kind::kPong:
        FUZZ_CHECK(item.consumed > 0);
        FUZZ_CHECK(item.payload.size() <= wsgateway::kMaxControlPayloadBytes);
        break;
      case MessageReader::Kind::kClose:
        FUZZ_CHECK(item.code == 1005 || wsgateway::IsValidReceivedCloseCode(item.code));
        FUZZ_CHECK(item.payload.size() <= wsgateway::kMaxCloseReasonBytes);
        FUZZ_CHECK(wsgateway::IsValidUtf8(item.payload));
        return false;
      case MessageReader::Kind::kFail:
        FUZZ_CHECK(item.code == 1002 || item.code == 1007 || item.code == 1009 || item.code == 1011);
        FUZZ_CHECK(!item.payload.empty());
        return false;
    }
    // What was consumed is gone; the rest (unmasked in place where the
    // reader got to) stays for the next call, as in the session.
    if (size > 0) std::memcpy(buffer.data(), exact.get(), size);
    buffer.erase(0, item.consumed);
    if (item.kind == MessageReader::Kind::kNeedMore) return true;
  }
}

#ifdef WSG_FUZZ_DEFLATE
// Another connection's compressed text message "Hello" (RFC 7692 section
// 7.2.3.1), masked with a zero key, through the same shared inflater: a
// broken message must not have left anything behind in it.
void CheckSharedInflaterStillWorks(MessageInflater& shared) {
  MessageReader::Options options;
  options.compression = true;
  options.client_no_context_takeover = true;
  MessageReader reader(options, shared);
  char frame[] = {'\xc1', '\x87', 0, 0, 0, 0, '\xf2', '\x48', '\xcd', '\xc9', '\xc9', '\x07', '\x00'};
  const auto item = reader.Next(frame, sizeof frame);
  FUZZ_CHECK(item.kind == MessageReader::Kind::kMessage);
  FUZZ_CHECK(item.payload == "Hello");
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  MessageReader::Options options;
  options.compression = kCompression;
  options.client_no_context_takeover = (data[0] & 1) != 0;
  options.client_max_window_bits = 8 + ((data[0] >> 1) & 7);
  const std::size_t chunk = data[1];
  options.max_message_bytes = (static_cast<std::size_t>(data[2] | (data[3] << 8)) + 1) * 32;
  data += 4;
  size -= 4;

  // The event loop's inflater, shared by its connections.
  MessageInflater shared(15);
  {
    MessageReader reader(options, shared);
    std::string buffer;
    std::size_t offset = 0;
    do {
      const std::size_t n = chunk == 0 ? size - offset : std::min(chunk, size - offset);
      buffer.append(reinterpret_cast<const char*>(data) + offset, n);
      offset += n;
      if (!Drain(reader, options, buffer)) break;
    } while (offset < size);
  }
#ifdef WSG_FUZZ_DEFLATE
  CheckSharedInflaterStillWorks(shared);
#endif
  return 0;
}
