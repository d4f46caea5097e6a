// RFC 6455 on the wire: a raw-frame client sends what a conforming client
// never would, and the gateway must answer with the exact close code (and
// nothing before it), accept the client's close reply and end TCP in order
// (FIN, never a reset). Valid edge cases (fragments of length zero, pings
// inside fragmented messages, every valid close code) must work. The cases
// follow RFC 6455 sections 5, 7 and 8 and the Autobahn testsuite's cases 1-7.
//
// Every read has a deadline of kDeadline: a conforming gateway answers in
// milliseconds, the margin is for sanitizer builds on a loaded machine. The
// gateway's close handshake timeout (10 s by default) is longer, so a gateway
// that waits for something it should not shows up as a missed deadline here,
// not as a close it sent later on its own.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "gateway/websocket/frame_codec.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/unique_path.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;
using fc::Frame;
using Masking = RawWsClient::Masking;

constexpr std::size_t kMaxMessageBytes = 64 * 1024;
constexpr std::chrono::milliseconds kDeadline = 5s;

// Autobahn 6.4.1's text: valid up to \xf4, which starts a code point above
// U+10FFFF, so the text is invalid at \x90 whatever follows.
const std::string kInvalidAtF490 = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80";
// Autobahn 6.3.1's text: "κόσμε", a UTF-16 surrogate (U+D800), "edited".
const std::string kInvalidSurrogate =
    "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

// One gateway and echo backend for every test in this file; each test opens
// a connection of its own, on a path of its own.
class StackEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { stack = EchoStack::Start({"--max-message-bytes", "64KiB"}, &error); }
  void TearDown() override { stack.reset(); }

  static inline std::unique_ptr<EchoStack> stack;
  static inline std::string error;
};

[[maybe_unused]] ::testing::Environment* const kStackEnvironment =
    ::testing::AddGlobalTestEnvironment(new StackEnvironment);

// ---- Frames ------------------------------------------------------------------

Frame Text(std::string payload, bool fin = true) { return MakeFrame(fc::kText, std::move(payload), fin); }
Frame Binary(std::string payload, bool fin = true) { return MakeFrame(fc::kBinary, std::move(payload), fin); }
Frame Continuation(std::string payload, bool fin = true) {
  return MakeFrame(fc::kContinuation, std::move(payload), fin);
}
Frame Ping(std::string payload, bool fin = true) { return MakeFrame(fc::kPing, std::move(payload), fin); }
Frame Pong(std::string payload, bool fin = true) { return MakeFrame(fc::kPong, std::move(payload), fin); }
Frame CloseFrame(std::uint16_t code, std::string_view reason = {}) {
  return MakeFrame(fc::kClose, ClosePayload(code, reason));
}

Frame WithRsv(Frame frame, bool rsv1, bool rsv2 = false, bool rsv3 = false) {
  frame.rsv1 = rsv1;
  frame.rsv2 = rsv2;
  frame.rsv3 = rsv3;
  return frame;
}

// A masked frame header with a 64-bit length, which Pack cannot write when
// the length is absurd: the tests send such a header without its payload.
std::string HeaderWith64BitLength(std::uint8_t opcode, std::uint64_t length) {
  std::string header;
  header.push_back(static_cast<char>(0x80 | opcode));
  header.push_back(static_cast<char>(0x80 | 127));
  for (int shift = 56; shift >= 0; shift -= 8) header.push_back(static_cast<char>((length >> shift) & 0xFF));
  header += "\x11\x22\x33\x44";  // the masking key
  return header;
}

std::string Describe(const std::vector<Frame>& frames) {
  std::string out;
  for (const auto& frame : frames) out += (out.empty() ? "" : " + ") + DescribeFrame(frame);
  return out;
}

std::string Expected(std::optional<std::uint16_t> code) {
  return code ? "a close frame with code " + std::to_string(*code) : "a close frame with an empty payload";
}

// Every byte value 0..n-1, so that a pong that garbles the payload shows.
std::string CountingBytes(std::size_t n) {
  std::string bytes;
  for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i & 0xFF));
  return bytes;
}

// ---- Fixture -----------------------------------------------------------------

class ProtocolViolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(StackEnvironment::stack, nullptr) << StackEnvironment::error;
    const auto handshake = client_.Connect(StackEnvironment::stack->gateway->ws_port(), UniquePath("pv"));
    ASSERT_TRUE(handshake.ok()) << "opening handshake: " << handshake.Describe();
  }

  // Sends the frames in one write (so they arrive coalesced) and returns
  // their description for failure messages.
  std::string Send(const std::vector<Frame>& frames, Masking masking = Masking::kRandom) {
    std::string bytes;
    for (const auto& frame : frames) bytes += client_.Encode(frame, masking);
    const std::string sent = Describe(frames) + (masking == Masking::kNone ? " (unmasked)" : "");
    const auto ec = client_.SendRaw(bytes, kDeadline);
    EXPECT_FALSE(ec) << "writing " << sent << ": " << ec.message();
    return sent;
  }

  // The gateway's answer to `sent` must be exactly one close frame with
  // `code` (nullopt: an empty payload), well formed for a server.
  void ExpectServerClose(const std::string& sent, std::optional<std::uint16_t> code) {
    const auto close = client_.ExpectClose(kDeadline);
    const std::string context = "sent " + sent + "; expected " + Expected(code) + "; got " + close.Describe();
    ASSERT_TRUE(close.received) << context;
    EXPECT_EQ(close.code, code) << context;
    if (!code) {
      EXPECT_EQ(close.frame.payload, "") << context;
    }
    EXPECT_TRUE(close.before.empty()) << context << " (no other frame may precede the close)";
    // RFC 6455, section 5.1: a server never masks; 5.5: control frames are
    // not fragmented, carry at most 125 bytes, and a close payload is empty
    // or starts with a two-byte code.
    EXPECT_FALSE(close.frame.mask) << context << " (a server must not mask)";
    EXPECT_TRUE(close.frame.fin && !close.frame.rsv1 && !close.frame.rsv2 && !close.frame.rsv3) << context;
    EXPECT_LE(close.frame.payload.size(), 125u) << context;
  }

  // TCP must end with an orderly EOF within the deadline, with nothing after
  // the close frame: the server closes TCP first (RFC 6455, section 7.1.1).
  void ExpectOrderlyEnd(const std::string& context) {
    const auto end = client_.ReadUntilEof(kDeadline);
    EXPECT_TRUE(end.orderly()) << context << "; expected an orderly EOF (FIN, no reset) within " << kDeadline.count()
                               << " ms; got " << end.Describe();
    EXPECT_EQ(end.extra, "") << context << "; the gateway sent bytes after its close frame: " << end.Describe();
  }

  // The gateway must fail the connection: close with `code`; the client
  // answers with a close echoing the code (RFC 6455, section 5.5.1), and the
  // gateway ends TCP in order.
  void ExpectFailure(const std::string& sent, std::uint16_t code) {
    ASSERT_NO_FATAL_FAILURE(ExpectServerClose(sent, code));
    const auto ec = client_.SendClose(code, {}, kDeadline);
    EXPECT_FALSE(ec) << "sent " << sent << ", got close " << code << "; replying with close failed (" << ec.message()
                     << "): the gateway reset the connection instead of reading the client's close";
    ExpectOrderlyEnd("sent " + sent + ", got close " + std::to_string(code) + " and replied with close");
  }

  void SendAndExpectFailure(const std::vector<Frame>& frames, std::uint16_t code, Masking masking = Masking::kRandom) {
    const std::string sent = Send(frames, masking);
    ExpectFailure(sent, code);
  }

  // The client sends `frames`, starting with its own close, and expects the
  // gateway's close `answer`, then an orderly end (no reply: the client has
  // already sent its close).
  void ExpectCloseAnswered(const std::vector<Frame>& frames, std::optional<std::uint16_t> answer) {
    const std::string sent = Send(frames);
    ASSERT_NO_FATAL_FAILURE(ExpectServerClose(sent, answer));
    ExpectOrderlyEnd("sent " + sent + " and got " + Expected(answer));
  }

  // After exchanges that must leave the connection healthy.
  void CloseNormally() { ExpectCloseAnswered({CloseFrame(1000, "bye")}, 1000); }

  // The next message must be `payload` with `opcode`, and nothing else.
  void ExpectEcho(const std::string& sent, std::uint8_t opcode, const std::string& payload) {
    const auto message = client_.ReadMessage(kDeadline);
    const std::string context =
        "sent " + sent + "; expected the echo " + Printable(payload) + "; got " + message.Describe();
    ASSERT_TRUE(message.complete) << context;
    EXPECT_EQ(message.opcode, opcode) << context;
    EXPECT_EQ(message.payload, payload) << context;
    EXPECT_TRUE(message.control.empty()) << context;
  }

  // The next frame must be a pong carrying `payload`.
  void ExpectPong(const std::string& sent, const std::string& payload) {
    const auto read = client_.ReadFrame(kDeadline);
    const std::string context = "sent " + sent + "; expected a pong " + Printable(payload) + "; got " + read.Describe();
    ASSERT_TRUE(read.is_frame()) << context;
    EXPECT_EQ(read.frame.opcode, fc::kPong) << context;
    EXPECT_EQ(read.frame.payload, payload) << context;
    EXPECT_TRUE(read.frame.fin && !read.frame.mask) << context;
  }

  RawWsClient client_;
};

