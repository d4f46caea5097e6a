#include "tests/support/raw_ws_client.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
// Beast's SHA-1 and base64 compute the expected Sec-WebSocket-Accept
// independently of whatever the gateway's handshake code uses.
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/detail/sha1.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>

namespace wsgateway::testing {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Outcome = RawRead::Outcome;

namespace {

// Larger than any message the gateway sends in the tests; a corrupt length
// then shows up as a timeout with pending bytes rather than a huge buffer.
constexpr std::uint64_t kMaxIncomingPayload = 64u * 1024 * 1024;
constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr std::size_t kReadChunkBytes = 64 * 1024;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

std::string Base64(const void* data, std::size_t size) {
  std::string out(boost::beast::detail::base64::encoded_size(size), '\0');
  out.resize(boost::beast::detail::base64::encode(out.data(), data, size));
  return out;
}

// RFC 6455, section 4.2.2: base64(SHA-1(key + GUID)).
std::string ExpectedAccept(const std::string& key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  boost::beast::detail::sha1_context ctx;
  boost::beast::detail::init(ctx);
  boost::beast::detail::update(ctx, key.data(), key.size());
  boost::beast::detail::update(ctx, kGuid.data(), kGuid.size());
  char digest[boost::beast::detail::sha1_context::digest_size];
  boost::beast::detail::finish(ctx, digest);
  return Base64(digest, sizeof digest);
}

// True when the comma-separated header value lists `token` (case-insensitive).
bool HasToken(const std::string& value, std::string_view token) {
  std::size_t start = 0;
  const std::string lowered = Lower(value);
  while (start <= lowered.size()) {
    const auto comma = std::min(lowered.find(',', start), lowered.size());
    if (Trim(std::string_view(lowered).substr(start, comma - start)) == token) return true;
    start = comma + 1;
  }
  return false;
}

bool Offered(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [name](const auto& h) { return Lower(h.first) == name; });
}

// Fills status and headers from the response header (without its final CRLF CRLF).
void ParseResponseHead(std::string_view head, RawHandshake& result) {
  const auto line_end = std::min(head.find("\r\n"), head.size());
  const std::string_view status_line = head.substr(0, line_end);
  const auto space = status_line.find(' ');
  if (space != std::string_view::npos && status_line.size() >= space + 4) {
    unsigned status = 0;
    for (const char c : status_line.substr(space + 1, 3)) status = status * 10 + static_cast<unsigned>(c - '0');
    result.http_status = status;
  }
  std::size_t start = line_end + 2;
  while (start < head.size()) {
    const auto end = std::min(head.find("\r\n", start), head.size());
    const std::string_view line = head.substr(start, end - start);
    start = end + 2;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto& value = result.headers[Lower(std::string(line.substr(0, colon)))];
    value += (value.empty() ? "" : ", ") + Trim(line.substr(colon + 1));
  }
}

// RFC 6455, section 4.1: what a client must check in a 101 response.
std::string UpgradeProblem(const RawHandshake& result, const std::string& key,
                           const std::vector<std::pair<std::string, std::string>>& request_headers) {
  const auto header = [&result](const std::string& name) {
    const auto it = result.headers.find(name);
    return it == result.headers.end() ? std::optional<std::string>() : it->second;
  };
  if (Lower(header("upgrade").value_or("")) != "websocket") return "Upgrade is not 'websocket'";
  if (!HasToken(header("connection").value_or(""), "upgrade")) return "Connection does not list 'Upgrade'";
  const auto accept = header("sec-websocket-accept");
  if (accept != ExpectedAccept(key)) {
    return "Sec-WebSocket-Accept is '" + accept.value_or("(missing)") + "', expected '" + ExpectedAccept(key) + "'";
  }
  if (header("sec-websocket-extensions") && !Offered(request_headers, "sec-websocket-extensions")) {
    return "the server chose an extension that was not offered: " + *header("sec-websocket-extensions");
  }
  if (header("sec-websocket-protocol") && !Offered(request_headers, "sec-websocket-protocol")) {
    return "the server chose a subprotocol that was not offered: " + *header("sec-websocket-protocol");
  }
  return {};
}

Outcome OutcomeOf(const error_code& ec) {
  if (ec == asio::error::eof) return Outcome::kEof;
  if (ec == asio::error::connection_reset) return Outcome::kReset;
  if (ec == asio::error::timed_out) return Outcome::kTimeout;
  return Outcome::kError;
}

// SO_ERROR: after a FIN, a reset leaves EPIPE (or ECONNRESET) pending there
// while reads keep reporting EOF.
error_code PendingError(asio::ip::tcp::socket& socket) {
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  return error_code(error, boost::system::system_category());
}

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

std::string OpcodeName(std::uint8_t opcode) {
  switch (opcode) {
    case frame_codec::kContinuation:
      return "continuation";
    case frame_codec::kText:
      return "text";
    case frame_codec::kBinary:
      return "binary";
    case frame_codec::kClose:
      return "close";
    case frame_codec::kPing:
      return "ping";
    case frame_codec::kPong:
      return "pong";
    default: {
      char name[16];
      std::snprintf(name, sizeof name, "opcode 0x%X", opcode);
      return name;
    }
  }
}

std::string DescribeFrames(const std::vector<frame_codec::Frame>& frames) {
  std::string out;
  for (const auto& frame : frames) out += (out.empty() ? "[" : "; ") + DescribeFrame(frame);
  return out.empty() ? "[]" : out + "]";
}

}  // namespace

