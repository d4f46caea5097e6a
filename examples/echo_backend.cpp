// echo_backend: sends every message a client sends back to that client, as
// one whole message with the same opcode (text stays text, binary stays
// binary).
//
//   build/wsgateway --backend 127.0.0.1:50052
//   build/examples/echo_backend --listen 127.0.0.1:50052
//
// This is the backend of the gateway's benchmark, so it does as little as it
// can per event: the payload and the connection id are moved from the event
// into the push command, never copied. Stream handling, batching and acks
// are in backend_stream.hpp.
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "backend_stream.hpp"
#include "serve.hpp"

namespace {

using wsgateway::v1::CommandBatch;
using wsgateway::v1::Event;

// Turns a MessageEvent into a PushCommand back to its connection. Open and
// Close events cause nothing; they are only acknowledged.
struct Echo {
  void operator()(Event& event, CommandBatch& commands) const {
    if (!event.has_message()) return;
    auto& message = *event.mutable_message();
    auto& push = *commands.add_commands()->mutable_push();
    push.add_connection_ids(std::move(*event.mutable_connection_id()));
    auto& frame = *push.mutable_frame();
    frame.set_opcode(message.opcode());
    *frame.mutable_payload() = std::move(*message.mutable_payload());
  }
};

}  // namespace

int main(int argc, char** argv) {
  const wsgateway_examples::TerminationSignals signals;
  wsgateway_examples::log_to_stderr("echo_backend");

  CLI::App app{"Echo backend for wsgateway: sends every message back to its sender."};
  std::string listen = "127.0.0.1:50052";
  app.add_option("--listen", listen, "HOST:PORT to serve wsgateway.v1.Backend on (port 0: any)")->capture_default_str();
  int max_receive_bytes = -1;
  app.add_option("--max-receive-bytes", max_receive_bytes,
                 "Largest gRPC message taken (-1: any; 4194304 behaves like a backend on gRPC's defaults)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  wsgateway_examples::BackendService<Echo> service{Echo{}};
  return wsgateway_examples::serve_until_signalled("echo backend", listen, service, signals, max_receive_bytes);
}
