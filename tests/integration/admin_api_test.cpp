// Every wsgateway.v1.Admin method against a running gateway, with real
// WebSocket clients on the other side, including every documented error
// status.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using grpc::StatusCode;

constexpr std::size_t kLimit = 64 * 1024;
// Well-formed, but no gateway process has this id.
const std::string kUnknownId = "0000000000000001-0-1";

class AdminApiTest : public SharedEchoStack<AdminApiTest> {
 public:
  static std::vector<std::string> Flags() { return {"--max-message-bytes", "64KiB"}; }

 protected:
  // Connects `client` on `path` (a fresh one when empty) and returns its id;
  // it stands in for the fixture's Connect(client, prefix) because the tests
  // here address connections by id.
  static std::string Connect(WsClient& client, const std::string& path = "") {
    return ConnectAndGetId(client, path.empty() ? UniquePath("admin") : path);
  }

  // Returns the id of a TCP connection that has not sent anything yet.
  std::string IdOfSilentConnection(const RawTcpConnection& raw) {
    const auto info = admin().WaitForAddress(raw.LocalAddress(), v1::CONNECTION_STATE_CONNECTION);
    EXPECT_TRUE(info.has_value()) << "silent connection " << raw.LocalAddress() << " never listed";
    return info ? info->connection_id() : std::string();
  }
};

// ----------------------------------------------------------------- Push

// A pushed text message reaches its client exactly once.
TEST_F(AdminApiTest, PushedTextReachesTheClientExactlyOnce) {
  WsClient client;
  const std::string id = Connect(client);
  ASSERT_FALSE(id.empty());
  const auto reply = admin().Push({id}, v1::OPCODE_TEXT, "pushed \xE2\x9C\x93");
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 1u);
  EXPECT_EQ(reply.response.results_size(), 0) << "results are only filled for several ids";
  const auto message = client.Read();
  ASSERT_FALSE(message.ec) << message.ec.message();
  EXPECT_FALSE(message.binary);
  EXPECT_EQ(message.payload, "pushed \xE2\x9C\x93");
  ExpectNothingMoreThan(client);
}

// A pushed binary message arrives as binary; an unset opcode means text.
TEST_F(AdminApiTest, PushedOpcodeIsKeptAndUnsetMeansText) {
  WsClient client;
  const std::string id = Connect(client);
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_BINARY, std::string("\x00\xFF\x01", 3)).ok());
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_UNSPECIFIED, "implicit text").ok());
  const auto first = client.Read();
  const auto second = client.Read();
  ASSERT_FALSE(first.ec) << first.ec.message();
  ASSERT_FALSE(second.ec) << second.ec.message();
  EXPECT_TRUE(first.binary);
  EXPECT_EQ(first.payload, std::string("\x00\xFF\x01", 3));
  EXPECT_FALSE(second.binary);
  EXPECT_EQ(second.payload, "implicit text");
}

// Pushed pings and pongs reach the client as control frames, in order with
// data messages.
TEST_F(AdminApiTest, PushedPingAndPongReachTheClient) {
  WsClient client;
  const std::string id = Connect(client);
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_PING, "ping-payload").ok());
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_PONG, "pong-payload").ok());
  ASSERT_TRUE(admin().Push({id}, v1::OPCODE_TEXT, "after control frames").ok());
  const auto message = client.Read();
  ASSERT_FALSE(message.ec) << message.ec.message();
  EXPECT_EQ(message.payload, "after control frames");
  EXPECT_EQ(client.PingsReceived(), std::vector<std::string>{"ping-payload"});
  EXPECT_EQ(client.PongsReceived(), std::vector<std::string>{"pong-payload"});
}

// Pushes to one client arrive in the order they were made.
TEST_F(AdminApiTest, PushesArriveInOrder) {
  WsClient client;
  const std::string id = Connect(client);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(admin().Push({id}, v1::OPCODE_TEXT, "p" + std::to_string(i)).ok());
  for (int i = 0; i < 50; ++i) {
    const auto message = client.Read();
    ASSERT_FALSE(message.ec) << message.ec.message();
    EXPECT_EQ(message.payload, "p" + std::to_string(i));
  }
}