// Parameters print as their names in failure messages.
struct NamedCase {
  std::string name;
};
std::ostream& operator<<(std::ostream& os, const NamedCase& param) { return os << param.name; }

template <typename Param>
class ProtocolViolationParamTest : public ProtocolViolationTest, public ::testing::WithParamInterface<Param> {};

template <typename Param>
std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return info.param.name;
}

// ---- Harness -----------------------------------------------------------------

// The raw client itself: a well-formed masked message is echoed and a
// normal close completes. If this fails, every other result is suspect.
TEST_F(ProtocolViolationTest, WellFormedMessageIsEchoedAndCloseCompletes) {
  const std::string sent = Send({Text("Hello, raw client")});
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(sent, fc::kText, "Hello, raw client"));
  CloseNormally();
}

// ---- Reserved bits (RFC 6455, section 5.2; Autobahn 3.*) --------------------

struct RsvCase : NamedCase {
  bool rsv1;
  bool rsv2;
  bool rsv3;
};

class ReservedBitsTest : public ProtocolViolationParamTest<RsvCase> {};

// No extension was negotiated, so every reserved bit must be 0.
TEST_P(ReservedBitsTest, OnTextFrameClosesWith1002) {
  const auto& rsv = GetParam();
  SendAndExpectFailure({WithRsv(Text("Hello"), rsv.rsv1, rsv.rsv2, rsv.rsv3)}, 1002);
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, ReservedBitsTest,
                         ::testing::Values(RsvCase{"Rsv1", true, false, false}, RsvCase{"Rsv2", false, true, false},
                                           RsvCase{"Rsv3", false, false, true}, RsvCase{"AllThree", true, true, true}),
                         ParamName<RsvCase>);

struct FrameCase : NamedCase {
  Frame frame;
};

class Rsv1OnControlFrameTest : public ProtocolViolationParamTest<FrameCase> {};

// Even with permessage-deflate, RSV1 is only for the first frame of a data
// message (RFC 7692, section 6); without it, it is never allowed.
TEST_P(Rsv1OnControlFrameTest, ClosesWith1002) { SendAndExpectFailure({WithRsv(GetParam().frame, true)}, 1002); }

INSTANTIATE_TEST_SUITE_P(Rfc6455, Rsv1OnControlFrameTest,
                         ::testing::Values(FrameCase{"Ping", Ping("ping")}, FrameCase{"Pong", Pong("pong")},
                                           FrameCase{"Close", CloseFrame(1000)}),
                         ParamName<FrameCase>);

TEST_F(ProtocolViolationTest, Rsv1OnContinuationFrameClosesWith1002) {
  SendAndExpectFailure({Text("Hel", false), WithRsv(Continuation("lo"), true)}, 1002);
}

// ---- Reserved opcodes (RFC 6455, section 5.2; Autobahn 4.*) ------------------

struct OpcodeCase : NamedCase {
  std::uint8_t opcode;
};

class ReservedOpcodeTest : public ProtocolViolationParamTest<OpcodeCase> {};

TEST_P(ReservedOpcodeTest, ClosesWith1002) { SendAndExpectFailure({MakeFrame(GetParam().opcode, "reserved")}, 1002); }

