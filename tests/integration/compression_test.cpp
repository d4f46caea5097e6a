// permessage-deflate (RFC 7692) end to end. The client side is a raw-frame
// client with zlib used directly here (raw DEFLATE, the 00 00 FF FF tail
// stripped and appended as section 7.2 says), so the gateway is checked
// against the RFC rather than against its own codec: the negotiation
// answer for several offers, compressed messages in both directions
// (whole and fragmented), the per-message compress flag of a push, a
// decompression bomb, and RSV1 where it is not allowed.

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gateway/websocket/frame_codec.hpp"
#include "tests/support/admin_client.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/unique_path.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;

constexpr std::chrono::milliseconds kDeadline = 20s;
constexpr std::size_t kMaxMessageBytes = 64 * 1024;
constexpr std::size_t kThreshold = 64;
// What the gateway answers to an acceptable offer without window
// parameters: it asks for no context takeover in both directions.
const std::string kBaseAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
const std::string kSyncTail("\x00\x00\xff\xff", 4);

// ---- zlib, client side ---------------------------------------------------------

// One message compressed as a client without context takeover would:
// raw DEFLATE with a fresh window, sync-flushed, the tail removed.
std::string Deflate(std::string_view message, int window_bits = 15) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, message.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  zs.avail_in = static_cast<uInt>(message.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_SYNC_FLUSH);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  if (rc != Z_OK || out.size() < 4 || out.substr(out.size() - 4) != kSyncTail) return {};
  out.resize(out.size() - 4);
  return out;
}

// One message from the server, inflated with a fresh window of
// `window_bits`; nullopt with *error when it is not valid for that window.
std::optional<std::string> Inflate(std::string_view payload, int window_bits = 15, std::string* error = nullptr) {
  z_stream zs{};
  if (inflateInit2(&zs, -window_bits) != Z_OK) return std::nullopt;
  std::string input(payload);
  input += kSyncTail;
  zs.next_in = reinterpret_cast<Bytef*>(input.data());
  zs.avail_in = static_cast<uInt>(input.size());
  std::string out;
  std::array<char, 16384> chunk{};
  int rc = Z_OK;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_SYNC_FLUSH);
    out.append(chunk.data(), chunk.size() - zs.avail_out);
  } while (rc == Z_OK && (zs.avail_in > 0 || zs.avail_out == 0));
  const bool ok = (rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END) && zs.avail_in == 0;
  if (!ok && error != nullptr) *error = zs.msg != nullptr ? zs.msg : "zlib error " + std::to_string(rc);
  inflateEnd(&zs);
  if (!ok) return std::nullopt;
  return out;
}

// Bytes that do not compress, from a fixed seed.
std::string Noise(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(random() & 0xFF);
  return bytes;
}

std::string Repeat(const std::string& unit, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

fc::Frame Compressed(std::uint8_t opcode, const std::string& deflated, bool fin = true) {
  auto frame = MakeFrame(opcode, deflated, fin);
  frame.rsv1 = true;
  return frame;
}

// Pushes every message back with its opcode, leaving compress unset.
void Echo(const v1::Event& event, v1::CommandBatch& commands) {
  if (!event.has_message()) return;
  auto* push = commands.add_commands()->mutable_push();
  push->add_connection_ids(event.connection_id());
  push->mutable_frame()->set_opcode(event.message().opcode());
  push->mutable_frame()->set_payload(event.message().payload());
}

// ---- The stack ---------------------------------------------------------------

class CompressionEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    stack = ScriptedStack::Start({"--permessage-deflate", "true", "--max-message-bytes", "64KiB",
                                  "--compression-threshold", std::to_string(kThreshold)},
                                 &error);
    if (stack) stack->backend->SetEventHandler(Echo);
  }
  void TearDown() override { stack.reset(); }

  static inline std::unique_ptr<ScriptedStack> stack;
  static inline std::string error;
};

[[maybe_unused]] ::testing::Environment* const kCompressionEnvironment =
    ::testing::AddGlobalTestEnvironment(new CompressionEnvironment);

class CompressionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(CompressionEnvironment::stack, nullptr) << CompressionEnvironment::error; }

  static ScriptedBackend& backend() { return *CompressionEnvironment::stack->backend; }
  static std::uint16_t port() { return CompressionEnvironment::stack->gateway->ws_port(); }

  // Connects with `offer` (none when empty); returns the connection id and
  // checks that compression was agreed exactly when `expect_deflate`.
  std::string Open(const std::string& offer = "permessage-deflate", bool expect_deflate = true) {
    const std::string path = UniquePath("pmd");
    std::vector<std::pair<std::string, std::string>> headers;
    if (!offer.empty()) headers.emplace_back("Sec-WebSocket-Extensions", offer);
    const auto handshake = client_.Connect(port(), path, headers, kDeadline);
    EXPECT_TRUE(handshake.ok()) << handshake.Describe();
    EXPECT_EQ(handshake.headers.count("sec-websocket-extensions"), expect_deflate ? 1u : 0u) << offer;
    const auto open = backend().WaitForOpen(path, kDeadline);
    EXPECT_TRUE(open.has_value()) << "no Open event for " << path;
    return open ? open->connection_id() : "";
  }

  // The message event the backend got from connection `id` with `nth`
  // (0-based) position among its messages.
  std::optional<v1::MessageEvent> BackendMessage(const std::string& id, std::size_t nth = 0) {
    const bool arrived = backend().WaitUntil(
        [&](const std::vector<v1::Event>& events) {
          std::size_t seen = 0;
          for (const auto& e : events) seen += e.connection_id() == id && e.has_message() ? 1 : 0;
          return seen > nth;
        },
        kDeadline);
    if (!arrived) return std::nullopt;
    std::size_t seen = 0;
    for (const auto& e : backend().EventsOf(id)) {
      if (e.has_message() && seen++ == nth) return e.message();
    }
    return std::nullopt;
  }

  // The next frame from the gateway must be one whole data message with
  // `opcode`, compressed exactly when `compressed`, that reads as `payload`.
  void ExpectMessage(std::uint8_t opcode, const std::string& payload, bool compressed, int window_bits = 15) {
    const auto read = client_.ReadFrame(kDeadline);
    ASSERT_TRUE(read.is_frame()) << read.Describe();
    const auto& frame = read.frame;
    EXPECT_EQ(frame.opcode, opcode) << DescribeFrame(frame);
    EXPECT_TRUE(frame.fin) << DescribeFrame(frame);
    EXPECT_FALSE(frame.rsv2 || frame.rsv3) << DescribeFrame(frame);
    ASSERT_EQ(frame.rsv1, compressed) << "expected a " << (compressed ? "compressed" : "plain") << " message of "
                                      << payload.size() << " bytes; got " << DescribeFrame(frame);
    if (!compressed) {
      EXPECT_EQ(frame.payload, payload);
      return;
    }
    std::string error;
    const auto inflated = Inflate(frame.payload, window_bits, &error);
    ASSERT_TRUE(inflated.has_value()) << "the compressed message does not inflate with a " << window_bits
                                      << "-bit window: " << error;
    EXPECT_EQ(*inflated, payload);
  }

  // The gateway must fail the connection with `code`, then end TCP in order
  // once the client answered the close.
  void ExpectFailure(std::uint16_t code) {
    const auto close = client_.ExpectClose(kDeadline);
    ASSERT_TRUE(close.received) << "expected close " << code << "; got " << close.Describe();
    EXPECT_EQ(close.code, code) << close.Describe();
    EXPECT_TRUE(close.before.empty()) << close.Describe();
    EXPECT_FALSE(close.frame.rsv1) << "a control frame must never be compressed";
    EXPECT_FALSE(client_.SendClose(code));
    const auto end = client_.ReadUntilEof(kDeadline);
    EXPECT_TRUE(end.eof()) << end.Describe();
    // The gateway waits for this FIN before it reports the Close.
    client_.Close();
  }

  Reply<v1::PushResponse> Push(const std::string& id, v1::Opcode opcode, const std::string& payload,
                               std::optional<bool> compress) {
    AdminClient admin(CompressionEnvironment::stack->gateway->admin_port());
    v1::PushRequest request;
    request.add_connection_ids(id);
    request.mutable_frame()->set_opcode(opcode);
    request.mutable_frame()->set_payload(payload);
    if (compress) request.mutable_frame()->set_compress(*compress);
    return admin.Push(request);
  }

  RawWsClient client_;
};

