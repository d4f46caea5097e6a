// The chat's Backend.Handshake: who may join. Upgrades on /chat with a
// valid ?name= are accepted, named (metadata "name") and put in the lobby
// group at once; the gateway refuses the rest with the status and body
// decided here.
#pragma once

#include "wsgateway/v1/backend.pb.h"

namespace wsgateway_examples {

// Accepts with metadata {"name": NICK}, group "lobby" and the subprotocol
// "chat.v1" when the client offered it (others get none: the page needs
// it, but a command-line client need not offer it); rejects another path
// with 404 and a missing or unacceptable name with 400, each with a
// plain-text body saying what to fix.
wsgateway::v1::HandshakeResponse DecideHandshake(const wsgateway::v1::HandshakeRequest& request);

}  // namespace wsgateway_examples
