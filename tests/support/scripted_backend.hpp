#pragma once
// An in-process wsgateway.v1.Backend whose behaviour each test scripts: it
// records every event the gateway sends on Connect streams, with the node
// each came from and when (and acknowledges every batch, unless told to
// hold its acknowledgements), sends the commands a test asks for, and
// answers Handshake and HandleRequest with handlers the test sets. A
// handler may hold its call unanswered, so a test can watch the gateway's
// deadline expire without sleeping; held calls are finished when the
// backend stops.
//
// It serves on 127.0.0.1 with a port chosen by the OS; start a gateway
// with --backend target().
//
// Thread-safety: every member may be called from any thread. Handlers run
// on gRPC threads, never under the backend's lock, so they may call back
// into it.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "wsgateway/v1/backend.grpc.pb.h"

namespace wsgateway::testing {

namespace v1 = ::wsgateway::v1;

// A unary call's outcome, as a handler decides it.
template <typename Response>
struct UnaryAnswer {
  grpc::Status status;
  Response response;
  // Leave the call unanswered until the backend stops (or ReleaseHeld).
  bool hold = false;

  static UnaryAnswer Reply(Response response) { return {grpc::Status::OK, std::move(response), false}; }
  static UnaryAnswer Fail(grpc::Status status) { return {std::move(status), Response(), false}; }
  static UnaryAnswer Hold() { return {grpc::Status::OK, Response(), true}; }
};

using HandshakeAnswer = UnaryAnswer<v1::HandshakeResponse>;
using HttpAnswer = UnaryAnswer<v1::HttpResponse>;

class ScriptedBackend {
 public:
  using HandshakeHandler = std::function<HandshakeAnswer(const v1::HandshakeRequest&)>;
  using HttpHandler = std::function<HttpAnswer(const v1::HttpRequest&)>;
  // Called for every event received; may append commands, which go back
  // in the same CommandBatch as the batch's acknowledgement.
  using EventHandler = std::function<void(const v1::Event&, v1::CommandBatch&)>;
  using EventPredicate = std::function<bool(const v1::Event&)>;

  // Starts serving on `port` (0: one the OS chooses; a port of a backend
  // that stopped, to restart it); nullptr and *error on failure.
  static std::unique_ptr<ScriptedBackend> Start(std::string* error, int port = 0);
  // Finishes held calls, then shuts the server down.
  ~ScriptedBackend();
  ScriptedBackend(const ScriptedBackend&) = delete;
  ScriptedBackend& operator=(const ScriptedBackend&) = delete;

  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // ---- Scripting ------------------------------------------------------
  // Defaults: accept every upgrade; answer every HTTP request 404; no
  // commands for events.
  void SetHandshakeHandler(HandshakeHandler handler);
  void SetHttpHandler(HttpHandler handler);
  void SetEventHandler(EventHandler handler);
  // Back to the defaults, and forgets nothing recorded.
  void ResetHandlers();
  // Finishes every held call now, with CANCELLED.
  void ReleaseHeld();

  // Queues a CommandBatch on the newest Connect stream; false when no
  // stream is open.
  bool Send(v1::CommandBatch batch);

  // false: batches are answered with ack 0 (the gateways keep them, and
  // whatever waits for the backend's acknowledgement waits). true (the
  // default): every open stream is acknowledged at once up to the last
  // batch it carried, and later batches as they come.
  void SetAcknowledging(bool acknowledging);

  // ---- What happened --------------------------------------------------
  std::size_t handshake_calls() const;
  std::size_t http_calls() const;
  std::vector<v1::HandshakeRequest> handshake_requests() const;
  std::vector<v1::HttpRequest> http_requests() const;
  // Every event received, in order of arrival, redeliveries included.
  std::vector<v1::Event> events() const;
  // Where and when each event of events() (same index) arrived: the batch's
  // node_id and the time the backend read it.
  struct Arrival {
    std::string node_id;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<Arrival> arrivals() const;
  // A stream's hello or snapshot chunk, and how many events had been
  // received before it (its place among events()).
  struct PreambleMessage {
    v1::EventBatch message;
    std::size_t events_before = 0;
  };
  // Every hello and snapshot chunk received, in order of arrival.
  std::vector<PreambleMessage> preamble() const;
  bool WaitUntilPreamble(const std::function<bool(const std::vector<PreambleMessage>&)>& predicate,
                         std::chrono::milliseconds timeout);
  std::vector<v1::Event> EventsOf(const std::string& connection_id) const;

  // Waits until `predicate` holds for the recorded events (or for the
  // recorded calls); false when the deadline passes first.
  bool WaitUntil(const std::function<bool(const std::vector<v1::Event>&)>& predicate,
                 std::chrono::milliseconds timeout);
  // The same with each event's arrival (events and arrivals index alike).
  // Both only grow, so a predicate may remember how far it has looked.
  bool WaitUntilArrived(
      const std::function<bool(const std::vector<v1::Event>&, const std::vector<Arrival>&)>& predicate,
      std::chrono::milliseconds timeout);
  bool WaitForCalls(std::size_t handshakes, std::size_t http_requests, std::chrono::milliseconds timeout);
  // The first recorded event that matches, waiting for it if need be.
  std::optional<v1::Event> WaitForEvent(const EventPredicate& match, std::chrono::milliseconds timeout);
  // The Open event of the connection upgraded on `path`.
  std::optional<v1::Event> WaitForOpen(const std::string& path, std::chrono::milliseconds timeout);
  // The Close event of a connection.
  std::optional<v1::Event> WaitForClose(const std::string& connection_id, std::chrono::milliseconds timeout);

 private:
  class Service;
  class Stream;
  friend class Service;
  friend class Stream;

  ScriptedBackend() = default;

  // Called by the service and the streams (gRPC threads). Record answers
  // whether to acknowledge the batch.
  bool Record(const v1::EventBatch& batch, v1::CommandBatch& reply);
  void StreamStarted(Stream* stream);
  void StreamDone(Stream* stream);
  grpc::ServerUnaryReactor* AnswerHandshake(grpc::CallbackServerContext* context, const v1::HandshakeRequest& request,
                                            v1::HandshakeResponse* response);
  grpc::ServerUnaryReactor* AnswerHttp(grpc::CallbackServerContext* context, const v1::HttpRequest& request,
                                       v1::HttpResponse* response);
  // Finishes the reactor now, or keeps it for later when `hold` (and the
  // backend is not stopping).
  void FinishOrHold(grpc::ServerUnaryReactor* reactor, const grpc::Status& status, bool hold);

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  HandshakeHandler handshake_handler_;
  HttpHandler http_handler_;
  EventHandler event_handler_;
  std::vector<v1::HandshakeRequest> handshake_requests_;
  std::vector<v1::HttpRequest> http_requests_;
  std::vector<v1::Event> events_;
  std::vector<Arrival> arrivals_;
  bool acknowledging_ = true;
  std::vector<PreambleMessage> preamble_;
  std::vector<grpc::ServerUnaryReactor*> held_;
  std::vector<Stream*> streams_;  // open Connect streams, oldest first
  bool stopping_ = false;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace wsgateway::testing
