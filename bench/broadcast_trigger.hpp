#pragma once
// How wsbench fanout asks a server to broadcast one message to every
// connection: through the gateway's admin gRPC API (Admin.Broadcast), or
// through a control WebSocket connection to /_broadcast, which the benchmark's
// Beast server relays to all its other connections.
//
// Thread-safety: every member is called on the run's strand, and every Done
// callback runs on that strand too.

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bench_common.hpp"

namespace wsbench {

// The outcome of Start or of one Send.
struct TriggerResult {
  std::string error;                    // empty on success
  std::optional<std::uint64_t> queued;  // admin: connections the server queued the broadcast for
};

class BroadcastTrigger {
 public:
  using Done = std::function<void(const TriggerResult&)>;

  virtual ~BroadcastTrigger() = default;

  // Gets ready to send to `receivers` connections (connects, or waits until
  // the server lists them); `done` once ready.
  virtual void Start(std::uint64_t receivers, Done done) = 0;
  // Asks for one text broadcast of `payload`; `done` once the server has
  // accepted it (admin: the call returned; ws: the message was written).
  virtual void Send(std::shared_ptr<const std::string> payload, Done done) = 0;
  // Ends the trigger's connection once what was sent is out; no Done after
  // this except for sends already in progress.
  virtual void Stop() = 0;
};

// A control WebSocket connection to url's host and port, target /_broadcast,
// bound to loopback source address number `source_index`.
std::shared_ptr<BroadcastTrigger> MakeWsTrigger(RunStrand strand, const Url& url, std::uint64_t source_index);

// Admin.Broadcast calls to the gRPC `target` (e.g. "ipv4:127.0.0.1:50051"),
// filtered by `path_prefix` unless it is empty. Start waits until
// Admin.ListConnections shows at least `receivers` ACTIVE connections under
// the prefix. Calls use gRPC's callback API, so no Asio thread ever waits
// for one.
std::shared_ptr<BroadcastTrigger> MakeAdminTrigger(RunStrand strand, const std::string& target,
                                                   const std::string& path_prefix);

}  // namespace wsbench
