#pragma once
// The gateway's data plane: the public listener, the event loops holding
// the connections, and the link to the backend. The admin API and the
// backend's commands reach connections through it.
//
// Thread-safety: Start and Stop from the owning thread only; WithSession
// and ApplyCommands from any thread.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/backend/backend_link.hpp"
#include "gateway/config/config.hpp"
#include "gateway/data_plane/connection_id.hpp"
#include "gateway/runtime/connection_limits.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/gateway_context.hpp"
#include "gateway/runtime/local_data_plane.hpp"
#include "gateway/tls/listener_tls.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway {

class ConnectionObserver;
class Session;

class Gateway {
 public:
  // `control` runs the acceptor and the backend link's timers.
  Gateway(const Config& config, metrics::GatewayMetrics& metrics, boost::asio::any_io_executor control);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds the listener and starts the loops and the backend link. Throws
  // on failure: start-up only.
  void Start();

  // Graceful drain: stops accepting and has the loops close every
  // connection with 1001, drain_rate per second in all. Control thread.
  void BeginDrain();
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // This process's epoch: the first part of every connection id it hands
  // out; a new one after Fence. Any thread.
  std::uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }

  // This process's connections through the one data-plane face: what the
  // backend's commands go through, and what the admin API is given. Any
  // thread.
  DataPlane& data_plane() { return data_plane_; }

  // Sends the backend's commands through `router` (cluster mode: a command
  // may name a connection another replica owns) instead of data_plane().
  // Before Start; `router` outlives the gateway's backend links.
  void RouteCommandsThrough(DataPlane& router) { command_plane_ = &router; }

  // Client connections open now, in any state. Any thread.
  std::size_t connection_count() const;

  // Why new clients should not be sent here now ("draining", a backend
  // stream down while upgrades are refused without it); empty when the
  // gateway is ready. Any thread.
  std::string NotReadyReason() const;

  // Stops accepting, closes every connection with 1001 and waits up to
  // `grace` for the close handshakes and for the backend to take the
  // close events. Call after the control executor stopped running.
  void Stop(std::chrono::milliseconds grace);

  boost::asio::ip::tcp::endpoint websocket_endpoint() const;
  const Config& config() const { return config_; }
  metrics::GatewayMetrics& metrics() { return metrics_; }
  std::size_t loop_count() const { return loops_.size(); }
  EventLoop& loop(std::size_t index) { return *loops_[index]; }

  // Where a connection id lives, if it can be one of ours.
  struct Location {
    std::size_t loop;
    std::uint64_t counter;
  };
  std::optional<Location> Resolve(std::string_view connection_id) const;

  // Runs `work` on the loop that owns `connection_id` with its session, or
  // with nullptr when there is no such connection (then possibly inline).
  void WithSession(std::string_view connection_id, std::function<void(Session*)> work);

  // Applies commands from the backend stream through the data plane
  // (ApplyBackendCommands): one post per loop. Payloads and ids are moved
  // out of `batch`.
  void ApplyCommands(v1::CommandBatch& batch);

  // ---- Cluster mode -------------------------------------------------------
  // Tells `observer` of every WebSocket connection opened or closed from
  // now on. Before Start; `observer` outlives the gateway's loops.
  void ObserveConnections(ConnectionObserver& observer) { context_.observer = &observer; }
  // The gRPC target of backend link `backend` (Route::backend_index).
  const std::string& backend_target(std::size_t backend) const { return backends_[backend]->target(); }

  // The WebSocket connections open now under the current epoch, with
  // their backend's target: everything the observer was told is open.
  // Asks every loop and waits up to `timeout` for their answers; not on a
  // loop thread.
  std::vector<std::pair<std::string, std::string>> ListOpenConnections(std::chrono::milliseconds timeout);

  // Reports connections of a lost node closed (lost_node_events.hpp), each
  // to the backend link of the target it names, or the default route's
  // link when none here serves that target. Any thread.
  void ReportLostConnections(const std::vector<std::pair<std::string, std::string>>& id_and_target);
  // Then, to every backend link, the NodeLostEvent with the connections
  // it held for that link (`per_target`, by target). Any thread.
  void ReportNodeLost(std::string_view lost_node, const std::map<std::string, std::uint64_t>& per_target);
  // A predicate that turns true once every event handed to the backend
  // links so far has been acknowledged (or given up on). Any thread.
  std::function<bool()> AcknowledgedMark() const;

  // This node was reported lost while it ran: closes every connection with
  // 1012 and no Close event (they were reported already) and continues
  // under a new epoch, which it returns. Any thread.
  std::uint64_t Fence();
  // Closes every connection with `code` (a close handshake where the
  // WebSocket is open). Any thread.
  void CloseEveryConnection(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);
  // Starts the close handshake of every open WebSocket (ACTIVE), leaving
  // connections in any other phase alone: those already closing finish
  // their handshake. Any thread.
  void CloseActiveConnections(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Re-reads tls_cert_file and tls_key_file for new connections (open ones
  // keep theirs); a failure keeps the current certificate. Does nothing
  // without TLS. Control thread only (SIGHUP).
  void ReloadTls();

 private:
  void DoAccept();
  // Closes the listener, on the thread that accepts.
  void CloseListener();
  void CloseLost(std::vector<std::string>&& connection_ids);
  // Has every loop hand the connections it holds for backend link
  // `backend` to that link, as snapshot `snapshot_id`.
  void CollectSnapshot(std::size_t backend, std::uint64_t snapshot_id);
  // Runs `work` on every loop's thread (backend link hooks).
  void PostToEveryLoop(void (EventLoop::*work)());
  // Closes the connections `which` picks, on their loops.
  void CloseWhere(std::function<bool(const Session&)> which, std::uint16_t code, std::string reason,
                  v1::ClosedBy closed_by);
  // The link serving `target`, or the default route's.
  BackendLink& LinkFor(std::string_view target) const;

  const Config& config_;
  metrics::GatewayMetrics& metrics_;
  std::atomic<std::uint64_t> epoch_;
  const std::vector<Route> routes_;
  std::vector<std::unique_ptr<BackendLink>> backends_;
  const OriginPolicy origins_;
  // Declared before the loops: their sessions hold slots until destroyed.
  ConnectionLimits limits_;
  std::unique_ptr<ListenerTls> tls_;
  // Bytes held in unfinished client messages (pending_messages_max_bytes).
  std::atomic<std::size_t> pending_message_bytes_{0};
  std::atomic<std::size_t> open_client_sockets_{0};
  // Client sockets the listener may hold: the open-file limit less a
  // reserve for the admin API, the metrics listener and the backends.
  std::size_t client_socket_cap_ = 0;
  bool logged_socket_cap_ = false;
  GatewayContext context_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  // The listener belongs to the first loop and accepts on its thread: a
  // connection for that loop (every connection, with one loop) is adopted
  // without waking another thread. Declared after the loops, which must
  // outlive it.
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::optional<boost::asio::steady_timer> accept_retry_;
  boost::asio::ip::tcp::endpoint listen_endpoint_;
  std::size_t next_loop_ = 0;
  std::atomic<bool> draining_{false};
  LocalDataPlane data_plane_{*this};
  DataPlane* command_plane_ = &data_plane_;
};

}  // namespace wsgateway
