#include "gateway/runtime/event_loop.hpp"

#include <algorithm>
#include <utility>

#include "gateway/backend/backend_link.hpp"
#include "gateway/backend/batch_policy.hpp"
#include "gateway/runtime/loop_thread.hpp"
#include "gateway/runtime/session.hpp"

namespace wsgateway {

namespace {
// Large enough that a busy connection's socket buffer drains in one read.
constexpr std::size_t kReadScratchBytes = 64 * 1024;
}  // namespace

EventLoop::EventLoop(std::uint32_t index, const GatewayContext& ctx)
    : index_(index),
      ctx_(ctx),
      counters_(ctx.metrics.loop_counters().AddLoop()),
      work_(boost::asio::make_work_guard(io_context_)),
      throttle_timer_(io_context_),
      outboxes_(ctx.backends.size()),
      flush_timer_(io_context_),
      compression_(ctx.config.compression_level),
      read_scratch_(kReadScratchBytes) {}

EventLoop::~EventLoop() {
  if (thread_.joinable()) StopAndJoin(std::chrono::milliseconds(0));
}

void EventLoop::Start() {
  thread_ = std::thread([this] { io_context_.run(); });
}

void EventLoop::StopAndJoin(std::chrono::milliseconds deadline) {
  Post([this, deadline] {
    work_.reset();
    // The drain is over: its timer must not keep the loop alive.
    drain_pacer_.reset();
    if (drain_timer_) drain_timer_->cancel();
    stop_timer_ = std::make_unique<boost::asio::steady_timer>(io_context_, deadline);
    stop_timer_->async_wait([this](boost::system::error_code ec) {
      if (!ec) io_context_.stop();
    });
    if (sessions_.empty()) stop_timer_->cancel();
  });
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Adopt(LoopSocket&& socket, ConnectionLimits::Admission admission) {
  WSG_ASSERT_ON_LOOP(*this);
  const auto counter = ++last_counter_;
  auto session = std::make_shared<Session>(*this, std::move(socket), counter, ctx_, std::move(admission));
  sessions_.emplace_hint(sessions_.end(), counter, session);
  connection_count_.store(sessions_.size(), std::memory_order_relaxed);
  session->Start();
}

void EventLoop::Unregister(std::uint64_t counter) {
  WSG_ASSERT_ON_LOOP(*this);
  sessions_.erase(counter);
  connection_count_.store(sessions_.size(), std::memory_order_relaxed);
  if (stop_timer_ && sessions_.empty()) {
    stop_timer_->cancel();
    throttled_.clear();
    throttle_timer_.cancel();
  }
}

Session* EventLoop::Find(std::uint64_t counter) const {
  WSG_ASSERT_ON_LOOP(*this);
  const auto it = sessions_.find(counter);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void EventLoop::BeginDrain(double per_second) {
  Post([this, per_second] {
    if (drain_pacer_) return;
    drain_pacer_.emplace(per_second, DrainPacer::Clock::now());
    drain_timer_ = std::make_unique<boost::asio::steady_timer>(io_context_);
    DrainSome();
  });
}

void EventLoop::DrainSome() {
  const auto now = DrainPacer::Clock::now();
  auto quota = drain_pacer_->Take(now);
  bool more = true;
  while (quota > 0) {
    const auto next = sessions_.upper_bound(drain_cursor_);
    if (next == sessions_.end()) {
      more = false;
      break;
    }
    drain_cursor_ = next->first;
    // A copy: closing may unregister the session.
    const auto session = next->second;
    if (session->state() == v1::CONNECTION_STATE_CLOSING) continue;
    session->Close(1001, "server going away", v1::CLOSED_BY_SERVER);
    --quota;
  }
  // With nothing left to close, only a connection accepted just before the
  // listener closed can still come: look again now and then, not at the
  // full pace.
  const auto idle_recheck = now + std::chrono::milliseconds(50);
  drain_timer_->expires_at(more ? drain_pacer_->NextDue() : std::max(drain_pacer_->NextDue(), idle_recheck));
  drain_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec && drain_pacer_) DrainSome();
  });
}

void EventLoop::MakeRoom(std::size_t backend, std::size_t event_bytes) {
  // A chunk travels in one batch (batch_policy.hpp): it is handed over
  // early rather than grow past what the backend accepts in one message.
  auto& outbox = outboxes_[backend];
  if (outbox.empty() || ChunkHasRoomFor(outbox.wire.size(), event_bytes, ctx_.config.backend_max_message_bytes)) {
    return;
  }
  ctx_.backends[backend]->Submit(std::exchange(outbox, EventChunk{}));
}

