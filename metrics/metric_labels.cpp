#include "metrics/metric_labels.hpp"

#include <array>

namespace wsgateway::metrics {
namespace {

constexpr std::array<std::string_view, kFrameKinds> kOpcodeLabels = {"text", "binary", "ping", "pong", "close"};
constexpr std::array<std::string_view, static_cast<std::size_t>(StateLabel::kCount)> kStateLabels = {
    "connection", "handshake", "active", "closing"};
constexpr std::array<std::string_view, kCommandKinds> kCommandLabels = {"push", "disconnect"};
constexpr std::array<std::string_view, kCommandResults> kResultLabels = {
    "ok", "invalid_argument", "not_found", "not_active", "queue_full", "unreachable"};
constexpr std::array<std::string_view, kRejectionReasons> kRejectionLabels = {
    "origin", "connection_limit", "address_limit", "handshake_timeout", "handshake_too_large"};

}  // namespace

std::string_view OpcodeLabel(FrameKind kind) { return kOpcodeLabels[static_cast<std::size_t>(kind)]; }
std::string_view StateLabelName(StateLabel state) { return kStateLabels[static_cast<std::size_t>(state)]; }
std::string_view CommandLabel(CommandKind kind) { return kCommandLabels[static_cast<std::size_t>(kind)]; }
std::string_view CommandResultLabel(CommandResult result) { return kResultLabels[static_cast<std::size_t>(result)]; }

std::string_view RejectionReasonLabel(RejectionReason reason) {
  return kRejectionLabels[static_cast<std::size_t>(reason)];
}

std::string CloseCodeLabel(unsigned code) {
  if (code >= 1000 && code <= 1015) return std::to_string(code);
  if (code >= 3000 && code <= 3999) return "3xxx";
  if (code >= 4000 && code <= 4999) return "4xxx";
  return "other";
}

std::string_view GrpcCodeLabel(int code) {
  switch (code) {
    case 0:  // OK
      return "OK";
    case 1:  // CANCELLED
      return "CANCELLED";
    case 3:  // INVALID_ARGUMENT
      return "INVALID_ARGUMENT";
    case 4:  // DEADLINE_EXCEEDED
      return "DEADLINE_EXCEEDED";
    case 5:  // NOT_FOUND
      return "NOT_FOUND";
    case 9:  // FAILED_PRECONDITION
      return "FAILED_PRECONDITION";
    case 8:  // RESOURCE_EXHAUSTED
      return "RESOURCE_EXHAUSTED";
    case 14:  // UNAVAILABLE
      return "UNAVAILABLE";
    case 16:  // UNAUTHENTICATED
      return "UNAUTHENTICATED";
    case 7:  // PERMISSION_DENIED
      return "PERMISSION_DENIED";
    case 13:  // INTERNAL
      return "INTERNAL";
    default:
      return "OTHER";
  }
}

}  // namespace wsgateway::metrics
