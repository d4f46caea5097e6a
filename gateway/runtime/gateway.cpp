#include "gateway/runtime/gateway.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>

#include "gateway/backend/event_wire.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/runtime/backend_commands.hpp"
#include "gateway/runtime/lost_node_events.hpp"
#include "gateway/runtime/session.hpp"

namespace wsgateway {

namespace net = boost::asio;

namespace {

// Descriptors kept free of client connections, so that /healthz, /readyz,
// /metrics, the admin API and the backend streams keep working while the
// WebSocket port is saturated: a quarter of the limit, at most 256.
std::size_t ClientSocketCap() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  const auto limit = static_cast<std::size_t>(files.rlim_cur);
  return limit - std::min<std::size_t>(256, limit / 4);
}

}  // namespace

Gateway::Gateway(const Config& config, metrics::GatewayMetrics& metrics, net::any_io_executor control)
    : config_(config),
      metrics_(metrics),
      epoch_(DrawEpoch()),
      routes_(BuildRoutes(config)),
      origins_(config.allowed_origins),
      limits_(config.max_connections, config.max_connections_per_address),
      context_{config, metrics, routes_, backends_, epoch_, origins_} {
  context_.pending_message_bytes = &pending_message_bytes_;
  context_.open_client_sockets = &open_client_sockets_;
  client_socket_cap_ = ClientSocketCap();
  const unsigned loop_count = std::max(1u, config.threads);
  for (auto& target : BackendTargets(routes_)) {
    const std::size_t index = backends_.size();
    backends_.push_back(std::make_unique<BackendLink>(
        std::move(target), FormatEpoch(epoch_), config, metrics, control,
        BackendLink::Hooks{
            .on_commands = [this](v1::CommandBatch& batch) { ApplyCommands(batch); },
            .on_resume = [this] { PostToEveryLoop(&EventLoop::ResumeParked); },
            .on_events_lost = [this](std::vector<std::string>&& ids) { CloseLost(std::move(ids)); },
            .on_settled = [this] { PostToEveryLoop(&EventLoop::OnBackendSettled); },
            .on_snapshot = [this, index](std::uint64_t snapshot_id) { CollectSnapshot(index, snapshot_id); },
            .snapshot_parts = loop_count,
        }));
  }
  if (config.max_message_bytes + kEventEnvelopeBytes > config.backend_max_message_bytes) {
    spdlog::warn(
        "max_message_bytes ({}) does not fit in an event batch of backend_max_message_bytes ({}): client messages "
        "are limited to {} bytes",
        config.max_message_bytes, config.backend_max_message_bytes,
        config.backend_max_message_bytes - kEventEnvelopeBytes);
  }
  if (!config.tls_cert_file.empty()) {
    tls_ = std::make_unique<ListenerTls>(config.tls_cert_file, config.tls_key_file, metrics, control);
    context_.tls = tls_.get();
  }
  // Last: a loop sizes itself to the backend links.
  for (unsigned i = 0; i < loop_count; ++i) loops_.push_back(std::make_unique<EventLoop>(i, context_));
  acceptor_.emplace(loops_.front()->io_context());
  accept_retry_.emplace(loops_.front()->io_context());
}

Gateway::~Gateway() {
  // The listener runs on the first loop: its thread must end before the
  // listener is destroyed here.
  for (auto& loop : loops_) loop->StopAndJoin(std::chrono::milliseconds(0));
}

void Gateway::Start() {
  const auto endpoint = ParseEndpoint(config_.listen);
  if (!endpoint) throw std::runtime_error("--listen '" + config_.listen + "' is not host:port");
  acceptor_->open(endpoint->protocol());
  acceptor_->set_option(net::socket_base::reuse_address(true));
  boost::system::error_code ec;
  acceptor_->bind(*endpoint, ec);
  if (ec) throw std::runtime_error("cannot listen on " + config_.listen + ": " + ec.message());
  acceptor_->listen(net::socket_base::max_listen_connections);
  listen_endpoint_ = acceptor_->local_endpoint();
  // Armed before the loop thread runs, so nothing races with it.
  DoAccept();
  for (auto& loop : loops_) loop->Start();
  for (auto& backend : backends_) backend->Start();
  if (tls_) tls_->Watch();
  spdlog::info("websocket listener on {} ({} event loops{})", FormatEndpoint(listen_endpoint_), loops_.size(),
               tls_ ? ", TLS" : "");
}

net::ip::tcp::endpoint Gateway::websocket_endpoint() const { return listen_endpoint_; }

