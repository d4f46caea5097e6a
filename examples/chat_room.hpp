// The chat room: who is in it, and what each event from the gateway makes
// it say. Text lines, joins and leaves go to the lobby group through the
// Admin API (AdminCallQueue); a binary message goes back to its sender on
// the event stream. chat_protocol.hpp has the messages.
//
// Who is in the room is learnt from Open and Close events. The nickname is
// the connection's "name" metadata, attached by the handshake hook, which
// also put the connection in the lobby. An Open event without that
// metadata (a gateway without --handshake-hook) names the connection by
// the ?name= of its upgrade if acceptable, else by the end of its id, and
// the room adds it to the lobby with Admin.JoinGroup.
//
// A restarted backend knows only those who joined after it started:
// earlier connections are not listed as online, and their lines carry the
// end of their id until they reconnect. A repeated Open or Close (the
// gateway redelivers unacknowledged events after a stream drop) is
// recognised and ignored; a repeated text line is said twice.
//
// Thread-safety: OnEvent may be called from any thread (each gateway's
// stream calls it from gRPC's threads).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "admin_call_queue.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway_examples {

class ChatRoom {
 public:
  explicit ChatRoom(AdminCallQueue& admin) : admin_(admin) {}

  // Acts on one event; may append commands for the event's stream.
  void OnEvent(wsgateway::v1::Event& event, wsgateway::v1::CommandBatch& commands);

 private:
  void OnOpen(const std::string& id, const wsgateway::v1::OpenEvent& open);
  void OnText(const std::string& id, const std::string& text);
  void OnClose(const std::string& id);
  // Everyone's name, sorted.
  std::vector<std::string> OnlineLocked() const;
  std::string NameLocked(const std::string& id) const;

  AdminCallQueue& admin_;
  // Held while a call is queued, so that calls queue in event order.
  std::mutex mutex_;
  std::map<std::string, std::string> names_;  // By connection id.
};

// The EventHandler that EventStream calls (backend_stream.hpp).
struct ChatRoomHandler {
  ChatRoom* room;
  void operator()(wsgateway::v1::Event& event, wsgateway::v1::CommandBatch& commands) const {
    room->OnEvent(event, commands);
  }
};

}  // namespace wsgateway_examples
