#pragma once
// The DEFLATE side of permessage-deflate (RFC 7692 section 7.2): one whole
// message compressed for the wire, and one message inflated frame by frame
// under a size limit.
//
// zlib state is big (a deflater with a 15-bit window and memLevel 8 holds
// about 256 KiB, an inflater about 7 KiB plus its window), so neither class
// allocates it before its first message, and Release() gives it back. The
// gateway keeps one shared instance per event loop for connections with no
// context takeover and creates a per-connection instance only when context
// takeover was agreed.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct z_stream_s;

namespace wsgateway {

class MessageDeflater {
 public:
  // Level 1 (zlib's fastest): the gateway spends its CPU relaying many
  // small messages, level 1 deflates them several times faster than zlib's
  // default of 6, and on messages of a few KiB the output is only a few
  // percent larger.
  static constexpr int kDefaultLevel = 1;
  static constexpr int kDefaultMemLevel = 8;

  // window_bits 9..15: zlib refuses a raw deflate stream with an 8-bit
  // window, so an agreement that asks for 8 cannot be served (and
  // NegotiateDeflate never makes one). Out-of-range values make Compress fail.
  explicit MessageDeflater(int window_bits, int level = kDefaultLevel, int mem_level = kDefaultMemLevel);
  ~MessageDeflater();
  MessageDeflater(const MessageDeflater&) = delete;
  MessageDeflater& operator=(const MessageDeflater&) = delete;

  // Compresses one whole message for the wire: raw deflate, sync-flushed,
  // with the trailing 00 00 FF FF removed (RFC 7692 7.2.1), appended to
  // `out`. With `reset_after` (server_no_context_takeover) the next message
  // starts from an empty window. False only when zlib fails (out of
  // memory); `out` is then as it was and the state is released.
  bool Compress(std::string_view message, std::string& out, bool reset_after);

  // Frees the zlib state; the next Compress allocates it again.
  void Release();
  bool allocated() const { return stream_ != nullptr; }
  int window_bits() const { return window_bits_; }

 private:
  bool Allocate();
  bool Deflate(std::string_view message, std::string& out);

  std::unique_ptr<z_stream_s> stream_;
  int window_bits_;
  int level_;
  int mem_level_;
};

class MessageInflater {
 public:
  // window_bits 8..15, the client_max_window_bits agreed. 8 inflates with a
  // 9-bit window: a larger window always reads a smaller one, and clients
  // built on zlib compress with 9 bits when asked for 8.
  explicit MessageInflater(int window_bits);
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  enum class Result {
    kOk,
    kTooBig,   // the message inflates past the limit: close with 1009
    kCorrupt,  // not valid DEFLATE data: close with 1007
    kFailed,   // zlib could not allocate its state: close with 1011
  };

  // Inflates the compressed payload of one frame of a message, appending to
  // `out`, which holds the message inflated so far. `out` never grows past
  // `max_message_bytes`: inflating stops as soon as the output passes the
  // limit, so a small payload cannot make the gateway produce a large one.
  // On anything but kOk the message is abandoned and the inflater is ready
  // for a new one (the context is lost).
  Result Feed(std::string_view compressed, std::string& out, std::size_t max_message_bytes);

  // Ends the message: inflates the 00 00 FF FF tail (RFC 7692 7.2.2) and
  // checks that the data ended on a block boundary, so a truncated message
  // is kCorrupt rather than silently short. With `reset_after`
  // (client_no_context_takeover) the next message starts from an empty
  // window.
  Result Finish(std::string& out, std::size_t max_message_bytes, bool reset_after);

  // Drops a message in progress (its connection went away) and the context.
  void Reset();

  // Frees the zlib state; the next Feed allocates it again.
  void Release();
  bool allocated() const { return stream_ != nullptr; }

 private:
  bool Allocate();
  Result Inflate(std::string_view input, std::string& out, std::size_t max_message_bytes);
  bool RestartKeepingWindow();
  bool AtBlockBoundary() const;
  Result Abandon(Result result);

  std::unique_ptr<z_stream_s> stream_;
  int window_bits_;
  // The message so far had compressed bytes; an empty payload is an empty
  // message however the tail would parse.
  bool message_has_input_ = false;
  // A final (BFINAL) block ended and nothing followed it yet.
  bool stream_ended_ = false;
};

}  // namespace wsgateway
