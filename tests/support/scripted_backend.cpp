#include "tests/support/scripted_backend.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <iterator>
#include <utility>

namespace wsgateway::testing {

using Clock = std::chrono::steady_clock;

// One gateway's Connect stream. Follows the callback API's rules as
// examples/backend_stream.hpp does: one read always outstanding, at most
// one write in flight, Finish once both sides are done. Deletes itself in
// OnDone, after telling the backend.
class ScriptedBackend::Stream final : public grpc::ServerBidiReactor<v1::EventBatch, v1::CommandBatch> {
 public:
  Stream(ScriptedBackend& backend, grpc::CallbackServerContext* context) : backend_(backend), context_(context) {
    backend_.StreamStarted(this);
    StartRead(&incoming_);
  }

  // Queues `batch`; true when the caller claimed the write and must call
  // StartQueuedWrite. Claiming keeps the stream from finishing (and from
  // being deleted) until that write completes, so the caller may release
  // the backend's lock before starting it.
  bool Enqueue(v1::CommandBatch batch, bool* accepted) {
    std::lock_guard lock(mutex_);
    *accepted = !finished_ && !write_failed_;
    if (!*accepted) return false;
    queue_.push_back(std::move(batch));
    return ClaimWriteLocked();
  }

  void StartQueuedWrite() { StartWrite(&outgoing_); }

  // The highest batch_sequence this stream carried.
  std::uint64_t last_sequence() const { return last_sequence_.load(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish = false;
      {
        std::lock_guard lock(mutex_);
        reads_done_ = true;
        finish = ClaimFinishLocked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    v1::CommandBatch reply;
    // Noted before Record reads whether to acknowledge, so that a
    // SetAcknowledging(true) in between acknowledges this batch (it reads
    // the sequence after setting the flag).
    last_sequence_.store(std::max(last_sequence_.load(), incoming_.batch_sequence()));
    if (backend_.Record(incoming_, reply)) reply.set_ack(incoming_.batch_sequence());
    incoming_.Clear();
    bool accepted = false;
    if (Enqueue(std::move(reply), &accepted)) StartQueuedWrite();
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    // A broken stream: cancel it so the outstanding read fails too.
    if (!ok) context_->TryCancel();
    bool write_next = false;
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      writing_ = false;
      write_failed_ = write_failed_ || !ok;
      write_next = ClaimWriteLocked();
      finish = !write_next && ClaimFinishLocked();
    }
    if (write_next) StartQueuedWrite();
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override {
    backend_.StreamDone(this);
    delete this;
  }

 private:
  bool ClaimWriteLocked() {
    if (writing_ || write_failed_ || queue_.empty()) return false;
    outgoing_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    return true;
  }

  bool ClaimFinishLocked() {
    if (!reads_done_ || writing_ || finished_) return false;
    finished_ = true;
    return true;
  }

  ScriptedBackend& backend_;
  grpc::CallbackServerContext* const context_;
  v1::EventBatch incoming_;  // owned by the outstanding read
  std::atomic<std::uint64_t> last_sequence_{0};

  std::mutex mutex_;
  std::deque<v1::CommandBatch> queue_;
  v1::CommandBatch outgoing_;  // owned by the write in flight
  bool writing_ = false;
  bool write_failed_ = false;
  bool reads_done_ = false;
  bool finished_ = false;
};

class ScriptedBackend::Service final : public v1::Backend::CallbackService {
 public:
  explicit Service(ScriptedBackend& backend) : backend_(backend) {}

 private:
  grpc::ServerBidiReactor<v1::EventBatch, v1::CommandBatch>* Connect(grpc::CallbackServerContext* context) override {
    return new Stream(backend_, context);
  }

  grpc::ServerUnaryReactor* Handshake(grpc::CallbackServerContext* context, const v1::HandshakeRequest* request,
                                      v1::HandshakeResponse* response) override {
    return backend_.AnswerHandshake(context, *request, response);
  }

  grpc::ServerUnaryReactor* HandleRequest(grpc::CallbackServerContext* context, const v1::HttpRequest* request,
                                          v1::HttpResponse* response) override {
    return backend_.AnswerHttp(context, *request, response);
  }

  ScriptedBackend& backend_;
};

std::unique_ptr<ScriptedBackend> ScriptedBackend::Start(std::string* error, int port) {
  auto backend = std::unique_ptr<ScriptedBackend>(new ScriptedBackend());
  backend->service_ = std::make_unique<Service>(*backend);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &backend->port_);
  // Event batches can carry several large messages.
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(backend->service_.get());
  backend->server_ = builder.BuildAndStart();
  if (!backend->server_ || backend->port_ == 0) {
    *error = "the scripted backend could not listen on 127.0.0.1:" + std::to_string(port);
    return nullptr;
  }
  return backend;
}

ScriptedBackend::~ScriptedBackend() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  // Held calls first: the server's shutdown waits for every call to finish.
  ReleaseHeld();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

// ---- Scripting ---------------------------------------------------------------

void ScriptedBackend::SetHandshakeHandler(HandshakeHandler handler) {
  std::lock_guard lock(mutex_);
  handshake_handler_ = std::move(handler);
}

void ScriptedBackend::SetHttpHandler(HttpHandler handler) {
  std::lock_guard lock(mutex_);
  http_handler_ = std::move(handler);
}

void ScriptedBackend::SetEventHandler(EventHandler handler) {
  std::lock_guard lock(mutex_);
  event_handler_ = std::move(handler);
}

void ScriptedBackend::ResetHandlers() {
  std::lock_guard lock(mutex_);
  handshake_handler_ = nullptr;
  http_handler_ = nullptr;
  event_handler_ = nullptr;
}

void ScriptedBackend::ReleaseHeld() {
  std::vector<grpc::ServerUnaryReactor*> held;
  {
    std::lock_guard lock(mutex_);
    held.swap(held_);
  }
  for (auto* reactor : held) reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "released by the test"));
}

