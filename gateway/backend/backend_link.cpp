#include "gateway/backend/backend_link.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "gateway/backend/owning_slice.hpp"

namespace wsgateway {
namespace {

constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kSweepInterval = std::chrono::seconds(1);

std::shared_ptr<grpc::Channel> MakeChannel(const Config& config, const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(config.backend_reconnect_min.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(config.backend_reconnect_min.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(config.backend_reconnect_max.count()));
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// The receive limit a gRPC server states when it refuses a message:
// "... larger than max (5242938 vs. 4194304)"; 0 when the message says
// none.
std::size_t StatedLimit(const std::string& message) {
  const auto vs = message.find(" vs. ");
  if (vs == std::string::npos) return 0;
  std::size_t limit = 0;
  for (std::size_t i = vs + 5; i < message.size() && message[i] >= '0' && message[i] <= '9'; ++i) {
    limit = limit * 10 + static_cast<std::size_t>(message[i] - '0');
  }
  return limit;
}

}  // namespace

void BackendLink::PendingWrite::Start() const {
  if (stream != nullptr) stream->StartWrite(batch);
}

BackendLink::BackendLink(std::string target, std::string node_id, const Config& config,
                         metrics::GatewayMetrics& metrics, boost::asio::any_io_executor control, Hooks hooks)
    : target_(std::move(target)),
      config_(config),
      backend_metrics_(metrics.Backend(target_)),
      control_(std::move(control)),
      hooks_(std::move(hooks)),
      reconnect_timer_(control_),
      poll_timer_(control_),
      sweep_timer_(control_),
      backoff_(config.backend_reconnect_min),
      log_(config.backend_buffer_bytes, config.backend_max_message_bytes, node_id),
      preamble_(hooks_.snapshot_parts, node_id) {
  if (!hooks_.on_snapshot) {
    // Nobody to list connections: every snapshot is empty.
    hooks_.on_snapshot = [this](std::uint64_t snapshot_id) {
      for (std::size_t part = 0; part < hooks_.snapshot_parts; ++part) AddSnapshotPart(snapshot_id, {});
    };
  }
}

BackendLink::~BackendLink() { Stop(); }

void BackendLink::Start() {
  backend_metrics_.up->Set(0);
  ScheduleSweep();
  if (target_.empty()) {
    spdlog::warn("no --backend configured: events are held until they time out");
    return;
  }
  channel_ = MakeChannel(config_, target_);
  stub_ = std::make_unique<BackendStub>(channel_);
  unary_stub_ = v1::Backend::NewStub(channel_);
  spdlog::info("backend target {}", target_);
  StartStream();
}

void BackendLink::StartStream() {
  BackendStream* stream = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    // Registered before the call starts: its first reaction may run at once.
    stream = new BackendStream(*this, *stub_);
    stream_ = stream;
    ready_ = false;
    ++live_streams_;
  }
  stream->Begin();
  PollReady();
}

void BackendLink::PollReady() {
  // GetState may run gRPC work; never under the mutex.
  const bool channel_ready = channel_->GetState(false) == GRPC_CHANNEL_READY;

  PendingWrite write;
  std::uint64_t snapshot_id = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || stream_ == nullptr || ready_) return;
    if (channel_ready) {
      ready_ = true;
      stream_->ready_at = std::chrono::steady_clock::now();
      up_ = true;
      logged_down_ = false;
      logged_bogus_ack_ = false;
      log_.Rewind();
      // Every stream opens with the hello and a snapshot, then the replay.
      snapshot_id = preamble_.BeginStream(HelloLocked());
      backend_metrics_.up->Set(1);
      backend_metrics_.connects->Increment();
      spdlog::info("backend stream up: {} (snapshot {}, then replaying {} unacknowledged batches)", target_,
                   snapshot_id, log_.batches());
      write = TakeNextWriteLocked();
    }
  }
  if (snapshot_id != 0) hooks_.on_snapshot(snapshot_id);
  if (!channel_ready) {
    poll_timer_.expires_after(kReadyPollInterval);
    poll_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) PollReady();
    });
    return;
  }
  write.Start();
}