std::vector<OpcodeCase> ReservedOpcodes() {
  std::vector<OpcodeCase> cases;
  for (const std::uint8_t opcode : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    cases.push_back({"Opcode" + std::to_string(opcode), opcode});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, ReservedOpcodeTest, ::testing::ValuesIn(ReservedOpcodes()), ParamName<OpcodeCase>);

// ---- Control frames (RFC 6455, section 5.5; Autobahn 2.*, 5.1-5.2) -----------

// Control frames must not be fragmented.
class FragmentedControlFrameTest : public ProtocolViolationParamTest<FrameCase> {};

TEST_P(FragmentedControlFrameTest, ClosesWith1002) {
  Frame frame = GetParam().frame;
  frame.fin = false;
  SendAndExpectFailure({frame}, 1002);
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, FragmentedControlFrameTest,
                         ::testing::Values(FrameCase{"Ping", Ping("fragmented ping")},
                                           FrameCase{"Pong", Pong("fragmented pong")},
                                           FrameCase{"Close", CloseFrame(1000)}),
                         ParamName<FrameCase>);

// Control frames carry at most 125 bytes; 126 needs the 16-bit length form.
class OversizedControlFrameTest : public ProtocolViolationParamTest<FrameCase> {};

TEST_P(OversizedControlFrameTest, With126BytesClosesWith1002) {
  ASSERT_EQ(GetParam().frame.payload.size(), 126u);
  SendAndExpectFailure({GetParam().frame}, 1002);
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, OversizedControlFrameTest,
                         ::testing::Values(FrameCase{"Ping", Ping(std::string(126, 'p'))},
                                           FrameCase{"Pong", Pong(std::string(126, 'p'))},
                                           FrameCase{"Close", CloseFrame(1000, std::string(124, 'r'))}),
                         ParamName<FrameCase>);

// ---- Fragmentation (RFC 6455, section 5.4; Autobahn 5.*) ---------------------

TEST_F(ProtocolViolationTest, ContinuationWithoutMessageClosesWith1002) {
  SendAndExpectFailure({Continuation("no message started")}, 1002);
}

TEST_F(ProtocolViolationTest, UnfinishedContinuationWithoutMessageClosesWith1002) {
  SendAndExpectFailure({Continuation("no message started", false)}, 1002);
}

TEST_F(ProtocolViolationTest, TextFrameInsideFragmentedTextClosesWith1002) {
  SendAndExpectFailure({Text("first ", false), Text("second")}, 1002);
}

TEST_F(ProtocolViolationTest, BinaryFrameInsideFragmentedTextClosesWith1002) {
  SendAndExpectFailure({Text("first ", false), Binary("second", false)}, 1002);
}

// ---- Masking and lengths (RFC 6455, section 5.1-5.2) -------------------------

class UnmaskedFrameTest : public ProtocolViolationParamTest<FrameCase> {};

// A server must close the connection on an unmasked client frame.
TEST_P(UnmaskedFrameTest, ClosesWith1002) { SendAndExpectFailure({GetParam().frame}, 1002, Masking::kNone); }

INSTANTIATE_TEST_SUITE_P(Rfc6455, UnmaskedFrameTest,
                         ::testing::Values(FrameCase{"Text", Text("unmasked")}, FrameCase{"Binary", Binary("unmasked")},
                                           FrameCase{"Ping", Ping("unmasked")}),
                         ParamName<FrameCase>);

// "the most significant bit MUST be 0": not a length at all, so 1002 rather
// than 1009. Only the header is sent; the gateway must not wait for more.
TEST_F(ProtocolViolationTest, LengthWithMostSignificantBitSetClosesWith1002) {
  const std::string header = HeaderWith64BitLength(fc::kBinary, std::uint64_t{1} << 63);
  ASSERT_FALSE(client_.SendRaw(header, kDeadline));
  ExpectFailure("a binary frame header with 64-bit length 0x8000000000000000", 1002);
}

// ---- Message size (--max-message-bytes 64KiB; RFC 6455, section 7.4.1) -------

TEST_F(ProtocolViolationTest, FrameOverTheLimitClosesWith1009) {
  SendAndExpectFailure({Binary(std::string(kMaxMessageBytes + 1, 'x'))}, 1009);
}

// No single frame is over the limit; the message is.
TEST_F(ProtocolViolationTest, FragmentedMessageOverTheLimitClosesWith1009) {
  const std::string quarter(20 * 1024, 'y');
  SendAndExpectFailure(
      {Binary(quarter, false), Continuation(quarter, false), Continuation(quarter, false), Continuation(quarter)},
      1009);
}

// A header announcing a frame over the limit is enough: the gateway must
// not wait for (or buffer) a terabyte before answering.
TEST_F(ProtocolViolationTest, HeaderAnnouncingAFrameOverTheLimitClosesWith1009) {
  const std::string header = HeaderWith64BitLength(fc::kBinary, std::uint64_t{1} << 40);
  ASSERT_FALSE(client_.SendRaw(header + "first bytes of a terabyte", kDeadline));
  ExpectFailure("a binary frame header announcing 2^40 bytes and 25 bytes of it", 1009);
}

// ---- UTF-8 (RFC 6455, section 8.1; Autobahn 6.*) ------------------------------

struct BytesCase : NamedCase {
  std::string bytes;
};

class InvalidUtf8TextTest : public ProtocolViolationParamTest<BytesCase> {};

TEST_P(InvalidUtf8TextTest, InOneFrameClosesWith1007) { SendAndExpectFailure({Text(GetParam().bytes)}, 1007); }

INSTANTIATE_TEST_SUITE_P(Rfc6455, InvalidUtf8TextTest,
                         ::testing::Values(BytesCase{"Surrogate", kInvalidSurrogate},
                                           BytesCase{"AboveU10FFFF", kInvalidAtF490},
                                           BytesCase{"Overlong", "overlong \xc0\xaf slash"},
                                           BytesCase{"ByteFF", "\xff"}, BytesCase{"LoneContinuationByte", "a\x80z"},
                                           // A complete message must not end inside a code point.
                                           BytesCase{"TruncatedAtTheEnd", "\xce\xba\xe1\xbd"}),
                         ParamName<BytesCase>);

// Validation carries across fragments: \xed is a valid start, \xa0 after it
// makes a surrogate.
TEST_F(ProtocolViolationTest, InvalidUtf8SplitAcrossFragmentsClosesWith1007) {
  SendAndExpectFailure({Text("\xce\xba\xed", false), Continuation("\xa0\x80 tail")}, 1007);
}

// Fail fast (Autobahn 6.4.1): the first fragment is already invalid, and the
// rest of the message is never sent; the gateway must not wait for it.
TEST_F(ProtocolViolationTest, InvalidFirstFragmentClosesWith1007BeforeTheMessageEnds) {
  SendAndExpectFailure({Text(kInvalidAtF490, false)}, 1007);
}

// A zero-length final fragment cannot complete a code point the previous
// fragment left open.
TEST_F(ProtocolViolationTest, EmptyFinalFragmentAfterAnOpenCodePointClosesWith1007) {
  SendAndExpectFailure({Text("\xce\xba\xe1", false), Continuation("")}, 1007);
}

// Autobahn 6.4.3 ("strict"): the invalid bytes arrive in a frame whose
// payload is not complete yet. RFC 6455 only requires failing once the
// invalid data is found; an engine that validates as bytes arrive fails
// here without waiting for the rest of the frame.
TEST_F(ProtocolViolationTest, InvalidBytesInAnIncompleteFrameCloseWith1007Strict) {
  const std::string wire = client_.Encode(Text(kInvalidAtF490 + "\xce\xbd\xe1\xbd\xb9\xcf\x83 rest of the frame"));
  const std::size_t header_bytes = 2 + 4;  // short length, masking key
  ASSERT_FALSE(client_.SendRaw(wire.substr(0, header_bytes + kInvalidAtF490.size()), kDeadline));
  ExpectFailure("the header and the first " + std::to_string(kInvalidAtF490.size()) +
                    " payload bytes (invalid UTF-8 at byte 12) of a text frame, the rest withheld",
                1007);
}

// Fragments of length zero anywhere in a text message, including the first
// and the last, and a code point split across fragments, are all valid.
TEST_F(ProtocolViolationTest, TextWithZeroLengthFragmentsIsEchoedWhole) {
  const std::string sent = Send({Text("", false), Continuation("Hello", false), Continuation("", false),
                                 Continuation(", w\xc3\xb6rld \xe2\x82", false), Continuation("", false),
                                 Continuation("\xac", false), Continuation("")});
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(sent, fc::kText, "Hello, w\xc3\xb6rld \xe2\x82\xac"));
  CloseNormally();
}

