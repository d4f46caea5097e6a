// HTTP forwarding (Backend.HandleRequest, Swoole's onRequest and
// onDisconnect) against a scripted backend: plain requests reach the backend
// whole and its answers reach the client; keep-alive, Connection: close, the
// body limit, backend errors and timeouts; the Disconnect event; and an
// upgrade after plain requests on the same connection.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/websocket/frame_codec.hpp"
#include "tests/support/http_connection.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

namespace fc = frame_codec;

constexpr std::chrono::milliseconds kDeadline = 20s;
constexpr std::chrono::milliseconds kRequestTimeout = 300ms;
constexpr std::size_t kMaxBodyBytes = 1024;

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Get(std::uint16_t port, const std::string& target, const std::string& extra_lines = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + extra_lines + "\r\n";
}

std::string Post(std::uint16_t port, const std::string& target, const std::string& body,
                 const std::string& extra_lines = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + extra_lines +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string HeaderOf(const HttpResult& result, const std::string& name) {
  const auto it = result.headers.find(name);
  return it == result.headers.end() ? "(missing)" : it->second;
}

v1::HttpHeader Header(const std::string& name, const std::string& value) {
  v1::HttpHeader header;
  header.set_name(name);
  header.set_value(value);
  return header;
}

// Answers 200 with the request's path as the body.
HttpAnswer EchoPath(const v1::HttpRequest& request) {
  v1::HttpResponse response;
  response.set_status(200);
  response.set_body("path=" + request.path());
  return HttpAnswer::Reply(response);
}

class HttpForwardingTest : public SharedScriptedStack<HttpForwardingTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--http-forwarding", "true", "--max-request-body-bytes", "1KiB", "--http-request-timeout", "300ms"};
  }

 protected:
  // The requests the backend got for `path`.
  static std::vector<v1::HttpRequest> RequestsFor(const std::string& path) {
    auto requests = backend().http_requests();
    std::erase_if(requests, [&](const v1::HttpRequest& r) { return r.path() != path; });
    return requests;
  }

  static std::optional<v1::Event> WaitForDisconnect(const std::string& connection_id) {
    return backend().WaitForEvent(
        [&](const v1::Event& e) { return e.has_disconnect() && e.connection_id() == connection_id; }, kDeadline);
  }
};

// Method, path, query, headers (lower-cased, in order), body and the
// client's address reach HandleRequest; status, headers and body come back.
TEST_F(HttpForwardingTest, RequestAndResponseTravelWhole) {
  const std::string path = UniquePath("api");
  backend().SetHttpHandler([](const v1::HttpRequest&) {
    v1::HttpResponse response;
    response.set_status(201);
    *response.add_headers() = Header("X-Handled", "yes");
    *response.add_headers() = Header("Content-Type", "application/json");
    response.set_body(R"({"ok":true})");
    return HttpAnswer::Reply(response);
  });
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write(
      Post(port(), path + "?x=1&y=two", "hello body", "Content-Type: text/plain\r\nX-Trace-ID: AbC\r\n"), kDeadline));
  const auto response = connection.ReadResponse(kDeadline);
  ASSERT_EQ(response.status, 201u) << response.ec.message();
  EXPECT_EQ(response.body, R"({"ok":true})");
  EXPECT_EQ(HeaderOf(response, "x-handled"), "yes");
  EXPECT_EQ(HeaderOf(response, "content-type"), "application/json");
  EXPECT_EQ(HeaderOf(response, "content-length"), "11");

  const auto requests = RequestsFor(path);
  ASSERT_EQ(requests.size(), 1u);
  const auto& request = requests.front();
  EXPECT_EQ(request.method(), "POST");
  EXPECT_EQ(request.query(), "x=1&y=two");
  EXPECT_EQ(request.body(), "hello body");
  EXPECT_EQ(request.remote_address(), connection.LocalAddress());
  EXPECT_FALSE(request.connection_id().empty());
  Headers headers;
  for (const auto& header : request.headers()) headers.emplace_back(header.name(), header.value());
  const Headers expected = {{"host", "127.0.0.1:" + std::to_string(port())},
                            {"content-type", "text/plain"},
                            {"x-trace-id", "AbC"},
                            {"content-length", "10"}};
  EXPECT_EQ(headers, expected);
}

