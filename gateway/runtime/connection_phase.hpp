#pragma once
// Where a client connection is in its life, as one value. The phase decides
// what the API reports (v1::ConnectionState), what the connection's one
// timer waits for, and how a close is carried out; those three are pure
// functions here so that the state table in docs/architecture.md
// ("Connection lifecycle") is the code and can be unit-tested.
// Plain values: no threads involved.

#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

enum class ConnectionPhase {
  // Accepted; no byte of the request yet.
  kAccepting,
  // TLS listener: the TLS handshake is under way.
  kTlsHandshake,
  // The request's bytes are arriving (header, and a plain request's body).
  kReadingRequest,
  // An upgrade request waits for the handshake hook (onHandShake).
  kAwaitingHook,
  // A plain request waits for HandleRequest, then its response is written.
  kForwarding,
  // Between two plain requests on a kept-alive connection.
  kHttpKeepAlive,
  // The last HTTP response (a refusal, or the end of keep-alive) is out;
  // reading on to the client's FIN before the socket closes.
  kLingering,
  // The 101 response is being written.
  kUpgrading,
  // WebSocket open: messages both ways.
  kOpen,
  // Our close frame waits in the send queue behind the frames before it.
  kCloseQueued,
  // Our close frame is written; the client's close ends the handshake.
  kCloseSent,
  // The client's close arrived, or its input failed: our close (the echo,
  // or the failure's code) is the last frame, and input is discarded.
  kCloseReceived,
  // Our FIN (or close_notify) is out, or the socket was dropped; waiting for
  // the client's end of the stream.
  kTeardown,
  // Gone from the registry; only pending handlers still hold the object.
  kFinished,
};

// What the API and the connection gauges report for a phase.
constexpr v1::ConnectionState StateOf(ConnectionPhase phase) {
  switch (phase) {
    case ConnectionPhase::kAccepting:
    case ConnectionPhase::kTlsHandshake:
      return v1::CONNECTION_STATE_CONNECTION;
    case ConnectionPhase::kReadingRequest:
    case ConnectionPhase::kAwaitingHook:
    case ConnectionPhase::kForwarding:
    case ConnectionPhase::kHttpKeepAlive:
    case ConnectionPhase::kLingering:
    case ConnectionPhase::kUpgrading:
      return v1::CONNECTION_STATE_HANDSHAKE;
    case ConnectionPhase::kOpen:
      return v1::CONNECTION_STATE_ACTIVE;
    case ConnectionPhase::kCloseQueued:
    case ConnectionPhase::kCloseSent:
    case ConnectionPhase::kCloseReceived:
    case ConnectionPhase::kTeardown:
      return v1::CONNECTION_STATE_CLOSING;
    case ConnectionPhase::kFinished:
      break;
  }
  return v1::CONNECTION_STATE_UNSPECIFIED;
}

// What the connection's timer, when it fires, means in a phase.
enum class PhaseDeadline {
  kNone,
  // handshake_timeout: from the accept (or a kept-alive request's first
  // byte) to the 101.
  kHandshake,
  // http_keepalive_timeout.
  kKeepAlive,
  // ping_interval, then pong_timeout after a ping.
  kHeartbeat,
  // close_timeout for the other side's close frame (or our close's write).
  kCloseReply,
  // close_timeout (WebSocket) or the linger time (HTTP) for the peer's end
  // of the stream.
  kTeardown,
};

constexpr PhaseDeadline DeadlineOf(ConnectionPhase phase) {
  switch (phase) {
    case ConnectionPhase::kAccepting:
    case ConnectionPhase::kTlsHandshake:
    case ConnectionPhase::kReadingRequest:
    case ConnectionPhase::kAwaitingHook:
    case ConnectionPhase::kUpgrading:
      return PhaseDeadline::kHandshake;
    case ConnectionPhase::kHttpKeepAlive:
      return PhaseDeadline::kKeepAlive;
    case ConnectionPhase::kOpen:
      return PhaseDeadline::kHeartbeat;
    case ConnectionPhase::kCloseSent:
    case ConnectionPhase::kCloseReceived:
      return PhaseDeadline::kCloseReply;
    case ConnectionPhase::kLingering:
    case ConnectionPhase::kTeardown:
      return PhaseDeadline::kTeardown;
    case ConnectionPhase::kForwarding:  // HandleRequest's own deadline bounds it
    case ConnectionPhase::kCloseQueued:
    case ConnectionPhase::kFinished:
      break;
  }
  return PhaseDeadline::kNone;
}

// How a close asked for by the gateway, the backend or the admin API is
// carried out.
enum class CloseWay {
  // A close frame after the frames already queued, then the handshake.
  kHandshake,
  // The socket is dropped at once (no WebSocket to close, or a close is
  // already under way and is cut short).
  kAbort,
  // Nothing is left to close.
  kNothing,
};

constexpr CloseWay CloseWayFor(ConnectionPhase phase) {
  if (phase == ConnectionPhase::kOpen) return CloseWay::kHandshake;
  if (phase == ConnectionPhase::kFinished) return CloseWay::kNothing;
  return CloseWay::kAbort;
}

// True once the WebSocket exists (the 101 is written).
constexpr bool IsWebSocketPhase(ConnectionPhase phase) {
  return phase >= ConnectionPhase::kOpen && phase != ConnectionPhase::kFinished;
}

// Input is read only to find the client's end of the stream.
constexpr bool DiscardsInput(ConnectionPhase phase) {
  return phase == ConnectionPhase::kCloseReceived || phase == ConnectionPhase::kTeardown ||
         phase == ConnectionPhase::kFinished;
}

}  // namespace wsgateway
