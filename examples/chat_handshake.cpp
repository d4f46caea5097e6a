#include "chat_handshake.hpp"

#include <algorithm>
#include <string>

#include "chat_name.hpp"
#include "chat_protocol.hpp"

namespace wsgateway_examples {
namespace {

using wsgateway::v1::HandshakeRequest;
using wsgateway::v1::HandshakeResponse;

HandshakeResponse Reject(unsigned status, const std::string& body) {
  HandshakeResponse response;
  auto& reject = *response.mutable_reject();
  reject.set_status(status);
  auto& type = *reject.add_headers();
  type.set_name("Content-Type");
  type.set_value("text/plain; charset=utf-8");
  reject.set_body(body + "\n");
  return response;
}

HandshakeResponse Accept(const HandshakeRequest& request, const std::string& name) {
  HandshakeResponse response;
  (*response.mutable_metadata())[std::string(kNameKey)] = name;
  response.add_groups(std::string(kLobbyGroup));
  const auto& offered = request.offered_subprotocols();
  if (std::find(offered.begin(), offered.end(), kChatSubprotocol) != offered.end()) {
    response.set_subprotocol(std::string(kChatSubprotocol));
  }
  return response;
}

}  // namespace

HandshakeResponse DecideHandshake(const HandshakeRequest& request) {
  if (request.path() != kChatPath) {
    return Reject(404, "There is no chat at " + request.path() + "; connect to /chat?name=YOUR_NAME.");
  }
  bool malformed = false;
  const auto name = QueryParameter(request.query(), kNameKey, &malformed);
  if (malformed) return Reject(400, "The name is not valid percent-encoding.");
  if (!name) return Reject(400, "Say who you are: connect to /chat?name=YOUR_NAME.");
  if (auto problem = NameProblem(*name); !problem.empty()) {
    return Reject(400, problem + " Use 1 to 32 printable characters.");
  }
  return Accept(request, *name);
}

}  // namespace wsgateway_examples