// Status 0 from the backend means 200.
TEST_F(HttpForwardingTest, StatusZeroMeans200) {
  backend().SetHttpHandler([](const v1::HttpRequest&) {
    v1::HttpResponse response;
    response.set_body("zero");
    return HttpAnswer::Reply(response);
  });
  const auto response = HttpGet(port(), UniquePath("zero"), kDeadline);
  EXPECT_EQ(response.status, 200u) << response.ec.message();
  EXPECT_EQ(response.body, "zero");
}

// Two requests on one keep-alive connection: both answered, both with the
// same connection id; when the client hangs up, one Disconnect event
// counts both requests.
TEST_F(HttpForwardingTest, KeepAliveCarriesSeveralRequestsThenDisconnects) {
  backend().SetHttpHandler(EchoPath);
  const std::string first = UniquePath("ka");
  const std::string second = UniquePath("ka");
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write(Get(port(), first), kDeadline));
  const auto one = connection.ReadResponse(kDeadline);
  ASSERT_EQ(one.status, 200u) << one.ec.message();
  EXPECT_EQ(one.body, "path=" + first);
  EXPECT_EQ(one.headers.count("connection") ? one.headers.at("connection") : "", "")
      << "an HTTP/1.1 keep-alive response must not say Connection: close";
  ASSERT_FALSE(connection.Write(Get(port(), second), kDeadline));
  const auto two = connection.ReadResponse(kDeadline);
  ASSERT_EQ(two.status, 200u) << two.ec.message();
  EXPECT_EQ(two.body, "path=" + second);

  const auto a = RequestsFor(first);
  const auto b = RequestsFor(second);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a.front().connection_id(), b.front().connection_id());

  connection.Close();
  const auto disconnect = WaitForDisconnect(a.front().connection_id());
  ASSERT_TRUE(disconnect.has_value()) << "no Disconnect event after the client closed";
  EXPECT_EQ(disconnect->disconnect().requests(), 2u);
  EXPECT_EQ(disconnect->sequence(), 1u) << "the Disconnect is a plain-HTTP connection's first and only event";
  EXPECT_EQ(backend().EventsOf(a.front().connection_id()).size(), 1u);
}

// Connection: close is honoured: the response says so and the gateway
// closes the connection; the Disconnect event counts one request.
TEST_F(HttpForwardingTest, ConnectionCloseEndsTheConnection) {
  backend().SetHttpHandler(EchoPath);
  const std::string path = UniquePath("close");
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write(Get(port(), path, "Connection: close\r\n"), kDeadline));
  const auto response = connection.ReadResponse(kDeadline);
  ASSERT_EQ(response.status, 200u) << response.ec.message();
  EXPECT_EQ(HeaderOf(response, "connection"), "close");
  EXPECT_TRUE(connection.WaitForServerClose(kDeadline)) << "the gateway kept the connection open";
  // The gateway lingers until the client's FIN; send it.
  connection.Close();
  const auto requests = RequestsFor(path);
  ASSERT_EQ(requests.size(), 1u);
  const auto disconnect = WaitForDisconnect(requests.front().connection_id());
  ASSERT_TRUE(disconnect.has_value());
  EXPECT_EQ(disconnect->disconnect().requests(), 1u);
}

