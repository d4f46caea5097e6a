#pragma once
// One client connection, from the TCP accept to the end of the close
// handshake. Lives on its event loop: every member is touched only by that
// loop's thread, so nothing here is locked. Other threads reach a session
// by posting to its loop. Kept alive by the pending asynchronous operation
// (shared_from_this in every handler) and, while open, by its loop's
// registry.
//
// The HTTP request is read with Beast's parser; after the upgrade the
// session speaks RFC 6455 itself (MessageReader for what arrives, frame
// headers written here for what leaves), so every close code, the close
// handshake and the TCP teardown are the gateway's own. An idle connection
// holds no read buffer: it waits for readability and reads into its loop's
// scratch buffer. With TLS on the listener the same runs through a TLS
// stream (ClientTransport): a TLS handshake comes first, reads go into a
// buffer of the connection's own, and close_notify ends the stream.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gateway/backend/unary_call.hpp"
#include "gateway/data_plane/connection_tags.hpp"
#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/client_transport.hpp"
#include "gateway/runtime/connection_limits.hpp"
#include "gateway/runtime/gateway_context.hpp"
#include "gateway/runtime/loop_socket.hpp"
#include "gateway/runtime/token_bucket.hpp"
#include "gateway/websocket/message_reader.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "gateway/websocket/utf8_validator.hpp"
#include "gateway/websocket/websocket_handshake.hpp"
#include "wsgateway/v1/backend.pb.h"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