// A payload of exactly the limit can be pushed.
TEST_F(AdminApiTest, PushAtTheLimitIsDelivered) {
  WsClient client;
  const std::string id = Connect(client);
  const auto reply = admin().Push({id}, v1::OPCODE_BINARY, std::string(kLimit, 'z'));
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  const auto message = client.Read();
  ASSERT_FALSE(message.ec) << message.ec.message();
  EXPECT_EQ(message.payload.size(), kLimit);
}

// With several ids the call succeeds and reports each outcome in request
// order: delivered, unknown, not yet ACTIVE.
TEST_F(AdminApiTest, PushToSeveralIdsReportsEachOutcome) {
  WsClient a;
  WsClient b;
  const std::string id_a = Connect(a);
  const std::string id_b = Connect(b);
  RawTcpConnection silent(port());
  ASSERT_TRUE(silent.connected());
  const std::string id_silent = IdOfSilentConnection(silent);
  ASSERT_FALSE(id_silent.empty());

  const auto reply = admin().Push({id_a, kUnknownId, id_silent, id_b}, v1::OPCODE_TEXT, "to many");
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 2u);
  ASSERT_EQ(reply.response.results_size(), 4);
  const auto& r = reply.response.results();
  EXPECT_EQ(r[0].connection_id(), id_a);
  EXPECT_EQ(r[0].code(), 0);
  EXPECT_EQ(r[1].connection_id(), kUnknownId);
  EXPECT_EQ(r[1].code(), static_cast<int>(StatusCode::NOT_FOUND));
  EXPECT_EQ(r[2].connection_id(), id_silent);
  EXPECT_EQ(r[2].code(), static_cast<int>(StatusCode::FAILED_PRECONDITION));
  EXPECT_FALSE(r[2].message().empty());
  EXPECT_EQ(r[3].connection_id(), id_b);
  EXPECT_EQ(r[3].code(), 0);
  for (WsClient* client : {&a, &b}) {
    const auto message = client->Read();
    ASSERT_FALSE(message.ec) << message.ec.message();
    EXPECT_EQ(message.payload, "to many");
    ExpectNothingMoreThan(*client);
  }
}

// A push to a single unknown id fails with NOT_FOUND.
TEST_F(AdminApiTest, PushToAnUnknownIdIsNotFound) {
  const auto reply = admin().Push({kUnknownId}, v1::OPCODE_TEXT, "nobody");
  EXPECT_EQ(reply.status.error_code(), StatusCode::NOT_FOUND) << Describe(reply.status);
}

// A push without ids, or with an empty id, is an invalid request.
TEST_F(AdminApiTest, PushWithoutOrWithEmptyIdIsInvalidArgument) {
  EXPECT_EQ(admin().Push({}, v1::OPCODE_TEXT, "x").status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Push({""}, v1::OPCODE_TEXT, "x").status.error_code(), StatusCode::INVALID_ARGUMENT);
}

// A payload over --max-message-bytes is refused and nothing is sent.
TEST_F(AdminApiTest, PushOverTheLimitIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  const auto reply = admin().Push({id}, v1::OPCODE_BINARY, std::string(kLimit + 1, 'z'));
  EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(reply.status);
  ExpectNothingMoreThan(client);
}

// Text that is not UTF-8 is refused; the same bytes as binary are fine.
TEST_F(AdminApiTest, PushOfInvalidUtf8TextIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  const auto text = admin().Push({id}, v1::OPCODE_TEXT, "bad \xFF");
  EXPECT_EQ(text.status.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(text.status);
  const auto binary = admin().Push({id}, v1::OPCODE_BINARY, "bad \xFF");
  EXPECT_TRUE(binary.ok()) << Describe(binary.status);
  const auto message = client.Read();
  ASSERT_FALSE(message.ec);
  EXPECT_TRUE(message.binary);
  EXPECT_EQ(message.payload, "bad \xFF");
  ExpectNothingMoreThan(client);
}

// Opcodes that do not exist cannot be pushed, nor a close frame with a
// payload (its code and reason go in Frame.close).
TEST_F(AdminApiTest, PushOfCloseWithPayloadOrUnknownOpcodeIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  for (int opcode : {static_cast<int>(v1::OPCODE_CLOSE), 3, 7, 77, -1}) {
    const auto reply = admin().Push({id}, static_cast<v1::Opcode>(opcode), "x");
    EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT)
        << "opcode " << opcode << ": " << Describe(reply.status);
  }
  ExpectNothingMoreThan(client);
}