// A response to HEAD has no body (RFC 9110 section 9.3.2, RFC 9112
// section 6.3), even when the backend wrote one: otherwise its bytes would
// be read as the start of the next response on the connection.
TEST_F(HttpForwardingTest, ResponseToHeadHasNoBody) {
  backend().SetHttpHandler(EchoPath);
  const std::string path = UniquePath("head");
  const std::string next = UniquePath("afterhead");
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write("HEAD " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", kDeadline));
  const auto head = connection.ReadResponse(kDeadline, /*to_head=*/true);
  ASSERT_EQ(head.status, 200u) << head.ec.message();
  ASSERT_FALSE(connection.Write(Get(port(), next), kDeadline));
  const auto response = connection.ReadResponse(kDeadline);
  EXPECT_EQ(response.status, 200u) << "the response after HEAD did not parse (" << response.ec.message()
                                   << "): the HEAD response carried a body";
  EXPECT_EQ(response.body, "path=" + next);
}

// Expect: 100-continue gets an interim 100 before the client sends the
// body (RFC 9110 section 10.1.1).
TEST_F(HttpForwardingTest, ExpectContinueGets100First) {
  backend().SetHttpHandler([](const v1::HttpRequest& request) {
    v1::HttpResponse response;
    response.set_body("got " + request.body());
    return HttpAnswer::Reply(response);
  });
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write("POST " + UniquePath("continue") +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                                    "Content-Length: 4\r\n\r\n",
                                kDeadline));
  const auto interim = connection.ReadResponse(kDeadline);
  ASSERT_EQ(interim.status, 100u) << interim.ec.message();
  ASSERT_FALSE(connection.Write("data", kDeadline));
  const auto response = connection.ReadResponse(kDeadline);
  EXPECT_EQ(response.status, 200u) << response.ec.message();
  EXPECT_EQ(response.body, "got data");
}

// A body over --max-request-body-bytes gets 413 and never reaches the
// backend, whether its length is declared up front or it arrives chunked.
TEST_F(HttpForwardingTest, BodyOverTheLimitGets413WithoutACall) {
  const std::string big(kMaxBodyBytes + 1, 'b');
  {
    const std::string path = UniquePath("big");
    const auto response = RawHttpExchange(port(), Post(port(), path, big), kDeadline);
    EXPECT_EQ(response.status, 413u) << response.ec.message();
    EXPECT_TRUE(RequestsFor(path).empty()) << "the backend was called for a body over the limit";
  }
  {
    const std::string path = UniquePath("chunked");
    char size[16];
    std::snprintf(size, sizeof size, "%zx", big.size());
    const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                size + "\r\n" + big + "\r\n0\r\n\r\n";
    const auto response = RawHttpExchange(port(), request, kDeadline);
    EXPECT_EQ(response.status, 413u) << response.ec.message();
    EXPECT_TRUE(RequestsFor(path).empty()) << "the backend was called for a chunked body over the limit";
  }
  // A body exactly at the limit is forwarded.
  backend().SetHttpHandler(EchoPath);
  const std::string path = UniquePath("limit");
  const auto response = RawHttpExchange(port(), Post(port(), path, std::string(kMaxBodyBytes, 'l')), kDeadline);
  EXPECT_EQ(response.status, 200u) << response.ec.message();
  const auto requests = RequestsFor(path);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests.front().body().size(), kMaxBodyBytes);
}

// A backend that fails, or answers something that is not a valid response,
// gets the client a 502.
TEST_F(HttpForwardingTest, BackendErrorOrInvalidAnswerGets502) {
  backend().SetHttpHandler(
      [](const v1::HttpRequest&) { return HttpAnswer::Fail(grpc::Status(grpc::StatusCode::INTERNAL, "scripted")); });
  auto response = HttpGet(port(), UniquePath("err"), kDeadline);
  EXPECT_EQ(response.status, 502u) << response.ec.message();

  backend().SetHttpHandler([](const v1::HttpRequest&) {
    v1::HttpResponse bad;
    *bad.add_headers() = Header("Content-Length", "999");
    return HttpAnswer::Reply(bad);
  });
  response = HttpGet(port(), UniquePath("badheader"), kDeadline);
  EXPECT_EQ(response.status, 502u) << response.ec.message();

  backend().SetHttpHandler([](const v1::HttpRequest&) {
    v1::HttpResponse bad;
    bad.set_status(101);
    return HttpAnswer::Reply(bad);
  });
  response = HttpGet(port(), UniquePath("badstatus"), kDeadline);
  EXPECT_EQ(response.status, 502u) << response.ec.message();
}

