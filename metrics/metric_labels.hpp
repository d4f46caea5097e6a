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
enum class CommandResult : std::size_t { kOk, kInvalid, kNotFound, kNotActive, kQueueFull, kCount };
enum class CommandKind : std::size_t { kPush, kDisconnect, kCount };

// Indexes the per-state gauge children; values follow ConnectionState - 1.
enum class StateLabel : std::size_t { kConnection, kHandshake, kActive, kClosing, kCount };

inline constexpr std::size_t kFrameKinds = static_cast<std::size_t>(FrameKind::kCount);
inline constexpr std::size_t kCommandKinds = static_cast<std::size_t>(CommandKind::kCount);
inline constexpr std::size_t kCommandResults = static_cast<std::size_t>(CommandResult::kCount);

std::string_view OpcodeLabel(FrameKind kind);
std::string_view StateLabelName(StateLabel state);
std::string_view CommandLabel(CommandKind kind);
std::string_view CommandResultLabel(CommandResult result);

// Maps a close code to a bounded label: the RFC's registered codes stay as
// themselves, private ranges collapse to "3xxx" and "4xxx".
std::string CloseCodeLabel(unsigned code);

}  // namespace wsgateway::metrics