bool ScriptedBackend::Send(v1::CommandBatch batch) {
  Stream* claimed = nullptr;
  {
    std::lock_guard lock(mutex_);
    // Newest first: after a reconnect the older streams are on their way
    // out. Under the lock a stream cannot finish being deleted.
    bool accepted = false;
    for (auto it = streams_.rbegin(); it != streams_.rend() && !accepted; ++it) {
      if ((*it)->Enqueue(batch, &accepted)) claimed = *it;
    }
    if (!accepted) return false;
  }
  if (claimed != nullptr) claimed->StartQueuedWrite();
  return true;
}

void ScriptedBackend::SetAcknowledging(bool acknowledging) {
  std::vector<Stream*> claimed;
  {
    std::lock_guard lock(mutex_);
    acknowledging_ = acknowledging;
    if (!acknowledging) return;
    // Under the lock a stream cannot finish being deleted.
    for (auto* stream : streams_) {
      v1::CommandBatch ack;
      ack.set_ack(stream->last_sequence());
      bool accepted = false;
      if (stream->Enqueue(std::move(ack), &accepted)) claimed.push_back(stream);
    }
  }
  for (auto* stream : claimed) stream->StartQueuedWrite();
}

// ---- Called by the service and the streams -----------------------------------

bool ScriptedBackend::Record(const v1::EventBatch& batch, v1::CommandBatch& reply) {
  EventHandler handler;
  bool acknowledge = true;
  {
    std::lock_guard lock(mutex_);
    if (batch.has_hello() || batch.has_snapshot()) preamble_.push_back({batch, events_.size()});
    events_.insert(events_.end(), batch.events().begin(), batch.events().end());
    arrivals_.insert(arrivals_.end(), batch.events_size(), Arrival{batch.node_id(), Clock::now()});
    handler = event_handler_;
    acknowledge = acknowledging_;
  }
  changed_.notify_all();
  if (handler) {
    for (const auto& event : batch.events()) handler(event, reply);
  }
  return acknowledge;
}

void ScriptedBackend::StreamStarted(Stream* stream) {
  std::lock_guard lock(mutex_);
  streams_.push_back(stream);
}

void ScriptedBackend::StreamDone(Stream* stream) {
  std::lock_guard lock(mutex_);
  streams_.erase(std::remove(streams_.begin(), streams_.end(), stream), streams_.end());
}

grpc::ServerUnaryReactor* ScriptedBackend::AnswerHandshake(grpc::CallbackServerContext* context,
                                                           const v1::HandshakeRequest& request,
                                                           v1::HandshakeResponse* response) {
  HandshakeHandler handler;
  {
    std::lock_guard lock(mutex_);
    handshake_requests_.push_back(request);
    handler = handshake_handler_;
  }
  changed_.notify_all();
  const auto answer = handler ? handler(request) : HandshakeAnswer::Reply({});
  if (answer.status.ok()) *response = answer.response;
  auto* reactor = context->DefaultReactor();
  FinishOrHold(reactor, answer.status, answer.hold);
  return reactor;
}