// ---- Negotiation ---------------------------------------------------------------

struct OfferCase {
  std::string name;
  std::vector<std::string> offers;  // Sec-WebSocket-Extensions header lines
  std::string answer;               // "" means no extension
};

std::ostream& operator<<(std::ostream& out, const OfferCase& c) { return out << c.name; }

class NegotiationTest : public CompressionTest, public ::testing::WithParamInterface<OfferCase> {};

// Every offer gets a 101; an acceptable one gets exactly this answer, an
// unacceptable one no extension at all; the Open event carries the same
// answer.
TEST_P(NegotiationTest, AnswersOfferExactly) {
  const OfferCase& c = GetParam();
  const std::string path = UniquePath("neg");
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& offer : c.offers) headers.emplace_back("Sec-WebSocket-Extensions", offer);
  const auto handshake = client_.Connect(port(), path, headers, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  const auto answer = handshake.headers.find("sec-websocket-extensions");
  EXPECT_EQ(answer == handshake.headers.end() ? "" : answer->second, c.answer);
  const auto open = backend().WaitForOpen(path, kDeadline);
  ASSERT_TRUE(open.has_value());
  const std::vector<std::string> extensions(open->open().extensions().begin(), open->open().extensions().end());
  EXPECT_EQ(extensions, c.answer.empty() ? std::vector<std::string>{} : std::vector<std::string>{c.answer});
}

INSTANTIATE_TEST_SUITE_P(
    Offers, NegotiationTest,
    ::testing::Values(
        OfferCase{"Plain", {"permessage-deflate"}, kBaseAnswer},
        OfferCase{"ClientMaxWindowBitsWithoutValue", {"permessage-deflate; client_max_window_bits"}, kBaseAnswer},
        OfferCase{"ClientMaxWindowBits10",
                  {"permessage-deflate; client_max_window_bits=10"},
                  kBaseAnswer + "; client_max_window_bits=10"},
        OfferCase{"ServerMaxWindowBits10",
                  {"permessage-deflate; server_max_window_bits=10"},
                  kBaseAnswer + "; server_max_window_bits=10"},
        OfferCase{"BothNoContextTakeoverOffered",
                  {"permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
                  kBaseAnswer},
        OfferCase{"ServerMaxWindowBits8Declined", {"permessage-deflate; server_max_window_bits=8"}, ""},
        OfferCase{"UnknownParameterDeclined", {"permessage-deflate; foo=bar"}, ""},
        OfferCase{"InvalidThenValidTakesTheSecond",
                  {"permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=12"},
                  kBaseAnswer + "; server_max_window_bits=12"},
        OfferCase{"InvalidThenValidOnTwoHeaderLines",
                  {"permessage-deflate; client_max_window_bits=7", "permessage-deflate"},
                  kBaseAnswer},
        OfferCase{"WebkitDeflateFrameOnly", {"x-webkit-deflate-frame"}, ""},
        OfferCase{"OtherExtensionFirst", {"x-webkit-deflate-frame, permessage-deflate"}, kBaseAnswer}),
    [](const ::testing::TestParamInfo<OfferCase>& info) { return info.param.name; });

// The Open event and GetClientInfo spell the negotiated extension the same
// way: as the gateway answered it in Sec-WebSocket-Extensions, parameters
// included.
TEST_F(CompressionTest, OpenEventAndClientInfoSpellTheExtensionAlike) {
  const std::string path = UniquePath("spell");
  const auto handshake = client_.Connect(
      port(), path, {{"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=10"}}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  ASSERT_EQ(handshake.headers.count("sec-websocket-extensions"), 1u);
  const std::string answer = handshake.headers.at("sec-websocket-extensions");
  const auto open = backend().WaitForOpen(path, kDeadline);
  ASSERT_TRUE(open.has_value()) << "no Open event for " << path;
  AdminClient admin(CompressionEnvironment::stack->gateway->admin_port());
  const auto info = admin.GetClientInfo(open->connection_id());
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  const std::vector<std::string> from_open(open->open().extensions().begin(), open->open().extensions().end());
  const std::vector<std::string> from_info(info.response.info().extensions().begin(),
                                           info.response.info().extensions().end());
  EXPECT_EQ(from_open, from_info);
  EXPECT_EQ(from_open, std::vector<std::string>{answer});
}

// ---- Messages from the client ----------------------------------------------------

// Compressed text and binary messages reach the backend inflated, and come
// back (pushed with compress unset, above the threshold: compressed).
TEST_F(CompressionTest, CompressedMessagesArriveInflatedAndComeBack) {
  const std::string id = Open();
  const std::string text = Repeat("κόσμε, compressed hello. ", 40);
  std::string binary = Repeat(std::string("\x00\x01\x02\xff", 4), 500) + Noise(100, 7);
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, Deflate(text))));
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, text, /*compressed=*/true));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, Deflate(binary))));
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kBinary, binary, /*compressed=*/true));

  const auto first = BackendMessage(id, 0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->opcode(), v1::OPCODE_TEXT);
  EXPECT_EQ(first->payload(), text);
  const auto second = BackendMessage(id, 1);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->opcode(), v1::OPCODE_BINARY);
  EXPECT_EQ(second->payload(), binary);
}