void Gateway::DoAccept() {
  if (open_client_sockets_.load(std::memory_order_relaxed) >= client_socket_cap_) {
    // New clients wait in the listen backlog until a connection ends.
    if (!logged_socket_cap_) {
      spdlog::warn(
          "holding {} client connections, the most the open-file limit allows with a reserve for the admin "
          "API, probes and backends; new connections wait until one ends",
          client_socket_cap_);
      logged_socket_cap_ = true;
    }
    metrics_.listener_backoffs_descriptors().Increment();
    accept_retry_->expires_after(std::chrono::milliseconds(100));
    accept_retry_->async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec) DoAccept();
    });
    return;
  }
  logged_socket_cap_ = false;
  auto& loop = *loops_[next_loop_];
  next_loop_ = (next_loop_ + 1) % loops_.size();
  acceptor_->async_accept(loop.io_context(), [this, &loop](boost::system::error_code ec, LoopSocket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Typically out of file descriptors: back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      metrics_.listener_backoffs_errors().Increment();
      accept_retry_->expires_after(std::chrono::milliseconds(100));
      accept_retry_->async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec) DoAccept();
      });
      return;
    }
    metrics_.accepted().Increment();
    // Counted now, not when its loop makes the session: a burst of accepts
    // outruns the posts, and the reserve must hold for descriptors already
    // taken. The session gives the count back.
    open_client_sockets_.fetch_add(1, std::memory_order_relaxed);
    // Reserved here, in accept order; a refused connection is still adopted
    // so that it is answered once its request has been read. The peer's
    // address (a system call) is asked only when it is counted; a peer gone
    // already has none and counts under the unspecified one until its
    // session notices.
    boost::asio::ip::address peer;
    if (limits_.counts_addresses()) {
      boost::system::error_code peer_ec;
      peer = socket.remote_endpoint(peer_ec).address();
    }
    auto admission = limits_.Admit(peer);
    if (&loop == loops_.front().get()) {
      loop.Adopt(std::move(socket), std::move(admission));
    } else {
      loop.Post([&loop, socket = std::move(socket), admission = std::move(admission)]() mutable {
        loop.Adopt(std::move(socket), std::move(admission));
      });
    }
    DoAccept();
  });
}

void Gateway::BeginDrain() {
  if (draining_.exchange(true)) return;
  CloseListener();
  metrics_.draining().Set(1);
  const double per_loop = static_cast<double>(config_.drain_rate) / static_cast<double>(loops_.size());
  spdlog::info("draining {} connections at {} per second", connection_count(), config_.drain_rate);
  for (auto& loop : loops_) loop->BeginDrain(per_loop);
}

std::size_t Gateway::connection_count() const {
  std::size_t total = 0;
  for (const auto& loop : loops_) total += loop->connection_count();
  return total;
}

std::string Gateway::NotReadyReason() const {
  if (draining()) return "draining";
  if (!config_.reject_upgrades_without_backend) return {};
  for (const auto& backend : backends_) {
    if (backend->target().empty()) return "no backend configured";
    if (!backend->up()) return "backend stream to " + backend->target() + " is down";
  }
  return {};
}

void Gateway::CloseListener() {
  loops_.front()->Post([this] {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    accept_retry_->cancel();
  });
}

void Gateway::Stop(std::chrono::milliseconds grace) {
  CloseListener();
  if (tls_) tls_->StopWatching();
  spdlog::info("closing all connections (grace {} ms)", grace.count());
  CloseEveryConnection(1001, "server shutting down", v1::CLOSED_BY_SERVER);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& loop : loops_) {
    loop->StopAndJoin(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero())));
  }
  for (auto& backend : backends_) {
    backend->Drain(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration(std::chrono::milliseconds(100)))));
  }
  for (auto& backend : backends_) backend->Stop();
}

std::optional<Gateway::Location> Gateway::Resolve(std::string_view connection_id) const {
  const auto id = ParseConnectionId(connection_id);
  if (!id || id->epoch != epoch() || id->loop >= loops_.size()) return std::nullopt;
  return Location{id->loop, id->counter};
}

void Gateway::WithSession(std::string_view connection_id, std::function<void(Session*)> work) {
  const auto route = Resolve(connection_id);
  if (!route) return work(nullptr);
  auto& loop = *loops_[route->loop];
  loop.Post([&loop, counter = route->counter, work = std::move(work)] { work(loop.Find(counter)); });
}

void Gateway::ApplyCommands(v1::CommandBatch& batch) { ApplyBackendCommands(batch, *this, *command_plane_); }

void Gateway::CloseLost(std::vector<std::string>&& connection_ids) {
  for (const auto& id : connection_ids) {
    WithSession(id, [](Session* session) {
      if (session == nullptr) return;
      session->Close(1011, "backend unavailable", v1::CLOSED_BY_SERVER);
    });
  }
}

void Gateway::CollectSnapshot(std::size_t backend, std::uint64_t snapshot_id) {
  for (auto& loop : loops_) {
    loop->Post([this, &loop = *loop, backend, snapshot_id] {
      // At one instant on this loop: what it hands over later comes after
      // the snapshot on the stream.
      std::vector<v1::ClientInfo> connections;
      for (const auto& [counter, session] : loop.sessions()) {
        if (session->ReportingBackend() == backend) session->Describe(&connections.emplace_back());
      }
      backends_[backend]->AddSnapshotPart(snapshot_id, std::move(connections));
    });
  }
}

