// Session: what both lives of a connection share. The phase and its
// gauges, the timer, the one failure path, the close policy, the teardown
// and Describe.

#include "gateway/runtime/session.hpp"

#include <algorithm>

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "gateway/backend/backend_link.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/data_plane/connection_id.hpp"
#include "gateway/runtime/connection_observer.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/loop_thread.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using std::chrono::steady_clock;

namespace {

metrics::StateLabel ToStateLabel(v1::ConnectionState state) {
  return static_cast<metrics::StateLabel>(static_cast<int>(state) - 1);
}

std::string_view ClosedByLabel(v1::ClosedBy by) {
  switch (by) {
    case v1::CLOSED_BY_CLIENT:
      return "client";
    case v1::CLOSED_BY_SERVER:
      return "server";
    case v1::CLOSED_BY_BACKEND:
      return "backend";
    case v1::CLOSED_BY_NODE_LOST:
      return "node_lost";
    default:
      return "error";
  }
}

google::protobuf::Timestamp ToTimestamp(std::chrono::system_clock::time_point t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

std::string LocalAddressOf(const LoopSocket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.local_endpoint(ec);
  return ec ? std::string() : FormatEndpoint(endpoint);
}

std::string RemoteAddressOf(const LoopSocket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string() : FormatEndpoint(endpoint);
}

}  // namespace

Session::Session(EventLoop& loop, LoopSocket&& socket, std::uint64_t counter, const GatewayContext& ctx,
                 ConnectionLimits::Admission admission)
    : loop_(loop),
      ctx_(ctx),
      socket_(std::move(socket)),
      admission_(std::move(admission)),
      transport_(socket_),
      timer_(loop.io_context().get_executor()),
      counter_(counter),
      id_(FormatConnectionId({ctx.epoch.load(std::memory_order_relaxed), loop.index(), counter})),
      route_(&ctx.routes.back()),
      remote_address_(RemoteAddressOf(socket_)),
      connected_at_(std::chrono::system_clock::now()),
      last_received_(steady_clock::now()),
      life_(std::in_place_type<HttpSession>, *this) {}

// The listener counted the socket when it accepted it (open_client_sockets);
// the session gives it back.
Session::~Session() {
  if (ctx_.open_client_sockets != nullptr) ctx_.open_client_sockets->fetch_sub(1, std::memory_order_relaxed);
}

void Session::Start() {
  ctx_.metrics.Connections(ToStateLabel(state())).Increment();
  beast::error_code ignored;
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
  // handshake_timeout covers the TLS handshake too: a client that stalls
  // in it holds a connection like one that stalls in its request.
  ArmTimer(ctx_.config.handshake_timeout);
  http().Start();
}

// ---- Public entry points (loop thread) ----------------------------------------

Session::EnqueueResult Session::Enqueue(OutboundFrame frame) {
  WSG_ASSERT_ON_LOOP(loop_);
  auto* ws = websocket();
  if (ws == nullptr) return EnqueueResult::kNotActive;
  return ws->Enqueue(std::move(frame));
}

bool Session::RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  WSG_ASSERT_ON_LOOP(loop_);
  auto* ws = websocket();
  return ws != nullptr && ws->RequestClose(code, std::move(reason), closed_by);
}

// The close policy: the phase alone decides between the handshake and the
// abort.
void Session::Close(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  WSG_ASSERT_ON_LOOP(loop_);
  switch (CloseWayFor(phase_)) {
    case CloseWay::kHandshake:
      websocket()->RequestClose(code, std::move(reason), closed_by);
      return;
    case CloseWay::kAbort:
      return Abort(code, std::move(reason), closed_by);
    case CloseWay::kNothing:
      return;
  }
}

void Session::Abort(std::uint16_t code, std::string reason, v1::ClosedBy closed_by) {
  WSG_ASSERT_ON_LOOP(loop_);
  if (finished()) return;
  if (!close_info_) close_info_ = CloseInfo{code, std::move(reason), closed_by};
  // An HTTP connection keeps its phase until it finishes; a WebSocket one
  // is tearing down now.
  if (IsWebSocketPhase(phase_)) SetPhase(ConnectionPhase::kTeardown);
  beast::error_code ignored;
  socket_.close(ignored);
  // A pending read completes with operation_aborted and finishes the
  // session; without one (paused, or between steps) finish here.
  if (!reading_) Finish(*close_info_);
}

