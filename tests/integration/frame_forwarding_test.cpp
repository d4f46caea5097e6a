// Frame forwarding (--forward-ping-frames, --forward-pong-frames,
// --forward-close-frames; Swoole's open_websocket_*_frame): with each option
// on (and all off), the backend sees exactly the client's control frames
// the options ask for, in order with the other events, the close frame
// before the Close event; and the gateway answers pings with pongs either
// way.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
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

constexpr std::chrono::milliseconds kDeadline = 20s;

// Payloads with bytes that are not text, so a lossy copy shows.
const std::string kPingPayload = std::string("\x00ping\xff", 6);
const std::string kMidPingPayload = "mid-message";
const std::string kPongPayload = "unsolicited";

struct Forwarding {
  std::string name;
  bool ping = false;
  bool pong = false;
  bool close = false;
};

std::ostream& operator<<(std::ostream& out, const Forwarding& f) { return out << f.name; }

std::vector<std::string> Flags(const Forwarding& f) {
  return {"--forward-ping-frames",   f.ping ? "true" : "false", "--forward-pong-frames",
          f.pong ? "true" : "false", "--forward-close-frames",  f.close ? "true" : "false"};
}

// One line per event, comparable and readable in a failure message.
std::string Summary(const v1::Event& event) {
  if (event.has_open()) return "open";
  if (event.has_message()) {
    return "message " + v1::Opcode_Name(event.message().opcode()) + " " + Printable(event.message().payload());
  }
  if (event.has_control_frame()) {
    return "control_frame " + v1::Opcode_Name(event.control_frame().opcode()) + " " +
           Printable(event.control_frame().payload());
  }
  if (event.has_close_frame()) {
    return "close_frame " + std::to_string(event.close_frame().code()) + " " + Printable(event.close_frame().reason());
  }
  if (event.has_close()) {
    return "close " + std::to_string(event.close().code()) + " " + Printable(event.close().reason()) + " " +
           v1::ClosedBy_Name(event.close().closed_by());
  }
  return "other";
}

std::vector<std::string> Summaries(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const auto& event : events) out.push_back(Summary(event));
  return out;
}

class FrameForwardingTest : public ::testing::TestWithParam<Forwarding> {
 protected:
  void SetUp() override {
    stack_ = ScriptedStack::Start(Flags(GetParam()), &error_);
    ASSERT_NE(stack_, nullptr) << error_;
    path_ = UniquePath("ff");
    const auto handshake = client_.Connect(stack_->gateway->ws_port(), path_, {}, kDeadline);
    ASSERT_TRUE(handshake.ok()) << handshake.Describe();
    const auto open = stack_->backend->WaitForOpen(path_, kDeadline);
    ASSERT_TRUE(open.has_value()) << "no Open event";
    id_ = open->connection_id();
  }

  // The next frame must be a pong with `payload`.
  void ExpectPong(const std::string& payload) {
    const auto read = client_.ReadFrame(kDeadline);
    ASSERT_TRUE(read.is_frame()) << "expected a pong " << Printable(payload) << "; got " << read.Describe();
    EXPECT_EQ(read.frame.opcode, fc::kPong) << read.Describe();
    EXPECT_EQ(read.frame.payload, payload) << read.Describe();
  }

  // After the close handshake the gateway closes TCP first (RFC 6455
  // section 7.1.1); the client then closes its end, which the gateway
  // waits for before it reports the Close.
  void ExpectServerEndsTcp() {
    const auto end = client_.ReadUntilEof(kDeadline);
    EXPECT_TRUE(end.eof()) << end.Describe();
    client_.Close();
  }

  // Every event of the connection, once its Close event has arrived (the
  // last event of a connection).
  std::vector<std::string> EventsAfterClose() {
    const auto closed = stack_->backend->WaitForClose(id_, kDeadline);
    EXPECT_TRUE(closed.has_value()) << "no Close event";
    return Summaries(stack_->backend->EventsOf(id_));
  }

  std::unique_ptr<ScriptedStack> stack_;
  std::string error_;
  std::string path_;
  std::string id_;
  RawWsClient client_;
};