void Gateway::CloseEveryConnection(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  CloseWhere([](const Session&) { return true; }, code, std::move(reason), closed_by);
}

void Gateway::CloseActiveConnections(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  CloseWhere([](const Session& session) { return session.state() == v1::CONNECTION_STATE_ACTIVE; }, code,
             std::move(reason), closed_by);
}

void Gateway::CloseWhere(std::function<bool(const Session&)> which, std::uint16_t code, std::string reason,
                         v1::ClosedBy closed_by) {
  for (auto& loop : loops_) {
    loop->Post([&loop = *loop, which, code, reason, closed_by] {
      // Copy: closing may unregister sessions while iterating.
      std::vector<std::shared_ptr<Session>> sessions;
      sessions.reserve(loop.sessions().size());
      for (const auto& [counter, session] : loop.sessions()) {
        if (which(*session)) sessions.push_back(session);
      }
      for (const auto& session : sessions) session->Close(code, reason, closed_by);
    });
  }
}

std::vector<std::pair<std::string, std::string>> Gateway::ListOpenConnections(std::chrono::milliseconds timeout) {
  // Shared with the loops: a loop that answers after the wait gave up
  // writes into it harmlessly.
  struct Answers {
    std::mutex mutex;
    std::condition_variable done;
    std::vector<std::pair<std::string, std::string>> connections;
    std::size_t loops_left = 0;
  };
  auto answers = std::make_shared<Answers>();
  answers->loops_left = loops_.size();
  const auto epoch_now = epoch();
  for (auto& loop : loops_) {
    loop->Post([this, &loop = *loop, answers, epoch_now] {
      std::vector<std::pair<std::string, std::string>> here;
      for (const auto& [counter, session] : loop.sessions()) {
        const auto backend = session->ReportingBackend();
        if (!backend || ParseConnectionId(session->id())->epoch != epoch_now) continue;
        here.emplace_back(session->id(), backends_[*backend]->target());
      }
      std::lock_guard lock(answers->mutex);
      for (auto& entry : here) answers->connections.push_back(std::move(entry));
      if (--answers->loops_left == 0) answers->done.notify_all();
    });
  }
  std::unique_lock lock(answers->mutex);
  if (!answers->done.wait_for(lock, timeout, [&] { return answers->loops_left == 0; })) {
    spdlog::warn("listing open connections: {} event loops did not answer within {} ms", answers->loops_left,
                 timeout.count());
  }
  return std::move(answers->connections);
}

BackendLink& Gateway::LinkFor(std::string_view target) const {
  for (const auto& backend : backends_) {
    if (backend->target() == target) return *backend;
  }
  return *backends_[routes_.back().backend_index];
}

void Gateway::ReportLostConnections(const std::vector<std::pair<std::string, std::string>>& id_and_target) {
  std::map<BackendLink*, std::vector<std::string_view>> by_link;
  for (const auto& [id, target] : id_and_target) by_link[&LinkFor(target)].push_back(id);
  for (auto& [link, ids] : by_link) {
    // A chunk travels in one batch: a few hundred thousand ids at most per
    // call keep it far below any batch limit.
    link->Submit(LostConnectionCloses(ids));
  }
}

void Gateway::ReportNodeLost(std::string_view lost_node, const std::map<std::string, std::uint64_t>& per_target) {
  std::map<BackendLink*, std::uint64_t> counts;
  for (const auto& backend : backends_) counts[backend.get()] = 0;
  for (const auto& [target, count] : per_target) counts[&LinkFor(target)] += count;
  for (auto& [link, count] : counts) link->Submit(NodeLostSummary(lost_node, count));
}

std::function<bool()> Gateway::AcknowledgedMark() const {
  std::vector<std::pair<BackendLink*, std::uint64_t>> marks;
  for (const auto& backend : backends_) marks.emplace_back(backend.get(), backend->Mark());
  return [marks = std::move(marks)] {
    return std::all_of(marks.begin(), marks.end(), [](const auto& mark) { return mark.first->Reached(mark.second); });
  };
}

std::uint64_t Gateway::Fence() {
  const auto fresh = DrawEpoch();
  const auto old = epoch_.exchange(fresh);
  for (auto& backend : backends_) backend->Rename(FormatEpoch(fresh));
  spdlog::warn("this node ({}) was reported lost while it ran: closing its {} connections with 1012; continuing as {}",
               FormatEpoch(old), connection_count(), FormatEpoch(fresh));
  // Connections accepted from now on have the new epoch and stay.
  CloseWhere([old](const Session& session) { return ParseConnectionId(session.id())->epoch == old; }, 1012,
             "node rejoining the cluster", v1::CLOSED_BY_NODE_LOST);
  return fresh;
}

void Gateway::ReloadTls() {
  if (tls_) tls_->Reload();
}

void Gateway::PostToEveryLoop(void (EventLoop::*work)()) {
  for (auto& loop : loops_) loop->Post([&loop = *loop, work] { (loop.*work)(); });
}

}  // namespace wsgateway