// ---- Descriptions ------------------------------------------------------------

std::string Printable(std::string_view bytes, std::size_t limit) {
  std::string out = "\"";
  for (const char c : bytes.substr(0, limit)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    }
  }
  out += '"';
  if (bytes.size() > limit) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

std::string DescribeFrame(const frame_codec::Frame& frame) {
  std::string out = OpcodeName(frame.opcode);
  if (frame.opcode == frame_codec::kClose && frame.payload.size() >= 2) {
    out += " " + std::to_string((static_cast<std::uint8_t>(frame.payload[0]) << 8) |
                                static_cast<std::uint8_t>(frame.payload[1]));
  }
  out += frame.fin ? " fin" : " no-fin";
  if (frame.rsv1 || frame.rsv2 || frame.rsv3) {
    out += std::string(" rsv=") + (frame.rsv1 ? '1' : '0') + (frame.rsv2 ? '1' : '0') + (frame.rsv3 ? '1' : '0');
  }
  out += frame.mask ? " masked" : "";
  out += " len=" + std::to_string(frame.payload.size()) + " " + Printable(frame.payload);
  return out;
}

std::string RawHandshake::Describe() const {
  std::string out = "HTTP " + std::to_string(http_status);
  if (ec) out += ", " + ec.message();
  if (!problem.empty()) out += ", " + problem;
  return out;
}

std::string RawRead::Describe() const {
  const std::string pending = pending_bytes > 0 ? " with " + std::to_string(pending_bytes) + " undecoded bytes" : "";
  switch (outcome) {
    case Outcome::kFrame:
      return "frame: " + DescribeFrame(frame);
    case Outcome::kEof:
      return "orderly EOF (FIN)" + pending;
    case Outcome::kReset:
      return "connection reset (ECONNRESET)" + pending;
    case Outcome::kTimeout:
      return "nothing before the deadline" + pending;
    case Outcome::kError:
      return "socket error: " + ec.message() + pending;
    case Outcome::kInvalid:
      return "bytes that are not a frame: " + problem;
  }
  return "?";
}

std::string RawClose::Describe() const {
  std::string out;
  if (received) {
    out = code ? "close frame with code " + std::to_string(*code) + " reason " + Printable(reason)
               : "close frame with payload " + Printable(frame.payload);
  } else {
    out = "no close frame: " + end.Describe();
  }
  if (!before.empty()) out += ", after " + DescribeFrames(before);
  return out;
}