// What WSGI-style adapters routinely set reaches the client as a valid
// response: a correct Content-Length is accepted, and the hop-by-hop
// headers (Connection, Keep-Alive, Transfer-Encoding, ...) are dropped as
// a proxy drops them, since the gateway frames the response and owns the
// client's connection. Each answer is followed by another request on the
// same connection, which parses only if the framing was right.
TEST_F(HttpForwardingTest, FramingAndHopByHopHeadersFromTheBackendAreHandled) {
  const std::vector<Headers> answers = {
      {{"Content-Length", "11"}},
      {{"Connection", "close"}, {"Content-Length", "11"}},
      {{"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"}},
      {{"Transfer-Encoding", "chunked"}},
      {{"Connection", "Upgrade, X-Hop"}, {"Upgrade", "h2c"}, {"X-Hop", "1"}, {"Proxy-Connection", "keep-alive"}}};
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  for (std::size_t i = 0; i < answers.size(); ++i) {
    backend().SetHttpHandler([&headers = answers[i]](const v1::HttpRequest&) {
      v1::HttpResponse response;
      response.set_status(200);
      for (const auto& [name, value] : headers) *response.add_headers() = Header(name, value);
      *response.add_headers() = Header("X-Kept", "yes");
      response.set_body("hello world");
      return HttpAnswer::Reply(response);
    });
    ASSERT_FALSE(connection.Write(Get(port(), UniquePath("framing")), kDeadline)) << "answer " << i;
    const auto response = connection.ReadResponse(kDeadline);
    ASSERT_EQ(response.status, 200u) << "answer " << i << ": " << response.ec.message();
    EXPECT_EQ(response.body, "hello world") << "answer " << i;
    EXPECT_EQ(HeaderOf(response, "content-length"), "11") << "answer " << i;
    EXPECT_EQ(HeaderOf(response, "x-kept"), "yes") << "answer " << i;
    for (const char* dropped : {"transfer-encoding", "keep-alive", "upgrade", "x-hop", "proxy-connection"}) {
      EXPECT_EQ(response.headers.count(dropped), 0u) << "answer " << i << " kept " << dropped;
    }
    EXPECT_EQ(response.headers.count("connection"), 0u)
        << "answer " << i << ": the client's keep-alive is the gateway's to decide";
  }
}

// An answer to HEAD without a body keeps the Content-Length the backend
// set: it is the size of the body a GET would get (RFC 9110 section 9.3.2).
TEST_F(HttpForwardingTest, HeadAnswerKeepsTheBackendsContentLength) {
  backend().SetHttpHandler([](const v1::HttpRequest& request) {
    v1::HttpResponse response;
    *response.add_headers() = Header("Content-Length", "1234");
    if (request.method() != "HEAD") response.set_body(std::string(1234, 'g'));
    return HttpAnswer::Reply(response);
  });
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write("HEAD " + UniquePath("headlen") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", kDeadline));
  const auto head = connection.ReadResponse(kDeadline, /*to_head=*/true);
  ASSERT_EQ(head.status, 200u) << head.ec.message();
  EXPECT_EQ(HeaderOf(head, "content-length"), "1234");
  ASSERT_FALSE(connection.Write(Get(port(), UniquePath("afterheadlen")), kDeadline));
  const auto get = connection.ReadResponse(kDeadline);
  ASSERT_EQ(get.status, 200u) << get.ec.message();
  EXPECT_EQ(get.body.size(), 1234u);
}

// A Content-Length that does not match the body is a 502, logged and
// counted with its reason.
TEST_F(HttpForwardingTest, WrongContentLengthIs502CountedWithItsReason) {
  const std::map<std::string, std::string> reason = {{"reason", "bad_content_length"}};
  const auto before = ScrapeMetrics(metrics_port());
  ASSERT_TRUE(before.has_value());
  backend().SetHttpHandler([](const v1::HttpRequest&) {
    v1::HttpResponse response;
    *response.add_headers() = Header("Content-Length", "5");
    response.set_body("longer than five");
    return HttpAnswer::Reply(response);
  });
  const auto response = HttpGet(port(), UniquePath("badlength"), kDeadline);
  EXPECT_EQ(response.status, 502u) << response.ec.message();
  // The count is taken before the 502 is written.
  const auto after = ScrapeMetrics(metrics_port());
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->Value("wsgateway_http_forwarding_failures_total", reason).value_or(-1),
            before->Value("wsgateway_http_forwarding_failures_total", reason).value_or(0) + 1);
}