// Ping and pong payloads are limited to 125 bytes.
TEST_F(AdminApiTest, ControlFramePayloadOver125BytesIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  EXPECT_EQ(admin().Push({id}, v1::OPCODE_PING, std::string(126, 'p')).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Push({id}, v1::OPCODE_PONG, std::string(126, 'p')).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(admin().Push({id}, v1::OPCODE_PING, std::string(125, 'p')).ok());
  ExpectNothingMoreThan(client);
  EXPECT_EQ(client.PingsReceived(), std::vector<std::string>{std::string(125, 'p')});
}

// A connection that has not finished its handshake cannot be pushed to.
TEST_F(AdminApiTest, PushToConnectionNotYetActiveIsFailedPrecondition) {
  RawTcpConnection silent(port());
  ASSERT_TRUE(silent.connected());
  const std::string id = IdOfSilentConnection(silent);
  ASSERT_FALSE(id.empty());
  const auto reply = admin().Push({id}, v1::OPCODE_TEXT, "too early");
  EXPECT_EQ(reply.status.error_code(), StatusCode::FAILED_PRECONDITION) << Describe(reply.status);
}

// ------------------------------------------------------------ Broadcast

// A broadcast reaches every ACTIVE client under the path prefix exactly once,
// except the excluded ones, and no one outside the prefix.
TEST_F(AdminApiTest, BroadcastHonoursPathPrefixAndExclusions) {
  const std::string prefix = UniquePath("bc");
  WsClient a, b, excluded, outside;
  const std::string id_a = Connect(a, prefix + "/a");
  const std::string id_b = Connect(b, prefix + "/b");
  const std::string id_excluded = Connect(excluded, prefix + "/c");
  Connect(outside, UniquePath("elsewhere"));
  RawTcpConnection silent(port());  // not ACTIVE: never a broadcast target

  const auto reply = admin().Broadcast(v1::OPCODE_TEXT, "to the room", prefix + "/", {id_excluded});
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 2u);
  EXPECT_EQ(reply.response.dropped_slow_consumers(), 0u);
  for (WsClient* client : {&a, &b}) {
    const auto message = client->Read();
    ASSERT_FALSE(message.ec) << message.ec.message();
    EXPECT_EQ(message.payload, "to the room");
    ExpectNothingMoreThan(*client);
  }
  ExpectNothingMoreThan(excluded);
  ExpectNothingMoreThan(outside);
}

// A broadcast of binary data keeps the opcode.
TEST_F(AdminApiTest, BroadcastKeepsTheOpcode) {
  const std::string prefix = UniquePath("bcbin");
  WsClient client;
  Connect(client, prefix);
  const auto reply = admin().Broadcast(v1::OPCODE_BINARY, std::string("\x01\x02", 2), prefix);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 1u);
  const auto message = client.Read();
  ASSERT_FALSE(message.ec);
  EXPECT_TRUE(message.binary);
  EXPECT_EQ(message.payload, std::string("\x01\x02", 2));
}

// A broadcast is checked like a push: bad opcode, bad text, oversized payload.
TEST_F(AdminApiTest, BroadcastOfABadFrameIsInvalidArgument) {
  const std::string prefix = UniquePath("bcbad");
  WsClient client;
  Connect(client, prefix);
  EXPECT_EQ(admin().Broadcast(v1::OPCODE_CLOSE, "x", prefix).status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Broadcast(static_cast<v1::Opcode>(77), "x", prefix).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Broadcast(v1::OPCODE_TEXT, "\xC0\x80", prefix).status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Broadcast(v1::OPCODE_BINARY, std::string(kLimit + 1, 'b'), prefix).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Broadcast(v1::OPCODE_PING, std::string(126, 'p'), prefix).status.error_code(),
            StatusCode::INVALID_ARGUMENT);
  ExpectNothingMoreThan(client);
}

// A broadcast that matches nobody succeeds with zero recipients.
TEST_F(AdminApiTest, BroadcastToNobodyQueuesZero) {
  const auto reply = admin().Broadcast(v1::OPCODE_TEXT, "anyone?", "/no-such-prefix-" + UniquePath());
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 0u);
}