// Autobahn 6.2.3: valid text sent one byte per fragment.
TEST_F(ProtocolViolationTest, TextSplitIntoOneByteFragmentsIsEchoedWhole) {
  const std::string text = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80";
  std::vector<Frame> frames;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool fin = i + 1 == text.size();
    frames.push_back(i == 0 ? Text(text.substr(i, 1), fin) : Continuation(text.substr(i, 1), fin));
  }
  const std::string sent = Send(frames);
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(sent, fc::kText, text));
  CloseNormally();
}

// Autobahn 6.5, 6.7-6.9: the first and last code points of each encoded
// length are valid, up to U+10FFFF.
TEST_F(ProtocolViolationTest, BoundaryCodePointsAreEchoed) {
  const std::string text =
      "\x01\x7f"
      "\xc2\x80\xdf\xbf"
      "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
      "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
  const std::string sent = Send({Text(text)});
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(sent, fc::kText, text));
  CloseNormally();
}

// ---- Close frames (RFC 6455, sections 5.5.1, 7.4; Autobahn 7.*) --------------

TEST_F(ProtocolViolationTest, CloseWithOneBytePayloadClosesWith1002) {
  const std::string sent = Send({MakeFrame(fc::kClose, "\x03")});
  ASSERT_NO_FATAL_FAILURE(ExpectServerClose(sent, 1002));
  ExpectOrderlyEnd("sent " + sent + " and got close 1002");
}

