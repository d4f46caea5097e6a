#include "gateway/runtime/session.hpp"

#include <algorithm>

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>

#include "gateway/backend/backend_link.hpp"
#include "gateway/config/endpoint.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/connection_id.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/websocket/permessage_deflate.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace fc = frame_codec;
using metrics::FrameKind;
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
      id_(FormatConnectionId({ctx.epoch, loop.index(), counter})),
      route_(&ctx.routes.back()),
      remote_address_(RemoteAddressOf(socket_)),
      connected_at_(std::chrono::system_clock::now()),
      last_received_(steady_clock::now()) {
  if (ctx_.open_client_sockets != nullptr) ctx_.open_client_sockets->fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  if (ctx_.open_client_sockets != nullptr) ctx_.open_client_sockets->fetch_sub(1, std::memory_order_relaxed);
}

void Session::Start() {
  SetState(v1::CONNECTION_STATE_CONNECTION);
  beast::error_code ignored;
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
  // handshake_timeout covers the TLS handshake too: a client that stalls
  // in it holds a connection like one that stalls in its request.
  ArmTimer(TimerPhase::kHandshake, ctx_.config.handshake_timeout);
  if (ctx_.tls != nullptr) return StartTls();
  ReadRequest();
}

// ---- Timers and teardown -----------------------------------------------------

void Session::ArmTimer(TimerPhase phase, steady_clock::duration after) {
  timer_phase_ = phase;
  if (phase == TimerPhase::kNone) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(after);
  timer_.async_wait(beast::bind_front_handler(&Session::OnTimer, shared_from_this()));
}