// Broadcast reaches ACTIVE connections only, so a filter.state other than
// ACTIVE could never match: INVALID_ARGUMENT naming the field, not an OK
// that silently reaches nobody. ACTIVE itself (or no state) is accepted.
TEST_F(AdminApiTest, BroadcastWithAStateOtherThanActiveIsInvalidArgument) {
  const std::string prefix = UniquePath("bcstate");
  WsClient client;
  Connect(client, prefix);
  v1::BroadcastRequest request;
  request.mutable_frame()->set_payload("never");
  request.mutable_filter()->set_path_prefix(prefix);
  for (const auto state : {v1::CONNECTION_STATE_CONNECTION, v1::CONNECTION_STATE_HANDSHAKE,
                           v1::CONNECTION_STATE_CLOSING, static_cast<v1::ConnectionState>(77)}) {
    request.mutable_filter()->set_state(state);
    const auto reply = admin().Broadcast(request);
    EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << state << ": " << Describe(reply.status);
    EXPECT_NE(reply.status.error_message().find("filter.state"), std::string::npos) << Describe(reply.status);
  }
  request.mutable_frame()->set_payload("active only");
  request.mutable_filter()->set_state(v1::CONNECTION_STATE_ACTIVE);
  const auto reply = admin().Broadcast(request);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.queued(), 1u);
  EXPECT_EQ(client.Read().payload, "active only");
  ExpectNothingMoreThan(client);
}

// ----------------------------------------------------------- Disconnect

// Disconnect with code 0 closes the client with 1000.
TEST_F(AdminApiTest, DisconnectWithoutCodeClosesWith1000) {
  WsClient client;
  const std::string id = Connect(client);
  const auto reply = admin().Disconnect(id);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 1000);
  EXPECT_TRUE(admin().WaitForExist(id, false));
}

// The client sees the application code and reason the backend chose.
TEST_F(AdminApiTest, DisconnectDeliversCodeAndReason) {
  for (std::uint32_t code : {1000u, 3000u, 4000u, 4999u}) {
    WsClient client;
    const std::string id = Connect(client);
    const std::string reason = "bye " + std::to_string(code);
    const auto reply = admin().Disconnect(id, code, reason);
    ASSERT_TRUE(reply.ok()) << Describe(reply.status);
    const auto result = client.Read();
    EXPECT_TRUE(result.ec) << "the connection should have ended";
    EXPECT_EQ(client.CloseCode(), code);
    EXPECT_EQ(client.CloseReason(), reason);
  }
}

// A reason of exactly 123 bytes (multi-byte UTF-8 included) is accepted whole.
TEST_F(AdminApiTest, DisconnectAcceptsA123ByteReason) {
  WsClient client;
  const std::string id = Connect(client);
  std::string reason;
  for (int i = 0; i < 41; ++i) reason += "\xE2\x82\xAC";  // 41 x 3 bytes
  ASSERT_EQ(reason.size(), 123u);
  ASSERT_TRUE(admin().Disconnect(id, 4001, reason).ok());
  const auto result = client.Read();
  EXPECT_TRUE(result.ec) << "the connection should have ended";
  EXPECT_EQ(client.CloseCode(), 4001);
  EXPECT_EQ(client.CloseReason(), reason);
}

// Codes other than 1000 and 3000-4999 are refused and the client stays open.
TEST_F(AdminApiTest, DisconnectWithAForbiddenCodeIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  for (std::uint32_t code : {1u, 999u, 1001u, 1002u, 1005u, 1006u, 1008u, 1011u, 1015u, 2999u, 5000u, 65536u}) {
    const auto reply = admin().Disconnect(id, code, "");
    EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << code << ": " << Describe(reply.status);
  }
  ExpectNothingMoreThan(client);
  EXPECT_TRUE(client.IsOpen());
}

// A reason over 123 bytes is refused and the client stays open.
TEST_F(AdminApiTest, DisconnectWithATooLongReasonIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  const auto reply = admin().Disconnect(id, 1000, std::string(124, 'r'));
  EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(reply.status);
  ExpectNothingMoreThan(client);
}