std::string RawMessage::Describe() const {
  std::string out =
      complete ? OpcodeName(opcode) + " message in " + std::to_string(fragments) + " frame(s): " + Printable(payload)
               : "no whole message (" + std::to_string(fragments) + " fragment(s) so far): " + end.Describe();
  if (!control.empty()) out += ", control frames " + DescribeFrames(control);
  return out;
}

std::string RawEnd::Describe() const {
  RawRead read;
  read.outcome = outcome;
  read.ec = ec;
  std::string out = read.Describe();
  if (error_after_eof) out += ", then a reset (pending socket error: " + error_after_eof.message() + ")";
  if (!extra.empty()) out += " after " + std::to_string(extra.size()) + " more bytes " + Printable(extra);
  return out;
}

frame_codec::Frame MakeFrame(std::uint8_t opcode, std::string payload, bool fin) {
  frame_codec::Frame frame;
  frame.opcode = opcode;
  frame.fin = fin;
  frame.payload = std::move(payload);
  return frame;
}

std::string ClosePayload(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return payload;
}

// ---- The client -------------------------------------------------------------

RawWsClient::RawWsClient() : socket_(ioc_), random_(std::random_device{}()) {}

RawWsClient::~RawWsClient() { Close(); }

void RawWsClient::Close() {
  error_code ignored;
  socket_.close(ignored);
}

// Runs the operation started by `start` until it completes or the deadline
// passes; on the deadline, cancels it and reports timed_out.
template <typename Start>
error_code RawWsClient::Run(Clock::time_point deadline, Start&& start) {
  std::optional<error_code> result;
  ioc_.restart();
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc_.run_until(deadline);
  if (result) return *result;
  error_code ignored;
  socket_.cancel(ignored);
  ioc_.restart();
  ioc_.run_for(std::chrono::seconds(1));  // lets the cancelled operation finish
  return asio::error::timed_out;
}

error_code RawWsClient::ReadSome(Clock::time_point deadline) {
  std::string chunk(kReadChunkBytes, '\0');
  std::size_t got = 0;
  const auto ec = Run(deadline, [&](auto handler) {
    socket_.async_read_some(asio::buffer(chunk), [&got, handler](error_code e, std::size_t n) mutable {
      got = n;
      handler(e);
    });
  });
  pending_.append(chunk.data(), got);
  return ec;
}

std::uint8_t RawWsClient::RandomByte() {
  return static_cast<std::uint8_t>(std::uniform_int_distribution<unsigned>(0, 255)(random_));
}

std::array<std::uint8_t, 4> RawWsClient::RandomMask() {
  return {RandomByte(), RandomByte(), RandomByte(), RandomByte()};
}

RawHandshake RawWsClient::Connect(std::uint16_t port, const std::string& target,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawHandshake result;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
  result.ec = Run(deadline, [&](auto handler) { socket_.async_connect(endpoint, handler); });
  if (result.ec) return result;

  std::array<std::uint8_t, 16> key_bytes{};  // RFC 6455, section 4.1: a random 16-byte nonce
  for (auto& byte : key_bytes) byte = RandomByte();
  const std::string key = Base64(key_bytes.data(), key_bytes.size());
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                        "\r\nSec-WebSocket-Version: 13\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  result.ec = SendRaw(request, Remaining(deadline));
  if (result.ec) return result;

  std::size_t head_end = std::string::npos;
  while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (pending_.size() > kMaxResponseHeaderBytes) {
      result.problem = "response header larger than " + std::to_string(kMaxResponseHeaderBytes) + " bytes";
      return result;
    }
    result.ec = ReadSome(deadline);
    if (result.ec) return result;
  }
  ParseResponseHead(std::string_view(pending_).substr(0, head_end), result);
  pending_.erase(0, head_end + 4);
  if (result.http_status == 101) result.problem = UpgradeProblem(result, key, headers);
  return result;
}

