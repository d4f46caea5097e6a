#pragma once
// The receiving half of RFC 6455 (with RFC 7692 compression) for one
// connection: turns the bytes a client sends into whole messages and control
// frames, and names the exact close code each violation earns. It never
// does I/O, so every edge of the protocol is unit-testable.
//
// It works in place on the caller's buffer: payloads are unmasked where
// they lie, UTF-8 is checked as bytes arrive (a message fails at the first
// impossible byte, not at its end), and a message that came in one frame is
// handed out without a copy. Only fragmented or compressed messages are
// assembled in a buffer of the reader's own, released after each message.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/websocket/frame_codec.hpp"
#include "gateway/websocket/utf8_validator.hpp"

namespace wsgateway {

class MessageInflater;

class MessageReader {
 public:
  struct Options {
    std::size_t max_message_bytes = 2 * 1024 * 1024;
    // permessage-deflate was agreed: RSV1 marks a compressed message.
    bool compression = false;
    // The client resets its compressor after each message, so no inflate
    // state has to outlive one.
    bool client_no_context_takeover = false;
    // The window the client compresses with (RFC 7692 client_max_window_bits).
    int client_max_window_bits = 15;
  };

  enum class Kind {
    kNeedMore,  // nothing complete yet; drop `consumed` bytes and read more
    kMessage,   // a whole text or binary message
    kPing,
    kPong,
    kClose,  // the client's close frame, already validated
    kFail,   // a violation: close with `code`
  };

  struct Item {
    Kind kind = Kind::kNeedMore;
    // Bytes at the start of the input this call used up, whatever the kind.
    std::size_t consumed = 0;
    // kMessage: frame_codec::kText or kBinary.
    std::uint8_t opcode = 0;
    // kMessage, kPing, kPong: the payload. kClose: the reason. kFail: what
    // was wrong, for the close reason and the logs. Valid until the next
    // call and while the input bytes are kept.
    std::string_view payload;
    // kClose: the code in the frame, 1005 when it had none. kFail: the code
    // to close with (1002, 1007 or 1009).
    std::uint16_t code = 0;
    // kMessage: it arrived compressed.
    bool compressed = false;
  };

  // `shared_inflater` belongs to the event loop and serves every message
  // that arrives whole in one call, so an idle compressed connection holds
  // no zlib state.
  MessageReader(const Options& options, MessageInflater& shared_inflater);
  ~MessageReader();
  MessageReader(const MessageReader&) = delete;
  MessageReader& operator=(const MessageReader&) = delete;

  // Reads from `data` (the bytes received and not yet consumed; modified in
  // place) up to the next item. Call again with the remaining bytes after
  // handling it. Once kClose or kFail came back, stop calling.
  Item Next(char* data, std::size_t size);

  // Bytes of the message being assembled (fragments, or inflated bytes);
  // 0 between messages.
  std::size_t held_bytes() const { return in_message_ ? message_.size() : 0; }

 private:
  Item Fail(std::uint16_t code, std::string_view why, std::size_t consumed);
  std::string_view CheckHeader(const frame_codec::Header& header, std::uint16_t& code) const;
  Item OnControlFrame(const frame_codec::Header& header, char* payload, std::size_t consumed);
  Item OnDataFrame(const frame_codec::Header& header, char* payload, std::size_t consumed);
  Item InflateFrame(const frame_codec::Header& header, std::string_view payload, std::size_t consumed);
  // The frame carries deflated data: RSV1 on a message's first frame, or a
  // continuation of such a message.
  bool IsCompressed(const frame_codec::Header& header) const;
  void EndMessage();
  MessageInflater& InflaterFor(bool whole_message);

  Options options_;
  MessageInflater& shared_inflater_;
  // Created on the first fragmented compressed message, or on the first
  // compressed message at all when the client keeps its context.
  std::unique_ptr<MessageInflater> own_inflater_;

  // The frame whose payload is still arriving: how much of it has already
  // been unmasked and checked in place.
  bool frame_checked_ = false;
  std::size_t frame_processed_ = 0;

  // The fragmented (or compressed) message being assembled.
  bool in_message_ = false;
  bool message_compressed_ = false;
  std::uint8_t message_opcode_ = 0;
  std::string message_;
  bool release_message_ = false;
  Utf8Validator utf8_;
};

}  // namespace wsgateway
