#include "gateway/websocket/deflate_codec.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <vector>

namespace wsgateway {
namespace {

// RFC 7692 7.2.1: what a sync flush ends with and the wire leaves out.
constexpr char kTail[] = {'\x00', '\x00', '\xff', '\xff'};
constexpr std::string_view kTailView(kTail, sizeof kTail);

constexpr int kMinInflateWindowBits = 9;
constexpr int kMaxWindowBits = 15;

// zlib counts in uInt; bigger buffers go through in pieces.
constexpr std::size_t kMaxZlibChunk = UINT_MAX;

uInt ZlibSize(std::size_t size) { return static_cast<uInt>(std::min(size, kMaxZlibChunk)); }

Bytef* ZlibIn(const char* data) { return reinterpret_cast<Bytef*>(const_cast<char*>(data)); }

Bytef* ZlibOut(std::string& out, std::size_t offset) { return reinterpret_cast<Bytef*>(out.data() + offset); }

// How big `out` becomes when the compressor runs out of room: the first
// guess assumes text halves, then the output so far doubles.
std::size_t NextDeflateSize(std::size_t size, std::size_t start, std::size_t input) {
  const std::size_t produced = size - start;
  return size + (produced == 0 ? input / 2 + 64 : std::max<std::size_t>(produced, 64));
}

// The inflater's buffer may hold one byte past the limit: that byte is how
// it learns the limit was passed without inflating any further.
std::size_t InflateCapacity(std::size_t max_message_bytes) {
  return max_message_bytes == std::numeric_limits<std::size_t>::max() ? max_message_bytes : max_message_bytes + 1;
}

// Room for 4x the input first (typical text ratios), then double what this
// frame has produced, never past `capacity`. Growth follows this frame's
// output, not the message's, so a message of many frames is not copied or
// zero-filled over and over.
std::size_t NextInflateSize(std::size_t size, std::size_t produced, std::size_t input, std::size_t capacity) {
  const std::size_t step = std::max<std::size_t>({produced, input < capacity / 4 ? input * 4 : capacity, 256});
  return capacity - size < step ? capacity : size + step;
}

}  // namespace

// ----------------------------------------------------------------- deflater
MessageDeflater::MessageDeflater(int window_bits, int level, int mem_level)
    : window_bits_(window_bits), level_(level), mem_level_(mem_level) {}

MessageDeflater::~MessageDeflater() { Release(); }

bool MessageDeflater::Allocate() {
  auto stream = std::make_unique<z_stream>();
  // A negative window asks for raw deflate: no zlib header or checksum.
  if (deflateInit2(stream.get(), level_, Z_DEFLATED, -window_bits_, mem_level_, Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  stream_ = std::move(stream);
  return true;
}

void MessageDeflater::Release() {
  if (!stream_) return;
  deflateEnd(stream_.get());
  stream_.reset();
}

bool MessageDeflater::Compress(std::string_view message, std::string& out, bool reset_after) {
  if (!stream_ && !Allocate()) return false;
  const std::size_t start = out.size();
  // A sync flush always ends in an empty stored block, 00 00 FF FF.
  if (!Deflate(message, out) || out.size() - start < kTailView.size() ||
      std::string_view(out).substr(out.size() - kTailView.size()) != kTailView) {
    out.resize(start);
    Release();
    return false;
  }
  out.resize(out.size() - kTailView.size());
  if (reset_after) deflateReset(stream_.get());
  return true;
}

bool MessageDeflater::Deflate(std::string_view message, std::string& out) {
  z_stream& z = *stream_;
  const std::size_t start = out.size();
  std::size_t produced = start;
  std::size_t consumed = 0;
  do {
    const uInt chunk = ZlibSize(message.size() - consumed);
    z.next_in = ZlibIn(message.data() + consumed);
    z.avail_in = chunk;
    consumed += chunk;
    const int flush = consumed == message.size() ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    // Until zlib leaves room unused it may have more to write.
    do {
      if (produced == out.size()) out.resize(NextDeflateSize(out.size(), start, message.size()));
      z.next_out = ZlibOut(out, produced);
      z.avail_out = ZlibSize(out.size() - produced);
      const uInt room = z.avail_out;
      const int rc = deflate(&z, flush);
      produced += room - z.avail_out;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out.resize(produced);
        return false;
      }
    } while (z.avail_out == 0);
  } while (consumed < message.size());
  out.resize(produced);
  return true;
}

// ----------------------------------------------------------------- inflater
MessageInflater::MessageInflater(int window_bits)
    : window_bits_(std::clamp(window_bits, kMinInflateWindowBits, kMaxWindowBits)) {}

MessageInflater::~MessageInflater() { Release(); }

bool MessageInflater::Allocate() {
  auto stream = std::make_unique<z_stream>();
  if (inflateInit2(stream.get(), -window_bits_) != Z_OK) return false;
  stream_ = std::move(stream);
  return true;
}

void MessageInflater::Release() {
  if (stream_) inflateEnd(stream_.get());
  stream_.reset();
  message_has_input_ = false;
  stream_ended_ = false;
}

void MessageInflater::Reset() {
  if (stream_) inflateReset(stream_.get());
  message_has_input_ = false;
  stream_ended_ = false;
}

MessageInflater::Result MessageInflater::Abandon(Result result) {
  if (result == Result::kFailed) {
    Release();
  } else {
    Reset();
  }
  return result;
}

MessageInflater::Result MessageInflater::Feed(std::string_view compressed, std::string& out,
                                              std::size_t max_message_bytes) {
  if (!stream_ && !Allocate()) return Result::kFailed;
  if (compressed.empty()) return Result::kOk;
  message_has_input_ = true;
  return Inflate(compressed, out, max_message_bytes);
}

MessageInflater::Result MessageInflater::Finish(std::string& out, std::size_t max_message_bytes, bool reset_after) {
  if (!stream_ && !Allocate()) return Result::kFailed;
  // A message whose data ended with a final block needs no tail (RFC 7692
  // 7.2.3.4 still sends one, after a byte that starts a new stream).
  if (message_has_input_ && !stream_ended_) {
    const Result result = Inflate(kTailView, out, max_message_bytes);
    if (result != Result::kOk) return result;
    if (!stream_ended_ && !AtBlockBoundary()) return Abandon(Result::kCorrupt);
  }
  if (reset_after) inflateReset(stream_.get());
  message_has_input_ = false;
  stream_ended_ = false;
  return Result::kOk;
}

// inflate() reports in data_type bit 7 that it stopped between blocks.
bool MessageInflater::AtBlockBoundary() const { return (stream_->data_type & 128) != 0; }

// A final block ends zlib's stream, but RFC 7692 lets more blocks follow it
// in the same message and later messages refer back to it (context
// takeover): a fresh stream carries on with the old window as its
// dictionary.
bool MessageInflater::RestartKeepingWindow() {
  z_stream& z = *stream_;
  std::vector<Bytef> window(std::size_t{1} << window_bits_);
  uInt length = 0;
  if (inflateGetDictionary(&z, window.data(), &length) != Z_OK) return false;
  if (inflateReset(&z) != Z_OK) return false;
  return length == 0 || inflateSetDictionary(&z, window.data(), length) == Z_OK;
}

MessageInflater::Result MessageInflater::Inflate(std::string_view input, std::string& out,
                                                 std::size_t max_message_bytes) {
  if (out.size() > max_message_bytes) return Abandon(Result::kTooBig);
  z_stream& z = *stream_;
  const std::size_t capacity = InflateCapacity(max_message_bytes);
  const std::size_t start = out.size();
  std::size_t produced = start;
  std::size_t consumed = 0;
  z.avail_in = 0;
  for (;;) {
    if (z.avail_in == 0 && consumed < input.size()) {
      z.next_in = ZlibIn(input.data() + consumed);
      z.avail_in = ZlibSize(input.size() - consumed);
      consumed += z.avail_in;
      stream_ended_ = false;
    }
    if (produced == out.size()) out.resize(NextInflateSize(out.size(), produced - start, input.size(), capacity));
    z.next_out = ZlibOut(out, produced);
    z.avail_out = ZlibSize(out.size() - produced);
    const uInt room = z.avail_out;
    const int rc = inflate(&z, Z_SYNC_FLUSH);
    produced += room - z.avail_out;
    if (produced > max_message_bytes) {
      out.resize(max_message_bytes);
      return Abandon(Result::kTooBig);
    }
    if (rc == Z_STREAM_END) {
      if (!RestartKeepingWindow()) return Abandon(Result::kFailed);
      stream_ended_ = z.avail_in == 0;
    } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
      out.resize(produced);
      return Abandon(Result::kCorrupt);
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      out.resize(produced);
      return Abandon(Result::kFailed);
    }
    // With room left over, zlib has taken all the input it was given.
    if (z.avail_out != 0 && z.avail_in == 0 && consumed == input.size()) break;
  }
  out.resize(produced);
  return Result::kOk;
}

}  // namespace wsgateway
