// /metrics as Prometheus sees it: gauges that match the clients in each
// state, counters that follow traffic, and a scrape promtool accepts.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

struct Gauges {
  double connection = -1, handshake = -1, active = -1, closing = -1;
  bool operator==(const Gauges&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Gauges& g) {
  return out << "{connection=" << g.connection << ", handshake=" << g.handshake << ", active=" << g.active
             << ", closing=" << g.closing << "}";
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Silent connections must outlive the test's waits.
    stack_ = EchoStack::Start({"--handshake-timeout", "60s"}, &error_);
    ASSERT_NE(stack_, nullptr) << error_;
  }

  std::optional<Scrape> Fetch() { return ScrapeMetrics(stack_->gateway->metrics_port()); }

  static Gauges StateGauges(const Scrape& scrape) {
    Gauges g;
    g.connection = scrape.Value("wsgateway_connections", {{"state", "connection"}}).value_or(-1);
    g.handshake = scrape.Value("wsgateway_connections", {{"state", "handshake"}}).value_or(-1);
    g.active = scrape.Value("wsgateway_connections", {{"state", "active"}}).value_or(-1);
    g.closing = scrape.Value("wsgateway_connections", {{"state", "closing"}}).value_or(-1);
    return g;
  }

  // Scrapes until the state gauges equal `want` (they follow the loops
  // asynchronously); returns the last gauges seen.
  Gauges WaitForGauges(const Gauges& want) {
    Gauges last;
    PollUntil(std::chrono::seconds(20), [&] {
      const auto scrape = Fetch();
      if (scrape) last = StateGauges(*scrape);
      return last == want;
    });
    return last;
  }

  // Scrapes until `done` holds for a scrape; returns that scrape.
  template <typename Done>
  std::optional<Scrape> WaitForScrape(Done&& done) {
    std::optional<Scrape> last;
    PollUntil(std::chrono::seconds(20), [&] {
      last = Fetch();
      return last && done(*last);
    });
    return last;
  }

  std::unique_ptr<EchoStack> stack_;
  std::string error_;
};

// The connections gauge counts open clients by state: WebSocket clients are
// active, TCP connections that sent nothing are in state connection.
TEST_F(MetricsTest, ConnectionGaugesMatchTheOpenClientsInEachState) {
  const auto port = stack_->gateway->ws_port();
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    ASSERT_EQ(clients.back()->Connect(port, "/m/" + std::to_string(i)).http_status, 101u);
  }
  std::vector<std::unique_ptr<RawTcpConnection>> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(std::make_unique<RawTcpConnection>(port));
    ASSERT_TRUE(silent.back()->connected());
  }
  EXPECT_EQ(WaitForGauges({3, 0, 5, 0}), (Gauges{3, 0, 5, 0}));

  // Two clients leave cleanly, one silent connection drops.
  ASSERT_FALSE(clients[0]->Close());
  ASSERT_FALSE(clients[1]->Close());
  silent[0]->Close();
  EXPECT_EQ(WaitForGauges({2, 0, 3, 0}), (Gauges{2, 0, 3, 0}));

  clients.clear();
  silent.clear();
  EXPECT_EQ(WaitForGauges({0, 0, 0, 0}), (Gauges{0, 0, 0, 0}));
}

