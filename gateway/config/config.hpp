#pragma once
// The gateway's configuration: plain values with their defaults. Filled by
// LoadConfig (config_loader.hpp) from flags, environment and YAML file.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wsgateway {

// One entry of `routes` (YAML only): requests whose path starts with
// path_prefix go to `backend` with these options; what a route leaves
// unset comes from the global option of the same name.
struct RouteConfig {
  std::string path_prefix;
  std::optional<std::string> backend;
  std::optional<bool> handshake_hook;
  std::optional<bool> http_forwarding;
  std::optional<bool> forward_close_frames;
  std::optional<bool> forward_ping_frames;
  std::optional<bool> forward_pong_frames;
  std::optional<bool> permessage_deflate;
  std::optional<std::vector<std::string>> subprotocols;
  std::optional<std::size_t> max_message_bytes;
};

struct Config {
  // Listeners.
  std::string listen = "0.0.0.0:8080";
  std::string admin_listen = "127.0.0.1:50051";
  std::string metrics_listen = "0.0.0.0:9100";

  // gRPC target of the backend; empty runs without one (every upgrade is
  // then refused with 503 unless reject_upgrades_without_backend is off).
  std::string backend;

  // Event-loop threads; 0 means one per core.
  unsigned threads = 0;

  // WebSocket limits and timers.
  std::size_t max_message_bytes = 2 * 1024 * 1024;
  std::size_t send_queue_max_bytes = 4 * 1024 * 1024;
  std::size_t max_handshake_bytes = 16 * 1024;
  // What one connection may send, as token buckets: messages (control
  // frames included) and bytes (after decompression, so a compressed
  // message costs what it makes the gateway and backend move). A client
  // past either stops being read until its bucket refills: TCP slows it,
  // nothing is lost, and other clients keep their latency. 0 turns a
  // rate off.
  std::size_t client_message_rate = 1000;
  std::size_t client_message_burst = 2000;
  std::size_t client_byte_rate = 16 * 1024 * 1024;
  std::size_t client_byte_burst = 16 * 1024 * 1024;
  // Bytes held in messages that have not fully arrived (partial frames and
  // fragments), across all connections. A connection that would pass it is
  // closed with 1013 (try again later).
  std::size_t pending_messages_max_bytes = 256 * 1024 * 1024;
  std::chrono::milliseconds handshake_timeout{10'000};
  // Heartbeat: a connection silent for ping_interval gets a ping; one that
  // then stays silent for pong_timeout is dead and closed (1006). Zero
  // ping_interval turns heartbeats off.
  std::chrono::milliseconds ping_interval{25'000};
  std::chrono::milliseconds pong_timeout{10'000};
  // How long the gateway waits for the client's half of a close handshake,
  // and then for the client to close TCP, before it drops the connection.
  std::chrono::milliseconds close_timeout{5'000};
  // Subprotocols (Sec-WebSocket-Protocol) the gateway accepts; the first one
  // in the client's order of preference that is listed here is chosen.
  std::vector<std::string> subprotocols;
  // Headers added to every 101 response, as "Name: value".
  std::vector<std::string> response_headers;

  // permessage-deflate (RFC 7692), negotiated with clients that offer it.
  // Off by default: compression costs CPU per message. Both directions run
  // without context takeover, so no compression state outlives a message.
  bool permessage_deflate = false;
  // Messages pushed without an explicit compress flag are compressed from
  // this size up.
  std::size_t compression_threshold = 256;
  // zlib level, 1 (fastest) to 9 (smallest).
  int compression_level = 1;

  // Frame forwarding (Swoole's open_websocket_*_frame): the client's close,
  // ping and pong frames reach the backend as events. Pings are answered by
  // the gateway either way.
  bool forward_close_frames = false;
  bool forward_ping_frames = false;
  bool forward_pong_frames = false;

  // Backend link.
  std::size_t backend_buffer_bytes = 64 * 1024 * 1024;
  // Largest EventBatch sent to a backend: its gRPC receive limit (4 MiB
  // unless the backend raised it). A client message that could not fit is
  // refused with 1009 as it arrives.
  std::size_t backend_max_message_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds backend_event_timeout{60'000};
  // Least time between two event batches of one event loop (0: every pass).
  std::chrono::milliseconds backend_batch_interval{1};
  std::chrono::milliseconds backend_reconnect_min{100};
  std::chrono::milliseconds backend_reconnect_max{5'000};
  bool reject_upgrades_without_backend = true;

  // The handshake hook (Backend.Handshake, Swoole's onHandShake): the
  // backend decides every upgrade, within handshake_hook_timeout.
  bool handshake_hook = false;
  std::chrono::milliseconds handshake_hook_timeout{3'000};
  // HTTP forwarding (Backend.HandleRequest, Swoole's onRequest): plain
  // HTTP requests are answered by the backend instead of with 400.
  bool http_forwarding = false;
  std::size_t max_request_body_bytes = 1024 * 1024;
  std::chrono::milliseconds http_request_timeout{10'000};
  // A plain-HTTP connection stays open this long between requests, for at
  // most this many requests.
  std::chrono::milliseconds http_keepalive_timeout{5'000};
  unsigned http_keepalive_requests = 100;

  // Path prefix routes, most specific first when matching; the global
  // options above form the default route.
  std::vector<RouteConfig> routes;

  // TLS on the public listener (wss://): PEM certificate chain and private
  // key. Both or neither; re-read on SIGHUP and when the files change, for
  // new connections only, so a renewal drops nothing.
  std::string tls_cert_file;
  std::string tls_key_file;

  // Origins allowed to open WebSockets ("https://app.example.com", or
  // "https://*.example.com" for any subdomain); an upgrade from another
  // Origin gets 403. Empty allows every origin, and requests without an
  // Origin header (non-browser clients) are always allowed.
  std::vector<std::string> allowed_origins;
  // Connection limits; 0 means no limit beyond the open-file limit. Past
  // them new connections get 503 (total) or 429 (per client address) with
  // Retry-After.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_address = 0;
  std::chrono::milliseconds retry_after{5'000};

  // Admin API security. TLS (and mutual TLS when a client CA is given) on
  // the admin listener; bearer tokens from a file (one per line, re-read on
  // SIGHUP) and/or a list. With any token configured, every Admin call
  // needs "authorization: Bearer <token>"; health checks stay open.
  std::string admin_tls_cert_file;
  std::string admin_tls_key_file;
  std::string admin_tls_client_ca_file;
  std::string admin_token_file;
  std::vector<std::string> admin_tokens;

  // Cluster mode (docs/cluster.md): several replicas acting as one gateway,
  // their membership kept in Redis. A redis:// URL turns it on; without one
  // the gateway runs alone and needs no Redis. The password may come from a
  // file instead of the URL (it wins over the URL's).
  std::string cluster_redis;
  std::string cluster_redis_password_file;
  std::string cluster_key_prefix = "wsgateway";
  // The node-to-node gRPC service: where it listens, the address the other
  // replicas dial (published in the membership; unset: the listen address,
  // or this host's name when that is a wildcard), and the shared bearer
  // token every node-to-node call carries, without which cluster mode does
  // not start.
  std::string cluster_listen = "0.0.0.0:50061";
  std::string cluster_advertise;
  std::string cluster_token_file;
  // Node loss: a node that has not renewed its lease for cluster_lease
  // plus cluster_reap_grace is reaped by a survivor, which reports its
  // connections closed to the backends. The defaults put the last Close
  // within 8 s of a crash. cluster_fence "eager" has a node that cannot
  // renew close its connections itself before its lease runs out; "lazy"
  // (the default) keeps them open and closes them only once it learns it
  // was reaped.
  std::chrono::milliseconds cluster_lease{5000};
  std::chrono::milliseconds cluster_reap_grace{1000};
  std::string cluster_fence = "lazy";

  // Graceful drain on SIGTERM/SIGINT: readiness turns to not serving, the
  // listener closes, and connections are closed with 1001 at drain_rate per
  // second; whatever is left at drain_timeout is dropped and the process
  // exits 0. A second signal exits at once.
  std::chrono::milliseconds drain_timeout{25'000};
  std::size_t drain_rate = 500;

  // Logging.
  std::string log_level = "info";
  std::string log_format = "text";
};

}  // namespace wsgateway
