// The handshake hook (Backend.Handshake, Swoole's onHandShake and
// onBeforeHandShakeResponse) against a scripted backend: every outcome of
// the hook (accept with extras, reject as decided, an answer the gateway
// cannot honour, an error, a timeout), what the hook is told about the
// request, and the static subprotocol negotiation that applies without it.
//
// Deadlines are generous (sanitizer builds on a loaded machine); a gateway
// that answers at all answers in milliseconds.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/http_connection.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/raw_ws_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

constexpr std::chrono::milliseconds kDeadline = 20s;
// The hook's deadline on the hook stack.
constexpr std::chrono::milliseconds kHookTimeout = 300ms;
// The gateway's own handshake timer, far from the hook's deadline so the
// two cannot be confused.
constexpr std::chrono::milliseconds kHandshakeTimeout = 15s;

using Headers = std::vector<std::pair<std::string, std::string>>;
using Metadata = std::map<std::string, std::string>;

Metadata ToMetadata(const google::protobuf::Map<std::string, std::string>& map) { return {map.begin(), map.end()}; }

v1::HttpHeader Header(const std::string& name, const std::string& value) {
  v1::HttpHeader header;
  header.set_name(name);
  header.set_value(value);
  return header;
}

// An upgrade request written by hand, so the test knows every byte.
std::string UpgradeRequest(std::uint16_t port, const std::string& target, const std::string& extra_lines = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n" +
         extra_lines + "\r\n";
}

double CounterValue(std::uint16_t metrics_port, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  const auto scrape = ScrapeMetrics(metrics_port);
  EXPECT_TRUE(scrape.has_value()) << "GET /metrics failed";
  return scrape ? scrape->Sum(name, labels) : -1;
}

// ---- With the hook on --------------------------------------------------------

class HandshakeHookTest : public SharedScriptedStack<HandshakeHookTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--handshake-hook",         "true",
            "--handshake-hook-timeout", "300ms",
            "--handshake-timeout",      "15s",
            "--subprotocols",           "fallback.v1",
            "--response-headers",       "X-Gateway: hooked"};
  }

 protected:
  static double HookFailures(const std::string& reason) {
    return CounterValue(metrics_port(), "wsgateway_handshake_hook_failures_total", {{"reason", reason}});
  }

  // The upgrade on `path` is refused with `status`, and the hook failure
  // counter for `reason` went up by one.
  void ExpectHookFailure(const std::string& path, unsigned status, const std::string& reason,
                         const std::string& extra_lines = "") {
    const double before = HookFailures(reason);
    const auto result = RawHttpExchange(port(), UpgradeRequest(port(), path, extra_lines), kDeadline);
    EXPECT_EQ(result.status, status) << path << ": " << result.ec.message() << " " << result.body;
    EXPECT_EQ(HookFailures(reason), before + 1)
        << "wsgateway_handshake_hook_failures_total{reason=\"" << reason << "\"}";
  }

  // Upgrades by hand on `connection` with kExtraHeaders (the hook accepts)
  // and returns what the hook was told.
  static std::optional<v1::HandshakeRequest> UpgradeAndGetHookRequest(HttpConnection& connection,
                                                                      const std::string& path,
                                                                      const std::string& query) {
    EXPECT_TRUE(connection.connected());
    EXPECT_FALSE(connection.Write(UpgradeRequest(port(), path + query, kExtraHeaders), kDeadline));
    const auto response = connection.ReadResponse(kDeadline);
    EXPECT_EQ(response.status, 101u) << response.ec.message();
    for (const auto& request : backend().handshake_requests()) {
      if (request.path() == path) return request;
    }
    ADD_FAILURE() << "the hook was not called for " << path;
    return std::nullopt;
  }

  static Headers ExpectedHeaders() {
    return {{"host", "127.0.0.1:" + std::to_string(port())},
            {"upgrade", "websocket"},
            {"connection", "Upgrade"},
            {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
            {"sec-websocket-version", "13"},
            {"sec-websocket-protocol", "chat.v2, chat.v1"},
            {"x-custom-header", "Mixed Case Value"},
            {"sec-websocket-protocol", "mqtt"}};
  }

  static Headers HeadersOf(const v1::HandshakeRequest& request) {
    Headers headers;
    for (const auto& header : request.headers()) headers.emplace_back(header.name(), header.value());
    return headers;
  }

  static inline const std::string kExtraHeaders =
      "Sec-WebSocket-Protocol: chat.v2, chat.v1\r\nX-Custom-Header: Mixed Case Value\r\n"
      "Sec-WebSocket-Protocol: mqtt\r\n";
};

