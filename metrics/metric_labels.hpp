#pragma once
// The bounded label values of the gateway's metrics, as enums that index
// arrays of pre-resolved children or counters.

#include <cstddef>
#include <string>
#include <string_view>

namespace wsgateway::metrics {

// Indexes the per-opcode children; the order matches OpcodeLabel().
enum class FrameKind : std::size_t { kText, kBinary, kPing, kPong, kClose, kCount };

// Outcome of a command from the backend stream or an admin request.
// kUnreachable: cluster mode, the connection's owner did not answer in time.
enum class CommandResult : std::size_t { kOk, kInvalid, kNotFound, kNotActive, kQueueFull, kUnreachable, kCount };
enum class CommandKind : std::size_t { kPush, kDisconnect, kCount };

// Indexes the per-state gauge children; values follow ConnectionState - 1.
enum class StateLabel : std::size_t { kConnection, kHandshake, kActive, kClosing, kCount };

// Why a client connection was refused or dropped before its upgrade; the
// order matches RejectionReasonLabel().
enum class RejectionReason : std::size_t {
  kOrigin,             // Origin not in allowed_origins: 403
  kConnectionLimit,    // max_connections reached: 503
  kAddressLimit,       // max_connections_per_address reached: 429
  kHandshakeTimeout,   // request (and hook) not done within handshake_timeout: dropped
  kHandshakeTooLarge,  // request header over max_handshake_bytes: 431
  kCount
};

inline constexpr std::size_t kFrameKinds = static_cast<std::size_t>(FrameKind::kCount);
inline constexpr std::size_t kCommandKinds = static_cast<std::size_t>(CommandKind::kCount);
inline constexpr std::size_t kCommandResults = static_cast<std::size_t>(CommandResult::kCount);
inline constexpr std::size_t kRejectionReasons = static_cast<std::size_t>(RejectionReason::kCount);

std::string_view OpcodeLabel(FrameKind kind);
std::string_view StateLabelName(StateLabel state);
std::string_view CommandLabel(CommandKind kind);
std::string_view CommandResultLabel(CommandResult result);
std::string_view RejectionReasonLabel(RejectionReason reason);
// A gRPC status code's name (OK, NOT_FOUND, ...; OTHER for the rare ones),
// from its number, so metrics need no gRPC headers.
std::string_view GrpcCodeLabel(int code);

// Maps a close code to a bounded label: the RFC's registered codes stay as
// themselves, private ranges collapse to "3xxx" and "4xxx".
std::string CloseCodeLabel(unsigned code);

}  // namespace wsgateway::metrics
