// Pushing frames rather than whole messages (Swoole's push with
// SWOOLE_WEBSOCKET_FLAG_FIN): fragmented messages built from several pushes,
// control frames, and messages pushed meanwhile, checked frame by frame on
// the wire with the raw client.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;

class PushFramesTest : public SharedEchoStack<PushFramesTest> {
 protected:
  // Connects a raw client on a fresh path and returns its connection id.
  static std::string Connect(RawWsClient& client) {
    const auto path = UniquePath("push");
    const auto handshake = client.Connect(port(), path);
    EXPECT_TRUE(handshake.ok()) << handshake.Describe();
    const auto info = admin().WaitForOne(path, v1::CONNECTION_STATE_ACTIVE);
    return info ? info->connection_id() : std::string();
  }

  Reply<v1::PushResponse> PushFrame(const std::string& id, v1::Opcode opcode, const std::string& payload, bool fin,
                                    bool continuation) {
    v1::PushRequest request;
    request.add_connection_ids(id);
    request.mutable_frame()->set_opcode(opcode);
    request.mutable_frame()->set_payload(payload);
    request.mutable_frame()->set_fin(fin);
    request.mutable_frame()->set_continuation(continuation);
    return admin().Push(request);
  }
};

TEST_F(PushFramesTest, FragmentsGoOutAsOneMessageWithOtherMessagesHeldBack) {
  RawWsClient client;
  const auto id = Connect(client);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "Hel", false, false).ok());
  // A whole message pushed while the fragmented one is open waits for it.
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_BINARY, "later").ok());
  // Control frames may go between fragments (RFC 6455 section 5.4).
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_PING, "p").ok());
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "lo, ", false, true).ok());
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "world", true, true).ok());

  struct Expected {
    bool fin;
    std::uint8_t opcode;
    std::string payload;
  };
  const std::vector<Expected> expected = {{false, fc::kText, "Hel"},
                                          {true, fc::kPing, "p"},
                                          {false, fc::kContinuation, "lo, "},
                                          {true, fc::kContinuation, "world"},
                                          {true, fc::kBinary, "later"}};
  for (const auto& want : expected) {
    const auto read = client.ReadFrame();
    ASSERT_TRUE(read.is_frame()) << read.Describe();
    EXPECT_EQ(read.frame.fin, want.fin) << want.payload;
    EXPECT_EQ(read.frame.opcode, want.opcode) << want.payload;
    EXPECT_EQ(read.frame.payload, want.payload);
    EXPECT_FALSE(read.frame.rsv1);
  }
}

TEST_F(PushFramesTest, AContinuationNeedsAnOpenMessageOfTheSameOpcode) {
  RawWsClient client;
  const auto id = Connect(client);
  ASSERT_FALSE(id.empty());
  auto reply = PushFrame(id, v1::OPCODE_TEXT, "x", true, true);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << reply.status.error_message();
  EXPECT_NE(reply.status.error_message().find("fragmented"), std::string::npos) << reply.status.error_message();

  ASSERT_TRUE(PushFrame(id, v1::OPCODE_BINARY, "a", false, false).ok());
  reply = PushFrame(id, v1::OPCODE_TEXT, "b", true, true);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "opcode differs";
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_BINARY, "b", true, true).ok());
  const auto first = client.ReadFrame();
  const auto second = client.ReadFrame();
  ASSERT_TRUE(first.is_frame() && second.is_frame());
  EXPECT_EQ(first.frame.opcode, fc::kBinary);
  EXPECT_EQ(second.frame.opcode, fc::kContinuation);
  EXPECT_TRUE(second.frame.fin);
}

TEST_F(PushFramesTest, ControlFramesCannotBeFragmented) {
  RawWsClient client;
  const auto id = Connect(client);
  ASSERT_FALSE(id.empty());
  const auto reply = PushFrame(id, v1::OPCODE_PING, "x", false, false);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << reply.status.error_message();
}