void EventLoop::SubmitEvent(std::size_t backend, const v1::Event& event) {
  WSG_ASSERT_ON_LOOP(*this);
  MakeRoom(backend, event.ByteSizeLong());
  AppendEvent(outboxes_[backend], event);
  ScheduleFlush();
}

void EventLoop::SubmitOpen(std::size_t backend, std::string_view connection_id, std::uint64_t sequence,
                           std::string_view path, std::string_view query, std::string_view remote_address,
                           std::span<const HeaderField> headers, const OpenNegotiation& negotiated) {
  WSG_ASSERT_ON_LOOP(*this);
  std::size_t header_bytes = 0;
  for (const auto& header : headers) header_bytes += header.name.size() + header.value.size() + 8;
  MakeRoom(backend, header_bytes + path.size() + query.size() + remote_address.size());
  AppendOpenEvent(outboxes_[backend], connection_id, sequence, path, query, remote_address, headers, negotiated);
  ScheduleFlush();
}

void EventLoop::SubmitMessage(std::size_t backend, std::string_view connection_id, std::uint64_t sequence,
                              v1::Opcode opcode, std::string_view payload) {
  WSG_ASSERT_ON_LOOP(*this);
  MakeRoom(backend, payload.size() + connection_id.size());
  AppendMessageEvent(outboxes_[backend], connection_id, sequence, opcode, payload);
  ScheduleFlush();
}

// When to hand queued events to the backend links: backend_batch_interval
// after the previous hand-over, or at once after a small one when the
// backend owes nothing (the batching policy, batch_policy.hpp).
void EventLoop::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  const auto now = std::chrono::steady_clock::now();
  const auto due = last_flush_ + ctx_.config.backend_batch_interval;
  if (now >= due || (LastBatchWasSmall() && BackendsSettledOrWake())) {
    return Post([this] { FlushEvents(); });
  }
  flush_timer_.expires_at(due);
  flush_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) FlushEvents();
  });
}

bool EventLoop::LastBatchWasSmall() const { return IsSmallBatch(last_flush_events_); }

bool EventLoop::BackendsSettledOrWake() {
  bool settled = true;
  for (std::size_t i = 0; i < outboxes_.size(); ++i) {
    if (!outboxes_[i].empty() && !ctx_.backends[i]->SettledOrWakeWhenSettled()) settled = false;
  }
  return settled;
}

void EventLoop::OnBackendSettled() {
  if (!flush_scheduled_ || !LastBatchWasSmall()) return;
  flush_timer_.cancel();
  FlushEvents();
}

void EventLoop::FlushEvents() {
  if (!flush_scheduled_) return;
  flush_scheduled_ = false;
  last_flush_ = std::chrono::steady_clock::now();
  last_flush_events_ = 0;
  for (std::size_t i = 0; i < outboxes_.size(); ++i) {
    if (outboxes_[i].empty()) continue;
    last_flush_events_ += outboxes_[i].events;
    ctx_.backends[i]->Submit(std::exchange(outboxes_[i], EventChunk{}));
  }
}

void EventLoop::Park(std::shared_ptr<Session> session) {
  WSG_ASSERT_ON_LOOP(*this);
  parked_.push_back(std::move(session));
  ctx_.metrics.backend_paused_connections().Increment();
}

void EventLoop::Throttle(std::shared_ptr<Session> session, std::chrono::steady_clock::time_point until) {
  WSG_ASSERT_ON_LOOP(*this);
  const bool earliest = throttled_.empty() || until < throttled_.begin()->first;
  throttled_.emplace(until, std::move(session));
  if (earliest) ArmThrottleTimer();
}

void EventLoop::ArmThrottleTimer() {
  throttle_timer_.expires_at(throttled_.begin()->first);
  throttle_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) EndThrottles();
  });
}

void EventLoop::EndThrottles() {
  const auto now = std::chrono::steady_clock::now();
  while (!throttled_.empty() && throttled_.begin()->first <= now) {
    auto session = std::move(throttled_.begin()->second);
    throttled_.erase(throttled_.begin());
    session->EndThrottle();
  }
  if (!throttled_.empty()) ArmThrottleTimer();
}

void EventLoop::ResumeParked() {
  auto parked = std::move(parked_);
  parked_.clear();
  ctx_.metrics.backend_paused_connections().Decrement(static_cast<double>(parked.size()));
  for (auto& session : parked) session->ResumeReading();
}

}  // namespace wsgateway
