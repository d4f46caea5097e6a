#pragma once
// The zlib state an event loop shares among its connections. Every
// connection compresses and decompresses without context takeover, so one
// deflater per window size and one inflater serve them all, one message at
// a time, and an idle compressed connection holds no zlib memory at all.
// Loop thread only.

#include <array>
#include <memory>
#include <string>

#include "gateway/websocket/deflate_codec.hpp"

namespace wsgateway {

class LoopCompression {
 public:
  explicit LoopCompression(int level);

  // Inflates messages that arrive whole; a 15-bit window serves every
  // client window size.
  MessageInflater& inflater() { return inflater_; }

  // The deflated form of `payload` for a window of `window_bits`, or null
  // when deflating would not make it smaller. The last result is kept, so a
  // broadcast is compressed once per loop rather than once per recipient.
  std::shared_ptr<const std::string> Compress(const std::shared_ptr<const std::string>& payload, int window_bits);

 private:
  const int level_;
  MessageInflater inflater_{15};
  std::array<std::unique_ptr<MessageDeflater>, 16> deflaters_;
  std::shared_ptr<const std::string> last_source_;
  int last_window_bits_ = 0;
  std::shared_ptr<const std::string> last_result_;
};

}  // namespace wsgateway