// Accepting with a subprotocol, a header, metadata and groups: the 101
// carries the subprotocol and the header, the Open event the subprotocol
// and the metadata, and the admin API shows metadata and groups.
TEST_F(HandshakeHookTest, AcceptWithSubprotocolHeaderMetadataAndGroups) {
  const std::string path = UniquePath("hook");
  backend().SetHandshakeHandler([](const v1::HandshakeRequest&) {
    v1::HandshakeResponse accept;
    accept.set_subprotocol("chat.v2");
    *accept.add_response_headers() = Header("X-Session", "s-123");
    (*accept.mutable_metadata())["user"] = "ann";
    (*accept.mutable_metadata())["tenant"] = "t1";
    accept.add_groups("lobby");
    accept.add_groups("room-7");
    return HandshakeAnswer::Reply(accept);
  });
  RawWsClient client;
  const auto handshake = client.Connect(port(), path, {{"Sec-WebSocket-Protocol", "chat.v1, chat.v2"}}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  EXPECT_EQ(handshake.headers.count("sec-websocket-protocol") ? handshake.headers.at("sec-websocket-protocol") : "",
            "chat.v2");
  EXPECT_EQ(handshake.headers.count("x-session") ? handshake.headers.at("x-session") : "(missing)", "s-123");
  EXPECT_EQ(handshake.headers.count("x-gateway") ? handshake.headers.at("x-gateway") : "(missing)", "hooked")
      << "--response-headers apply beside the hook's headers";

  const auto open = backend().WaitForOpen(path, kDeadline);
  ASSERT_TRUE(open.has_value()) << "no Open event for " << path;
  EXPECT_EQ(open->open().subprotocol(), "chat.v2");
  const Metadata expected_metadata = {{"tenant", "t1"}, {"user", "ann"}};
  EXPECT_EQ(ToMetadata(open->open().metadata()), expected_metadata)
      << "the Open event must carry the metadata the hook attached";
  EXPECT_EQ(std::vector<std::string>(open->open().groups().begin(), open->open().groups().end()),
            (std::vector<std::string>{"lobby", "room-7"}))
      << "the Open event must carry the groups the hook put the connection in";
  EXPECT_EQ(open->open().node_id(), open->connection_id().substr(0, open->connection_id().find('-')));

  const auto info = admin().GetClientInfo(open->connection_id());
  ASSERT_TRUE(info.ok()) << Describe(info.status);
  EXPECT_EQ(ToMetadata(info.response.info().metadata()), expected_metadata);
  const std::vector<std::string> groups(info.response.info().groups().begin(), info.response.info().groups().end());
  EXPECT_EQ(groups, (std::vector<std::string>{"lobby", "room-7"}));
  EXPECT_EQ(info.response.info().subprotocol(), "chat.v2");
}

// The hook is told the path, the query, the headers with their names
// lower-cased, the client's address, the offered subprotocols in the
// client's order, and the id the connection's events will carry.
TEST_F(HandshakeHookTest, HookRequestDescribesTheUpgrade) {
  const std::string path = UniquePath("hook");
  HttpConnection connection(port());
  const auto request = UpgradeAndGetHookRequest(connection, path, "?room=42&user=ann");
  ASSERT_TRUE(request.has_value());
  const auto open = backend().WaitForOpen(path, kDeadline);
  ASSERT_TRUE(open.has_value()) << "no Open event for " << path;
  EXPECT_EQ(request->connection_id(), open->connection_id());
  EXPECT_EQ(request->query(), "room=42&user=ann");
  EXPECT_EQ(request->remote_address(), connection.LocalAddress());
  EXPECT_EQ(request->route(), "");
  auto headers = HeadersOf(*request);
  auto expected = ExpectedHeaders();
  // Fields of different names may be reordered (Beast keeps a repeated
  // field beside its first occurrence); fields of the same name keep their
  // relative order, which is what RFC 9110 5.3 requires and the proto
  // promises.
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  EXPECT_EQ(headers, expected);
  const std::vector<std::string> offered(request->offered_subprotocols().begin(),
                                         request->offered_subprotocols().end());
  EXPECT_EQ(offered, (std::vector<std::string>{"chat.v2", "chat.v1", "mqtt"}));
}

// Accepting without choosing a subprotocol leaves the choice to the
// configured --subprotocols.
TEST_F(HandshakeHookTest, AcceptWithoutSubprotocolFallsBackToConfiguredOnes) {
  RawWsClient client;
  const auto handshake =
      client.Connect(port(), UniquePath("hook"), {{"Sec-WebSocket-Protocol", "other, fallback.v1"}}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  ASSERT_EQ(handshake.headers.count("sec-websocket-protocol"), 1u);
  EXPECT_EQ(handshake.headers.at("sec-websocket-protocol"), "fallback.v1");
}

// A rejection goes to the client exactly as the hook wrote it.
TEST_F(HandshakeHookTest, RejectionIsSentAsDecided) {
  const std::string body = "go away\n(really)";
  backend().SetHandshakeHandler([body](const v1::HandshakeRequest&) {
    v1::HandshakeResponse decision;
    auto* reject = decision.mutable_reject();
    reject->set_status(403);
    *reject->add_headers() = Header("X-Reason", "banned");
    *reject->add_headers() = Header("Cache-Control", "no-store");
    reject->set_body(body);
    return HandshakeAnswer::Reply(decision);
  });
  const double before = CounterValue(metrics_port(), "wsgateway_handshake_rejections_total", {{"reason", "hook"}});
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), UniquePath("hook")), kDeadline);
  ASSERT_EQ(result.status, 403u) << result.ec.message();
  EXPECT_EQ(result.body, body);
  EXPECT_EQ(result.headers.count("x-reason") ? result.headers.at("x-reason") : "", "banned");
  EXPECT_EQ(result.headers.count("cache-control") ? result.headers.at("cache-control") : "", "no-store");
  EXPECT_EQ(result.headers.count("content-length") ? result.headers.at("content-length") : "",
            std::to_string(body.size()));
  EXPECT_EQ(result.headers.count("upgrade"), 0u) << "a refusal must not look like an upgrade";
  EXPECT_EQ(CounterValue(metrics_port(), "wsgateway_handshake_rejections_total", {{"reason", "hook"}}), before + 1);
}