class BackendLink;
class EventLoop;

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class EnqueueResult {
    kQueued,
    kNotActive,
    kQueueFull,
    // A continuation frame with no fragmented message open, or of another
    // opcode than the open one.
    kNoMessageToContinue,
    // A piece of a fragmented text message after which the message can no
    // longer be valid UTF-8 (or a last piece that ends inside a character);
    // the message stays open for a valid piece.
    kInvalidUtf8,
  };

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
  v1::ConnectionState state() const { return state_; }
  const std::string& path() const { return path_; }
  // Metadata and groups; loop thread only, like everything here.
  ConnectionTags& tags() { return tags_; }
  const ConnectionTags& tags() const { return tags_; }

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
  // Continues reading once a rate limit's pause is over (EventLoop).
  void EndThrottle();

  void Describe(v1::ClientInfo* info) const;

 private:
  struct CloseInfo {
    std::uint16_t code = 1006;
    std::string reason;
    v1::ClosedBy closed_by = v1::CLOSED_BY_ERROR;
  };
  // What the session's one timer is waiting for.
  enum class TimerPhase { kNone, kHandshake, kHttpIdle, kHeartbeat, kPong, kCloseReply, kTeardown };
  using HandshakeCall = UnaryCall<v1::HandshakeRequest, v1::HandshakeResponse>;
  using HttpCall = UnaryCall<v1::HttpRequest, v1::HttpResponse>;

  BackendLink& backend() const { return *ctx_.backends[route_->backend_index]; }

  // Handshake.
  void StartTls();
  void OnTlsHandshake(boost::beast::error_code ec);
  void ReadRequest();
  void OnRequestStarted(boost::beast::error_code ec, std::size_t bytes);
  void ReadRequestHeader();
  void ParseRequestHeader();
  void OnRequestHeaderBytes(boost::beast::error_code ec, std::size_t bytes);
  void OnReadHeader(boost::beast::error_code ec, std::size_t bytes);
  void OnRequestReadFailed(boost::beast::error_code ec);
  // Answers and closes. A 503 carries Retry-After: `retry_after` or 1s.
  void Reject(boost::beast::http::status status, std::string_view reason_label, std::string_view body,
              std::optional<std::chrono::seconds> retry_after = std::nullopt);
  void RejectOverLimit();
  bool OriginAllowed() const;
  void SendResponse(HttpResponse&& response, bool keep_alive, bool head = false);
  void LingerAndClose();
  void DrainUntilPeerCloses();
  void CallHandshakeHook();
  void OnHandshakeDecided(const HandshakeCall& call);
  std::string CheckDecision(const v1::HandshakeResponse& decision, std::string& header_lines) const;
  void RejectAsDecided(const v1::HttpResponse& decided);
  // A hook answer the gateway cannot honour: 502, counted and logged.
  void RejectBadDecision(std::string_view error);
  void OnPlainRequestHeader();
  void OnReadBody(boost::beast::error_code ec, std::size_t bytes);
  void OnRequestHandled(const HttpCall& call);
  void AwaitNextRequest();
  void Upgrade(std::string subprotocol, std::string extra_headers);
  void OnUpgradeWritten(boost::beast::error_code ec);

  // Reading.
  void WaitReadable();
  void OnReadable(boost::beast::error_code ec);
  void ReadAvailable();
  void ReadTls();
  void OnTlsRead(boost::beast::error_code ec, std::size_t bytes, bool into_own_buffer);
  // Where the next read goes: `own` (the loop's scratch buffer, or the TLS
  // read buffer) when no partial frame is kept, else the partial frame's
  // buffer. Sets into_own accordingly.
  boost::asio::mutable_buffer ReadSpace(std::span<char> own, bool& into_own);
  // Hands bytes just read to the frame reader; false to stop reading.
  bool OnBytesRead(char* data, std::size_t bytes, bool into_own);
  bool ProcessScratch(char* data, std::size_t size);
  bool ProcessBuffered();
  std::size_t ProcessFrames(char* data, std::size_t size, bool& go_on);
  bool OnItem(const MessageReader::Item& item);
  bool OnMessage(const MessageReader::Item& item);
  // Charges what the client sent to its rate limits; false when reading
  // must pause until they refill.
  bool WithinRates(std::size_t bytes);
  // Reports the bytes this connection holds in unfinished messages; closes
  // it with 1013 when that would pass pending_messages_max_bytes. False
  // when it was closed.
  bool AccountPendingBytes();
  // Reads on after a pause (backend or rate) unless another one holds.
  void ContinueReading();
  // False when answering closed the connection.
  bool OnPing(std::string_view payload);
  void OnClientClose(std::uint16_t code, std::string_view reason);
  void FailConnection(std::uint16_t code, std::string_view reason);
  void OnReadError(boost::beast::error_code ec);

  // Writing.
  EnqueueResult Admit(OutboundFrame&& frame);
  void Defer(OutboundFrame&& frame);
  void ReleaseDeferred();
  // Empties the deferred messages (to send them, or to drop them at a close).
  std::vector<OutboundFrame> TakeDeferred();
  // Checks a text frame as part of its message; false when it must be
  // refused. Keeps the open message's UTF-8 state.
  bool ContinuesValidText(const OutboundFrame& frame);
  void MaybeCompress(OutboundFrame& frame);
  // False when the queue was over its limit and the client was closed.
  bool SendControl(FrameType type, std::string_view payload);
  // Unwritten pongs at the end of the queue (counted up to the number
  // that starts coalescing).
  std::size_t PongsWaitingAtTheBack() const;
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void AfterCloseSent();
  void DropUnsentFrames();

  // Timers and teardown.
  void ArmTimer(TimerPhase phase, std::chrono::steady_clock::duration after);
  void OnTimer(boost::beast::error_code ec);
  void OnHeartbeat();
  void StartTeardown();
  // TLS: close_notify, then the peer's; the session finishes either way.
  void SendCloseNotify();
  void Finish(const CloseInfo& info);
  void SetState(v1::ConnectionState state);

  // An event of this connection with its id and the next sequence number.
  v1::Event NewEvent();
  void EmitOpen();
  void EmitDisconnect();
  void EmitClose(const CloseInfo& info);
  void EmitControlFrame(v1::Opcode opcode, std::string_view payload);
  void EmitCloseFrame(std::uint16_t code, std::string_view reason);

  EventLoop& loop_;
  const GatewayContext& ctx_;
  LoopSocket socket_;
  // Given back in Finish; a refused connection holds none.
  ConnectionLimits::Admission admission_;
  // After socket_, which it refers to.
  ClientTransport transport_;
  LoopTimer timer_;
  TimerPhase timer_phase_ = TimerPhase::kNone;
  // The HTTP request while the handshake is under way, then only the bytes
  // of a frame that has not fully arrived.
  boost::beast::flat_buffer buffer_;
  // Only while the handshake is under way.
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::unique_ptr<HttpRequest> request_;
  // From the upgrade on.
  std::unique_ptr<MessageReader> reader_;

  const std::uint64_t counter_;
  std::string id_;
  // The route the request matched; the default route until then.
  const Route* route_;
  std::string remote_address_;
  std::string path_;
  std::string query_;
  std::string subprotocol_;
  // The Sec-WebSocket-Extensions response; empty without compression.
  std::string extensions_;
  int deflate_window_bits_ = 0;  // 0: no compression
  ConnectionTags tags_;

  // Frames not yet written; [queue_head_, end) are pending, the first
  // write_count_ of them in flight.
  std::vector<OutboundFrame> queue_;
  std::size_t queue_head_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t write_count_ = 0;
  // Headers and buffers of the write in flight.
  std::vector<std::uint8_t> write_headers_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  // Messages pushed while a fragmented one is open wait here for its end.
  std::vector<OutboundFrame> deferred_;
  std::size_t deferred_bytes_ = 0;
  bool fragment_open_ = false;
  FrameType fragment_type_ = FrameType::kText;
  // UTF-8 state of the fragmented text message open towards the client.
  Utf8Validator outbound_text_;

  // Set when the gateway or the backend started the close, so the Close
  // event reports their code rather than the peer's echo.
  std::optional<CloseInfo> close_info_;

  v1::ConnectionState state_ = v1::CONNECTION_STATE_UNSPECIFIED;
  std::uint64_t next_event_sequence_ = 1;
  std::chrono::system_clock::time_point connected_at_;
  std::chrono::steady_clock::time_point last_received_;
  std::optional<std::chrono::steady_clock::time_point> last_sent_;
  std::chrono::steady_clock::time_point ping_sent_at_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;
  // Plain HTTP requests answered through the backend on this connection.
  std::uint32_t http_requests_ = 0;
  // Bytes of the request header parsed so far (max_handshake_bytes).
  std::uint32_t header_bytes_ = 0;

  // Per-connection inbound rates (client_message_rate, client_byte_rate).
  TokenBucket message_rate_;
  TokenBucket byte_rate_;
  // Bytes of unfinished messages counted in ctx_.pending_message_bytes.
  std::size_t pending_bytes_ = 0;

  bool reading_ = false;
  bool writing_ = false;
  // Reads wait for the backend buffer to drain.
  bool paused_ = false;
  // Reads wait for the rate limits to refill.
  bool throttled_ = false;
  bool opened_ = false;
  bool finished_ = false;
  // Close handshake progress.
  bool close_sent_ = false;
  bool close_received_ = false;
  // Input is only read to find the peer's end of the stream.
  bool discarding_ = false;
};

}  // namespace wsgateway
