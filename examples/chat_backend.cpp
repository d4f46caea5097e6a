// chat_backend: the demo behind scripts/run. A browser pointed at the
// gateway gets a chat page (Backend.HandleRequest), joins the room under a
// nickname (Backend.Handshake attaches it and the "lobby" group) and talks
// to everyone in it; the room answers through the gateway's Admin API
// (Broadcast to the group, JoinGroup) besides its event stream.
//
//   build/wsgateway --config examples/chat_gateway.yaml
//   build/examples/chat_backend --listen 127.0.0.1:50053 --admin 127.0.0.1:50051
//
// chat_protocol.hpp has what the page and the backend say; chat_room.hpp
// the room's rules; chat_handshake.hpp and chat_site.hpp the HTTP side.
//
// Delivery: the stream acknowledges a batch once its broadcasts are queued
// here. They travel outside the stream, so the ack cannot make them atomic
// with it as the echo backend's pushes are: a crash can lose the few still
// queued, and after a stream drop a redelivered batch can repeat a line.
// That is fine for a chat.
#include <string>

#include <CLI/CLI.hpp>

#include "admin_call_queue.hpp"
#include "chat_room.hpp"
#include "chat_service.hpp"
#include "serve.hpp"

int main(int argc, char** argv) {
  const wsgateway_examples::TerminationSignals signals;
  wsgateway_examples::log_to_stderr("chat_backend");

  CLI::App app{"Chat backend for wsgateway: serves a chat page and runs one chat room through the Admin API."};
  std::string listen = "127.0.0.1:50053";
  std::string admin = "127.0.0.1:50051";
  app.add_option("--listen", listen, "HOST:PORT to serve wsgateway.v1.Backend on (port 0: any)")->capture_default_str();
  app.add_option("--admin", admin, "the gateway's admin API (its --admin-listen)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Declared before the service: destroyed after the server has stopped
  // calling the room, and the queue waits for its own call in flight.
  wsgateway_examples::AdminCallQueue admin_calls{grpc::CreateChannel(admin, grpc::InsecureChannelCredentials())};
  wsgateway_examples::ChatRoom room{admin_calls};
  wsgateway_examples::ChatService service{room};
  return wsgateway_examples::serve_until_signalled("chat backend", listen, service, signals);
}