// A refused upgrade is gone from the admin API as soon as the client has
// the refusal, though its TCP connection lingers while the client reads it.
TEST_F(HandshakeHookTest, RejectedUpgradeIsNotListedOnceRefused) {
  const std::string path = UniquePath("hookgone");
  backend().SetHandshakeHandler([](const v1::HandshakeRequest&) {
    v1::HandshakeResponse decision;
    decision.mutable_reject()->set_status(403);
    return HandshakeAnswer::Reply(decision);
  });
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write(UpgradeRequest(port(), path), kDeadline));
  const auto response = connection.ReadResponse(kDeadline);
  ASSERT_EQ(response.status, 403u) << response.ec.message();
  std::string id;
  for (const auto& request : backend().handshake_requests()) {
    if (request.path() == path) id = request.connection_id();
  }
  ASSERT_FALSE(id.empty()) << "the hook was not called for " << path;
  // The client still holds its end open.
  const auto exist = admin().Exist(id);
  ASSERT_TRUE(exist.ok()) << exist.status.error_message();
  EXPECT_FALSE(exist.response.exists()) << "a refused connection is still listed";
  v1::ConnectionFilter filter;
  filter.set_path_prefix(path);
  EXPECT_TRUE(admin().WaitForCount(filter, 0).has_value());
}