// A compressed message in three frames (RSV1 on the first only) is
// inflated as one message.
TEST_F(CompressionTest, FragmentedCompressedMessageArrivesWhole) {
  const std::string id = Open();
  const std::string text = Repeat("fragmented and compressed; ", 60);
  const std::string deflated = Deflate(text);
  ASSERT_GE(deflated.size(), 3u);
  const std::size_t third = deflated.size() / 3;
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, deflated.substr(0, third), /*fin=*/false)));
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kContinuation, deflated.substr(third, third), /*fin=*/false)));
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kContinuation, deflated.substr(2 * third))));
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, text, /*compressed=*/true));
  const auto message = BackendMessage(id);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->payload(), text);
}

// Messages without RSV1 on a compressed connection are taken as they are,
// and several compressed messages in a row each start from a fresh window
// (client_no_context_takeover was agreed).
TEST_F(CompressionTest, PlainAndConsecutiveCompressedMessagesMix) {
  const std::string id = Open();
  const std::string plain = "not compressed";
  const std::string again = Repeat("same words again ", 10);
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kText, plain)));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, Deflate(again))));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, Deflate(again))));
  for (std::size_t i = 0; i < 3; ++i) {
    const auto message = BackendMessage(id, i);
    ASSERT_TRUE(message.has_value()) << "message " << i;
    EXPECT_EQ(message->payload(), i == 0 ? plain : again) << "message " << i;
  }
}

// A message that inflates to exactly --max-message-bytes is accepted; one
// byte more is 1009 (the limit is on the inflated size).
TEST_F(CompressionTest, InflatedSizeLimitIsExact) {
  const std::string id = Open();
  const std::string at_limit(kMaxMessageBytes, 'x');
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, Deflate(at_limit))));
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kBinary, at_limit, /*compressed=*/true));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, Deflate(at_limit + "y"))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1009));
  const auto message = BackendMessage(id);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->payload().size(), kMaxMessageBytes);
}

// RFC 7692 section 7.2.3.6: an empty message may be sent compressed as the
// single byte 0x00.
TEST_F(CompressionTest, EmptyCompressedMessageAsOneZeroByte) {
  const std::string id = Open();
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, std::string(1, '\0'))));
  const auto message = BackendMessage(id);
  ASSERT_TRUE(message.has_value()) << "the empty compressed message did not arrive";
  EXPECT_EQ(message->opcode(), v1::OPCODE_TEXT);
  EXPECT_EQ(message->payload(), "");
}

// Pongs on a compressed connection are never compressed (RFC 7692 section
// 6: the extension applies to data messages only).
TEST_F(CompressionTest, PongIsNeverCompressed) {
  Open();
  const std::string payload(100, 'p');
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kPing, payload)));
  const auto read = client_.ReadFrame(kDeadline);
  ASSERT_TRUE(read.is_frame()) << read.Describe();
  EXPECT_EQ(read.frame.opcode, fc::kPong);
  EXPECT_FALSE(read.frame.rsv1) << DescribeFrame(read.frame);
  EXPECT_EQ(read.frame.payload, payload);
}

// ---- Messages to the client --------------------------------------------------