// A client that has sent part of its HTTP request is in state handshake
// ("HTTP request being read"), and leaves it when it goes away.
TEST_F(MetricsTest, ConnectionWithAPartialRequestCountsAsHandshake) {
  const auto port = stack_->gateway->ws_port();
  RawTcpConnection half(port);
  ASSERT_TRUE(half.Write("GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  EXPECT_EQ(WaitForGauges({0, 1, 0, 0}), (Gauges{0, 1, 0, 0}));
  half.Close();
  EXPECT_EQ(WaitForGauges({0, 0, 0, 0}), (Gauges{0, 0, 0, 0}));
}

// Counters follow what clients did: handshakes, messages and bytes by opcode,
// closes by code and by who closed, refusals, and admin calls.
TEST_F(MetricsTest, CountersFollowTraffic) {
  const auto port = stack_->gateway->ws_port();
  {
    WsClient a;
    WsClient b;
    ASSERT_EQ(a.Connect(port, "/c/a").http_status, 101u);
    ASSERT_EQ(b.Connect(port, "/c/b").http_status, 101u);
    ASSERT_FALSE(a.SendText("hello"));         // 5 bytes
    ASSERT_FALSE(a.SendBinary("0123456789"));  // 10 bytes
    ASSERT_EQ(a.Read().payload, "hello");
    ASSERT_EQ(a.Read().payload, "0123456789");
    ASSERT_FALSE(a.Close(1000));
    ASSERT_FALSE(b.Close(4321, "app"));
  }
  EXPECT_EQ(HttpGet(port, "/plain").status, 400u);
  AdminClient admin(stack_->gateway->admin_port());
  EXPECT_EQ(admin.Exist("0000000000000001-0-1").status.error_code(), grpc::StatusCode::OK);

  const auto scrape = WaitForScrape([](const Scrape& s) {
    return s.Sum("wsgateway_connections_closed_total") >= 2 && s.Sum("wsgateway_handshake_rejections_total") >= 1 &&
           s.Sum("wsgateway_admin_request_duration_seconds_count") >= 1;
  });
  ASSERT_TRUE(scrape.has_value());
  EXPECT_TRUE(scrape->errors().empty()) << scrape->errors().front();
  EXPECT_EQ(scrape->Value("wsgateway_connections_opened_total"), 2);
  EXPECT_EQ(scrape->Value("wsgateway_messages_received_total", {{"opcode", "text"}}), 1);
  EXPECT_EQ(scrape->Value("wsgateway_messages_received_total", {{"opcode", "binary"}}), 1);
  EXPECT_EQ(scrape->Value("wsgateway_messages_sent_total", {{"opcode", "text"}}), 1);
  EXPECT_EQ(scrape->Value("wsgateway_messages_sent_total", {{"opcode", "binary"}}), 1);
  EXPECT_EQ(scrape->Sum("wsgateway_received_bytes_total", {{"opcode", "text"}}), 5);
  EXPECT_EQ(scrape->Sum("wsgateway_received_bytes_total", {{"opcode", "binary"}}), 10);
  EXPECT_EQ(scrape->Sum("wsgateway_sent_bytes_total", {{"opcode", "binary"}}), 10);
  EXPECT_EQ(scrape->Value("wsgateway_connections_closed_total", {{"code", "1000"}, {"closed_by", "client"}}), 1);
  EXPECT_EQ(scrape->Value("wsgateway_connections_closed_total", {{"code", "4xxx"}, {"closed_by", "client"}}), 1);
  EXPECT_EQ(scrape->Sum("wsgateway_handshake_rejections_total"), 1);
  const std::map<std::string, std::string> backend = {{"backend", stack_->backend->target()}};
  EXPECT_EQ(scrape->Value("wsgateway_backend_up", backend), 1);
  EXPECT_EQ(scrape->Value("wsgateway_backend_events_lost_total", backend), 0);
  EXPECT_EQ(scrape->Value("wsgateway_slow_consumer_closes_total"), 0);
  // The admin histogram is labelled by method and code; find the Exist call.
  double exist_calls = 0;
  for (const auto& sample : scrape->samples()) {
    if (sample.name != "wsgateway_admin_request_duration_seconds_count") continue;
    const auto method = sample.labels.find("method");
    const auto code = sample.labels.find("code");
    ASSERT_NE(method, sample.labels.end());
    ASSERT_NE(code, sample.labels.end());
    if (method->second.find("Exist") != std::string::npos) exist_calls += sample.value;
  }
  EXPECT_EQ(exist_calls, 1);
  EXPECT_EQ(scrape->types().at("wsgateway_admin_request_duration_seconds"), "histogram");
  EXPECT_EQ(scrape->types().at("wsgateway_connections"), "gauge");
  EXPECT_EQ(scrape->types().at("wsgateway_connections_opened_total"), "counter");
}

// No label value is ever a connection id, so series stay bounded.
TEST_F(MetricsTest, NoLabelCarriesAConnectionId) {
  WsClient client;
  ASSERT_EQ(client.Connect(stack_->gateway->ws_port(), "/ids").http_status, 101u);
  AdminClient admin(stack_->gateway->admin_port());
  const auto info = admin.WaitForOne("/ids", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());
  ASSERT_TRUE(admin.Disconnect(info->connection_id(), 4000, "bye").ok());
  EXPECT_TRUE(client.Read().ec);  // completes the close handshake
  const auto scrape = WaitForScrape([](const Scrape& s) { return s.Sum("wsgateway_connections_closed_total") >= 1; });
  ASSERT_TRUE(scrape.has_value());
  EXPECT_EQ(scrape->text().find(info->connection_id()), std::string::npos);
  EXPECT_EQ(scrape->text().find("/ids"), std::string::npos) << "paths must not be label values either";
  EXPECT_EQ(scrape->Value("wsgateway_connections_closed_total", {{"code", "4xxx"}, {"closed_by", "backend"}}), 1);
}

// The scrape passes `promtool check metrics` (conventional names, help and
// type lines, units).
TEST_F(MetricsTest, ScrapePassesPromtoolCheckMetrics) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  // Traffic first, so that labelled families have children.
  {
    WsClient client;
    ASSERT_EQ(client.Connect(stack_->gateway->ws_port(), "/promtool").http_status, 101u);
    ASSERT_FALSE(client.SendText("x"));
    ASSERT_EQ(client.Read().payload, "x");
    ASSERT_FALSE(client.Close());
  }
  EXPECT_EQ(HttpGet(stack_->gateway->ws_port(), "/").status, 400u);
  AdminClient admin(stack_->gateway->admin_port());
  (void)admin.Exist("0000000000000001-0-1");
  const auto scrape = WaitForScrape([](const Scrape& s) { return s.Sum("wsgateway_connections_closed_total") >= 1; });
  ASSERT_TRUE(scrape.has_value());

  const auto file = std::filesystem::temp_directory_path() / ("wsgateway-scrape-" + std::to_string(getpid()) + ".txt");
  std::ofstream(file) << scrape->text();
  ChildProcess check(
      {"/bin/sh", {"-c", std::string(promtool) + " check metrics < " + file.string()}, {}, {}, "promtool"});
  const auto status = check.Wait(std::chrono::seconds(60));
  std::filesystem::remove(file);
  ASSERT_TRUE(status.has_value()) << "promtool did not finish";
  std::string output;
  for (const auto& line : check.Lines()) output += line + "\n";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "promtool check metrics:\n" << output;
}

}  // namespace
}  // namespace wsgateway::testing