// A rejection status outside 400-599 cannot be honoured: 502.
TEST_F(HandshakeHookTest, RejectionWithANonErrorStatusGets502) {
  for (const unsigned status : {200u, 302u, 101u, 600u}) {
    backend().SetHandshakeHandler([status](const v1::HandshakeRequest&) {
      v1::HandshakeResponse decision;
      decision.mutable_reject()->set_status(status);
      return HandshakeAnswer::Reply(decision);
    });
    SCOPED_TRACE("reject status " + std::to_string(status));
    ExpectHookFailure(UniquePath("hook"), 502, "bad_response");
  }
}

// A subprotocol the client did not offer cannot be honoured: 502.
TEST_F(HandshakeHookTest, SubprotocolNotOfferedGets502) {
  backend().SetHandshakeHandler([](const v1::HandshakeRequest&) {
    v1::HandshakeResponse accept;
    accept.set_subprotocol("mqtt");
    return HandshakeAnswer::Reply(accept);
  });
  ExpectHookFailure(UniquePath("hook"), 502, "bad_response", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
  // Nor when the client offered none at all.
  ExpectHookFailure(UniquePath("hook"), 502, "bad_response");
}

// Headers the gateway owns, and headers that are not valid HTTP, cannot be
// added to the 101: 502.
TEST_F(HandshakeHookTest, ReservedOrMalformedResponseHeaderGets502) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
      {"sec-websocket-extensions", "permessage-deflate"},
      {"Sec-WebSocket-Protocol", "chat.v1"},
      {"Upgrade", "h2c"},
      {"Connection", "close"},
      {"Content-Length", "5"},
      {"Bad Name", "x"},
      {"X-Split", "a\r\nInjected: yes"},
  };
  for (const auto& [name, value] : bad) {
    backend().SetHandshakeHandler([name, value](const v1::HandshakeRequest&) {
      v1::HandshakeResponse accept;
      *accept.add_response_headers() = Header(name, value);
      return HandshakeAnswer::Reply(accept);
    });
    SCOPED_TRACE("response header " + Printable(name) + ": " + Printable(value));
    ExpectHookFailure(UniquePath("hook"), 502, "bad_response", "Sec-WebSocket-Protocol: chat.v1\r\n");
  }
}

// Groups the gateway cannot honour (an empty or over-long name, more than
// 64 of them) make the answer invalid: 502.
TEST_F(HandshakeHookTest, InvalidGroupsGet502) {
  const std::vector<std::vector<std::string>> bad = {{""}, {"ok", std::string(129, 'g')}};
  for (const auto& groups : bad) {
    backend().SetHandshakeHandler([groups](const v1::HandshakeRequest&) {
      v1::HandshakeResponse accept;
      for (const auto& group : groups) accept.add_groups(group);
      return HandshakeAnswer::Reply(accept);
    });
    SCOPED_TRACE("groups ending in " + Printable(groups.back()));
    ExpectHookFailure(UniquePath("hook"), 502, "bad_response");
  }
  std::vector<std::string> too_many;
  for (int i = 0; i < 65; ++i) too_many.push_back(std::to_string(i).append("-group"));
  backend().SetHandshakeHandler([too_many](const v1::HandshakeRequest&) {
    v1::HandshakeResponse accept;
    for (const auto& group : too_many) accept.add_groups(group);
    return HandshakeAnswer::Reply(accept);
  });
  ExpectHookFailure(UniquePath("hook"), 502, "bad_response");
}

// A hook that fails makes the upgrade fail with 503 (and Retry-After).
TEST_F(HandshakeHookTest, HookErrorGets503) {
  for (const auto code :
       {grpc::StatusCode::INTERNAL, grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::PERMISSION_DENIED}) {
    backend().SetHandshakeHandler(
        [code](const v1::HandshakeRequest&) { return HandshakeAnswer::Fail(grpc::Status(code, "scripted failure")); });
    SCOPED_TRACE("hook status " + std::to_string(static_cast<int>(code)));
    const double before = HookFailures("error");
    const auto result = RawHttpExchange(port(), UpgradeRequest(port(), UniquePath("hook")), kDeadline);
    EXPECT_EQ(result.status, 503u) << result.ec.message();
    EXPECT_EQ(result.headers.count("retry-after"), 1u);
    EXPECT_EQ(HookFailures("error"), before + 1);
  }
}