struct CodeCase : NamedCase {
  std::uint16_t code;
};

std::vector<CodeCase> CodeCases(std::initializer_list<std::uint16_t> codes) {
  std::vector<CodeCase> cases;
  for (const auto code : codes) cases.push_back({"Code" + std::to_string(code), code});
  return cases;
}

// Codes that must never be on the wire: unassigned or reserved below 3000,
// 1005/1006/1015 (local-only by definition), and anything past 4999.
class InvalidCloseCodeTest : public ProtocolViolationParamTest<CodeCase> {};

TEST_P(InvalidCloseCodeTest, ClosesWith1002) { ExpectCloseAnswered({CloseFrame(GetParam().code, "bad code")}, 1002); }

INSTANTIATE_TEST_SUITE_P(Rfc6455, InvalidCloseCodeTest,
                         ::testing::ValuesIn(CodeCases({0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                                                        65535})),
                         ParamName<CodeCase>);

// Every code a peer may send is echoed: "When sending a Close frame in
// response, the endpoint typically echos the status code it received"
// (section 5.5.1); the gateway's contract is to echo.
class ValidCloseCodeTest : public ProtocolViolationParamTest<CodeCase> {};

TEST_P(ValidCloseCodeTest, IsEchoed) {
  ExpectCloseAnswered({CloseFrame(GetParam().code, "valid code")}, GetParam().code);
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, ValidCloseCodeTest,
                         ::testing::ValuesIn(CodeCases({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                                        1013, 1014, 3000, 3999, 4000, 4999})),
                         ParamName<CodeCase>);

// Section 8.1 applies to the close reason too; 1007 names the problem.
TEST_F(ProtocolViolationTest, CloseReasonThatIsNotUtf8ClosesWith1007) {
  ExpectCloseAnswered({CloseFrame(1000, kInvalidSurrogate)}, 1007);
}

// An empty close carries no code, so echoing it means an empty close. 1005
// ("no status received") must never be sent (section 7.4.1); a close with
// 1000 would also be conforming, but the gateway echoes, and the empty
// answer is what that means here.
TEST_F(ProtocolViolationTest, EmptyCloseIsAnsweredWithAnEmptyClose) {
  ExpectCloseAnswered({MakeFrame(fc::kClose, "")}, std::nullopt);
}

// 2 + 123 bytes: the largest close payload there is (Autobahn 7.3.5).
TEST_F(ProtocolViolationTest, CloseWith123ByteReasonIsEchoed) {
  ExpectCloseAnswered({CloseFrame(1000, std::string(123, 'r'))}, 1000);
}

