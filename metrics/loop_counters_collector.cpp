#include "metrics/loop_counters_collector.hpp"

#include <string>

namespace wsgateway::metrics {
namespace {

prometheus::MetricFamily CounterFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Counter;
  return family;
}

void AddSample(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels,
               std::uint64_t value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = static_cast<double>(value);
  family.metric.push_back(std::move(metric));
}

// Sums one per-opcode array over every loop into a family.
template <typename Select>
prometheus::MetricFamily PerOpcode(const std::vector<std::unique_ptr<LoopCounters>>& all, std::string name,
                                   std::string help, Select select) {
  auto family = CounterFamily(std::move(name), std::move(help));
  for (std::size_t kind = 0; kind < kFrameKinds; ++kind) {
    std::uint64_t sum = 0;
    for (const auto& counters : all) sum += select(*counters)[kind].load(std::memory_order_relaxed);
    AddSample(family, {{"opcode", std::string(OpcodeLabel(static_cast<FrameKind>(kind)))}}, sum);
  }
  return family;
}

}  // namespace

LoopCountersCollector::LoopCountersCollector() {
  counters_.push_back(std::make_unique<LoopCounters>(/*single_writer=*/false));
  shared_ = counters_.front().get();
}

LoopCounters& LoopCountersCollector::AddLoop() {
  std::lock_guard lock(mutex_);
  counters_.push_back(std::make_unique<LoopCounters>(/*single_writer=*/true));
  return *counters_.back();
}

std::vector<prometheus::MetricFamily> LoopCountersCollector::Collect() const {
  std::lock_guard lock(mutex_);
  std::vector<prometheus::MetricFamily> families;
  families.push_back(PerOpcode(
      counters_, "wsgateway_messages_received_total", "Messages and control frames received from clients, by opcode.",
      [](const LoopCounters& c) -> const auto& { return c.messages_in(); }));
  families.push_back(PerOpcode(
      counters_, "wsgateway_messages_sent_total", "Messages and control frames sent to clients, by opcode.",
      [](const LoopCounters& c) -> const auto& { return c.messages_out(); }));
  families.push_back(PerOpcode(
      counters_, "wsgateway_received_bytes_total", "Payload bytes received from clients, by opcode.",
      [](const LoopCounters& c) -> const auto& { return c.bytes_in(); }));
  families.push_back(PerOpcode(
      counters_, "wsgateway_sent_bytes_total", "Payload bytes sent to clients, by opcode.",
      [](const LoopCounters& c) -> const auto& { return c.bytes_out(); }));
  auto commands = CounterFamily("wsgateway_backend_commands_total",
                                "Commands received on the backend stream, by command and result.");
  for (std::size_t kind = 0; kind < kCommandKinds; ++kind) {
    for (std::size_t result = 0; result < kCommandResults; ++result) {
      std::uint64_t sum = 0;
      for (const auto& counters : counters_) sum += counters->commands()[kind][result].load(std::memory_order_relaxed);
      AddSample(commands,
                {{"command", std::string(CommandLabel(static_cast<CommandKind>(kind)))},
                 {"result", std::string(CommandResultLabel(static_cast<CommandResult>(result)))}},
                sum);
    }
  }
  families.push_back(std::move(commands));
  return families;
}

}  // namespace wsgateway::metrics