// Admin.Push's compress flag: true compresses even below the threshold,
// false never compresses, unset compresses from --compression-threshold up.
TEST_F(CompressionTest, PushCompressFlagDecidesPerMessage) {
  const std::string id = Open();
  const std::string small = Repeat("ab", kThreshold / 2 - 2);  // below the threshold, compressible
  const std::string large = Repeat("large payload ", 20);
  ASSERT_LT(small.size(), kThreshold);

  auto reply = Push(id, v1::OPCODE_TEXT, small, true);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, small, /*compressed=*/true));

  reply = Push(id, v1::OPCODE_BINARY, large, false);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kBinary, large, /*compressed=*/false));

  reply = Push(id, v1::OPCODE_TEXT, large, std::nullopt);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, large, /*compressed=*/true));

  const std::string below = Repeat("t", kThreshold - 1);
  const std::string at = Repeat("t", kThreshold);
  reply = Push(id, v1::OPCODE_TEXT, below, std::nullopt);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, below, /*compressed=*/false));
  reply = Push(id, v1::OPCODE_TEXT, at, std::nullopt);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, at, /*compressed=*/true));
}

// A client that did not negotiate compression never gets RSV1, whatever
// the push asks for.
TEST_F(CompressionTest, PushWithCompressToAConnectionWithoutDeflateIsPlain) {
  const std::string id = Open("", /*expect_deflate=*/false);
  const std::string large = Repeat("large payload ", 20);
  const auto reply = Push(id, v1::OPCODE_TEXT, large, true);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kText, large, /*compressed=*/false));
}

// With server_max_window_bits=10 agreed, the gateway's messages must
// inflate with a 1 KiB window: noise repeated 2.6 KiB later may not be
// referenced, while the run of 'z' between still compresses well.
TEST_F(CompressionTest, ServerMaxWindowBitsIsHonoured) {
  const std::string id = Open("permessage-deflate; server_max_window_bits=10");
  const std::string noise = Noise(600, 42);
  const std::string payload = noise + std::string(2000, 'z') + noise;
  const auto reply = Push(id, v1::OPCODE_BINARY, payload, true);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  ASSERT_NO_FATAL_FAILURE(ExpectMessage(fc::kBinary, payload, /*compressed=*/true, /*window_bits=*/10));
}

// One broadcast with compress set reaches a client with a 15-bit window, one
// with a 10-bit window and one without compression, each in the form it
// agreed (the gateway compresses once per loop and window, not once per
// client).
TEST_F(CompressionTest, BroadcastHonoursEachClientsAgreement) {
  const std::string prefix = UniquePath("bc");
  const std::vector<std::string> offers = {"permessage-deflate", "permessage-deflate; server_max_window_bits=10", ""};
  std::vector<std::unique_ptr<RawWsClient>> clients;
  for (std::size_t i = 0; i < offers.size(); ++i) {
    clients.push_back(std::make_unique<RawWsClient>());
    std::vector<std::pair<std::string, std::string>> headers;
    if (!offers[i].empty()) headers.emplace_back("Sec-WebSocket-Extensions", offers[i]);
    const std::string path = prefix + "/" + std::to_string(i);
    ASSERT_TRUE(clients.back()->Connect(port(), path, headers, kDeadline).ok());
    ASSERT_TRUE(backend().WaitForOpen(path, kDeadline).has_value());
  }
  const std::string noise = Noise(600, 9);
  const std::string payload = noise + std::string(2000, 'z') + noise;
  v1::BroadcastRequest request;
  request.mutable_frame()->set_opcode(v1::OPCODE_BINARY);
  request.mutable_frame()->set_payload(payload);
  request.mutable_frame()->set_compress(true);
  request.mutable_filter()->set_path_prefix(prefix + "/");
  AdminClient admin(CompressionEnvironment::stack->gateway->admin_port());
  const auto reply = admin.Broadcast(request);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 3u);
  const std::vector<int> windows = {15, 10, 0};
  for (std::size_t i = 0; i < clients.size(); ++i) {
    SCOPED_TRACE("offer " + Printable(offers[i]));
    const auto read = clients[i]->ReadFrame(kDeadline);
    ASSERT_TRUE(read.is_frame()) << read.Describe();
    ASSERT_EQ(read.frame.rsv1, windows[i] != 0) << DescribeFrame(read.frame);
    if (windows[i] == 0) {
      EXPECT_EQ(read.frame.payload, payload);
      continue;
    }
    std::string error;
    const auto inflated = Inflate(read.frame.payload, windows[i], &error);
    ASSERT_TRUE(inflated.has_value()) << error;
    EXPECT_EQ(*inflated, payload);
  }
}

