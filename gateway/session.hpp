#pragma once
// One client connection, from the TCP accept to the end of the close
// handshake. Lives on its event loop: every member is touched only by that
// loop's thread, so nothing here is locked. Other threads reach a session
// by posting to its loop. Kept alive by the pending asynchronous operation
// (shared_from_this in every handler) and, while open, by its loop's
// registry.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway_context.hpp"
#include "gateway/loop_socket.hpp"
#include "gateway/outbound_frame.hpp"
#include "wsgateway/v1/backend.pb.h"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

class EventLoop;

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class EnqueueResult { kQueued, kNotActive, kQueueFull };

  Session(EventLoop& loop, LoopSocket&& socket, std::uint64_t counter, const GatewayContext& ctx);

  // Reads the HTTP request and performs the upgrade.
  void Start();

  const std::string& id() const { return id_; }
  std::uint64_t counter() const { return counter_; }
  v1::ConnectionState state() const { return state_; }
  const std::string& path() const { return path_; }

  // Queues a frame for the client. A client whose unwritten bytes would
  // pass send_queue_max_bytes is closed as a slow consumer (1008) and the
  // frame is refused; an empty queue always takes one frame.
  EnqueueResult Enqueue(OutboundFrame frame);

  // Starts the close handshake after the frames already queued. False when
  // the connection is not ACTIVE.
  bool RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Drops the connection at once, reporting `code` to the backend.
  void Abort(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Closes in whatever way the state allows: a close handshake when ACTIVE,
  // otherwise at once.
  void Close(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);

  // Continues reading after the backend buffer drained.
  void ResumeReading();

  void Describe(v1::ClientInfo* info) const;

 private:
  struct CloseInfo {
    std::uint16_t code = 1006;
    std::string reason;
    v1::ClosedBy closed_by = v1::CLOSED_BY_ERROR;
  };

  void DoReadRequest();
  void OnRequestStarted(boost::beast::error_code ec, std::size_t bytes);
  void OnReadRequest(boost::beast::error_code ec, std::size_t bytes);
  void OnRequestReadFailed(boost::beast::error_code ec);
  void Reject(boost::beast::http::status status, std::string_view reason_label, std::string body);
  void DrainUntilPeerCloses();
  void DoAccept();
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void OnControlFrame(boost::beast::websocket::frame_type kind, std::string_view payload);

  CloseInfo CloseInfoFor(boost::beast::error_code ec) const;
  void Finish(const CloseInfo& info);
  void SetState(v1::ConnectionState state);
  void Touch() { last_activity_ = std::chrono::system_clock::now(); }

  v1::Event NewEvent();
  void EmitOpen();
  void EmitClose(const CloseInfo& info);

  EventLoop& loop_;
  const GatewayContext& ctx_;
  boost::beast::websocket::stream<LoopStream> ws_;
  boost::beast::flat_buffer buffer_;
  // Only while the handshake is under way.
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  std::unique_ptr<boost::beast::http::request<boost::beast::http::empty_body>> request_;

  const std::uint64_t counter_;
  std::string id_;
  std::string remote_address_;
  std::string path_;
  std::string query_;
  std::string subprotocol_;

  // Frames not yet written; [queue_head_, end) are pending, the head one
  // may be in flight.
  std::vector<OutboundFrame> queue_;
  std::size_t queue_head_ = 0;
  std::size_t queued_bytes_ = 0;

  // Set when the gateway or the backend started the close, so the Close
  // event reports their code rather than the peer's echo.
  std::optional<CloseInfo> close_info_;

  v1::ConnectionState state_ = v1::CONNECTION_STATE_UNSPECIFIED;
  std::uint64_t next_event_sequence_ = 1;
  std::chrono::system_clock::time_point connected_at_;
  std::chrono::system_clock::time_point last_activity_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;

  bool reading_ = false;
  bool writing_ = false;
  bool paused_ = false;
  bool opened_ = false;
  bool finished_ = false;
};

}  // namespace wsgateway
