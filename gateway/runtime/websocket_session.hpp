#pragma once
// The WebSocket life of a client connection (Session), from the 101 on:
// reading frames (readiness, the loop's scratch buffer, MessageReader),
// per-connection rates, the shared bound on unfinished messages, ping, pong
// and the heartbeat, the send queue and its writes, the close handshake,
// the TCP (or TLS) teardown, and the connection's events to the backend.
// The session speaks RFC 6455 itself, so every close code, the close
// handshake and the teardown are the gateway's own. An idle connection
// holds no read buffer: it waits for readability and reads into its loop's
// scratch buffer; through TLS it reads into a buffer of the transport's.
// Loop thread only, like its Session, which it lives inside.
//
// What waits to be written is a SendQueue, which holds the outbound rules
// (accounting, deferred pushes, compression, the gather list) without I/O;
// the writes themselves are in websocket_session_write.cpp.

#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/http_response_rules.hpp"
#include "gateway/runtime/session_close_info.hpp"
#include "gateway/runtime/token_bucket.hpp"
#include "gateway/websocket/message_reader.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "gateway/websocket/send_queue.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

class Session;

// What the HTTP life hands over once the 101 is written.
struct WebSocketHandover {
  // Bytes the client sent right behind its request (frames already).
  boost::beast::flat_buffer buffer;
  // The upgrade request, for the Open event's headers.
  std::unique_ptr<HttpRequest> request;
  std::unique_ptr<MessageReader> reader;
  std::string subprotocol;
  // The Sec-WebSocket-Extensions response; empty without compression.
  std::string extensions;
  int deflate_window_bits = 0;  // 0: no compression
};

class WebSocketSession {
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

  WebSocketSession(Session& session, WebSocketHandover&& handover);
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;

  // Reports the open connection to the backend, then reads and writes.
  void Open(const HttpRequest& request);

  // Queues a frame for the client. A client whose unwritten bytes would
  // pass send_queue_max_bytes is closed as a slow consumer (1008) and the
  // frame is refused; an empty queue always takes one frame.
  EnqueueResult Enqueue(OutboundFrame frame);
  // Starts the close handshake after the frames already queued. False when
  // the connection is not open.
  bool RequestClose(std::uint16_t code, std::string reason, v1::ClosedBy closed_by);
  void ResumeReading();
  void EndThrottle();
  // The timer of the open phase: ping after ping_interval of silence, and
  // give up without an answer within pong_timeout.
  void OnHeartbeat();

  // Reports the bytes this connection holds in unfinished messages; closes
  // it with 1013 when that would pass pending_messages_max_bytes. False
  // when it was closed.
  bool AccountPendingBytes();
  void EmitClose(const CloseInfo& info);
  // Traffic and negotiation for the admin API.
  void Describe(v1::ClientInfo* info) const;
  std::optional<std::chrono::steady_clock::time_point> last_sent() const { return last_sent_; }
  // The connection finished: queued frames go now.
  void Release();

 private:
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
  // Reads on after a pause (backend or rate) unless another one holds.
  void ContinueReading();
  // False when answering closed the connection.
  bool OnPing(std::string_view payload);

  // The close handshake and teardown.
  void OnClientClose(std::uint16_t code, std::string_view reason);
  void FailConnection(std::uint16_t code, std::string_view reason);
  void AfterCloseSent();
  void StartTeardown();

  // Writing (websocket_session_write.cpp).
  // False when the queue was over its limit and the client was closed.
  bool SendControl(FrameType type, std::string_view payload);
  // The client does not read what it is sent: closed with 1008.
  void CloseSlowConsumer();
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);

  // Events to the backend.
  void EmitOpen(const HttpRequest& request);
  void EmitControlFrame(v1::Opcode opcode, std::string_view payload);
  void EmitCloseFrame(std::uint16_t code, std::string_view reason);

  Session& s_;
  // Only the bytes of a frame that has not fully arrived.
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<MessageReader> reader_;
  std::string subprotocol_;
  std::string extensions_;

  // What waits to be written to the client.
  SendQueue send_queue_;

  std::optional<std::chrono::steady_clock::time_point> last_sent_;
  // A ping is unanswered while nothing arrived since it was sent.
  std::chrono::steady_clock::time_point ping_sent_at_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;

  // Per-connection inbound rates (client_message_rate, client_byte_rate).
  TokenBucket message_rate_;
  TokenBucket byte_rate_;
  // Bytes of unfinished messages counted in ctx.pending_message_bytes.
  std::size_t pending_bytes_ = 0;

  // Reads wait for the backend buffer to drain.
  bool paused_ = false;
  // Reads wait for the rate limits to refill.
  bool throttled_ = false;
};

}  // namespace wsgateway