void Session::ResumeReading() {
  WSG_ASSERT_ON_LOOP(loop_);
  if (auto* ws = websocket()) ws->ResumeReading();
}

void Session::EndThrottle() {
  WSG_ASSERT_ON_LOOP(loop_);
  if (auto* ws = websocket()) ws->EndThrottle();
}

// ---- Lifecycle -----------------------------------------------------------------

void Session::SetPhase(ConnectionPhase phase) {
  const auto before = StateOf(phase_);
  const auto after = StateOf(phase);
  phase_ = phase;
  if (before == after) return;
  if (before != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(before)).Decrement();
  if (after != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(after)).Increment();
}

void Session::ArmTimer(steady_clock::duration after) {
  timer_.expires_after(after);
  timer_.async_wait(beast::bind_front_handler(&Session::OnTimer, shared_from_this()));
}

void Session::CancelTimer() { timer_.cancel(); }

void Session::OnTimer(beast::error_code ec) {
  if (ec || finished()) return;
  switch (DeadlineOf(phase_)) {
    case PhaseDeadline::kNone:
      return;
    case PhaseDeadline::kHandshake:
      ctx_.metrics.HandshakeRejected("timeout").Increment();
      ctx_.metrics.Rejected(metrics::RejectionReason::kHandshakeTimeout).Increment();
      return Abort(1006, "handshake timeout", v1::CLOSED_BY_SERVER);
    case PhaseDeadline::kKeepAlive:
      return Abort(1006, "keep-alive timeout", v1::CLOSED_BY_SERVER);
    case PhaseDeadline::kHeartbeat:
      return websocket()->OnHeartbeat();
    case PhaseDeadline::kCloseReply:
      return Abort(close_info_ ? close_info_->code : 1006,
                   close_info_ ? close_info_->reason : "no close reply within close_timeout", v1::CLOSED_BY_SERVER);
    case PhaseDeadline::kTeardown:
      return Abort(close_info_ ? close_info_->code : 1006, close_info_ ? close_info_->reason : "teardown timeout",
                   v1::CLOSED_BY_SERVER);
  }
}

void Session::Fail(IoStep step, beast::error_code ec) {
  if (finished()) return;
  const bool aborted = ec == net::error::operation_aborted;
  switch (step) {
    case IoStep::kTlsHandshake:
      if (aborted) return Finish(close_info_.value_or(CloseInfo{}));
      if (IsConnectionGone(ec)) return Finish({1006, "closed during the TLS handshake", v1::CLOSED_BY_CLIENT});
      if (IsPlainHttpOnTls(ec)) {
        // OpenSSL has taken the request's bytes; the refusal goes out in
        // the clear, where such a client can read it (as nginx does).
        transport_.DropTls();
        return http().Reject(http::status::bad_request, "plain_http_on_tls",
                             "this port speaks TLS: use https:// or wss://");
      }
      ctx_.metrics.HandshakeRejected("tls").Increment();
      spdlog::debug("TLS handshake with {} failed: {}", remote_address_, ec.message());
      return Finish({1006, "TLS handshake failed", v1::CLOSED_BY_SERVER});
    case IoStep::kRequest:
      if (ec == http::error::header_limit) {
        ctx_.metrics.Rejected(metrics::RejectionReason::kHandshakeTooLarge).Increment();
        return http().Reject(http::status::request_header_fields_too_large, "header_too_large",
                             "request header larger than max_handshake_bytes");
      }
      if (ec == http::error::body_limit) {
        return http().Reject(http::status::payload_too_large, "body_too_large",
                             "request body larger than max_request_body_bytes");
      }
      // A peer that hangs up mid-request (or between keep-alive requests)
      // is gone, not refused.
      if (ec == http::error::end_of_stream || ec == http::error::partial_message || IsConnectionGone(ec)) {
        return Finish({1006, "closed before the handshake", v1::CLOSED_BY_CLIENT});
      }
      if (aborted) return Finish(close_info_.value_or(CloseInfo{}));
      return http().Reject(http::status::bad_request, "malformed", "malformed HTTP request");
    case IoStep::kResponse:
      return Finish({1006, "HTTP response not delivered", v1::CLOSED_BY_SERVER});
    case IoStep::kLinger:
      return Finish({1006, "HTTP connection closed", v1::CLOSED_BY_SERVER});
    case IoStep::kUpgrade:
      ctx_.metrics.HandshakeRejected("malformed").Increment();
      return Finish({1006, "handshake failed", v1::CLOSED_BY_SERVER});
    case IoStep::kFrameRead: {
      // After a close was started the end of the stream is the expected end.
      if (close_info_) return Finish(*close_info_);
      if (aborted) return Finish(CloseInfo{});
      const bool eof = ec == net::error::eof || ec == net::ssl::error::stream_truncated;
      return Finish({1006, eof ? "connection closed without a close frame" : ec.message(), v1::CLOSED_BY_ERROR});
    }
    case IoStep::kFrameWrite:
      // A failed write after our close is the peer going away: finish with
      // what the close said.
      return Abort(1006, ec.message(), v1::CLOSED_BY_ERROR);
  }
}

