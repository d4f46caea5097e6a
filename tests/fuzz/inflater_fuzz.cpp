// The inflater with its limit (gateway/websocket/deflate_codec.*), and the deflater
// it pairs with. The input is taken twice:
//  - as the compressed payload of a message, cut into frames: the output
//    never passes the limit, and whatever the data did the inflater then
//    still inflates the next message correctly;
//  - as a message: what MessageDeflater makes of it inflates back to it
//    exactly (or is refused as too big when it is over the limit).
//
// Input: 4 bytes of options, then the data.
//   [0] bits 0-2: window bits - 8; bit 3: reset after each message
//       (client_no_context_takeover)
//   [1] frame size (0: the whole payload in one frame)
//   [2..3] max_message_bytes - 1, little-endian (1 B to 64 KiB)

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/websocket/deflate_codec.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using wsgateway::MessageDeflater;
using wsgateway::MessageInflater;
using Result = MessageInflater::Result;

// RFC 7692 section 7.2.3.1: "Hello" compressed, without the 00 00 ff ff tail.
constexpr std::string_view kHelloDeflated("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);

Result InflateMessage(MessageInflater& inflater, std::string_view payload, std::size_t frame, std::size_t limit,
                      bool reset_after, std::string& out) {
  std::size_t offset = 0;
  do {
    const std::size_t n = frame == 0 ? payload.size() - offset : std::min(frame, payload.size() - offset);
    const auto result = inflater.Feed(payload.substr(offset, n), out, limit);
    FUZZ_CHECK(out.size() <= limit);
    if (result != Result::kOk) return result;
    offset += n;
  } while (offset < payload.size());
  const auto result = inflater.Finish(out, limit, reset_after);
  FUZZ_CHECK(out.size() <= limit);
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const int window_bits = 8 + (data[0] & 7);
  const bool reset_after = (data[0] & 8) != 0;
  const std::size_t frame = data[1];
  const std::size_t limit = static_cast<std::size_t>(data[2] | (data[3] << 8)) + 1;
  const std::string_view input(reinterpret_cast<const char*>(data) + 4, size - 4);

  MessageInflater inflater(window_bits);
  std::string out;
  const auto result = InflateMessage(inflater, input, frame, limit, reset_after, out);
  FUZZ_CHECK(result != Result::kFailed);
  // The next message, on the same inflater, whatever became of this one.
  std::string hello;
  FUZZ_CHECK(InflateMessage(inflater, kHelloDeflated, 0, 64, true, hello) == Result::kOk);
  FUZZ_CHECK(hello == "Hello");

  // Round trip; the deflater's window is never larger than the inflater's.
  MessageDeflater deflater(std::max(window_bits, 9));
  std::string compressed;
  FUZZ_CHECK(deflater.Compress(input, compressed, /*reset_after=*/true));
  MessageInflater reader(std::max(window_bits, 9));
  std::string inflated;
  const auto back = InflateMessage(reader, compressed, frame, limit, true, inflated);
  if (input.size() <= limit) {
    FUZZ_CHECK(back == Result::kOk);
    FUZZ_CHECK(inflated == input);
  } else {
    FUZZ_CHECK(back == Result::kTooBig);
  }
  return 0;
}
