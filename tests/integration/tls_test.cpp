// wss:// and https:// on the public listener: echo through TLS, refusals in
// the right protocol, the TLS handshake under handshake_timeout, the close
// handshake ending in close_notify, and certificate reloads (SIGHUP and a
// changed file) that new connections see while open ones keep theirs.

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway_stack.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/test_certificates.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool Eventually(Condition&& condition, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

double MetricSum(const GatewayProcess& gateway, const std::string& name,
                 const std::map<std::string, std::string>& labels = {}) {
  const auto scrape = ScrapeMetrics(gateway.metrics_port());
  return scrape ? scrape->Sum(name, labels) : -1;
}

// Replaces `path` at once, as an operator (or Kubernetes) would: the new
// contents go to a file beside it, renamed over it.
void ReplaceFile(const std::string& path, const std::string& contents) {
  const auto staging = path + ".new";
  {
    std::ofstream out(staging, std::ios::trunc);
    out << contents;
  }
  fs::rename(staging, path);
}

std::string Repeat(const std::string& unit, std::size_t bytes) {
  std::string out;
  while (out.size() < bytes) out += unit;
  out.resize(bytes);
  return out;
}

class TlsTest : public SharedEchoStack<TlsTest> {
 public:
  // Makes the certificates the shared gateway serves (and the other tests
  // here issue from).
  static std::vector<std::string> Flags() {
    std::string error;
    certs_ = TestCertificates::Create(&error);
    if (!certs_) throw std::runtime_error("test certificates: " + error);
    return {"--tls-cert-file",      certs_->server_cert,
            "--tls-key-file",       certs_->server_key,
            "--max-message-bytes",  "1MiB",
            "--permessage-deflate", "true"};
  }

 protected:
  static const TestCertificates& certs() { return *certs_; }
  static ClientTls Tls() { return {certs().ca_cert, "localhost"}; }

  static void Connect(WsClient& client, std::uint16_t to) {
    const auto upgrade = client.Connect(to, UniquePath("tls"));
    ASSERT_FALSE(upgrade.ec) << upgrade.ec.message() << " (HTTP " << upgrade.http_status << ")";
    ASSERT_EQ(upgrade.http_status, 101u);
  }

  static void ExpectEcho(WsClient& client, const std::string& payload, bool binary) {
    ASSERT_FALSE(binary ? client.SendBinary(payload) : client.SendText(payload));
    const auto echo = client.Read();
    ASSERT_FALSE(echo.ec) << echo.ec.message();
    EXPECT_EQ(echo.binary, binary);
    EXPECT_EQ(echo.payload.size(), payload.size());
    EXPECT_TRUE(echo.payload == payload);
  }

  static inline std::optional<TestCertificates> certs_;
};

// Small and large messages, text and binary, go through TLS and back; the
// large ones span many TLS records in both directions.
TEST_F(TlsTest, WssEchoesTextAndBinary) {
  WsClient client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(client, port()));
  EXPECT_EQ(client.PeerCommonName(), "localhost");
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, "hello over TLS \xE2\x82\xAC", false));
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, bytes, true));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, Repeat("spans records ", 40 * 1024), false));
  std::string large;
  for (std::size_t i = 0; i < 300 * 1024; ++i) large.push_back(static_cast<char>((i * 7919) % 251));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, large, true));
  // Several messages written back to back come back in order.
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(client.SendText("burst " + std::to_string(i)));
  for (int i = 0; i < 20; ++i) {
    const auto echo = client.Read();
    ASSERT_FALSE(echo.ec) << echo.ec.message();
    EXPECT_EQ(echo.payload, "burst " + std::to_string(i));
  }
}

// permessage-deflate works inside TLS as on plain TCP.
TEST_F(TlsTest, WssWithCompressionEchoes) {
  WsClient client(Tls());
  client.OfferCompression();
  const auto upgrade = client.Connect(port(), UniquePath("tls"));
  ASSERT_FALSE(upgrade.ec) << upgrade.ec.message();
  ASSERT_EQ(upgrade.http_status, 101u);
  ASSERT_TRUE(upgrade.headers.contains("sec-websocket-extensions"));
  EXPECT_NE(upgrade.headers.at("sec-websocket-extensions").find("permessage-deflate"), std::string::npos);
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, Repeat("compressible text ", 64 * 1024), false));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, "short", false));
}

