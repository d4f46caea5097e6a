// What the chat's page and backend say to each other over the WebSocket.
//
// The page connects to /chat?name=NICK offering the subprotocol "chat.v1".
// It sends each chat line as a text message, as typed. The backend answers
// with JSON text messages, broadcast to the lobby group:
//
//   {"type":"message","from":"ann","text":"hi"}
//   {"type":"joined","name":"bob","online":["ann","bob"]}
//   {"type":"left","name":"bob","online":["ann"]}
//
// "online" is everyone in the room after the change, sorted; a name appears
// once per connection, so two tabs with the same name show it twice. A
// binary message comes back to its sender only, unchanged: it shows that
// binary data crosses the gateway both ways, and touches nobody else.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wsgateway_examples {

// The path the page upgrades on.
inline constexpr std::string_view kChatPath = "/chat";
// The subprotocol the backend picks when the client offers it.
inline constexpr std::string_view kChatSubprotocol = "chat.v1";
// The group every chatter joins; broadcasts go to it.
inline constexpr std::string_view kLobbyGroup = "lobby";
// The connection metadata key holding the nickname.
inline constexpr std::string_view kNameKey = "name";

// `utf8` as a JSON string literal, quotes included. The input must be valid
// UTF-8 (the gateway guarantees it for text messages).
std::string JsonString(std::string_view utf8);

// {"type":"message","from":...,"text":...}
std::string ChatLineJson(std::string_view from, std::string_view text);

// {"type":"joined"|"left","name":...,"online":[...]}; `type` is "joined" or
// "left".
std::string PresenceJson(std::string_view type, std::string_view name, const std::vector<std::string>& online);

}  // namespace wsgateway_examples