void Session::OnTimer(beast::error_code ec) {
  if (ec || finished_) return;
  switch (timer_phase_) {
    case TimerPhase::kNone:
      return;
    case TimerPhase::kHandshake:
      ctx_.metrics.HandshakeRejected("timeout").Increment();
      ctx_.metrics.Rejected(metrics::RejectionReason::kHandshakeTimeout).Increment();
      return Abort(1006, "handshake timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kHttpIdle:
      return Abort(1006, "keep-alive timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kHeartbeat:
    case TimerPhase::kPong:
      return OnHeartbeat();
    case TimerPhase::kCloseReply:
      return Abort(close_info_ ? close_info_->code : 1006,
                   close_info_ ? close_info_->reason : "no close reply within close_timeout", v1::CLOSED_BY_SERVER);
    case TimerPhase::kTeardown:
      return Abort(close_info_ ? close_info_->code : 1006, close_info_ ? close_info_->reason : "teardown timeout",
                   v1::CLOSED_BY_SERVER);
  }
}

void Session::OnHeartbeat() {
  if (state_ != v1::CONNECTION_STATE_ACTIVE) return;
  const auto now = steady_clock::now();
  const auto interval = ctx_.config.ping_interval;
  if (timer_phase_ == TimerPhase::kPong && last_received_ < ping_sent_at_) {
    ctx_.metrics.heartbeat_timeouts().Increment();
    spdlog::debug("connection {} sent nothing within pong_timeout of a ping", id_);
    return Abort(1006, "no pong within pong_timeout", v1::CLOSED_BY_SERVER);
  }
  const auto silent = now - last_received_;
  if (silent < interval) return ArmTimer(TimerPhase::kHeartbeat, interval - silent);
  ping_sent_at_ = now;
  if (!SendControl(FrameType::kPing, {})) return;
  ArmTimer(TimerPhase::kPong, ctx_.config.pong_timeout);
}

void Session::StartTeardown() {
  // Our FIN after the close frames; reading on to the client's FIN keeps
  // late bytes from turning the close into a reset.
  discarding_ = true;
  ArmTimer(TimerPhase::kTeardown, ctx_.config.close_timeout);
  if (transport_.tls()) return SendCloseNotify();
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  WaitReadable();
}

void Session::SendCloseNotify() {
  // async_shutdown sends our close_notify and reads on (discarding) to the
  // client's, so it also drains what the client still sends. A read already
  // pending may see the client's close_notify first; whichever completes
  // first finishes the session, and the armed timer bounds both.
  transport_.tls_stream().async_shutdown([self = shared_from_this()](beast::error_code) {
    if (self->finished_) return;
    self->Finish(self->close_info_.value_or(CloseInfo{1006, "closed", v1::CLOSED_BY_SERVER}));
  });
}

void Session::Finish(const CloseInfo& info) {
  if (finished_) return;
  finished_ = true;
  // Unregistering may drop the last owner other than this call.
  const auto self = shared_from_this();
  if (opened_) {
    EmitClose(info);
    ctx_.metrics.Closed(info.code, ClosedByLabel(info.closed_by)).Increment();
  } else if (http_requests_ > 0) {
    EmitDisconnect();
  }
  SetState(v1::CONNECTION_STATE_UNSPECIFIED);
  AccountPendingBytes();
  timer_phase_ = TimerPhase::kNone;
  timer_.cancel();
  beast::error_code ignored;
  socket_.close(ignored);
  queue_.clear();
  deferred_.clear();
  queued_bytes_ = 0;
  request_.reset();
  parser_.reset();
  admission_.slot.Release();
  loop_.Unregister(counter_);
}

void Session::SetState(v1::ConnectionState state) {
  if (state == state_) return;
  if (state_ != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(state_)).Decrement();
  if (state != v1::CONNECTION_STATE_UNSPECIFIED) ctx_.metrics.Connections(ToStateLabel(state)).Increment();
  state_ = state;
}

// ---- Events ----------------------------------------------------------------

void Session::EmitOpen() {
  opened_ = true;
  // Lower-cased names go into one buffer, sized first so views stay valid.
  std::size_t names_size = 0;
  std::size_t count = 0;
  for (const auto& field : *request_) {
    names_size += field.name_string().size();
    ++count;
  }
  std::string names;
  names.reserve(names_size);
  std::vector<HeaderField> headers;
  headers.reserve(count);
  for (const auto& field : *request_) {
    const auto name = field.name_string();
    const std::size_t start = names.size();
    for (const char c : name) names.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    headers.push_back({std::string_view(names).substr(start, name.size()), field.value()});
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const HeaderField& a, const HeaderField& b) { return a.name < b.name; });
  // As answered in Sec-WebSocket-Extensions, the spelling of ClientInfo too.
  loop_.SubmitOpen(route_->backend_index, id_, next_event_sequence_++, path_, query_, remote_address_, headers,
                   {subprotocol_, extensions_, tags_.metadata()});
}

v1::Event Session::NewEvent() {
  v1::Event event;
  event.set_connection_id(id_);
  event.set_sequence(next_event_sequence_++);
  return event;
}

void Session::EmitClose(const CloseInfo& info) {
  auto event = NewEvent();
  auto* close = event.mutable_close();
  close->set_code(info.code);
  close->set_reason(info.reason);
  close->set_closed_by(info.closed_by);
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitDisconnect() {
  auto event = NewEvent();
  event.mutable_disconnect()->set_requests(http_requests_);
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitControlFrame(v1::Opcode opcode, std::string_view payload) {
  auto event = NewEvent();
  auto* frame = event.mutable_control_frame();
  frame->set_opcode(opcode);
  frame->set_payload(payload.data(), payload.size());
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::EmitCloseFrame(std::uint16_t code, std::string_view reason) {
  auto event = NewEvent();
  auto* frame = event.mutable_close_frame();
  frame->set_code(code);
  frame->set_reason(reason.data(), reason.size());
  loop_.SubmitEvent(route_->backend_index, event);
}

void Session::Describe(v1::ClientInfo* info) const {
  // Loop times are steady; the API speaks wall-clock time.
  const auto steady_now = steady_clock::now();
  const auto system_now = std::chrono::system_clock::now();
  const auto wall = [&](steady_clock::time_point t) {
    return ToTimestamp(system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - t));
  };
  info->set_connection_id(id_);
  info->set_state(state_);
  info->set_remote_address(remote_address_);
  info->set_local_address(LocalAddressOf(socket_));
  info->set_event_loop(loop_.index());
  info->set_route(route_->path_prefix);
  info->set_path(path_);
  info->set_query(query_);
  info->set_subprotocol(subprotocol_);
  if (!extensions_.empty()) info->add_extensions(extensions_);
  *info->mutable_connected_at() = ToTimestamp(connected_at_);
  *info->mutable_last_received_at() = wall(last_received_);
  if (last_sent_) *info->mutable_last_sent_at() = wall(*last_sent_);
  *info->mutable_last_activity_at() = wall(last_sent_ ? std::max(last_received_, *last_sent_) : last_received_);
  info->set_bytes_in(bytes_in_);
  info->set_bytes_out(bytes_out_);
  info->set_messages_in(messages_in_);
  info->set_messages_out(messages_out_);
  info->set_send_queue_bytes(queued_bytes_ + deferred_bytes_);
  for (const auto& [key, value] : tags_.metadata()) (*info->mutable_metadata())[key] = value;
  for (const auto& group : tags_.groups()) info->add_groups(group);
}

}  // namespace wsgateway