// A text message pushed in pieces is checked as one message: a code point
// may be split across pieces, but a piece after which the message can no
// longer be UTF-8, or a last piece that ends inside a character, is refused
// with INVALID_ARGUMENT and never reaches the client; the message stays
// open, and a valid piece completes it.
TEST_F(PushFramesTest, TextPushedInPiecesIsCheckedAsOneMessage) {
  RawWsClient client;
  const auto id = Connect(client);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "ok \xe2\x82", false, false).ok());
  auto bad = PushFrame(id, v1::OPCODE_TEXT, "\x28", false, true);
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.status.error_message();
  // Valid so far, but the message would end in the middle of a character.
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "\xac and \xe2", false, true).ok());
  bad = PushFrame(id, v1::OPCODE_TEXT, "", true, true);
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.status.error_message();
  ASSERT_TRUE(PushFrame(id, v1::OPCODE_TEXT, "\x82\xac", true, true).ok());
  // A first piece that cannot start UTF-8 is refused too.
  bad = PushFrame(id, v1::OPCODE_TEXT, "\xff", false, false);
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.status.error_message();

  const auto message = client.ReadMessage();
  ASSERT_TRUE(message.complete) << message.Describe();
  EXPECT_EQ(message.opcode, fc::kText);
  EXPECT_EQ(message.payload, "ok \xe2\x82\xac and \xe2\x82\xac");
  EXPECT_EQ(message.fragments, 3u);
  // Nothing else was sent.
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_BINARY, "next").ok());
  const auto next = client.ReadMessage();
  ASSERT_TRUE(next.complete) << next.Describe();
  EXPECT_EQ(next.payload, "next");
}

// The same holds for a fragmented text message broadcast to many clients.
TEST_F(PushFramesTest, BroadcastTextInPiecesIsCheckedAsOneMessage) {
  const auto path = UniquePath("pushutf8");
  RawWsClient first;
  RawWsClient second;
  ASSERT_TRUE(first.Connect(port(), path + "/a").ok());
  ASSERT_TRUE(second.Connect(port(), path + "/b").ok());
  v1::ConnectionFilter active;
  active.set_path_prefix(path);
  active.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(admin().WaitForCount(active, 2));
  const auto piece = [&](const std::string& payload, bool fin, bool continuation) {
    v1::BroadcastRequest request;
    request.mutable_filter()->set_path_prefix(path);
    request.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
    request.mutable_frame()->set_payload(payload);
    request.mutable_frame()->set_fin(fin);
    request.mutable_frame()->set_continuation(continuation);
    return admin().Broadcast(request);
  };
  ASSERT_TRUE(piece("ok \xe2\x82", false, false).ok());
  const auto bad = piece("\x28", true, true);
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.status.error_message();
  const auto good = piece("\xac", true, true);
  ASSERT_TRUE(good.ok()) << good.status.error_message();
  EXPECT_EQ(good.response.queued(), 2u);
  for (auto* client : {&first, &second}) {
    const auto message = client->ReadMessage();
    ASSERT_TRUE(message.complete) << message.Describe();
    EXPECT_EQ(message.payload, "ok \xe2\x82\xac");
  }
}

// A pushed close frame (Swoole's push of a CloseFrame) starts the closing
// handshake: the client gets the code and reason, later pushes are refused,
// and the connection ends once the client answers.
TEST_F(PushFramesTest, PushedCloseFrameStartsTheClosingHandshake) {
  RawWsClient client;
  const auto id = Connect(client);
  ASSERT_FALSE(id.empty());
  v1::PushRequest request;
  request.add_connection_ids(id);
  request.mutable_frame()->set_opcode(v1::OPCODE_CLOSE);
  request.mutable_frame()->mutable_close()->set_code(4001);
  request.mutable_frame()->mutable_close()->set_reason("room closed");
  const auto reply = admin().Push(request);
  ASSERT_TRUE(reply.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response.queued(), 1u);

  const auto close = client.ExpectClose();
  ASSERT_TRUE(close.received) << close.Describe();
  EXPECT_EQ(close.code, 4001);
  EXPECT_EQ(close.reason, "room closed");
  EXPECT_TRUE(close.before.empty());
  const auto late = admin().Push({id}, v1::OPCODE_TEXT, "late");
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << late.status.error_message();

  ASSERT_FALSE(client.SendClose(4001));
  EXPECT_TRUE(client.ReadUntilEof().orderly());
}

// A close frame can be broadcast: every matching connection is closed with it.
TEST_F(PushFramesTest, BroadcastCloseFrameClosesEveryMatchingConnection) {
  const auto path = UniquePath("pushclose");
  RawWsClient first;
  RawWsClient second;
  ASSERT_TRUE(first.Connect(port(), path + "/a").ok());
  ASSERT_TRUE(second.Connect(port(), path + "/b").ok());
  v1::ConnectionFilter active;
  active.set_path_prefix(path);
  active.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(admin().WaitForCount(active, 2));
  v1::BroadcastRequest request;
  request.mutable_filter()->set_path_prefix(path);
  request.mutable_frame()->set_opcode(v1::OPCODE_CLOSE);
  const auto reply = admin().Broadcast(request);
  ASSERT_TRUE(reply.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response.queued(), 2u);
  for (auto* client : {&first, &second}) {
    const auto close = client->ExpectClose();
    ASSERT_TRUE(close.received) << close.Describe();
    EXPECT_EQ(close.code, 1000);
    EXPECT_EQ(close.reason, "");
  }
}

}  // namespace
}  // namespace wsgateway::testing
