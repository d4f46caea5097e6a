#include "gateway/backend/backend_link.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <unordered_set>

namespace wsgateway {
namespace {

// Batches grow to about this size under load (amortising the cost of a
// stream message), and never past backend_max_message_bytes.
constexpr std::size_t kTargetBatchBytes = 1024 * 1024;
// The batch_sequence field in front of the events.
constexpr std::size_t kBatchSequenceBytes = 16;
constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kSweepInterval = std::chrono::seconds(1);
// The generic stub names the method itself; it must outlive every call.
constexpr char kConnectMethod[] = "/wsgateway.v1.Backend/Connect";
// Most command batches fit in the arena's first block, which Reset keeps.
constexpr std::size_t kCommandArenaBlock = 16 * 1024;

// A slice that owns `bytes`: gRPC frees them when its last reference goes,
// which may be after the write completed.
grpc::Slice OwningSlice(std::string&& bytes) {
  auto* owned = new std::string(std::move(bytes));
  return grpc::Slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
}

// Decodes a held batch again; only for the rare paths that need its events.
v1::EventBatch DecodeBatch(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::EventBatch batch;
  batch.ParseFromString(bytes);
  return batch;
}

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

}  // namespace

// One Connect call. Deleted in exactly one place, OnDone. The link holds it
// open (AddHold) while it may still start writes on it.
//
// Each CommandBatch is parsed onto an arena that is reset after the batch was
// applied: commands and frames cost no allocation of their own.
class BackendStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, v1::CommandBatch> {
 public:
  BackendStream(BackendLink& link, grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::CommandBatch>& stub)
      : link_(link), arena_(ArenaOptions(arena_block_)) {
    // Not wait-for-ready: while the backend is unreachable each attempt
    // fails (UNAVAILABLE) and counts in wsgateway_backend_stream_failures_total,
    // so an alert on it fires for a backend that is down from the start;
    // the link's own backoff paces the next attempt.
    context_.set_wait_for_ready(false);
    stub.PrepareBidiStreamingCall(&context_, kConnectMethod, grpc::StubOptions(), this);
    AddHold();
  }

  void Begin() {
    NextRead();
    StartCall();
  }

  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    link_.OnStreamRead(this, ok, incoming_);
    if (!ok) return;
    NextRead();
  }

  void OnWriteDone(bool ok) override { link_.OnStreamWriteDone(this, ok); }

  void OnDone(const grpc::Status& status) override {
    link_.OnStreamDone(this, status);
    delete this;
  }

  // Guarded by the link's mutex.
  bool dead = false;
  bool hold_released = false;
  bool cancel_pending = false;
  std::chrono::steady_clock::time_point ready_at;

 private:
  static google::protobuf::ArenaOptions ArenaOptions(char (&block)[kCommandArenaBlock]) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof block;
    return options;
  }

  void NextRead() {
    arena_.Reset();
    incoming_ = google::protobuf::Arena::CreateMessage<v1::CommandBatch>(&arena_);
    StartRead(incoming_);
  }

  BackendLink& link_;
  grpc::ClientContext context_;
  alignas(std::max_align_t) char arena_block_[kCommandArenaBlock];
  google::protobuf::Arena arena_;
  v1::CommandBatch* incoming_ = nullptr;
};

void BackendLink::PendingWrite::Start() const {
  if (stream != nullptr) stream->StartWrite(batch);
}

BackendLink::BackendLink(std::string target, const Config& config, metrics::GatewayMetrics& metrics,
                         boost::asio::any_io_executor control, Hooks hooks)
    : target_(std::move(target)),
      config_(config),
      backend_metrics_(metrics.Backend(target_)),
      control_(std::move(control)),
      hooks_(std::move(hooks)),
      reconnect_timer_(control_),
      poll_timer_(control_),
      sweep_timer_(control_),
      backoff_(config.backend_reconnect_min),
      batch_limit_(config.backend_max_message_bytes) {}

BackendLink::~BackendLink() { Stop(); }

void BackendLink::Start() {
  backend_metrics_.up->Set(0);
  ScheduleSweep();
  if (target_.empty()) {
    spdlog::warn("no --backend configured: events are held until they time out");
    return;
  }
  channel_ = MakeChannel(config_, target_);
  stub_ = std::make_unique<grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::CommandBatch>>(channel_);
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
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || stream_ == nullptr || ready_) return;
    if (channel_ready) {
      ready_ = true;
      stream_->ready_at = std::chrono::steady_clock::now();
      up_ = true;
      logged_down_ = false;
      next_send_sequence_ = log_.empty() ? next_sequence_ : log_.front().sequence;
      backend_metrics_.up->Set(1);
      backend_metrics_.connects->Increment();
      spdlog::info("backend stream up: {} (replaying {} unacknowledged batches)", target_, log_.size());
      write = TakeNextWriteLocked();
    }
  }
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
    if (building_.empty()) building_since_ = std::chrono::steady_clock::now();
    held_bytes_ += slice.size();
    held_events_ += events;
    building_.push_back({std::move(slice), events});
    settled_ = false;
    UpdatePauseLocked();
    PublishGaugesLocked();
    write = TakeNextWriteLocked();
  }
  write.Start();
}