void BackendLink::Submit(EventChunk&& chunk) {
  const std::size_t events = chunk.events;
  // Made outside the lock: it allocates.
  grpc::Slice slice = OwningSlice(std::move(chunk.wire));
  PendingWrite write;
  {
    std::lock_guard lock(mutex_);
    const bool was_paused = log_.paused();
    log_.Append(std::move(slice), events, std::chrono::steady_clock::now());
    SyncLocked(was_paused);  // appending only ever pauses
    write = TakeNextWriteLocked();
  }
  write.Start();
}

v1::EventBatch BackendLink::HelloLocked() const {
  v1::EventBatch message;
  message.set_node_id(preamble_.node_id());
  auto* hello = message.mutable_hello();
  hello->set_node_id(preamble_.node_id());
  hello->set_version(WSGATEWAY_VERSION);
  const auto since_epoch = started_at_.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  hello->mutable_started_at()->set_seconds(seconds.count());
  hello->mutable_started_at()->set_nanos(
      static_cast<std::int32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count()));
  hello->set_acknowledged(log_.acknowledged());
  return message;
}

void BackendLink::AddSnapshotPart(std::uint64_t snapshot_id, std::vector<v1::ClientInfo>&& connections) {
  std::string node_id;
  std::size_t byte_limit = 0;
  {
    std::lock_guard lock(mutex_);
    if (snapshot_id != preamble_.open_snapshot()) return;
    node_id = preamble_.node_id();
    byte_limit = log_.batch_limit() / 2;
  }
  // Encoded outside the lock: a loop may hold thousands of connections.
  const std::size_t count = connections.size();
  auto messages = EncodeSnapshotChunks(snapshot_id, node_id, connections, byte_limit);
  PendingWrite write;
  {
    std::lock_guard lock(mutex_);
    if (!preamble_.AddPart(snapshot_id, std::move(messages), count)) return;
    if (preamble_.open_snapshot() == 0) spdlog::debug("snapshot {} for {} taken", snapshot_id, target_);
    write = TakeNextWriteLocked();
  }
  write.Start();
}

void BackendLink::RequestSnapshot() {
  std::uint64_t snapshot_id = 0;
  {
    std::lock_guard lock(mutex_);
    // A stream that is not up yet gets one when it comes up.
    if (stream_ == nullptr || !ready_) return;
    snapshot_id = preamble_.Request();
  }
  if (snapshot_id != 0) hooks_.on_snapshot(snapshot_id);
}

void BackendLink::Rename(std::string node_id) {
  std::lock_guard lock(mutex_);
  log_.set_node_id(node_id);
  preamble_.set_node_id(std::move(node_id));
}

std::uint64_t BackendLink::Mark() const {
  std::lock_guard lock(mutex_);
  return log_.appended_events();
}

bool BackendLink::Reached(std::uint64_t mark) const {
  std::lock_guard lock(mutex_);
  return log_.appended_events() - log_.held_events() >= mark;
}

BackendLink::PendingWrite BackendLink::TakeNextWriteLocked() {
  if (stream_ == nullptr || !ready_) return {};
  if (preamble_.write_in_flight() || log_.write_in_flight()) return {};
  if (const auto* message = preamble_.StartWrite()) return {stream_, message};
  if (preamble_.holds_events()) return {};
  const grpc::ByteBuffer* batch = log_.StartWrite(std::chrono::steady_clock::now());
  if (batch == nullptr) return {};
  return {stream_, batch};
}

bool BackendLink::SettledOrWakeWhenSettled() {
  settle_wanted_ = true;
  return settled_;
}

BackendLink::Wake BackendLink::SyncLocked(bool was_paused) {
  Wake wake;
  if (log_.paused() && !was_paused) {
    paused_ = true;
    spdlog::warn("backend buffer full ({} bytes held): pausing client reads", log_.held_bytes());
  } else if (!log_.paused() && was_paused) {
    paused_ = false;
    spdlog::info("backend buffer drained ({} bytes held): resuming client reads", log_.held_bytes());
    wake.resume = true;
  }
  if (!log_.settled()) {
    settled_ = false;
  } else if (!settled_) {
    settled_ = true;
    wake.settled = settle_wanted_.exchange(false);
  }
  backend_metrics_.buffered_events->Set(static_cast<double>(log_.held_events()));
  backend_metrics_.buffered_bytes->Set(static_cast<double>(log_.held_bytes()));
  if (log_.empty()) changed_.notify_all();
  return wake;
}

