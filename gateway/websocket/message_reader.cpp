#include "gateway/websocket/message_reader.hpp"

#include <algorithm>

#include "gateway/websocket/deflate_codec.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {

namespace fc = frame_codec;

namespace {

// An assembly buffer larger than this is freed after its message, so a
// connection that once got a large message does not keep it while idle.
constexpr std::size_t kKeptAssemblyBytes = 4 * 1024;

bool IsKnownOpcode(std::uint8_t opcode) {
  return opcode == fc::kContinuation || opcode == fc::kText || opcode == fc::kBinary || opcode == fc::kClose ||
         opcode == fc::kPing || opcode == fc::kPong;
}

bool IsControl(std::uint8_t opcode) { return (opcode & 0x08) != 0; }

// A compressed frame may be slightly larger than what it inflates to (stored
// blocks of incompressible data); the inflated size is what the limit is for.
std::uint64_t CompressedFrameLimit(std::size_t max_message_bytes) {
  return max_message_bytes + max_message_bytes / 1024 + 64;
}

MessageReader::Item MakeItem(MessageReader::Kind kind, std::size_t consumed, std::uint8_t opcode = 0,
                             std::string_view payload = {}, std::uint16_t code = 0, bool compressed = false) {
  MessageReader::Item item;
  item.kind = kind;
  item.consumed = consumed;
  item.opcode = opcode;
  item.payload = payload;
  item.code = code;
  item.compressed = compressed;
  return item;
}

}  // namespace

MessageReader::MessageReader(const Options& options, MessageInflater& shared_inflater)
    : options_(options), shared_inflater_(shared_inflater) {}

MessageReader::~MessageReader() = default;

bool MessageReader::IsCompressed(const fc::Header& header) const {
  return header.rsv1 || (header.opcode == fc::kContinuation && message_compressed_);
}

MessageReader::Item MessageReader::Next(char* data, std::size_t size) {
  if (release_message_) {
    message_.clear();
    if (message_.capacity() > kKeptAssemblyBytes) std::string().swap(message_);
    release_message_ = false;
  }
  std::size_t offset = 0;
  for (;;) {
    fc::Header header;
    const std::string_view rest(data + offset, size - offset);
    const auto status = fc::ParseHeader(rest, header);
    if (status == fc::HeaderStatus::kNeedMore) return MakeItem(Kind::kNeedMore, offset);
    if (status == fc::HeaderStatus::kInvalid) {
      return Fail(1002, "64-bit payload length with the most significant bit set", offset);
    }
    if (!frame_checked_) {
      std::uint16_t code = 1002;
      const auto why = CheckHeader(header, code);
      if (!why.empty()) return Fail(code, why, offset);
      frame_checked_ = true;
      frame_processed_ = 0;
    }
    char* payload = data + offset + header.size;
    const std::size_t available =
        static_cast<std::size_t>(std::min<std::uint64_t>(rest.size() - header.size, header.length));
    if (!IsControl(header.opcode) && !IsCompressed(header) && available > frame_processed_) {
      // Unmask and check what has arrived, so invalid text fails at once.
      char* fresh = payload + frame_processed_;
      const std::size_t fresh_size = available - frame_processed_;
      fc::ApplyMask(fresh, fresh_size, header.mask, frame_processed_);
      frame_processed_ = available;
      const bool text =
          header.opcode == fc::kText || (header.opcode == fc::kContinuation && message_opcode_ == fc::kText);
      if (text && !utf8_.Feed(std::string_view(fresh, fresh_size))) {
        return Fail(1007, "invalid UTF-8 in text message", offset);
      }
    }
    if (available < header.length) return MakeItem(Kind::kNeedMore, offset);

    const std::size_t frame_end = offset + header.size + available;
    frame_checked_ = false;
    Item item =
        IsControl(header.opcode) ? OnControlFrame(header, payload, frame_end) : OnDataFrame(header, payload, frame_end);
    if (item.kind != Kind::kNeedMore) return item;
    offset = frame_end;
  }
}

std::string_view MessageReader::CheckHeader(const fc::Header& header, std::uint16_t& code) const {
  code = 1002;
  if (header.rsv2 || header.rsv3) return "reserved bit RSV2 or RSV3 set";
  if (!IsKnownOpcode(header.opcode)) return "reserved opcode";
  if (header.rsv1) {
    if (!options_.compression) return "RSV1 set without a negotiated extension";
    if (IsControl(header.opcode)) return "RSV1 set on a control frame";
    if (header.opcode == fc::kContinuation) return "RSV1 set on a continuation frame";
  }
  if (!header.masked) return "unmasked client frame";
  if (!header.minimal_length) return "payload length not in its shortest encoding";
  if (IsControl(header.opcode)) {
    if (!header.fin) return "fragmented control frame";
    if (header.length > kMaxControlPayloadBytes) return "control frame payload over 125 bytes";
    return {};
  }
  if (header.opcode == fc::kContinuation && !in_message_) return "continuation frame without a message to continue";
  if (header.opcode != fc::kContinuation && in_message_) return "new data frame inside a fragmented message";
  code = 1009;
  if (IsCompressed(header)) {
    if (header.length > CompressedFrameLimit(options_.max_message_bytes)) return "message too big";
  } else if (header.length + message_.size() > options_.max_message_bytes) {
    return "message too big";
  }
  return {};
}