// A client's close handshake gets its code echoed, and the TLS stream then
// ends with close_notify: Beast reports a truncated stream otherwise.
TEST_F(TlsTest, ClientCloseIsEchoedAndEndsWithCloseNotify) {
  WsClient client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(client, port()));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, "before close", false));
  const auto ec = client.Close(1000, "done");
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(client.CloseCode(), 1000);
}

// A close the gateway starts (a message over max_message_bytes: 1009)
// reaches the client through TLS, and the connection ends in order.
TEST_F(TlsTest, GatewayCloseReachesTheClient) {
  WsClient client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(client, port()));
  ASSERT_FALSE(client.SendBinary(std::string(1024 * 1024 + 1, 'x')));
  const auto read = client.Read();
  ASSERT_TRUE(read.ec);
  EXPECT_EQ(client.CloseCode(), 1009) << read.ec.message();
}

// A plain HTTP request through TLS is refused like one in the clear: this
// route forwards no HTTP.
TEST_F(TlsTest, HttpsRequestWithoutForwardingGets400) {
  const auto result =
      RawHttpExchange(port(), "GET /page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", Tls());
  ASSERT_FALSE(result.ec && result.status == 0) << result.ec.message();
  EXPECT_EQ(result.status, 400u);
  EXPECT_NE(result.body.find("WebSocket"), std::string::npos) << result.body;
}

// Where HTTP forwarding is on, an https:// request reaches the backend and
// its answer comes back through TLS.
TEST_F(TlsTest, HttpsRequestIsForwarded) {
  std::string error;
  const auto stack = ScriptedStack::Start(
      {"--tls-cert-file", certs().server_cert, "--tls-key-file", certs().server_key, "--http-forwarding", "true"},
      &error);
  ASSERT_NE(stack, nullptr) << error;
  stack->backend->SetHttpHandler([](const v1::HttpRequest& request) {
    v1::HttpResponse response;
    response.set_status(200);
    response.set_body("answered " + request.method() + " " + request.path() + " " + request.body());
    return HttpAnswer::Reply(response);
  });
  const auto result = RawHttpExchange(
      stack->gateway->ws_port(),
      "POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", Tls());
  EXPECT_EQ(result.status, 200u) << result.ec.message();
  EXPECT_EQ(result.body, "answered POST /form hello");
}

// HTTP in the clear on the TLS port gets a 400 it can read, is counted,
// and the gateway goes on serving TLS clients.
TEST_F(TlsTest, PlainHttpOnTheTlsPortGets400InTheClear) {
  const double before =
      MetricSum(*stack().gateway, "wsgateway_handshake_rejections_total", {{"reason", "plain_http_on_tls"}});
  const auto result = HttpGet(port(), "/plain");
  EXPECT_EQ(result.status, 400u) << result.ec.message();
  EXPECT_NE(result.body.find("TLS"), std::string::npos) << result.body;
  EXPECT_TRUE(Eventually([&] {
    return MetricSum(*stack().gateway, "wsgateway_handshake_rejections_total", {{"reason", "plain_http_on_tls"}}) ==
           before + 1;
  }));
  WsClient client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(client, port()));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, "still serving", false));
}

// Bytes that are neither TLS nor HTTP end the connection, counted as a
// failed TLS handshake; the gateway keeps serving.
TEST_F(TlsTest, GarbageInsteadOfTlsIsDropped) {
  const double before = MetricSum(*stack().gateway, "wsgateway_handshake_rejections_total", {{"reason", "tls"}});
  RawTcpConnection raw(port());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Write(std::string(64, '\x17')));
  const auto [data, closed] = raw.ReadUntilClosed(10s);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(Eventually([&] {
    return MetricSum(*stack().gateway, "wsgateway_handshake_rejections_total", {{"reason", "tls"}}) == before + 1;
  }));
  WsClient client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(client, port()));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(client, "still serving", false));
}

// A client that connects and never starts the TLS handshake is closed at
// handshake_timeout, like one that never sends its request.
TEST_F(TlsTest, SilentClientIsClosedAtHandshakeTimeout) {
  GatewayProcess::Options options;
  options.args = {"--tls-cert-file",  certs().server_cert,   "--tls-key-file",
                  certs().server_key, "--handshake-timeout", "300ms"};
  std::string error;
  const auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  RawTcpConnection silent(gateway->ws_port());
  ASSERT_TRUE(silent.connected());
  const auto [data, closed] = silent.ReadUntilClosed(15s);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(data.empty());
  EXPECT_EQ(MetricSum(*gateway, "wsgateway_handshake_rejections_total", {{"reason", "timeout"}}), 1);
}

