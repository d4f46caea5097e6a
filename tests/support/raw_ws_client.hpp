#pragma once
// A blocking WebSocket client that speaks in frames rather than messages, for
// the protocol tests: it writes frames a well-behaved library never would
// (reserved bits and opcodes, unmasked, fragmented control frames, bad close
// codes), reads back exactly what the gateway sent, one frame at a time, and
// tells an orderly TCP end (FIN) from a reset. Frames are encoded and decoded
// with the gateway's frame codec (gateway/websocket/frame_codec.hpp); the protocol
// rules are deliberately not shared, so the tests check the gateway against
// the RFC rather than against itself.
//
// Every call takes a timeout and runs the client's io_context for at most
// that long, so a test can never hang on the network. Reads are buffered:
// frames may arrive coalesced in one segment or split across several.
//
// Thread-safety: one object per thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/websocket/frame_codec.hpp"

namespace wsgateway::testing {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds kRawIoTimeout = 5s;

// The opening handshake's outcome.
struct RawHandshake {
  boost::system::error_code ec;                // transport error, if any
  unsigned http_status = 0;                    // 0 when no response header arrived
  std::map<std::string, std::string> headers;  // names lower-cased; repeated fields joined with ", "
  // Why a 101 response is not a valid upgrade for this request (RFC 6455,
  // section 4.1: Upgrade, Connection, Sec-WebSocket-Accept, an extension or
  // subprotocol that was not offered); empty when it is.
  std::string problem;

  bool ok() const { return !ec && http_status == 101 && problem.empty(); }
  std::string Describe() const;
};

// Why ReadFrame returned, and what it read.
struct RawRead {
  enum class Outcome {
    kFrame,    // `frame` holds the next frame
    kEof,      // the peer closed TCP in order (FIN) before a whole frame arrived
    kReset,    // ECONNRESET
    kTimeout,  // nothing whole arrived before the deadline
    kError,    // another socket error (see `ec`)
    kInvalid,  // the bytes are not a frame (see `problem`)
  };
  Outcome outcome = Outcome::kTimeout;
  frame_codec::Frame frame;
  boost::system::error_code ec;
  std::string problem;
  std::size_t pending_bytes = 0;  // bytes received but not yet decoded into a frame

  bool is_frame() const { return outcome == Outcome::kFrame; }
  std::string Describe() const;
};

// A close frame received from the peer, or why none came.
struct RawClose {
  bool received = false;
  frame_codec::Frame frame;                // the close frame itself
  std::optional<std::uint16_t> code;       // absent when the payload is empty (or one byte long)
  std::string reason;                      // the payload after the code
  std::vector<frame_codec::Frame> before;  // frames read before the close, in order
  RawRead end;                             // when !received: what ended the wait

  std::string Describe() const;
};

// One reassembled data message and the control frames met on the way.
struct RawMessage {
  bool complete = false;  // a data frame with FIN arrived
  std::uint8_t opcode = 0;
  std::string payload;
  std::size_t fragments = 0;
  std::vector<frame_codec::Frame> control;  // pings, pongs and a close, in order
  RawRead end;                              // when !complete: what ended the wait

  std::string Describe() const;
};

// How TCP ended after the close handshake.
struct RawEnd {
  RawRead::Outcome outcome = RawRead::Outcome::kTimeout;  // kEof, kReset, kTimeout or kError
  boost::system::error_code ec;
  std::string extra;  // bytes that arrived first (a conforming peer sends none after its close)
  // The socket's pending error right after the EOF: set when a reset has
  // already followed the FIN (a peer that closed with unread bytes, or that
  // was gone when the client's last bytes arrived). Best effort: a reset
  // arriving later is not seen.
  boost::system::error_code error_after_eof;

  bool eof() const { return outcome == RawRead::Outcome::kEof; }
  bool orderly() const { return eof() && !error_after_eof; }
  std::string Describe() const;
};

class RawWsClient {
 public:
  enum class Masking {
    kRandom,  // mask with a fresh random key unless frame.mask is already set
    kNone,    // send unmasked, as only a server may (RFC 6455, section 5.1)
  };