MessageReader::Item MessageReader::OnControlFrame(const fc::Header& header, char* payload, std::size_t consumed) {
  const auto size = static_cast<std::size_t>(header.length);
  fc::ApplyMask(payload, size, header.mask, 0);
  const std::string_view bytes(payload, size);
  if (header.opcode == fc::kPing) return MakeItem(Kind::kPing, consumed, 0, bytes);
  if (header.opcode == fc::kPong) return MakeItem(Kind::kPong, consumed, 0, bytes);
  if (size == 0) return MakeItem(Kind::kClose, consumed, 0, {}, 1005);
  if (size == 1) return Fail(1002, "close frame with a one-byte payload", consumed);
  const auto code =
      static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]));
  if (!IsValidReceivedCloseCode(code)) return Fail(1002, "invalid close code", consumed);
  const auto reason = bytes.substr(2);
  if (!IsValidUtf8(reason)) return Fail(1007, "close reason is not valid UTF-8", consumed);
  return MakeItem(Kind::kClose, consumed, 0, reason, code);
}

MessageReader::Item MessageReader::OnDataFrame(const fc::Header& header, char* payload, std::size_t consumed) {
  const auto size = static_cast<std::size_t>(header.length);
  if (IsCompressed(header)) {
    fc::ApplyMask(payload, size, header.mask, 0);
    return InflateFrame(header, std::string_view(payload, size), consumed);
  }
  if (!in_message_ && header.fin) {
    // The common case: a whole message in one frame, handed out in place.
    if (header.opcode == fc::kText && !utf8_.Complete()) {
      return Fail(1007, "invalid UTF-8 in text message", consumed);
    }
    utf8_.Reset();
    return MakeItem(Kind::kMessage, consumed, header.opcode, std::string_view(payload, size));
  }
  if (!in_message_) {
    in_message_ = true;
    message_compressed_ = false;
    message_opcode_ = header.opcode;
  }
  message_.append(payload, size);
  if (!header.fin) return MakeItem(Kind::kNeedMore, consumed);
  if (message_opcode_ == fc::kText && !utf8_.Complete()) {
    return Fail(1007, "invalid UTF-8 in text message", consumed);
  }
  EndMessage();
  return MakeItem(Kind::kMessage, consumed, message_opcode_, message_);
}

MessageReader::Item MessageReader::InflateFrame(const fc::Header& header, std::string_view payload,
                                                std::size_t consumed) {
  const bool first = !in_message_;
  if (first) {
    in_message_ = true;
    message_compressed_ = true;
    message_opcode_ = header.opcode;
  }
  MessageInflater& inflater = InflaterFor(first && header.fin);
  const bool shared = &inflater == &shared_inflater_;
  const std::size_t before = message_.size();
  auto result = inflater.Feed(payload, message_, options_.max_message_bytes);
  if (result == MessageInflater::Result::kOk && header.fin) {
    const bool reset = shared || options_.client_no_context_takeover;
    result = inflater.Finish(message_, options_.max_message_bytes, reset);
  }
  if (result != MessageInflater::Result::kOk) {
    // A shared inflater must not carry a broken stream into another
    // connection's message.
    if (shared) inflater.Release();
    if (result == MessageInflater::Result::kTooBig) return Fail(1009, "message too big", consumed);
    if (result == MessageInflater::Result::kFailed) return Fail(1011, "out of memory for decompression", consumed);
    return Fail(1007, "invalid compressed data", consumed);
  }
  if (message_opcode_ == fc::kText && !utf8_.Feed(std::string_view(message_).substr(before))) {
    if (shared) inflater.Release();
    return Fail(1007, "invalid UTF-8 in text message", consumed);
  }
  if (!header.fin) return MakeItem(Kind::kNeedMore, consumed);
  if (message_opcode_ == fc::kText && !utf8_.Complete()) {
    return Fail(1007, "invalid UTF-8 in text message", consumed);
  }
  if (options_.client_no_context_takeover) own_inflater_.reset();
  EndMessage();
  return MakeItem(Kind::kMessage, consumed, message_opcode_, message_, 0, true);
}

void MessageReader::EndMessage() {
  in_message_ = false;
  message_compressed_ = false;
  release_message_ = true;
  utf8_.Reset();
}

MessageInflater& MessageReader::InflaterFor(bool whole_message) {
  if (whole_message && options_.client_no_context_takeover) return shared_inflater_;
  if (!own_inflater_) own_inflater_ = std::make_unique<MessageInflater>(options_.client_max_window_bits);
  return *own_inflater_;
}

MessageReader::Item MessageReader::Fail(std::uint16_t code, std::string_view why, std::size_t consumed) {
  Item item;
  item.kind = Kind::kFail;
  item.consumed = consumed;
  item.payload = why;
  item.code = code;
  return item;
}

}  // namespace wsgateway