// Files that cannot serve stop start-up with a message naming the option.
TEST_F(TlsTest, UnusableFilesStopStartUp) {
  struct Case {
    std::string cert;
    std::string key;
    std::string named;
  };
  const std::vector<Case> cases = {
      {certs().dir + "/missing.crt", certs().server_key, "--tls-cert-file"},
      {certs().server_key, certs().server_key, "--tls-cert-file"},
      {certs().server_cert, certs().client_key, "--tls-key-file"},
  };
  for (const auto& c : cases) {
    GatewayProcess::Options options;
    options.args = {"--tls-cert-file", c.cert, "--tls-key-file", c.key};
    std::string error;
    const auto gateway = GatewayProcess::Start(options, &error);
    EXPECT_EQ(gateway, nullptr) << c.cert << " / " << c.key;
    EXPECT_NE(error.find("cannot start: " + c.named), std::string::npos) << error;
  }
}

// A reload (SIGHUP) gives new connections the new certificate while an open
// connection keeps its own and goes on echoing. A reload that fails keeps
// the current certificate and is counted; a changed file is picked up
// without a signal.
TEST_F(TlsTest, ReloadServesNewConnectionsAndKeepsOpenOnes) {
  const auto dir = certs().dir + "/reload";
  fs::create_directories(dir);
  const auto cert = dir + "/live.crt";
  const auto key = dir + "/live.key";
  fs::copy_file(certs().server_cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(certs().server_key, key, fs::copy_options::overwrite_existing);
  std::string error;
  const auto stack = EchoStack::Start({"--tls-cert-file", cert, "--tls-key-file", key}, &error);
  ASSERT_NE(stack, nullptr) << error;
  auto& gateway = *stack->gateway;

  WsClient old_client(Tls());
  ASSERT_NO_FATAL_FAILURE(Connect(old_client, gateway.ws_port()));
  ASSERT_EQ(old_client.PeerCommonName(), "localhost");
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(old_client, "before reload", false));

  const auto new_cn_seen = [&](const std::string& cn) {
    return Eventually([&] {
      WsClient probe(Tls());
      const auto upgrade = probe.Connect(gateway.ws_port(), UniquePath("probe"));
      return !upgrade.ec && probe.PeerCommonName() == cn;
    });
  };

  std::string next_cert, next_key;
  ASSERT_TRUE(certs().IssueServer("reloaded", &next_cert, &next_key, &error)) << error;
  ReplaceFile(key, TestCertificates::Read(next_key));
  ReplaceFile(cert, TestCertificates::Read(next_cert));
  gateway.process().Signal(SIGHUP);
  EXPECT_TRUE(new_cn_seen("reloaded"));
  EXPECT_GE(MetricSum(gateway, "wsgateway_tls_reloads_total", {{"result", "ok"}}), 1);
  EXPECT_GT(MetricSum(gateway, "wsgateway_tls_certificate_expiry_timestamp_seconds"), 0);
  // The open connection is untouched.
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(old_client, "after reload", false));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(old_client, Repeat("after reload, large ", 64 * 1024), true));

  // Garbage in the certificate file: the reload fails, names the file and
  // is counted; new connections still get the last good certificate.
  const auto lines = gateway.process().LineCount();
  ReplaceFile(cert, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
  gateway.process().Signal(SIGHUP);
  EXPECT_TRUE(gateway.process().WaitForLine("TLS reload failed.*--tls-cert-file '" + cert, 20s, lines));
  EXPECT_TRUE(Eventually([&] {
    return MetricSum(gateway, "wsgateway_tls_reloads_total", {{"result", "error"}}) >= 1;
  }));
  EXPECT_TRUE(new_cn_seen("reloaded"));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(old_client, "after a failed reload", false));

  // Good files again, without a signal: the watcher reloads them.
  ASSERT_TRUE(certs().IssueServer("watched", &next_cert, &next_key, &error)) << error;
  ReplaceFile(key, TestCertificates::Read(next_key));
  ReplaceFile(cert, TestCertificates::Read(next_cert));
  EXPECT_TRUE(new_cn_seen("watched"));
  ASSERT_NO_FATAL_FAILURE(ExpectEcho(old_client, "still the first connection", false));
  EXPECT_EQ(old_client.PeerCommonName(), "localhost");
  EXPECT_FALSE(old_client.Close(1000));
}

}  // namespace
}  // namespace wsgateway::testing