grpc::ServerUnaryReactor* ScriptedBackend::AnswerHttp(grpc::CallbackServerContext* context,
                                                      const v1::HttpRequest& request, v1::HttpResponse* response) {
  HttpHandler handler;
  {
    std::lock_guard lock(mutex_);
    http_requests_.push_back(request);
    handler = http_handler_;
  }
  changed_.notify_all();
  HttpAnswer answer;
  if (handler) {
    answer = handler(request);
  } else {
    answer.response.set_status(404);
    answer.response.set_body("no handler");
  }
  if (answer.status.ok()) *response = answer.response;
  auto* reactor = context->DefaultReactor();
  FinishOrHold(reactor, answer.status, answer.hold);
  return reactor;
}

void ScriptedBackend::FinishOrHold(grpc::ServerUnaryReactor* reactor, const grpc::Status& status, bool hold) {
  if (hold) {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      held_.push_back(reactor);
      return;
    }
  }
  reactor->Finish(hold ? grpc::Status(grpc::StatusCode::CANCELLED, "backend stopping") : status);
}

// ---- What happened -----------------------------------------------------------

std::size_t ScriptedBackend::handshake_calls() const {
  std::lock_guard lock(mutex_);
  return handshake_requests_.size();
}

std::size_t ScriptedBackend::http_calls() const {
  std::lock_guard lock(mutex_);
  return http_requests_.size();
}

std::vector<v1::HandshakeRequest> ScriptedBackend::handshake_requests() const {
  std::lock_guard lock(mutex_);
  return handshake_requests_;
}

std::vector<v1::HttpRequest> ScriptedBackend::http_requests() const {
  std::lock_guard lock(mutex_);
  return http_requests_;
}

std::vector<v1::Event> ScriptedBackend::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::vector<ScriptedBackend::Arrival> ScriptedBackend::arrivals() const {
  std::lock_guard lock(mutex_);
  return arrivals_;
}

std::vector<v1::Event> ScriptedBackend::EventsOf(const std::string& connection_id) const {
  std::lock_guard lock(mutex_);
  std::vector<v1::Event> matching;
  std::copy_if(events_.begin(), events_.end(), std::back_inserter(matching),
               [&](const v1::Event& event) { return event.connection_id() == connection_id; });
  return matching;
}

std::vector<ScriptedBackend::PreambleMessage> ScriptedBackend::preamble() const {
  std::lock_guard lock(mutex_);
  return preamble_;
}

bool ScriptedBackend::WaitUntilPreamble(const std::function<bool(const std::vector<PreambleMessage>&)>& predicate,
                                        std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, Clock::now() + timeout, [&] { return predicate(preamble_); });
}

bool ScriptedBackend::WaitUntil(const std::function<bool(const std::vector<v1::Event>&)>& predicate,
                                std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, Clock::now() + timeout, [&] { return predicate(events_); });
}

bool ScriptedBackend::WaitUntilArrived(
    const std::function<bool(const std::vector<v1::Event>&, const std::vector<Arrival>&)>& predicate,
    std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, Clock::now() + timeout, [&] { return predicate(events_, arrivals_); });
}

bool ScriptedBackend::WaitForCalls(std::size_t handshakes, std::size_t http_requests,
                                   std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, Clock::now() + timeout, [&] {
    return handshake_requests_.size() >= handshakes && http_requests_.size() >= http_requests;
  });
}

std::optional<v1::Event> ScriptedBackend::WaitForEvent(const EventPredicate& match, std::chrono::milliseconds timeout) {
  std::optional<v1::Event> found;
  WaitUntil(
      [&](const std::vector<v1::Event>& events) {
        const auto it = std::find_if(events.begin(), events.end(), match);
        if (it != events.end()) found = *it;
        return found.has_value();
      },
      timeout);
  return found;
}

std::optional<v1::Event> ScriptedBackend::WaitForOpen(const std::string& path, std::chrono::milliseconds timeout) {
  return WaitForEvent([&](const v1::Event& event) { return event.has_open() && event.open().path() == path; }, timeout);
}

std::optional<v1::Event> ScriptedBackend::WaitForClose(const std::string& connection_id,
                                                       std::chrono::milliseconds timeout) {
  return WaitForEvent(
      [&](const v1::Event& event) { return event.has_close() && event.connection_id() == connection_id; }, timeout);
}

}  // namespace wsgateway::testing
