#pragma once
// What every loop and session of one gateway shares. All members outlive the
// loops; none is owned here.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gateway/backend/route.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/origin_policy.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway {

class BackendLink;
class ConnectionObserver;
class ListenerTls;

struct GatewayContext {
  const Config& config;
  metrics::GatewayMetrics& metrics;
  // Longest prefix first; the default route last.
  const std::vector<Route>& routes;
  // One link per distinct backend target, by Route::backend_index.
  const std::vector<std::unique_ptr<BackendLink>>& backends;
  // Identifies this process in connection ids; a node reported lost
  // while it ran continues under a new one (Gateway::Fence).
  const std::atomic<std::uint64_t>& epoch;
  // allowed_origins, checked on every upgrade.
  const OriginPolicy& origins;
  // TLS on the public listener; null when it speaks plain TCP.
  const ListenerTls* tls = nullptr;
  // Bytes held in unfinished client messages, all loops together
  // (pending_messages_max_bytes); owned by the Gateway.
  std::atomic<std::size_t>* pending_message_bytes = nullptr;
  // Client sockets open, all loops together: counted by the listener as it
  // accepts (a socket posted to its loop holds a descriptor before its
  // session exists), given back when the session is destroyed. The listener
  // stops accepting short of the open-file limit. Owned by the Gateway.
  std::atomic<std::size_t>* open_client_sockets = nullptr;
  // Told of WebSocket connections opening and closing (cluster mode's
  // registry); null when nobody asked. Set before the loops start.
  ConnectionObserver* observer = nullptr;
};

}  // namespace wsgateway
