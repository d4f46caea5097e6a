// The public listener's limits on connections and on their requests:
// max_connections (503) and max_connections_per_address (429), both with
// Retry-After and answered after the request was read; a request header
// dribbled byte by byte dropped at handshake_timeout; a header over
// max_handshake_bytes answered 431. Every refusal shows in
// wsgateway_rejected_connections_total.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/http_connection.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

std::string UpgradeRequest(std::uint16_t port, const std::string& extra_headers = "") {
  return "GET /limits HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra_headers + "\r\n";
}

// An upgrade from `bind_address` on a connection of its own, kept open after
// the answer (a 101 leaves a WebSocket connection).
struct Attempt {
  std::unique_ptr<HttpConnection> connection;
  HttpResult response;
};

Attempt UpgradeFrom(std::uint16_t port, const std::string& bind_address) {
  Attempt attempt{std::make_unique<HttpConnection>(port, bind_address), {}};
  if (!attempt.connection->connected()) {
    ADD_FAILURE() << "cannot connect from " << bind_address;
    return attempt;
  }
  if (const auto ec = attempt.connection->Write(UpgradeRequest(port))) {
    attempt.response.ec = ec;
    return attempt;
  }
  attempt.response = attempt.connection->ReadResponse();
  return attempt;
}

std::string Describe(const HttpResult& result) {
  return std::to_string(result.status) + " " + result.ec.message() + " " + result.body;
}

std::optional<double> Rejected(std::uint16_t metrics_port, const std::string& reason) {
  const auto scrape = ScrapeMetrics(metrics_port);
  if (!scrape) return std::nullopt;
  return scrape->Value("wsgateway_rejected_connections_total", {{"reason", reason}});
}

// Polls /metrics until the refusal counter reaches `want` (it is counted on
// the connection's loop, which may still be working when the client has
// seen the close); returns the last value seen.
double WaitForRejected(std::uint16_t metrics_port, const std::string& reason, double want) {
  double last = -1;
  PollUntil(std::chrono::seconds(20), [&] {
    last = Rejected(metrics_port, reason).value_or(-1);
    return last >= want;
  });
  return last;
}

// A refusal under a limit: the status, Retry-After in whole seconds (2500ms
// rounded up), Connection: close, and then the server's orderly close.
void ExpectLimitRefusal(Attempt& attempt, unsigned status) {
  ASSERT_EQ(attempt.response.status, status) << Describe(attempt.response);
  ASSERT_EQ(attempt.response.headers.count("retry-after"), 1u);
  EXPECT_EQ(attempt.response.headers.at("retry-after"), "3");
  EXPECT_EQ(attempt.response.headers.at("connection"), "close");
  EXPECT_TRUE(attempt.connection->WaitForServerClose()) << "the gateway keeps a refused connection open";
}

// ---- Per client address ----------------------------------------------------

class AddressLimitTest : public SharedEchoStack<AddressLimitTest> {
 public:
  static std::vector<std::string> Flags() { return {"--max-connections-per-address", "2", "--retry-after", "2500ms"}; }
};

// Two connections from one address are fine, the third gets 429 with
// Retry-After; another address is counted on its own; when one of the two
// closes, the address may connect again.
TEST_F(AddressLimitTest, ThirdConnectionFromOneAddressGets429UntilOneCloses) {
  const double before = Rejected(metrics_port(), "address_limit").value_or(-1);
  ASSERT_GE(before, 0.0) << "the counter exists from the start";

  std::vector<Attempt> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(UpgradeFrom(port(), "127.0.0.2"));
    ASSERT_EQ(held.back().response.status, 101u) << "connection " << i << ": " << Describe(held.back().response);
  }
  auto refused = UpgradeFrom(port(), "127.0.0.2");
  ExpectLimitRefusal(refused, 429);
  int refusals = 1;

  auto other = UpgradeFrom(port(), "127.0.0.3");
  EXPECT_EQ(other.response.status, 101u) << "another address has its own count: " << Describe(other.response);

  held.front().connection->Close();
  // The slot comes back when the gateway has seen the close; until then the
  // address is still at its limit.
  const auto again = PollUntil(std::chrono::seconds(20), [&]() -> std::optional<Attempt> {
    auto attempt = UpgradeFrom(port(), "127.0.0.2");
    if (attempt.response.status == 101u) return attempt;
    EXPECT_EQ(attempt.response.status, 429u) << Describe(attempt.response);
    ++refusals;
    return std::nullopt;
  });
  ASSERT_TRUE(again.has_value()) << "no slot came back after a connection closed";
  EXPECT_EQ(WaitForRejected(metrics_port(), "address_limit", before + refusals), before + refusals);
}

// A client over its limit gets 429 for plain HTTP requests as well: every
// connection holds a socket, whatever it asks for.
TEST_F(AddressLimitTest, PlainHttpCountsAndIsRefusedToo) {
  std::vector<std::unique_ptr<HttpConnection>> silent;
  for (int i = 0; i < 2; ++i) {
    silent.push_back(std::make_unique<HttpConnection>(port(), "127.0.0.4"));
    ASSERT_TRUE(silent.back()->connected());
  }
  HttpConnection refused(port(), "127.0.0.4");
  ASSERT_TRUE(refused.connected());
  ASSERT_FALSE(refused.Write("GET /page HTTP/1.1\r\nHost: gateway\r\n\r\n"));
  const auto response = refused.ReadResponse();
  EXPECT_EQ(response.status, 429u) << Describe(response);
  EXPECT_EQ(response.headers.count("retry-after"), 1u);
}

// ---- Total ------------------------------------------------------------------

class TotalLimitTest : public SharedEchoStack<TotalLimitTest> {
 public:
  // Silent connections must stay open for the whole test.
  static std::vector<std::string> Flags() {
    return {"--max-connections", "2", "--retry-after", "2500ms", "--handshake-timeout", "60s"};
  }
};