// A backend that does not answer within --http-request-timeout gets the
// client a 504 at that deadline.
TEST_F(HttpForwardingTest, BackendTimeoutGets504) {
  backend().SetHttpHandler([](const v1::HttpRequest&) { return HttpAnswer::Hold(); });
  const auto started = std::chrono::steady_clock::now();
  const auto response = HttpGet(port(), UniquePath("slow"), kDeadline);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(response.status, 504u) << response.ec.message();
  EXPECT_GE(elapsed, kRequestTimeout);
}

// A plain request, then an upgrade on the same keep-alive connection: the
// connection becomes a WebSocket with the same id, and it ends with a
// Close event, not a Disconnect.
TEST_F(HttpForwardingTest, UpgradeAfterPlainRequestOnTheSameConnection) {
  backend().SetHttpHandler(EchoPath);
  const std::string http_path = UniquePath("before");
  const std::string ws_path = UniquePath("upgrade");
  HttpConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_FALSE(connection.Write(Get(port(), http_path), kDeadline));
  const auto plain = connection.ReadResponse(kDeadline);
  ASSERT_EQ(plain.status, 200u) << plain.ec.message();

  ASSERT_FALSE(connection.Write(Get(port(), ws_path,
                                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"),
                                kDeadline));
  const auto upgrade = connection.ReadResponse(kDeadline);
  ASSERT_EQ(upgrade.status, 101u) << upgrade.ec.message();
  EXPECT_EQ(HeaderOf(upgrade, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

  const auto open = backend().WaitForOpen(ws_path, kDeadline);
  ASSERT_TRUE(open.has_value()) << "no Open event after the upgrade";
  const auto requests = RequestsFor(http_path);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(open->connection_id(), requests.front().connection_id())
      << "the same TCP connection should keep its id across the upgrade";
  const std::string id = open->connection_id();

  fc::Frame text;
  text.opcode = fc::kText;
  text.payload = "after http";
  text.mask = std::array<std::uint8_t, 4>{1, 2, 3, 4};
  fc::Frame close;
  close.opcode = fc::kClose;
  close.payload = std::string("\x03\xe8", 2);
  close.mask = std::array<std::uint8_t, 4>{5, 6, 7, 8};
  ASSERT_FALSE(connection.Write(fc::Pack(text) + fc::Pack(close), kDeadline));
  // The gateway echoes the close: 2 header bytes and the code.
  const std::string reply = connection.TakeBytes(4, kDeadline);
  const auto unpacked = fc::Unpack(reply, 125);
  ASSERT_EQ(unpacked.status, fc::Unpacked::Status::kFrame) << "no close frame came back";
  EXPECT_EQ(unpacked.frame.opcode, fc::kClose);
  EXPECT_EQ(unpacked.frame.payload, std::string("\x03\xe8", 2));
  // The server closes TCP first (RFC 6455 section 7.1.1), then waits for
  // the client's FIN.
  EXPECT_TRUE(connection.WaitForServerClose(kDeadline));
  connection.Close();

  const auto closed = backend().WaitForClose(id, kDeadline);
  ASSERT_TRUE(closed.has_value()) << "no Close event";
  EXPECT_EQ(closed->close().code(), 1000u);
  const auto events = backend().EventsOf(id);
  const bool got_message = std::any_of(events.begin(), events.end(), [](const v1::Event& e) {
    return e.has_message() && e.message().payload() == "after http";
  });
  EXPECT_TRUE(got_message) << "the text frame after the upgrade did not reach the backend";
  EXPECT_TRUE(std::none_of(events.begin(), events.end(), [](const v1::Event& e) { return e.has_disconnect(); }))
      << "an upgraded connection ends with Close, not Disconnect";
}

// ---- Forwarding off ----------------------------------------------------------

class HttpForwardingOffTest : public SharedScriptedStack<HttpForwardingOffTest> {};

// Without --http-forwarding a plain request gets 400 and the backend is
// never called.
TEST_F(HttpForwardingOffTest, PlainRequestGets400WithoutACall) {
  EXPECT_EQ(HttpGet(port(), UniquePath("off"), kDeadline).status, 400u);
  EXPECT_EQ(RawHttpExchange(port(), Post(port(), UniquePath("off"), "body"), kDeadline).status, 400u);
  EXPECT_EQ(backend().http_calls(), 0u);
}

}  // namespace
}  // namespace wsgateway::testing
