#include "gateway/runtime/backend_commands.hpp"

#include <spdlog/spdlog.h>

#include "gateway/runtime/gateway.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {
namespace {

using metrics::CommandKind;
using metrics::CommandResult;

std::size_t CountDeliveries(const v1::CommandBatch& batch) {
  std::size_t count = 0;
  for (const auto& command : batch.commands()) {
    if (command.has_push()) count += static_cast<std::size_t>(command.push().connection_ids_size());
    if (command.has_disconnect()) ++count;
  }
  return count;
}

// A loop counts into its own counters (one writer, no atomic
// read-modify-write); any other thread into the shared ones.
metrics::LoopCounters& CountersHere(Gateway& gateway) {
  for (std::size_t i = 0; i < gateway.loop_count(); ++i) {
    if (gateway.loop(i).running_on_loop()) return gateway.loop(i).counters();
  }
  return gateway.metrics().loop_counters().shared();
}

}  // namespace

CommandResult ToCommandResult(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return CommandResult::kOk;
    case Outcome::kNotFound:
      return CommandResult::kNotFound;
    case Outcome::kNotActive:
      return CommandResult::kNotActive;
    case Outcome::kQueueFull:
      return CommandResult::kQueueFull;
    case Outcome::kUnreachable:
      return CommandResult::kUnreachable;
    case Outcome::kNoMessageToContinue:
    case Outcome::kInvalidUtf8:
    case Outcome::kTooManyGroups:
      break;
  }
  return CommandResult::kInvalid;
}

void ApplyBackendCommands(v1::CommandBatch& batch, Gateway& gateway, DataPlane& data_plane) {
  auto& refused = gateway.metrics().loop_counters().shared();
  std::vector<Delivery> deliveries;
  std::vector<CommandKind> kinds;
  const auto count = CountDeliveries(batch);
  deliveries.reserve(count);
  kinds.reserve(count);
  for (auto& command : *batch.mutable_commands()) {
    if (command.has_push()) {
      auto* push = command.mutable_push();
      auto check = MakeOutboundFrame(std::move(*push->mutable_frame()), gateway.config().max_message_bytes);
      if (!check.error.empty()) {
        spdlog::debug("backend push refused: {}", check.error);
        refused.Command(CommandKind::kPush, CommandResult::kInvalid);
        continue;
      }
      for (auto& id : *push->mutable_connection_ids()) {
        deliveries.push_back({std::move(id), Delivery::Kind::kPush, check.frame});
        kinds.push_back(CommandKind::kPush);
      }
    } else if (command.has_disconnect()) {
      auto* disconnect = command.mutable_disconnect();
      if (const auto error = CheckCloseRequest(disconnect->code(), disconnect->reason()); !error.empty()) {
        spdlog::debug("backend disconnect refused: {}", error);
        refused.Command(CommandKind::kDisconnect, CommandResult::kInvalid);
        continue;
      }
      deliveries.push_back(
          {std::move(*disconnect->mutable_connection_id()), Delivery::Kind::kClose,
           MakeCloseFrame(static_cast<std::uint16_t>(disconnect->code()), std::move(*disconnect->mutable_reason()))});
      kinds.push_back(CommandKind::kDisconnect);
    }
  }
  if (deliveries.empty()) return;
  // No caller waits on the answer: the data plane bounds a forwarded batch
  // with its own default.
  data_plane.Deliver(std::move(deliveries), DataPlane::Deadline::max(),
                     [&gateway, kinds = std::move(kinds)](const std::vector<ConnectionResult>& results) {
                       auto& counters = CountersHere(gateway);
                       for (std::size_t i = 0; i < results.size(); ++i) {
                         counters.Command(kinds[i], ToCommandResult(results[i].outcome));
                       }
                     });
}

}  // namespace wsgateway