BackendLink::PendingWrite BackendLink::TakeNextWriteLocked() {
  if (stream_ == nullptr || !ready_ || write_in_flight_) return {};
  const std::uint64_t first_held = log_.empty() ? next_sequence_ : log_.front().sequence;
  next_send_sequence_ = std::max(next_send_sequence_, first_held);
  if (next_send_sequence_ == next_sequence_) {
    if (building_.empty()) return {};
    SealLocked();
  }
  const HeldBatch& held = log_[next_send_sequence_ - log_.front().sequence];
  write_in_flight_ = true;
  in_flight_sequence_ = held.sequence;
  ++next_send_sequence_;
  return {stream_, &held.batch};
}

void BackendLink::SealLocked() {
  HeldBatch held;
  held.sequence = next_sequence_++;
  held.oldest_event_at = building_since_;
  std::vector<grpc::Slice> slices;
  slices.push_back(grpc::Slice(EncodeBatchSequence(held.sequence)));
  std::size_t taken = 0;
  // A loop hands over chunks that fit one batch (EventLoop::MakeRoom).
  while (taken < building_.size() &&
         (taken == 0 || (held.bytes < kTargetBatchBytes &&
                         held.bytes + building_[taken].slice.size() + kBatchSequenceBytes <= batch_limit_))) {
    held.bytes += building_[taken].slice.size();
    held.events += building_[taken].events;
    slices.push_back(std::move(building_[taken].slice));
    ++taken;
  }
  held.batch = grpc::ByteBuffer(slices.data(), slices.size());
  building_.erase(building_.begin(), building_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (!building_.empty()) building_since_ = std::chrono::steady_clock::now();
  log_.push_back(std::move(held));
}

void BackendLink::TrimAcknowledgedLocked() {
  while (!log_.empty() && log_.front().sequence <= acknowledged_ &&
         !(write_in_flight_ && log_.front().sequence == in_flight_sequence_)) {
    held_bytes_ -= std::min(held_bytes_, log_.front().bytes);
    held_events_ -= std::min(held_events_, log_.front().events);
    log_.pop_front();
  }
  if (log_.empty() && building_.empty()) changed_.notify_all();
}

bool BackendLink::SettledOrWakeWhenSettled() {
  settle_wanted_ = true;
  return settled_;
}

bool BackendLink::UpdateSettledLocked() {
  // An acknowledged batch may still be the write in flight, so the log
  // cannot tell; the sequence numbers can.
  const bool settled = building_.empty() && (log_.empty() || acknowledged_ + 1 == next_sequence_);
  if (!settled || settled_) return false;
  settled_ = true;
  return settle_wanted_.exchange(false);
}

bool BackendLink::UpdatePauseLocked() {
  if (!paused_ && held_bytes_ > config_.backend_buffer_bytes) {
    paused_ = true;
    spdlog::warn("backend buffer full ({} bytes held): pausing client reads", held_bytes_);
    return false;
  }
  if (paused_ && held_bytes_ <= config_.backend_buffer_bytes / 2) {
    paused_ = false;
    spdlog::info("backend buffer drained ({} bytes held): resuming client reads", held_bytes_);
    return true;
  }
  return false;
}

void BackendLink::PublishGaugesLocked() {
  backend_metrics_.buffered_events->Set(static_cast<double>(held_events_));
  backend_metrics_.buffered_bytes->Set(static_cast<double>(held_bytes_));
}

bool BackendLink::ReleasableLocked(BackendStream* stream) {
  if (!stream->dead || stream->hold_released || stream->cancel_pending) return false;
  if (write_in_flight_) return false;
  stream->hold_released = true;
  return true;
}

void BackendLink::OnStreamRead(BackendStream* stream, bool ok, v1::CommandBatch* commands) {
  if (!ok) {
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
    return;
  }
  const auto ack = commands->ack();
  if (commands->commands_size() > 0) hooks_.on_commands(*commands);
  bool resume = false;
  bool settled = false;
  {
    std::lock_guard lock(mutex_);
    if (ack > acknowledged_) {
      acknowledged_ = std::min(ack, next_sequence_ - 1);
      TrimAcknowledgedLocked();
      resume = UpdatePauseLocked();
      settled = UpdateSettledLocked();
      PublishGaugesLocked();
    }
  }
  if (resume) hooks_.on_resume();
  if (settled) hooks_.on_settled();
}

void BackendLink::OnStreamWriteDone(BackendStream* stream, bool ok) {
  bool release = false;
  bool resume = false;
  PendingWrite write;
  {
    std::lock_guard lock(mutex_);
    if (ok && !log_.empty() && in_flight_sequence_ >= log_.front().sequence) {
      const auto& held = log_[in_flight_sequence_ - log_.front().sequence];
      backend_metrics_.batches_sent->Increment();
      backend_metrics_.events_sent->Increment(static_cast<double>(held.events));
    }
    write_in_flight_ = false;
    TrimAcknowledgedLocked();
    resume = UpdatePauseLocked();
    PublishGaugesLocked();
    if (stream == stream_ && ok) {
      write = TakeNextWriteLocked();
    } else {
      release = ReleasableLocked(stream);
    }
  }
  if (resume) hooks_.on_resume();
  if (release) stream->RemoveHold();
  write.Start();
}

void BackendLink::OnStreamDone(BackendStream* stream, const grpc::Status& status) {
  bool was_up = false;
  bool stopping = false;
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
    next_send_sequence_ = log_.empty() ? next_sequence_ : log_.front().sequence;
    changed_.notify_all();
  }
  backend_metrics_.up->Set(0);
  backend_metrics_.disconnects->Increment();
  if (stopping) return;
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) GiveUpOversizedBatches(status);
  if (was_up || !logged_down_) {
    spdlog::warn("backend stream down: {} ({}: {})", target_, static_cast<int>(status.error_code()),
                 status.error_message());
    logged_down_ = true;
  } else {
    spdlog::debug("backend stream attempt failed: {}", status.error_message());
  }
  boost::asio::post(control_, [this, was_up] { ScheduleReconnect(was_up); });
}