// ---- Violations ----------------------------------------------------------------

// A few KiB that inflate past --max-message-bytes: closed with 1009 before
// the gateway inflates the whole bomb; the backend never sees the message.
TEST_F(CompressionTest, DecompressionBombIsClosedWith1009) {
  const std::string id = Open();
  const std::string bomb = Deflate(std::string(16 * kMaxMessageBytes, '\0'));
  ASSERT_LT(bomb.size(), 8u * 1024) << "not much of a bomb";
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, bomb)));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1009));
  const auto closed = backend().WaitForClose(id, kDeadline);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->close().code(), 1009u);
  EXPECT_EQ(closed->close().closed_by(), v1::CLOSED_BY_SERVER);
  for (const auto& event : backend().EventsOf(id)) EXPECT_FALSE(event.has_message()) << "the bomb reached the backend";
}

// The same bomb split over fragments is caught as well.
TEST_F(CompressionTest, FragmentedDecompressionBombIsClosedWith1009) {
  Open();
  const std::string bomb = Deflate(std::string(16 * kMaxMessageBytes, '\0'));
  const std::size_t half = bomb.size() / 2;
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, bomb.substr(0, half), /*fin=*/false)));
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kContinuation, bomb.substr(half))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1009));
}

// RSV1 on a control frame is a protocol error, compression or not.
TEST_F(CompressionTest, Rsv1OnAControlFrameIs1002) {
  Open();
  auto ping = MakeFrame(fc::kPing, "compressed?");
  ping.rsv1 = true;
  ASSERT_FALSE(client_.SendFrame(ping));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1002));
}

// RSV1 belongs on the first frame of a message only (RFC 7692 section 6.1).
TEST_F(CompressionTest, Rsv1OnAContinuationFrameIs1002) {
  Open();
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kText, "plain start ", /*fin=*/false)));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kContinuation, Deflate("compressed end"))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1002));
}

TEST_F(CompressionTest, Rsv1OnTheContinuationOfACompressedMessageIs1002) {
  Open();
  const std::string deflated = Deflate(Repeat("abc", 100));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, deflated.substr(0, 4), /*fin=*/false)));
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kContinuation, deflated.substr(4))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1002));
}

// Compressed bytes that are not DEFLATE data fail the message: 1007.
TEST_F(CompressionTest, CorruptCompressedDataIs1007) {
  Open();
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kBinary, std::string("\xff\xff\xff\xff\xff\xff", 6))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1007));
}

// Compressed text that inflates to invalid UTF-8: 1007.
TEST_F(CompressionTest, CompressedInvalidUtf8Is1007) {
  Open();
  ASSERT_FALSE(client_.SendFrame(Compressed(fc::kText, Deflate(std::string("bad \xc0\xaf utf-8", 12)))));
  ASSERT_NO_FATAL_FAILURE(ExpectFailure(1007));
}

// ---- Compression off -------------------------------------------------------------

// With --permessage-deflate false an offer gets no extension, and RSV1 is
// then a protocol error.
TEST(CompressionOffTest, OfferGetsNoExtension) {
  std::string error;
  const auto stack = ScriptedStack::Start({"--permessage-deflate", "false"}, &error);
  ASSERT_NE(stack, nullptr) << error;
  RawWsClient client;
  const std::string path = UniquePath("off");
  const auto handshake =
      client.Connect(stack->gateway->ws_port(), path,
                     {{"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"}}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  EXPECT_EQ(handshake.headers.count("sec-websocket-extensions"), 0u);
  const auto open = stack->backend->WaitForOpen(path, kDeadline);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->open().extensions_size(), 0);

  ASSERT_FALSE(client.SendFrame(Compressed(fc::kText, Deflate("not negotiated"))));
  const auto close = client.ExpectClose(kDeadline);
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.code, 1002) << close.Describe();
}

}  // namespace
}  // namespace wsgateway::testing