// After its close the client may not send data (section 5.5.1); whatever
// follows is ignored: no echo, no pong, only the close answer.
TEST_F(ProtocolViolationTest, FramesAfterTheClientCloseAreIgnored) {
  ExpectCloseAnswered({CloseFrame(1000, "bye"), Text("after close"), Ping("after close")}, 1000);
}

// ---- Pings and pongs (RFC 6455, sections 5.5.2-5.5.3; Autobahn 2.*, 5.6-5.8) -

// A ping may come between the fragments of a message; the pong must not
// wait for the message to end, and the message still arrives whole.
TEST_F(ProtocolViolationTest, PingInsideFragmentedMessageIsAnsweredAndMessageArrivesWhole) {
  const std::string first = Send({Text("Hello, ", false), Ping("in the middle")});
  ASSERT_NO_FATAL_FAILURE(ExpectPong(first + " (message not finished)", "in the middle"));
  const std::string last = Send({Continuation("world")});
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(first + " + " + last, fc::kText, "Hello, world"));
  CloseNormally();
}

TEST_F(ProtocolViolationTest, PingWith125BytesGetsTheSamePong) {
  const std::string payload = CountingBytes(125);
  const std::string sent = Send({Ping(payload)});
  ASSERT_NO_FATAL_FAILURE(ExpectPong(sent, payload));
  CloseNormally();
}

TEST_F(ProtocolViolationTest, EmptyPingGetsAnEmptyPong) {
  const std::string sent = Send({Ping("")});
  ASSERT_NO_FATAL_FAILURE(ExpectPong(sent, ""));
  CloseNormally();
}

// Autobahn 2.10: each ping gets its own pong, in order.
TEST_F(ProtocolViolationTest, TenPingsGetTenPongsInOrder) {
  std::vector<Frame> pings;
  for (int i = 0; i < 10; ++i) pings.push_back(Ping("ping " + std::to_string(i)));
  const std::string sent = Send(pings);
  for (int i = 0; i < 10; ++i) ASSERT_NO_FATAL_FAILURE(ExpectPong(sent, "ping " + std::to_string(i)));
  CloseNormally();
}

// A pong nobody asked for is allowed (a unidirectional heartbeat) and
// answered with nothing.
TEST_F(ProtocolViolationTest, UnsolicitedPongIsIgnored) {
  const std::string sent = Send({Pong("unsolicited"), Text("after pong")});
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(sent, fc::kText, "after pong"));
  CloseNormally();
}

// ---- Teardown while the client keeps sending ---------------------------------

// A client that keeps writing after its violation (it has not read the
// close yet) must still be able to read the close: a gateway that closes its
// socket with unread bytes sends a reset, which destroys the close frame
// (Boost.Beast 1.81 stops draining after one wait). The gateway must keep
// reading and discarding until the client's close, then end with FIN.
class TeardownUnderLoadTest : public ProtocolViolationTest {
 protected:
  // 256 KiB of valid masked binary messages, written at once after the
  // violation, without reading.
  void ViolateThenFlood(const std::string& violation, const std::string& described, std::uint16_t code) {
    std::string bytes = violation;
    for (int i = 0; i < 16; ++i) bytes += client_.Encode(Binary(std::string(16 * 1024, static_cast<char>('a' + i))));
    const auto ec = client_.SendRaw(bytes, kDeadline);
    const std::string sent = described + " + 256 KiB of binary frames written without reading";
    EXPECT_FALSE(ec) << "sent " << sent << "; the write failed (" << ec.message()
                     << "): the gateway must read and discard until the client's close, not reset";
    ExpectFailure(sent, code);
  }
};

TEST_F(TeardownUnderLoadTest, ReservedOpcodeThenFloodStillDeliversClose1002) {
  const Frame violation = MakeFrame(0x3, "reserved");
  ViolateThenFlood(client_.Encode(violation), DescribeFrame(violation), 1002);
}

TEST_F(TeardownUnderLoadTest, MessageTooBigThenFloodStillDeliversClose1009) {
  const Frame violation = Binary(std::string(kMaxMessageBytes + 1, 'x'));
  ViolateThenFlood(client_.Encode(violation), DescribeFrame(violation), 1009);
}

}  // namespace
}  // namespace wsgateway::testing