// A hook that does not answer within --handshake-hook-timeout makes the
// upgrade fail with 503 at that deadline, not at the handshake timeout.
TEST_F(HandshakeHookTest, HookTimeoutGets503AtTheHookDeadline) {
  backend().SetHandshakeHandler([](const v1::HandshakeRequest&) { return HandshakeAnswer::Hold(); });
  const double before = HookFailures("timeout");
  const auto started = std::chrono::steady_clock::now();
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), UniquePath("hook")), kDeadline);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.status, 503u) << result.ec.message();
  EXPECT_GE(elapsed, kHookTimeout) << "answered before the hook's deadline";
  EXPECT_LT(elapsed, kHandshakeTimeout) << "answered by the handshake timer, not the hook deadline";
  EXPECT_EQ(HookFailures("timeout"), before + 1);
}

// ---- Without the hook --------------------------------------------------------

class StaticSubprotocolTest : public SharedScriptedStack<StaticSubprotocolTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--subprotocols", "chat.v1,chat.v2,mqtt", "--response-headers", "X-Gateway: static, X-Second: 2"};
  }
};

// --response-headers are added to every 101 (onBeforeHandShakeResponse
// without a hook).
TEST_F(StaticSubprotocolTest, ConfiguredResponseHeadersAreInEvery101) {
  RawWsClient client;
  const auto handshake = client.Connect(port(), UniquePath("hdr"), {}, kDeadline);
  ASSERT_TRUE(handshake.ok()) << handshake.Describe();
  EXPECT_EQ(handshake.headers.count("x-gateway") ? handshake.headers.at("x-gateway") : "(missing)", "static");
  EXPECT_EQ(handshake.headers.count("x-second") ? handshake.headers.at("x-second") : "(missing)", "2");
}

// Without --handshake-hook the backend's Handshake is never called.
TEST_F(StaticSubprotocolTest, HookOffMeansNoCall) {
  const std::string path = UniquePath("nohook");
  RawWsClient client;
  ASSERT_TRUE(client.Connect(port(), path, {}, kDeadline).ok());
  ASSERT_TRUE(backend().WaitForOpen(path, kDeadline).has_value());
  EXPECT_EQ(backend().handshake_calls(), 0u);
}

struct SubprotocolCase {
  std::vector<std::string> offer_lines;  // Sec-WebSocket-Protocol header lines
  std::string expected;                  // "" means no Sec-WebSocket-Protocol in the 101
};

// The client's order of preference wins among the configured ones; one not
// offered is never chosen; no acceptable offer means no header, not a
// refusal.
TEST_F(StaticSubprotocolTest, ClientPreferenceAmongConfiguredWins) {
  const std::vector<SubprotocolCase> cases = {
      {{"mqtt, chat.v2"}, "mqtt"},
      {{"chat.v2, chat.v1"}, "chat.v2"},
      {{"graphql-ws, chat.v1"}, "chat.v1"},
      {{"graphql-ws", "chat.v2, mqtt"}, "chat.v2"},
      {{"graphql-ws"}, ""},
      {{"CHAT.V1"}, ""},
      {{}, ""},
  };
  for (const auto& c : cases) {
    Headers headers;
    std::string offered;
    for (const auto& line : c.offer_lines) {
      headers.emplace_back("Sec-WebSocket-Protocol", line);
      offered += "[" + line + "]";
    }
    SCOPED_TRACE("offered " + (offered.empty() ? std::string("nothing") : offered));
    const std::string path = UniquePath("sp");
    RawWsClient client;
    const auto handshake = client.Connect(port(), path, headers, kDeadline);
    ASSERT_TRUE(handshake.ok()) << handshake.Describe();
    const auto header = handshake.headers.find("sec-websocket-protocol");
    EXPECT_EQ(header == handshake.headers.end() ? "" : header->second, c.expected);
    const auto open = backend().WaitForOpen(path, kDeadline);
    ASSERT_TRUE(open.has_value()) << "no Open event for " << path;
    EXPECT_EQ(open->open().subprotocol(), c.expected);
  }
}

}  // namespace
}  // namespace wsgateway::testing