void BackendLink::Notify(const Wake& wake) {
  if (wake.resume) hooks_.on_resume();
  if (wake.settled) hooks_.on_settled();
}

bool BackendLink::ReleasableLocked(BackendStream* stream) {
  if (!stream->dead || stream->hold_released || stream->cancel_pending) return false;
  if (log_.write_in_flight() || preamble_.write_in_flight()) return false;
  stream->hold_released = true;
  return true;
}

void BackendLink::OnStreamRead(BackendStream* stream, bool ok, v1::CommandBatch* commands) {
  if (!ok) return OnStreamBroken(stream);
  const auto ack = commands->ack();
  const bool wants_snapshot = std::any_of(commands->commands().begin(), commands->commands().end(),
                                          [](const v1::Command& command) { return command.has_snapshot(); });
  if (commands->commands_size() > 0) hooks_.on_commands(*commands);
  // After the batch's other commands: the loops list their connections
  // once those were applied.
  if (wants_snapshot) RequestSnapshot();
  OnAcknowledged(ack);
}

void BackendLink::OnStreamBroken(BackendStream* stream) {
  bool release = false;
  {
    std::lock_guard lock(mutex_);
    stream->dead = true;
    if (stream_ == stream) {
      stream_ = nullptr;
      ready_ = false;
      up_ = false;
      backend_metrics_.up->Set(0);
      changed_.notify_all();
    }
    release = ReleasableLocked(stream);
  }
  if (release) stream->RemoveHold();
}

void BackendLink::OnAcknowledged(std::uint64_t ack) {
  Wake wake;
  {
    std::lock_guard lock(mutex_);
    const bool was_paused = log_.paused();
    const EventLog::Ack outcome = log_.Acknowledge(ack);
    if (outcome == EventLog::Ack::kDuplicate) return;
    if (outcome == EventLog::Ack::kPastSent && !logged_bogus_ack_) {
      logged_bogus_ack_ = true;
      spdlog::error("backend {} acknowledged batch {}, past the last batch sent ({}); taken as acknowledging that",
                    target_, ack, log_.last_sealed());
    }
    wake = SyncLocked(was_paused);
  }
  Notify(wake);
}

void BackendLink::OnStreamWriteDone(BackendStream* stream, bool ok) {
  bool release = false;
  Wake wake;
  PendingWrite write;
  {
    std::lock_guard lock(mutex_);
    const bool was_paused = log_.paused();
    std::size_t events = 0;
    if (preamble_.write_in_flight()) {
      preamble_.FinishWrite();
    } else {
      events = log_.FinishWrite();
    }
    if (ok && events > 0) {
      backend_metrics_.batches_sent->Increment();
      backend_metrics_.events_sent->Increment(static_cast<double>(events));
    }
    wake = SyncLocked(was_paused);
    if (stream == stream_ && ok) {
      write = TakeNextWriteLocked();
    } else {
      release = ReleasableLocked(stream);
    }
  }
  Notify(wake);
  if (release) stream->RemoveHold();
  write.Start();
}

void BackendLink::OnStreamDone(BackendStream* stream, const grpc::Status& status) {
  bool was_up = false;
  bool stopping = false;
  bool log_warning = false;
  {
    std::lock_guard lock(mutex_);
    if (stream_ == stream) {
      stream_ = nullptr;
      ready_ = false;
      up_ = false;
    }
    was_up = stream->ready_at != std::chrono::steady_clock::time_point{};
    --live_streams_;
    stopping = stopping_;
    // The next stream starts from the oldest unacknowledged batch.
    log_.Rewind();
    changed_.notify_all();
    if (!stopping) {
      log_warning = was_up || !logged_down_;
      logged_down_ = true;
    }
  }
  backend_metrics_.up->Set(0);
  backend_metrics_.disconnects->Increment();
  if (stopping) return;
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) GiveUpOversizedBatches(status);
  if (log_warning) {
    spdlog::warn("backend stream down: {} ({}: {})", target_, static_cast<int>(status.error_code()),
                 status.error_message());
  } else {
    spdlog::debug("backend stream attempt failed: {}", status.error_message());
  }
  boost::asio::post(control_, [this, was_up] { ScheduleReconnect(was_up); });
}

