#include "chat_room.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <utility>

#include "chat_name.hpp"
#include "chat_protocol.hpp"

namespace wsgateway_examples {
namespace {

using wsgateway::v1::CommandBatch;
using wsgateway::v1::Event;

// "…f3a9c1": enough of an id to tell people apart.
std::string ShortId(const std::string& connection_id) {
  constexpr std::size_t kLength = 6;
  return connection_id.size() <= kLength ? connection_id : connection_id.substr(connection_id.size() - kLength);
}

bool IsBlank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// The ?name= of the upgrade when it is an acceptable nickname.
std::optional<std::string> NameFromQuery(const std::string& query) {
  bool malformed = false;
  auto name = QueryParameter(query, kNameKey, &malformed);
  if (!name || !NameProblem(*name).empty()) return std::nullopt;
  return name;
}

// Sends a binary message back to its sender, moving the payload.
void EchoToSender(Event& event, CommandBatch& commands) {
  auto& push = *commands.add_commands()->mutable_push();
  push.add_connection_ids(event.connection_id());
  auto& frame = *push.mutable_frame();
  frame.set_opcode(wsgateway::v1::OPCODE_BINARY);
  *frame.mutable_payload() = std::move(*event.mutable_message()->mutable_payload());
}

}  // namespace

void ChatRoom::OnEvent(Event& event, CommandBatch& commands) {
  switch (event.kind_case()) {
    case Event::kOpen:
      OnOpen(event.connection_id(), event.open());
      break;
    case Event::kMessage:
      if (event.message().opcode() == wsgateway::v1::OPCODE_BINARY) {
        EchoToSender(event, commands);
      } else {
        OnText(event.connection_id(), event.message().payload());
      }
      break;
    case Event::kClose:
      OnClose(event.connection_id());
      break;
    case Event::kControlFrame:
    case Event::kCloseFrame:
    case Event::kDisconnect:
    // A lost node's Close events came before it, one per connection.
    case Event::kNodeLost:
    case Event::KIND_NOT_SET:
      break;
  }
}

void ChatRoom::OnOpen(const std::string& id, const wsgateway::v1::OpenEvent& open) {
  const auto named = open.metadata().find(std::string(kNameKey));
  const bool hooked = named != open.metadata().end();
  std::string name = hooked ? named->second : NameFromQuery(open.query()).value_or(ShortId(id));
  std::lock_guard lock(mutex_);
  const auto [entry, added] = names_.emplace(id, std::move(name));
  if (!added) return;  // A redelivered Open.
  // Joining a group twice is no error, so when in doubt, join.
  if (!hooked) admin_.JoinGroup(id, std::string(kLobbyGroup));
  admin_.BroadcastText(std::string(kLobbyGroup), PresenceJson("joined", entry->second, OnlineLocked()));
}

void ChatRoom::OnText(const std::string& id, const std::string& text) {
  if (IsBlank(text)) return;
  std::lock_guard lock(mutex_);
  admin_.BroadcastText(std::string(kLobbyGroup), ChatLineJson(NameLocked(id), text));
}

void ChatRoom::OnClose(const std::string& id) {
  std::lock_guard lock(mutex_);
  const auto entry = names_.find(id);
  if (entry == names_.end()) return;  // A redelivered Close, or someone from before a restart.
  const std::string name = std::move(entry->second);
  names_.erase(entry);
  admin_.BroadcastText(std::string(kLobbyGroup), PresenceJson("left", name, OnlineLocked()));
}

std::vector<std::string> ChatRoom::OnlineLocked() const {
  std::vector<std::string> online;
  online.reserve(names_.size());
  for (const auto& [id, name] : names_) online.push_back(name);
  std::sort(online.begin(), online.end());
  return online;
}

std::string ChatRoom::NameLocked(const std::string& id) const {
  const auto entry = names_.find(id);
  return entry != names_.end() ? entry->second : ShortId(id);
}

}  // namespace wsgateway_examples
