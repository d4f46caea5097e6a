// The metric families and their bounded labels.

#include "metrics/gateway_metrics.hpp"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace wsgateway::metrics {
namespace {

// Codes registered by RFC 6455 keep their own label.
TEST(CloseCodeLabelTest, KeepsRegisteredCodes) {
  for (unsigned code = 1000; code <= 1015; ++code) EXPECT_EQ(CloseCodeLabel(code), std::to_string(code));
}

// Application ranges collapse to one label each, so a client cannot grow the
// number of series by choosing codes.
TEST(CloseCodeLabelTest, CollapsesApplicationRanges) {
  EXPECT_EQ(CloseCodeLabel(3000), "3xxx");
  EXPECT_EQ(CloseCodeLabel(3456), "3xxx");
  EXPECT_EQ(CloseCodeLabel(3999), "3xxx");
  EXPECT_EQ(CloseCodeLabel(4000), "4xxx");
  EXPECT_EQ(CloseCodeLabel(4999), "4xxx");
}

// Everything else, however exotic, shares one label.
TEST(CloseCodeLabelTest, MapsEverythingElseToOther) {
  for (unsigned code : {0u, 1u, 999u, 1016u, 2000u, 2999u, 5000u, 65535u, 4294967295u}) {
    EXPECT_EQ(CloseCodeLabel(code), "other") << code;
  }
}

// Over all 2^16 codes a close frame can carry, there are at most 16 + 3 labels.
TEST(CloseCodeLabelTest, HasABoundedNumberOfValues) {
  std::set<std::string> labels;
  for (unsigned code = 0; code <= 65535; ++code) labels.insert(CloseCodeLabel(code));
  EXPECT_EQ(labels.size(), 19u);
}

// The opcode and state label names are the lower-case names used in queries.
TEST(GatewayMetricsTest, LabelNamesAreTheDocumentedOnes) {
  EXPECT_EQ(OpcodeLabel(FrameKind::kText), "text");
  EXPECT_EQ(OpcodeLabel(FrameKind::kBinary), "binary");
  EXPECT_EQ(OpcodeLabel(FrameKind::kPing), "ping");
  EXPECT_EQ(OpcodeLabel(FrameKind::kPong), "pong");
  EXPECT_EQ(OpcodeLabel(FrameKind::kClose), "close");
  EXPECT_EQ(StateLabelName(StateLabel::kConnection), "connection");
  EXPECT_EQ(StateLabelName(StateLabel::kHandshake), "handshake");
  EXPECT_EQ(StateLabelName(StateLabel::kActive), "active");
  EXPECT_EQ(StateLabelName(StateLabel::kClosing), "closing");
}

std::string Scrape(const GatewayMetrics& metrics) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : metrics.collectables()) {
    for (auto& family : collectable->Collect()) families.push_back(std::move(family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

// A fresh registry already exports every family whose labels are fixed (so
// dashboards see zeros, not gaps), with the connection gauge for each state
// at zero. Families labelled by what happened (close code, rejection reason,
// admin method) appear with their first sample.
TEST(GatewayMetricsTest, ExportsEveryFixedLabelFamilyFromTheStart) {
  GatewayMetrics metrics;
  // Backend families are labelled by target; the gateway adds each target
  // at start-up.
  metrics.Backend("127.0.0.1:50052");
  const std::string text = Scrape(metrics);
  for (const char* family :
       {"wsgateway_connections", "wsgateway_connections_opened_total", "wsgateway_messages_received_total",
        "wsgateway_messages_sent_total", "wsgateway_received_bytes_total", "wsgateway_sent_bytes_total",
        "wsgateway_backend_up", "wsgateway_backend_buffered_events", "wsgateway_backend_events_lost_total",
        "wsgateway_slow_consumer_closes_total"}) {
    EXPECT_NE(text.find("# TYPE " + std::string(family) + " "), std::string::npos) << family;
  }
  for (const char* state : {"connection", "handshake", "active", "closing"}) {
    EXPECT_NE(text.find("wsgateway_connections{state=\"" + std::string(state) + "\"} 0"), std::string::npos) << state;
  }
  for (const char* opcode : {"text", "binary", "ping", "pong", "close"}) {
    EXPECT_NE(text.find("wsgateway_messages_received_total{opcode=\"" + std::string(opcode) + "\"} 0"),
              std::string::npos)
        << opcode;
  }
}

// Handshake rejections are counted by reason.
TEST(GatewayMetricsTest, HandshakeRejectionsAreCountedByReason) {
  GatewayMetrics metrics;
  metrics.HandshakeRejected("bad_version").Increment();
  metrics.HandshakeRejected("bad_version").Increment();
  metrics.HandshakeRejected("no_backend").Increment();
  const std::string text = Scrape(metrics);
  EXPECT_NE(text.find("wsgateway_handshake_rejections_total{reason=\"bad_version\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_handshake_rejections_total{reason=\"no_backend\"} 1"), std::string::npos) << text;
}

// The listener's refusals are pre-created for every reason, at 0, so that
// an alert on them works before the first refusal; each reason has its own
// counter.
TEST(GatewayMetricsTest, RejectedConnectionsExistForEveryReasonFromTheStart) {
  GatewayMetrics metrics;
  const std::string fresh = Scrape(metrics);
  for (const char* reason :
       {"origin", "connection_limit", "address_limit", "handshake_timeout", "handshake_too_large"}) {
    EXPECT_NE(fresh.find("wsgateway_rejected_connections_total{reason=\"" + std::string(reason) + "\"} 0"),
              std::string::npos)
        << reason << "\n" << fresh;
  }
  metrics.Rejected(RejectionReason::kAddressLimit).Increment();
  metrics.Rejected(RejectionReason::kAddressLimit).Increment();
  metrics.Rejected(RejectionReason::kHandshakeTimeout).Increment();
  const std::string text = Scrape(metrics);
  EXPECT_NE(text.find("wsgateway_rejected_connections_total{reason=\"address_limit\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_rejected_connections_total{reason=\"handshake_timeout\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("wsgateway_rejected_connections_total{reason=\"origin\"} 0"), std::string::npos) << text;
}

// Closed connections are counted under the bounded code label and who closed.
TEST(GatewayMetricsTest, ClosedCounterUsesTheBoundedCodeLabel) {
  GatewayMetrics metrics;
  metrics.Closed(4321, "backend").Increment();
  metrics.Closed(4000, "backend").Increment();
  metrics.Closed(1009, "server").Increment();
  EXPECT_EQ(&metrics.Closed(4321, "backend"), &metrics.Closed(4999, "backend"));
  const std::string text = Scrape(metrics);
  EXPECT_NE(text.find("wsgateway_connections_closed_total{closed_by=\"backend\",code=\"4xxx\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("wsgateway_connections_closed_total{closed_by=\"server\",code=\"1009\"} 1"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("4321"), std::string::npos);
}

// The admin latency histogram is labelled by method and status code.
TEST(GatewayMetricsTest, AdminLatencyIsAHistogramByMethodAndCode) {
  GatewayMetrics metrics;
  metrics.AdminLatency("Push", "OK").Observe(0.002);
  const std::string text = Scrape(metrics);
  EXPECT_NE(text.find("# TYPE wsgateway_admin_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("wsgateway_admin_request_duration_seconds_count{code=\"OK\",method=\"Push\"} 1"),
            std::string::npos)
      << text;
}

// Per-message counters are kept per loop and exported as one series per
// label set: the sum over the loops and the shared slot.
TEST(GatewayMetricsTest, LoopCountersAreSummedOverLoops) {
  GatewayMetrics metrics;
  auto& first = metrics.loop_counters().AddLoop();
  auto& second = metrics.loop_counters().AddLoop();
  first.Received(FrameKind::kText, 10);
  second.Received(FrameKind::kText, 5);
  second.Sent(FrameKind::kBinary, 7);
  first.Command(CommandKind::kPush, CommandResult::kOk);
  second.Command(CommandKind::kPush, CommandResult::kOk);
  metrics.loop_counters().shared().Command(CommandKind::kDisconnect, CommandResult::kNotFound);
  const std::string text = Scrape(metrics);
  EXPECT_NE(text.find("wsgateway_messages_received_total{opcode=\"text\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_received_bytes_total{opcode=\"text\"} 15"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_messages_sent_total{opcode=\"binary\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_sent_bytes_total{opcode=\"binary\"} 7"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_backend_commands_total{command=\"push\",result=\"ok\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("wsgateway_backend_commands_total{command=\"disconnect\",result=\"not_found\"} 1"),
            std::string::npos)
      << text;
}

// docs/metrics.md's table: each metric's labels cell, by metric name.
std::map<std::string, std::string> DocumentedLabelCells() {
  std::ifstream in(std::string(WSGATEWAY_SOURCE_DIR) + "/docs/metrics.md");
  EXPECT_TRUE(in.good()) << "docs/metrics.md not found";
  std::map<std::string, std::string> cells;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("| `wsgateway_")) continue;
    // | `name` | type | labels | meaning |
    std::vector<std::string> columns;
    std::stringstream row(line.substr(1));
    for (std::string column; std::getline(row, column, '|');) columns.push_back(column);
    if (columns.size() < 4) continue;
    const auto name_start = columns[0].find('`') + 1;
    cells[columns[0].substr(name_start, columns[0].find('`', name_start) - name_start)] = columns[2];
  }
  return cells;
}

// Whether `word` appears in `text` on its own (not inside a longer name).
bool HasWord(const std::string& text, const std::string& word) {
  const auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; };
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool starts = at == 0 || !is_name_char(text[at - 1]);
    const bool ends = at + word.size() == text.size() || !is_name_char(text[at + word.size()]);
    if (starts && ends) return true;
  }
  return false;
}

std::vector<prometheus::MetricFamily> Collect(const GatewayMetrics& metrics) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : metrics.collectables()) {
    for (auto& family : collectable->Collect()) families.push_back(std::move(family));
  }
  return families;
}

// docs/metrics.md lists every family the gateway exports, with every label
// its series carry (`backend` on the backend stream's families included),
// and no family that does not exist.
TEST(GatewayMetricsDocsTest, EveryFamilyAndEveryLabelIsDocumented) {
  const auto documented = DocumentedLabelCells();
  ASSERT_FALSE(documented.empty());
  GatewayMetrics metrics;
  // One child of every family that is labelled by what happened.
  metrics.Backend("127.0.0.1:50052");
  metrics.Closed(1000, "client");
  metrics.HandshakeRejected("malformed");
  metrics.HandshakeHookFailed("timeout");
  metrics.HttpForwardingFailed("timeout");
  metrics.AdminLatency("Push", "OK");
  metrics.TlsReloads("ok");
  metrics.TlsCertificateExpiry();
  metrics.cluster_nodes();
  metrics.cluster_redis_up();
  metrics.ClusterForwarded("Push", "OK");
  metrics.cluster_lost_nodes_reported();
  metrics.cluster_lost_connections_reported();
  metrics.cluster_fenced();
  std::set<std::string> exported;
  for (const auto& family : Collect(metrics)) {
    exported.insert(family.name);
    const auto cell = documented.find(family.name);
    if (cell == documented.end()) {
      ADD_FAILURE() << family.name << " is exported but has no row in docs/metrics.md";
      continue;
    }
    EXPECT_FALSE(family.metric.empty()) << family.name << " has no series to check";
    for (const auto& series : family.metric) {
      for (const auto& label : series.label) {
        EXPECT_NE(cell->second.find("`" + label.name + "`"), std::string::npos)
            << family.name << ": label `" << label.name << "` is not in its docs/metrics.md row";
      }
    }
  }
  for (const auto& [name, cell] : documented) {
    EXPECT_TRUE(exported.contains(name)) << name << " is in docs/metrics.md but not exported";
  }
}

// Where the label values are fixed at start-up, docs/metrics.md names every
// one of them.
TEST(GatewayMetricsDocsTest, EveryFixedLabelValueIsDocumented) {
  const auto documented = DocumentedLabelCells();
  GatewayMetrics metrics;
  for (const auto& family : Collect(metrics)) {
    const auto cell = documented.find(family.name);
    if (cell == documented.end()) continue;  // the test above reports it
    for (const auto& series : family.metric) {
      for (const auto& label : series.label) {
        EXPECT_TRUE(HasWord(cell->second, label.value))
            << family.name << ": " << label.name << "=\"" << label.value << "\" is not in its docs/metrics.md row";
      }
    }
  }
}

}  // namespace
}  // namespace wsgateway::metrics