namespace {

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
    if (log_.empty()) return;
    if (limit == 0) {
      std::size_t largest = 0;
      for (const auto& held : log_) largest = std::max(largest, held.bytes);
      limit = largest - 1;
    }
    batch_limit_ = std::max<std::size_t>(std::min(batch_limit_, limit), 1);
    std::deque<HeldBatch> kept;
    for (auto& held : log_) {
      if (held.bytes + kBatchSequenceBytes <= limit) {
        kept.push_back(std::move(held));
        continue;
      }
      GiveUpLocked(held, given_up);
    }
    log_ = std::move(kept);
    next_send_sequence_ = log_.empty() ? next_sequence_ : log_.front().sequence;
    AfterGivingUpLocked(given_up);
  }
  spdlog::error(
      "backend {} refused an event batch as too large ({}); set backend_max_message_bytes to at most {} or raise "
      "the backend's gRPC receive limit. Gave up {} events; closing their connections with 1011",
      target_, status.error_message(), limit, given_up.events);
  if (given_up.events == 0) return;
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
    const auto cutoff = std::chrono::steady_clock::now() - config_.backend_event_timeout;
    while (!building_.empty() && building_since_ < cutoff) SealLocked();
    while (!log_.empty() && log_.front().oldest_event_at < cutoff &&
           !(write_in_flight_ && log_.front().sequence == in_flight_sequence_)) {
      GiveUpLocked(log_.front(), given_up);
      log_.pop_front();
    }
    if (given_up.events == 0) return;
    next_send_sequence_ = std::max(next_send_sequence_, log_.empty() ? next_sequence_ : log_.front().sequence);
    AfterGivingUpLocked(given_up);
  }
  spdlog::error("gave up on {} events unacknowledged for {} ms; closing their connections with 1011", given_up.events,
                config_.backend_event_timeout.count());
  ReportGivenUp(std::move(given_up));
}

void BackendLink::GiveUpLocked(const HeldBatch& held, GivenUp& given_up) {
  const v1::EventBatch decoded = DecodeBatch(held.batch);
  for (const auto& event : decoded.events()) {
    if (!event.has_close()) given_up.connections.push_back(event.connection_id());
  }
  given_up.events += held.events;
  held_bytes_ -= std::min(held_bytes_, held.bytes);
  held_events_ -= std::min(held_events_, held.events);
}

void BackendLink::AfterGivingUpLocked(GivenUp& given_up) {
  given_up.resume = UpdatePauseLocked();
  given_up.settled = UpdateSettledLocked();
  PublishGaugesLocked();
  if (log_.empty() && building_.empty()) changed_.notify_all();
}

void BackendLink::ReportGivenUp(GivenUp&& given_up) {
  auto& lost = given_up.connections;
  std::sort(lost.begin(), lost.end());
  lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
  backend_metrics_.events_lost->Increment(static_cast<double>(given_up.events));
  hooks_.on_events_lost(std::move(lost));
  if (given_up.resume) hooks_.on_resume();
  if (given_up.settled) hooks_.on_settled();
}

void BackendLink::Drain(std::chrono::milliseconds deadline) {
  std::unique_lock lock(mutex_);
  // Nothing can drain while the stream is down (its timers are stopped).
  changed_.wait_for(lock, deadline, [this] { return (log_.empty() && building_.empty()) || !ready_; });
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
  changed_.wait_for(lock, std::chrono::seconds(5), [this] { return live_streams_ == 0; });
}

}  // namespace wsgateway