// A reason that is not UTF-8 is refused with INVALID_ARGUMENT and the client
// stays open.
TEST_F(AdminApiTest, DisconnectWithANonUtf8ReasonIsInvalidArgument) {
  WsClient client;
  const std::string id = Connect(client);
  for (const std::string& reason : {std::string("bad \xFF reason"), std::string("\xED\xA0\x80")}) {
    const auto reply = admin().Disconnect(id, 1000, reason);
    EXPECT_EQ(reply.status.error_code(), StatusCode::INVALID_ARGUMENT) << Describe(reply.status);
  }
  ExpectNothingMoreThan(client);
}

// Disconnecting an unknown id is NOT_FOUND; an empty id is INVALID_ARGUMENT.
TEST_F(AdminApiTest, DisconnectOfUnknownOrEmptyIdFails) {
  EXPECT_EQ(admin().Disconnect(kUnknownId).status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(admin().Disconnect("").status.error_code(), StatusCode::INVALID_ARGUMENT);
}

// Once a connection is gone its id is stale: Push and Disconnect answer
// NOT_FOUND, Exist false, and the id is never handed to a new connection.
TEST_F(AdminApiTest, StaleIdIsNeverReused) {
  WsClient client;
  const std::string id = Connect(client);
  ASSERT_FALSE(client.Close());
  ASSERT_TRUE(admin().WaitForExist(id, false));
  EXPECT_EQ(admin().Push({id}, v1::OPCODE_TEXT, "late").status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(admin().Disconnect(id).status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(admin().GetClientInfo(id).status.error_code(), StatusCode::NOT_FOUND);
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    WsClient next;
    const std::string next_id = Connect(next);
    EXPECT_NE(next_id, id);
    EXPECT_TRUE(ids.insert(next_id).second) << "id handed out twice: " << next_id;
  }
}

// -------------------------------------------------- Exist, IsEstablished

// Exist is true for a connection in any state; IsEstablished only once ACTIVE.
TEST_F(AdminApiTest, ExistAndIsEstablishedFollowTheConnectionState) {
  WsClient client;
  const std::string active = Connect(client);
  RawTcpConnection raw(port());
  const std::string silent = IdOfSilentConnection(raw);
  ASSERT_FALSE(silent.empty());

  for (const std::string& id : {active, silent}) {
    const auto exist = admin().Exist(id);
    ASSERT_TRUE(exist.ok()) << Describe(exist.status);
    EXPECT_TRUE(exist.response.exists()) << id;
  }
  const auto established = admin().IsEstablished(active);
  ASSERT_TRUE(established.ok()) << Describe(established.status);
  EXPECT_TRUE(established.response.established());
  const auto not_established = admin().IsEstablished(silent);
  ASSERT_TRUE(not_established.ok()) << Describe(not_established.status);
  EXPECT_FALSE(not_established.response.established());

  raw.Close();
  EXPECT_TRUE(admin().WaitForExist(silent, false));
}

// Unknown ids answer false, never NOT_FOUND.
TEST_F(AdminApiTest, ExistAndIsEstablishedAnswerFalseForUnknownIds) {
  for (const std::string& id : {kUnknownId, std::string("not-an-id")}) {
    const auto exist = admin().Exist(id);
    ASSERT_TRUE(exist.ok()) << id << ": " << Describe(exist.status);
    EXPECT_FALSE(exist.response.exists());
    const auto established = admin().IsEstablished(id);
    ASSERT_TRUE(established.ok()) << id << ": " << Describe(established.status);
    EXPECT_FALSE(established.response.established());
  }
}

// An empty id is an invalid request for every method.
TEST_F(AdminApiTest, EmptyIdIsInvalidArgumentEverywhere) {
  EXPECT_EQ(admin().Exist("").status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().IsEstablished("").status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().GetClientInfo("").status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Disconnect("").status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(admin().Push({""}, v1::OPCODE_TEXT, "x").status.error_code(), StatusCode::INVALID_ARGUMENT);
}

// -------------------------------------------------------- GetClientInfo

// GetClientInfo describes the connection as the client made it, with message
// and byte counters.
TEST_F(AdminApiTest, GetClientInfoDescribesTheConnection) {
  WsClient client;
  const std::string path = UniquePath("info");
  const std::string id = Connect(client, path + "?room=7&user=ann");
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE(client.SendText("12345"));
  ASSERT_EQ(client.Read().payload, "12345");

  // The counters are updated by the gateway's loop; wait for them to settle.
  v1::ClientInfo info;
  PollUntil(std::chrono::seconds(20), [&] {
    const auto reply = admin().GetClientInfo(id);
    EXPECT_TRUE(reply.ok()) << Describe(reply.status);
    info = reply.response.info();
    return !reply.ok() || (info.messages_out() >= 1 && info.messages_in() >= 1);
  });
  EXPECT_EQ(info.connection_id(), id);
  EXPECT_EQ(info.state(), v1::CONNECTION_STATE_ACTIVE);
  EXPECT_EQ(info.remote_address(), client.LocalAddress());
  EXPECT_EQ(info.path(), path);
  EXPECT_EQ(info.query(), "room=7&user=ann");
  EXPECT_EQ(info.subprotocol(), "");
  EXPECT_EQ(info.messages_in(), 1u);
  EXPECT_EQ(info.bytes_in(), 5u);
  EXPECT_EQ(info.messages_out(), 1u);
  EXPECT_EQ(info.bytes_out(), 5u);
  EXPECT_GT(info.connected_at().seconds(), 1'600'000'000);
  const auto connected = info.connected_at().seconds() * 1'000'000'000LL + info.connected_at().nanos();
  const auto last = info.last_activity_at().seconds() * 1'000'000'000LL + info.last_activity_at().nanos();
  EXPECT_GE(last, connected);
  EXPECT_EQ(info.local_address(), "127.0.0.1:" + std::to_string(port()));
  EXPECT_EQ(info.route(), "");
  EXPECT_LT(info.event_loop(), 2u);
  EXPECT_TRUE(info.has_last_received_at());
  EXPECT_TRUE(info.has_last_sent_at()) << "the echo was written";
  EXPECT_TRUE(info.extensions().empty());
}

// A connection that sent nothing is described in state CONNECTION, without a
// path.
TEST_F(AdminApiTest, GetClientInfoOfASilentConnectionShowsStateConnection) {
  RawTcpConnection raw(port());
  const std::string id = IdOfSilentConnection(raw);
  ASSERT_FALSE(id.empty());
  const auto reply = admin().GetClientInfo(id);
  ASSERT_TRUE(reply.ok()) << Describe(reply.status);
  EXPECT_EQ(reply.response.info().state(), v1::CONNECTION_STATE_CONNECTION);
  EXPECT_EQ(reply.response.info().remote_address(), raw.LocalAddress());
  EXPECT_EQ(reply.response.info().path(), "");
}

// GetClientInfo of an unknown id is NOT_FOUND.
TEST_F(AdminApiTest, GetClientInfoOfAnUnknownIdIsNotFound) {
  EXPECT_EQ(admin().GetClientInfo(kUnknownId).status.error_code(), StatusCode::NOT_FOUND);
}

// ------------------------------------------------------ Untrusted input

// An 8 KiB id gets each method's own answer with a short message that
// quotes only its start (echoed whole, the status would pass a standard
// client's metadata limit and read as RESOURCE_EXHAUSTED), and the channel
// serves the next call.
TEST_F(AdminApiTest, HugeIdGetsItsStatusWithAShortMessageAndTheChannelStaysUsable) {
  const std::string huge(8 * 1024, 'i');
  // A channel of its own, so that a broken one cannot fail other tests.
  AdminClient own(admin_port());
  const auto expect = [&](const std::string& method, const grpc::Status& status, StatusCode code) {
    EXPECT_EQ(status.error_code(), code) << method << ": " << Describe(status).substr(0, 300);
    EXPECT_LT(status.error_message().size(), 400u) << method;
    if (code != StatusCode::OK) {
      EXPECT_NE(status.error_message().find("(8192 bytes)"), std::string::npos) << method;
    }
    const auto next = own.IsEstablished(kUnknownId);
    EXPECT_TRUE(next.ok()) << "the call after " << method << ": " << Describe(next.status);
  };
  expect("Exist", own.Exist(huge).status, StatusCode::OK);
  expect("IsEstablished", own.IsEstablished(huge).status, StatusCode::OK);
  expect("GetClientInfo", own.GetClientInfo(huge).status, StatusCode::NOT_FOUND);
  expect("Disconnect", own.Disconnect(huge, 4000, "bye").status, StatusCode::NOT_FOUND);
  expect("Push", own.Push({huge}, v1::OPCODE_TEXT, "x").status, StatusCode::NOT_FOUND);
  expect("JoinGroup", own.JoinGroup(huge, {"room"}).status, StatusCode::NOT_FOUND);
  expect("LeaveGroup", own.LeaveGroup(huge, {"room"}).status, StatusCode::NOT_FOUND);

  // With several ids each result quotes its id the same way.
  const auto several = own.Push({huge, kUnknownId}, v1::OPCODE_TEXT, "x");
  ASSERT_TRUE(several.ok()) << Describe(several.status);
  ASSERT_EQ(several.response.results_size(), 2);
  const auto& result = several.response.results(0);
  EXPECT_EQ(result.code(), static_cast<int>(StatusCode::NOT_FOUND));
  EXPECT_LT(result.message().size(), 400u);
  EXPECT_NE(result.message().find("(8192 bytes)"), std::string::npos) << result.message().substr(0, 300);
}

// ------------------------------------------------------ ListConnections

// Listing filters by path prefix and by state.
TEST_F(AdminApiTest, ListConnectionsFiltersByPathAndState) {
  const std::string prefix = UniquePath("list");
  WsClient first, second;
  const std::string id_first = Connect(first, prefix + "/1");
  const std::string id_second = Connect(second, prefix + "/2");
  RawTcpConnection raw(port());
  const std::string id_raw = IdOfSilentConnection(raw);

  v1::ConnectionFilter by_path;
  by_path.set_path_prefix(prefix + "/");
  const auto listed = admin().ListAll(by_path);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 2u);
  std::map<std::string, std::string> path_by_id;
  for (const auto& info : *listed) path_by_id[info.connection_id()] = info.path();
  EXPECT_EQ(path_by_id, (std::map<std::string, std::string>{{id_first, prefix + "/1"}, {id_second, prefix + "/2"}}));

  v1::ConnectionFilter connecting;
  connecting.set_state(v1::CONNECTION_STATE_CONNECTION);
  const auto silent = admin().ListAll(connecting);
  ASSERT_TRUE(silent.has_value());
  bool found_raw = false;
  for (const auto& info : *silent) {
    EXPECT_EQ(info.state(), v1::CONNECTION_STATE_CONNECTION);
    EXPECT_NE(info.connection_id(), id_first);
    found_raw = found_raw || info.connection_id() == id_raw;
  }
  EXPECT_TRUE(found_raw);

  v1::ConnectionFilter active_under_prefix = by_path;
  active_under_prefix.set_state(v1::CONNECTION_STATE_ACTIVE);
  const auto active = admin().ListAll(active_under_prefix);
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->size(), 2u);
}

// Small pages walk the whole listing, every connection exactly once.
TEST_F(AdminApiTest, ListConnectionsPagesSeeEveryConnectionOnce) {
  const std::string prefix = UniquePath("pages");
  std::vector<std::unique_ptr<WsClient>> clients;
  std::set<std::string> expected;
  for (int i = 0; i < 7; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    expected.insert(Connect(*clients.back(), prefix + "/" + std::to_string(i)));
  }
  v1::ListConnectionsRequest request;
  request.set_page_size(2);
  request.mutable_filter()->set_path_prefix(prefix + "/");
  std::multiset<std::string> seen;
  int pages = 0;
  for (;; ++pages) {
    ASSERT_LT(pages, 10);
    const auto reply = admin().ListConnections(request);
    ASSERT_TRUE(reply.ok()) << Describe(reply.status);
    EXPECT_LE(reply.response.connections_size(), 2);
    for (const auto& info : reply.response.connections()) seen.insert(info.connection_id());
    if (reply.response.next_page_token().empty()) break;
    request.set_page_token(reply.response.next_page_token());
  }
  EXPECT_EQ(pages + 1, 4);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  EXPECT_EQ(seen.size(), expected.size()) << "a connection was listed twice";
}

}  // namespace
}  // namespace wsgateway::testing