  RawWsClient();
  ~RawWsClient();
  RawWsClient(const RawWsClient&) = delete;
  RawWsClient& operator=(const RawWsClient&) = delete;

  // Connects to 127.0.0.1:port and sends an upgrade request for `target`
  // with a random Sec-WebSocket-Key plus `headers` (e.g.
  // {"Sec-WebSocket-Extensions", "permessage-deflate"}); reads the response
  // header. Bytes after the header stay buffered for ReadFrame.
  RawHandshake Connect(std::uint16_t port, const std::string& target = "/",
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       std::chrono::milliseconds timeout = kRawIoTimeout);

  // Writes bytes exactly as given.
  boost::system::error_code SendRaw(std::string_view bytes, std::chrono::milliseconds timeout = kRawIoTimeout);
  // Encodes and writes one frame.
  boost::system::error_code SendFrame(frame_codec::Frame frame, Masking masking = Masking::kRandom,
                                      std::chrono::milliseconds timeout = kRawIoTimeout);
  // Encodes several frames and writes them at once (they arrive coalesced).
  boost::system::error_code SendFrames(std::vector<frame_codec::Frame> frames,
                                       std::chrono::milliseconds timeout = kRawIoTimeout);
  // The wire form of a frame, masked as SendFrame would; to build raw writes.
  std::string Encode(frame_codec::Frame frame, Masking masking = Masking::kRandom);

  // A masked close frame with this code and reason; SendEmptyClose sends one
  // without a payload (no status code).
  boost::system::error_code SendClose(std::uint16_t code, std::string_view reason = {},
                                      std::chrono::milliseconds timeout = kRawIoTimeout);
  boost::system::error_code SendEmptyClose(std::chrono::milliseconds timeout = kRawIoTimeout);

  // The next frame, or why none arrived before the deadline.
  RawRead ReadFrame(std::chrono::milliseconds timeout = kRawIoTimeout);

  // Reads frames, answering nothing, until a close frame arrives (or reading
  // ends); the frames read first are kept in RawClose::before.
  RawClose ExpectClose(std::chrono::milliseconds timeout = kRawIoTimeout);

  // Reads frames until a whole data message (text or binary, reassembled
  // from its fragments) has arrived; control frames are collected, a close
  // frame ends the wait.
  RawMessage ReadMessage(std::chrono::milliseconds timeout = kRawIoTimeout);

  // Reads until the peer ends TCP; tells an orderly end (FIN) from a reset,
  // including a reset that came right after the FIN.
  RawEnd ReadUntilEof(std::chrono::milliseconds timeout = kRawIoTimeout);

  void Close();

 private:
  template <typename Start>
  boost::system::error_code Run(std::chrono::steady_clock::time_point deadline, Start&& start);
  // Appends what the socket has (at least one byte) to pending_.
  boost::system::error_code ReadSome(std::chrono::steady_clock::time_point deadline);
  std::uint8_t RandomByte();
  std::array<std::uint8_t, 4> RandomMask();

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string pending_;  // received, not yet decoded
  std::mt19937 random_;
};

// e.g. `close 1002 fin len=2 "\x03\xea"` or `text no-fin rsv=100 masked len=5 "Hello"`, for
// failure messages.
std::string DescribeFrame(const frame_codec::Frame& frame);
// Printable, escaped and shortened to `limit` bytes, for failure messages.
std::string Printable(std::string_view bytes, std::size_t limit = 48);

// Convenience constructors; the mask is left for SendFrame to choose.
frame_codec::Frame MakeFrame(std::uint8_t opcode, std::string payload, bool fin = true);
// A close payload: the code in network byte order, then the reason.
std::string ClosePayload(std::uint16_t code, std::string_view reason = {});

}  // namespace wsgateway::testing