// A connection that has not sent its request yet counts as much as a
// WebSocket: with one of each open, the next client, from any address, gets
// 503 with Retry-After. When the silent one goes, a new client gets in.
TEST_F(TotalLimitTest, ConnectionPastTheTotalGets503UntilOneCloses) {
  const double before = Rejected(metrics_port(), "connection_limit").value_or(-1);
  ASSERT_EQ(before, 0.0) << "the counter exists from the start";

  RawTcpConnection silent(port());
  ASSERT_TRUE(silent.connected());
  auto websocket = UpgradeFrom(port(), "127.0.0.5");
  ASSERT_EQ(websocket.response.status, 101u) << Describe(websocket.response);

  auto refused = UpgradeFrom(port(), "127.0.0.6");
  ExpectLimitRefusal(refused, 503);
  int refusals = 1;

  silent.Close();
  const auto again = PollUntil(std::chrono::seconds(20), [&]() -> std::optional<Attempt> {
    auto attempt = UpgradeFrom(port(), "127.0.0.6");
    if (attempt.response.status == 101u) return attempt;
    EXPECT_EQ(attempt.response.status, 503u) << Describe(attempt.response);
    ++refusals;
    return std::nullopt;
  });
  ASSERT_TRUE(again.has_value()) << "no slot came back after a connection closed";
  EXPECT_EQ(WaitForRejected(metrics_port(), "connection_limit", before + refusals), before + refusals);
  EXPECT_EQ(Rejected(metrics_port(), "address_limit"), 0.0);
}

// ---- Slow and oversized requests ----------------------------------------------

class HandshakeLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GatewayProcess::Options options;
    options.args = {"--handshake-timeout", "500ms", "--max-handshake-bytes", "1KiB"};
    gateway_ = GatewayProcess::Start(options, &error_).release();
  }
  static void TearDownTestSuite() {
    delete gateway_;
    gateway_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(gateway_, nullptr) << error_; }
  static std::uint16_t port() { return gateway_->ws_port(); }
  static std::uint16_t metrics_port() { return gateway_->metrics_port(); }

  static inline GatewayProcess* gateway_ = nullptr;
  static inline std::string error_;
};

// Slowloris: a client that keeps the request header coming one byte at a
// time never finishes it, and is dropped at handshake_timeout however
// steadily it sends.
TEST_F(HandshakeLimitsTest, RequestDribbledByteByByteIsDroppedAtTheHandshakeTimeout) {
  const double before = Rejected(metrics_port(), "handshake_timeout").value_or(-1);
  ASSERT_GE(before, 0.0);
  RawTcpConnection slow(port());
  ASSERT_TRUE(slow.connected());
  const std::string header = "GET /slow HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + std::string(900, 'a');
  bool closed = false;
  std::size_t sent = 0;
  // Far more bytes than the timeout allows at one per 50 ms; the deadline
  // only ends a test whose gateway never closes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    if (!slow.Write(header.substr(sent % header.size(), 1))) {
      closed = true;  // a reset after the close
      break;
    }
    ++sent;
    // The pause between bytes is the client's behaviour under test; the
    // read in it notices the close.
    const auto [bytes, peer_closed] = slow.ReadUntilClosed(std::chrono::milliseconds(50));
    EXPECT_EQ(bytes, "") << "the gateway answers a dropped request with nothing";
    closed = peer_closed;
  }
  EXPECT_TRUE(closed) << "still open after " << sent << " bytes";
  EXPECT_EQ(WaitForRejected(metrics_port(), "handshake_timeout", before + 1), before + 1);
}

// A request header over max_handshake_bytes is answered 431 and counted.
TEST_F(HandshakeLimitsTest, OversizedHeaderGets431AndIsCounted) {
  const double before = Rejected(metrics_port(), "handshake_too_large").value_or(-1);
  ASSERT_GE(before, 0.0);
  const auto result = RawHttpExchange(port(), UpgradeRequest(port(), "X-Padding: " + std::string(2048, 'p') + "\r\n"));
  EXPECT_EQ(result.status, 431u) << Describe(result);
  EXPECT_EQ(WaitForRejected(metrics_port(), "handshake_too_large", before + 1), before + 1);
}

// max_handshake_bytes bounds the whole request header, however many fields
// it is made of: a header of exactly the limit is read (and, being plain
// HTTP without forwarding, answered 400), one byte more is 431, and so is a
// header of many small fields well past the limit.
TEST_F(HandshakeLimitsTest, HeaderLimitIsExactForAHeaderOfManySmallFields) {
  const auto header_of = [](std::size_t total) {
    std::string header = "GET /fields HTTP/1.1\r\nHost: gateway\r\n";
    // Fields of 9 bytes, leaving room for the last one (9 bytes and its pad).
    for (int i = 0; header.size() + 18 <= total; ++i) header += "X-F" + std::to_string(i % 10) + ": a\r\n";
    // One last field padded so that the header, with its empty line, is
    // exactly `total` bytes.
    const std::size_t pad = total - header.size() - 9;
    header += "X-P: " + std::string(pad, 'p') + "\r\n\r\n";
    EXPECT_EQ(header.size(), total);
    return header;
  };
  const auto at_limit = RawHttpExchange(port(), header_of(1024));
  EXPECT_EQ(at_limit.status, 400u) << Describe(at_limit);
  const auto over = RawHttpExchange(port(), header_of(1025));
  EXPECT_EQ(over.status, 431u) << Describe(over);
  const auto far_over = RawHttpExchange(port(), header_of(1700));
  EXPECT_EQ(far_over.status, 431u) << Describe(far_over);
}

}  // namespace
}  // namespace wsgateway::testing
