#include "gateway/runtime/connection_phase.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace wsgateway {
namespace {

using P = ConnectionPhase;

const std::vector<P>& AllPhases() {
  static const std::vector<P> phases = {
      P::kAccepting,     P::kTlsHandshake,  P::kReadingRequest, P::kAwaitingHook, P::kForwarding,
      P::kHttpKeepAlive, P::kLingering,     P::kUpgrading,      P::kOpen,         P::kCloseQueued,
      P::kCloseSent,     P::kCloseReceived, P::kTeardown,       P::kFinished,
  };
  return phases;
}

// Each phase reports the state the API has always shown for it: CONNECTION
// until the request's first byte, HANDSHAKE through the HTTP life, ACTIVE
// while open, CLOSING from the first close on, nothing once finished.
TEST(ConnectionPhaseTest, EveryPhaseMapsToItsConnectionState) {
  const std::vector<std::pair<P, v1::ConnectionState>> expected = {
      {P::kAccepting, v1::CONNECTION_STATE_CONNECTION},
      {P::kTlsHandshake, v1::CONNECTION_STATE_CONNECTION},
      {P::kReadingRequest, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kAwaitingHook, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kForwarding, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kHttpKeepAlive, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kLingering, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kUpgrading, v1::CONNECTION_STATE_HANDSHAKE},
      {P::kOpen, v1::CONNECTION_STATE_ACTIVE},
      {P::kCloseQueued, v1::CONNECTION_STATE_CLOSING},
      {P::kCloseSent, v1::CONNECTION_STATE_CLOSING},
      {P::kCloseReceived, v1::CONNECTION_STATE_CLOSING},
      {P::kTeardown, v1::CONNECTION_STATE_CLOSING},
      {P::kFinished, v1::CONNECTION_STATE_UNSPECIFIED},
  };
  ASSERT_EQ(expected.size(), AllPhases().size());
  for (const auto& [phase, state] : expected) {
    EXPECT_EQ(StateOf(phase), state) << "phase " << static_cast<int>(phase);
  }
}

// Only an open WebSocket closes with a handshake; every other live phase is
// dropped at once (as Close always did: RequestClose, else Abort); a
// finished connection has nothing left to close.
TEST(ConnectionPhaseTest, ClosePolicyFollowsThePhase) {
  for (const P phase : AllPhases()) {
    const CloseWay expected = phase == P::kOpen       ? CloseWay::kHandshake
                              : phase == P::kFinished ? CloseWay::kNothing
                                                      : CloseWay::kAbort;
    EXPECT_EQ(CloseWayFor(phase), expected) << "phase " << static_cast<int>(phase);
  }
}

// The close policy agrees with the state the API shows: a handshake exactly
// for ACTIVE connections.
TEST(ConnectionPhaseTest, HandshakeCloseExactlyWhenActive) {
  for (const P phase : AllPhases()) {
    EXPECT_EQ(CloseWayFor(phase) == CloseWay::kHandshake, StateOf(phase) == v1::CONNECTION_STATE_ACTIVE);
  }
}

TEST(ConnectionPhaseTest, EachPhaseHasItsDeadline) {
  const std::vector<std::pair<P, PhaseDeadline>> expected = {
      {P::kAccepting, PhaseDeadline::kHandshake},      {P::kTlsHandshake, PhaseDeadline::kHandshake},
      {P::kReadingRequest, PhaseDeadline::kHandshake}, {P::kAwaitingHook, PhaseDeadline::kHandshake},
      {P::kForwarding, PhaseDeadline::kNone},          {P::kHttpKeepAlive, PhaseDeadline::kKeepAlive},
      {P::kLingering, PhaseDeadline::kTeardown},       {P::kUpgrading, PhaseDeadline::kHandshake},
      {P::kOpen, PhaseDeadline::kHeartbeat},           {P::kCloseQueued, PhaseDeadline::kNone},
      {P::kCloseSent, PhaseDeadline::kCloseReply},     {P::kCloseReceived, PhaseDeadline::kCloseReply},
      {P::kTeardown, PhaseDeadline::kTeardown},        {P::kFinished, PhaseDeadline::kNone},
  };
  ASSERT_EQ(expected.size(), AllPhases().size());
  for (const auto& [phase, deadline] : expected) {
    EXPECT_EQ(DeadlineOf(phase), deadline) << "phase " << static_cast<int>(phase);
  }
}

// The WebSocket life starts with the open phase; input is discarded once
// the client's close arrived (or its input failed) and while tearing down.
TEST(ConnectionPhaseTest, WebSocketPhasesAndDiscardedInput) {
  for (const P phase : AllPhases()) {
    const bool websocket = phase == P::kOpen || phase == P::kCloseQueued || phase == P::kCloseSent ||
                           phase == P::kCloseReceived || phase == P::kTeardown;
    EXPECT_EQ(IsWebSocketPhase(phase), websocket) << "phase " << static_cast<int>(phase);
    const bool discards = phase == P::kCloseReceived || phase == P::kTeardown || phase == P::kFinished;
    EXPECT_EQ(DiscardsInput(phase), discards) << "phase " << static_cast<int>(phase);
  }
}

}  // namespace
}  // namespace wsgateway