void BackendLink::GiveUpOversizedBatches(const grpc::Status& status) {
  // Replaying a batch the backend cannot take would fail the stream again
  // on every reconnect and hold every connection's events behind it. The
  // batches over the backend's limit are given up (their connections close
  // with 1011, as for events that time out) and later batches are cut to
  // that limit; if the backend states none, the largest batch goes.
  GivenUp given_up;
  std::size_t limit = StatedLimit(status.error_message());
  {
    std::lock_guard lock(mutex_);
    if (log_.batches() == 0) return;
    if (limit == 0) limit = log_.largest_batch_bytes() - 1;
    const bool was_paused = log_.paused();
    given_up.lost = log_.GiveUpLargerThan(limit);
    given_up.wake = SyncLocked(was_paused);
  }
  spdlog::error(
      "backend {} refused an event batch as too large ({}); set backend_max_message_bytes to at most {} or raise "
      "the backend's gRPC receive limit. Gave up {} events; closing their connections with 1011",
      target_, status.error_message(), limit, given_up.lost.events);
  if (given_up.lost.events == 0) return;
  ReportGivenUp(std::move(given_up));
}

void BackendLink::ScheduleReconnect(bool was_up) {
  if (was_up) backoff_ = config_.backend_reconnect_min;
  // Full jitter keeps a fleet of gateways from reconnecting in step.
  static thread_local std::minstd_rand random(std::random_device{}());
  const auto jittered = std::chrono::milliseconds(
      std::uniform_int_distribution<std::int64_t>(backoff_.count() / 2, backoff_.count())(random));
  backoff_ = std::min(backoff_ * 2, config_.backend_reconnect_max);
  reconnect_timer_.expires_after(jittered);
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) StartStream();
  });
}

void BackendLink::ScheduleSweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    SweepExpired();
    ScheduleSweep();
  });
}

void BackendLink::SweepExpired() {
  GivenUp given_up;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    const bool was_paused = log_.paused();
    given_up.lost = log_.Expire(now - config_.backend_event_timeout, now);
    if (given_up.lost.events == 0) return;
    given_up.wake = SyncLocked(was_paused);
  }
  spdlog::error("gave up on {} events unacknowledged for {} ms; closing their connections with 1011",
                given_up.lost.events, config_.backend_event_timeout.count());
  ReportGivenUp(std::move(given_up));
}

void BackendLink::ReportGivenUp(GivenUp&& given_up) {
  auto& lost = given_up.lost.connections;
  std::sort(lost.begin(), lost.end());
  lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
  backend_metrics_.events_lost->Increment(static_cast<double>(given_up.lost.events));
  hooks_.on_events_lost(std::move(lost));
  Notify(given_up.wake);
}

void BackendLink::Drain(std::chrono::milliseconds deadline) {
  std::unique_lock lock(mutex_);
  // Nothing can drain while the stream is down (its timers are stopped).
  changed_.wait_for(lock, deadline, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return log_.empty() || !ready_; });
}

void BackendLink::Stop() {
  BackendStream* stream = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    stream = stream_;
    if (stream != nullptr) stream->cancel_pending = true;
  }
  boost::asio::post(control_, [this] {
    reconnect_timer_.cancel();
    poll_timer_.cancel();
    sweep_timer_.cancel();
  });
  if (stream != nullptr) {
    stream->Cancel();
    bool release = false;
    {
      std::lock_guard lock(mutex_);
      stream->cancel_pending = false;
      stream->dead = true;
      if (stream_ == stream) stream_ = nullptr;
      release = ReleasableLocked(stream);
    }
    if (release) stream->RemoveHold();
  }
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::seconds(5),
                    [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return live_streams_ == 0; });
}

}  // namespace wsgateway