// Pings (alone and inside a fragmented message), an unsolicited pong, a
// message and a close: the pings are answered, and the backend sees the
// control frames the options ask for, in the order they came.
TEST_P(FrameForwardingTest, ControlFramesReachTheBackendAsConfigured) {
  const Forwarding& f = GetParam();
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kPing, kPingPayload)));
  ASSERT_NO_FATAL_FAILURE(ExpectPong(kPingPayload));
  ASSERT_FALSE(client_.SendFrames({MakeFrame(fc::kText, "mar", /*fin=*/false), MakeFrame(fc::kPing, kMidPingPayload),
                                   MakeFrame(fc::kContinuation, "ker")}));
  ASSERT_NO_FATAL_FAILURE(ExpectPong(kMidPingPayload));
  ASSERT_FALSE(client_.SendFrame(MakeFrame(fc::kPong, kPongPayload)));
  ASSERT_FALSE(client_.SendClose(4001, "bye"));
  const auto close = client_.ExpectClose(kDeadline);
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.code, 4001) << close.Describe();
  EXPECT_TRUE(close.before.empty()) << close.Describe();
  ExpectServerEndsTcp();

  std::vector<std::string> expected = {"open"};
  if (f.ping) expected.push_back("control_frame OPCODE_PING " + Printable(kPingPayload));
  if (f.ping) expected.push_back("control_frame OPCODE_PING " + Printable(kMidPingPayload));
  expected.push_back("message OPCODE_TEXT \"marker\"");
  if (f.pong) expected.push_back("control_frame OPCODE_PONG " + Printable(kPongPayload));
  if (f.close) expected.push_back("close_frame 4001 \"bye\"");
  expected.push_back("close 4001 \"bye\" CLOSED_BY_CLIENT");
  EXPECT_EQ(EventsAfterClose(), expected);
}

// A close frame without a status code is forwarded with 1005, as the
// Close event reports it.
TEST_P(FrameForwardingTest, EmptyCloseFrameIsForwardedAs1005) {
  const Forwarding& f = GetParam();
  ASSERT_FALSE(client_.SendEmptyClose());
  const auto close = client_.ExpectClose(kDeadline);
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.frame.payload, "") << "a close without a code is answered without one: " << close.Describe();
  ExpectServerEndsTcp();

  std::vector<std::string> expected = {"open"};
  if (f.close) expected.push_back("close_frame 1005 \"\"");
  expected.push_back("close 1005 \"\" CLOSED_BY_CLIENT");
  EXPECT_EQ(EventsAfterClose(), expected);
}

// A close the backend starts (a Disconnect command) is answered by the
// client with a close frame of its own, which is forwarded like any other.
TEST_P(FrameForwardingTest, ClientReplyToABackendCloseIsForwardedAsConfigured) {
  const Forwarding& f = GetParam();
  v1::CommandBatch batch;
  auto* disconnect = batch.add_commands()->mutable_disconnect();
  disconnect->set_connection_id(id_);
  disconnect->set_code(4100);
  disconnect->set_reason("kicked");
  ASSERT_TRUE(stack_->backend->Send(batch));
  const auto close = client_.ExpectClose(kDeadline);
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.code, 4100) << close.Describe();
  ASSERT_FALSE(client_.SendClose(4100, "kicked"));
  ExpectServerEndsTcp();

  std::vector<std::string> expected = {"open"};
  if (f.close) expected.push_back("close_frame 4100 \"kicked\"");
  expected.push_back("close 4100 \"kicked\" CLOSED_BY_BACKEND");
  EXPECT_EQ(EventsAfterClose(), expected);
}

INSTANTIATE_TEST_SUITE_P(Options, FrameForwardingTest,
                         ::testing::Values(Forwarding{"AllOff", false, false, false},
                                           Forwarding{"PingOnly", true, false, false},
                                           Forwarding{"PongOnly", false, true, false},
                                           Forwarding{"CloseOnly", false, false, true},
                                           Forwarding{"AllOn", true, true, true}),
                         [](const ::testing::TestParamInfo<Forwarding>& info) { return info.param.name; });

}  // namespace
}  // namespace wsgateway::testing