error_code RawWsClient::SendRaw(std::string_view bytes, std::chrono::milliseconds timeout) {
  return Run(Clock::now() + timeout,
             [&](auto handler) { asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), handler); });
}

std::string RawWsClient::Encode(frame_codec::Frame frame, Masking masking) {
  if (masking == Masking::kNone) frame.mask.reset();
  if (masking == Masking::kRandom && !frame.mask) frame.mask = RandomMask();
  return frame_codec::Pack(frame);
}

error_code RawWsClient::SendFrame(frame_codec::Frame frame, Masking masking, std::chrono::milliseconds timeout) {
  return SendRaw(Encode(std::move(frame), masking), timeout);
}

error_code RawWsClient::SendFrames(std::vector<frame_codec::Frame> frames, std::chrono::milliseconds timeout) {
  std::string bytes;
  for (auto& frame : frames) bytes += Encode(std::move(frame));
  return SendRaw(bytes, timeout);
}

error_code RawWsClient::SendClose(std::uint16_t code, std::string_view reason, std::chrono::milliseconds timeout) {
  return SendFrame(MakeFrame(frame_codec::kClose, ClosePayload(code, reason)), Masking::kRandom, timeout);
}

error_code RawWsClient::SendEmptyClose(std::chrono::milliseconds timeout) {
  return SendFrame(MakeFrame(frame_codec::kClose, ""), Masking::kRandom, timeout);
}

RawRead RawWsClient::ReadFrame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawRead read;
  for (;;) {
    auto unpacked = frame_codec::Unpack(pending_, kMaxIncomingPayload);
    if (unpacked.status == frame_codec::Unpacked::Status::kFrame) {
      read.outcome = Outcome::kFrame;
      read.frame = std::move(unpacked.frame);
      pending_.erase(0, unpacked.consumed);
      return read;
    }
    if (unpacked.status == frame_codec::Unpacked::Status::kInvalid) {
      read.outcome = Outcome::kInvalid;
      read.problem = unpacked.error;
      read.pending_bytes = pending_.size();
      return read;
    }
    const auto ec = ReadSome(deadline);
    if (ec) {
      read.outcome = OutcomeOf(ec);
      read.ec = ec;
      read.pending_bytes = pending_.size();
      return read;
    }
  }
}

RawClose RawWsClient::ExpectClose(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawClose close;
  for (;;) {
    auto read = ReadFrame(Remaining(deadline));
    if (!read.is_frame()) {
      close.end = std::move(read);
      return close;
    }
    if (read.frame.opcode != frame_codec::kClose) {
      close.before.push_back(std::move(read.frame));
      continue;
    }
    close.received = true;
    close.frame = std::move(read.frame);
    const std::string& payload = close.frame.payload;
    if (payload.size() >= 2) {
      close.code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                              static_cast<std::uint8_t>(payload[1]));
      close.reason = payload.substr(2);
    }
    close.end = std::move(read);
    return close;
  }
}

RawMessage RawWsClient::ReadMessage(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawMessage message;
  for (;;) {
    auto read = ReadFrame(Remaining(deadline));
    if (!read.is_frame()) {
      message.end = std::move(read);
      return message;
    }
    auto& frame = read.frame;
    if (frame.opcode >= frame_codec::kClose) {
      message.control.push_back(frame);
      if (frame.opcode != frame_codec::kClose) continue;
      message.end = std::move(read);
      return message;
    }
    if (message.fragments++ == 0) message.opcode = frame.opcode;
    message.payload += frame.payload;
    if (frame.fin) {
      message.complete = true;
      return message;
    }
  }
}

RawEnd RawWsClient::ReadUntilEof(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawEnd end;
  for (;;) {
    end.extra += pending_;
    pending_.clear();
    const auto ec = ReadSome(deadline);
    if (ec) {
      end.extra += pending_;
      pending_.clear();
      end.outcome = OutcomeOf(ec);
      end.ec = ec;
      if (end.eof()) end.error_after_eof = PendingError(socket_);
      return end;
    }
  }
}

}  // namespace wsgateway::testing
