#pragma once
// One client connection, from the TCP accept to the end of the close
// handshake: the entry its loop's registry holds for it in every phase.
// Lives on its event loop: every member is touched only by that loop's
// thread, so nothing here is locked. Other threads reach a session by
// posting to its loop. Kept alive by the pending asynchronous operation
// (shared_from_this in every handler) and, while registered, by its loop's
// registry.
//
// A connection lives two lives, in the shape of Boost.Beast's advanced
// server (http_session, websocket_session): HttpSession reads the request
// (TLS first on a TLS listener), refuses it, forwards plain HTTP or
// upgrades it; after the 101 WebSocketSession speaks RFC 6455 (frames,
// rates, heartbeat, the send queue, the close handshake). Session is what
// both share and what the rest of the gateway sees: the identity (id,
// route, path, tags), the socket and its transport, the one timer, the
// lifecycle (ConnectionPhase, one failure path, one close policy) and the
// teardown.
//
// The two lives are alternatives of one variant inside the Session rather
// than two heap objects with the registry entry swapped at the upgrade:
// the TLS stream refers to the socket by address, so the socket must not
// move; the registry, parked and throttled lists keep one pointer for the
// connection's whole life; and the upgrade costs no allocation. A
// connection holds the common part plus the larger of the two lives, not
// both.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "gateway/data_plane/connection_tags.hpp"
#include "gateway/runtime/client_transport.hpp"
#include "gateway/runtime/connection_limits.hpp"
#include "gateway/runtime/connection_phase.hpp"
#include "gateway/runtime/gateway_context.hpp"
#include "gateway/runtime/http_session.hpp"
#include "gateway/runtime/loop_socket.hpp"
#include "gateway/runtime/session_close_info.hpp"
#include "gateway/runtime/websocket_session.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "wsgateway/v1/backend.pb.h"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

class BackendLink;
class EventLoop;

class Session : public std::enable_shared_from_this<Session> {
 public:
  using EnqueueResult = WebSocketSession::EnqueueResult;

  // `admission`: the connection's slot under the connection limits, or the
  // limit it is over (then its request is answered with 503 or 429).
  Session(EventLoop& loop, LoopSocket&& socket, std::uint64_t counter, const GatewayContext& ctx,
          ConnectionLimits::Admission admission);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Reads the HTTP request and performs the upgrade.
  void Start();

  const std::string& id() const { return id_; }
  std::uint64_t counter() const { return counter_; }
  v1::ConnectionState state() const { return StateOf(phase_); }
  const std::string& path() const { return path_; }
  // Metadata and groups; loop thread only, like everything here.
  ConnectionTags& tags() { return tags_; }
  const ConnectionTags& tags() const { return tags_; }

  // Queues a frame for the client (WebSocketSession::Enqueue); kNotActive
  // unless the WebSocket is open.
  EnqueueResult Enqueue(OutboundFrame frame);

  // Starts the close handshake after the frames already queued. False when
  // the connection is not ACTIVE.
  bool RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Drops the connection at once, reporting `code` to the backend.
  void Abort(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Closes in whatever way the phase allows (CloseWayFor): a close
  // handshake when ACTIVE, otherwise at once.
  void Close(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Continues reading after the backend buffer drained.
  void ResumeReading();
  // Continues reading once a rate limit's pause is over (EventLoop).
  void EndThrottle();

  void Describe(v1::ClientInfo* info) const;
  // While the WebSocket is open (its Open event is out, its Close event
  // is not): the backend link its events go to (Route::backend_index),
  // which a snapshot for that link lists it in. Nullopt otherwise.
  std::optional<std::size_t> ReportingBackend() const {
    if (websocket() == nullptr || finished()) return std::nullopt;
    return route_->backend_index;
  }

 private:
  friend class HttpSession;
  friend class WebSocketSession;

  // The I/O steps whose errors Fail() classifies.
  enum class IoStep { kTlsHandshake, kRequest, kResponse, kLinger, kUpgrade, kFrameRead, kFrameWrite };

  BackendLink& backend() const { return *ctx_.backends[route_->backend_index]; }
  bool finished() const { return phase_ == ConnectionPhase::kFinished; }
  HttpSession& http() { return *std::get_if<HttpSession>(&life_); }
  // Null until the upgrade is written.
  WebSocketSession* websocket() { return std::get_if<WebSocketSession>(&life_); }
  const WebSocketSession* websocket() const { return std::get_if<WebSocketSession>(&life_); }

  // Moves to `phase`, keeping the per-state connection gauges right.
  void SetPhase(ConnectionPhase phase);
  // The timer's meaning is the phase's (DeadlineOf); arming sets only when.
  void ArmTimer(std::chrono::steady_clock::duration after);
  void CancelTimer();
  void OnTimer(boost::beast::error_code ec);

  // The one failure path: every I/O error of either life ends here, is
  // classified by step and error, and ends the connection with the code
  // that fits (or, while the request is read, with the HTTP refusal).
  void Fail(IoStep step, boost::beast::error_code ec);

  // The 101 is out: the WebSocket life takes over from the HTTP one.
  void OnUpgradeWritten(boost::beast::error_code ec);

  // TLS: close_notify, then the peer's; the session finishes either way.
  void SendCloseNotify();
  void Finish(const CloseInfo& info);

  // An event of this connection with its id and the next sequence number.
  v1::Event NewEvent();

  EventLoop& loop_;
  const GatewayContext& ctx_;
  LoopSocket socket_;
  // Given back in Finish; a refused connection holds none.
  ConnectionLimits::Admission admission_;
  // After socket_, which it refers to.
  ClientTransport transport_;
  LoopTimer timer_;

  const std::uint64_t counter_;
  std::string id_;
  // The route the request matched; the default route until then.
  const Route* route_;
  std::string remote_address_;
  std::string path_;
  std::string query_;
  ConnectionTags tags_;

  // Set when the gateway or the backend started the close, so the Close
  // event reports their code rather than the peer's echo.
  std::optional<CloseInfo> close_info_;

  std::uint64_t next_event_sequence_ = 1;
  std::chrono::system_clock::time_point connected_at_;
  std::chrono::steady_clock::time_point last_received_;

  ConnectionPhase phase_ = ConnectionPhase::kAccepting;
  // An operation is in flight (not phase: either life reads and writes).
  bool reading_ = false;
  bool writing_ = false;

  // Last: it refers to everything above.
  std::variant<HttpSession, WebSocketSession> life_;
};

}  // namespace wsgateway