void Session::OnUpgradeWritten(beast::error_code ec) {
  if (finished()) return;
  if (ec) return Fail(IoStep::kUpgrade, ec);
  auto handover = http().TakeHandover();
  const auto request = std::move(handover.request);
  // Ends the HTTP life; nothing of it is on the stack here.
  auto& ws = life_.emplace<WebSocketSession>(*this, std::move(handover));
  ws.Open(*request);
}

void Session::SendCloseNotify() {
  // async_shutdown sends our close_notify and reads on (discarding) to the
  // client's, so it also drains what the client still sends. A read already
  // pending may see the client's close_notify first; whichever completes
  // first finishes the session, and the armed timer bounds both.
  transport_.tls_stream().async_shutdown([self = shared_from_this()](beast::error_code) {
    if (self->finished()) return;
    self->Finish(self->close_info_.value_or(CloseInfo{1006, "closed", v1::CLOSED_BY_SERVER}));
  });
}

void Session::Finish(const CloseInfo& info) {
  if (finished()) return;
  auto* ws = websocket();
  SetPhase(ConnectionPhase::kFinished);
  // Unregistering may drop the last owner other than this call.
  const auto self = shared_from_this();
  if (ws != nullptr) {
    // A node reported lost had its connections' Close events sent by the
    // node that reported it.
    if (info.closed_by != v1::CLOSED_BY_NODE_LOST) ws->EmitClose(info);
    if (ctx_.observer != nullptr) ctx_.observer->Closed(id_);
    ctx_.metrics.Closed(info.code, ClosedByLabel(info.closed_by)).Increment();
    ws->AccountPendingBytes();
  } else if (http().requests() > 0) {
    http().EmitDisconnect();
  }
  CancelTimer();
  beast::error_code ignored;
  socket_.close(ignored);
  if (ws != nullptr) {
    ws->Release();
  } else {
    http().Release();
  }
  admission_.slot.Release();
  loop_.Unregister(counter_);
}

v1::Event Session::NewEvent() {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  return event;
}

void Session::Describe(v1::ClientInfo* info) const {
  WSG_ASSERT_ON_LOOP(loop_);
  // Loop times are steady; the API speaks wall-clock time.
  const auto steady_now = steady_clock::now();
  const auto system_now = std::chrono::system_clock::now();
  const auto wall = [&](steady_clock::time_point t) {
    return ToTimestamp(system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - t));
  };
  info->set_connection_id(id_);
  info->set_node_id(std::string(NodeIdOf(id_)));
  info->set_state(state());
  info->set_remote_address(remote_address_);
  info->set_local_address(LocalAddressOf(socket_));
  info->set_event_loop(loop_.index());
  info->set_route(route_->path_prefix);
  info->set_path(path_);
  info->set_query(query_);
  *info->mutable_connected_at() = ToTimestamp(connected_at_);
  *info->mutable_last_received_at() = wall(last_received_);
  const auto* ws = websocket();
  const auto last_sent = ws != nullptr ? ws->last_sent() : std::nullopt;
  if (last_sent) *info->mutable_last_sent_at() = wall(*last_sent);
  *info->mutable_last_activity_at() = wall(last_sent ? std::max(last_received_, *last_sent) : last_received_);
  if (ws != nullptr) ws->Describe(info);
  for (const auto& [key, value] : tags_.metadata()) (*info->mutable_metadata())[key] = value;
  for (const auto& group : tags_.groups()) info->add_groups(group);
}

}  // namespace wsgateway
