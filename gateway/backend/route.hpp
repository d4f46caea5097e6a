#pragma once
// Where a request goes and how its connection behaves. Routes map a path
// prefix to a backend target and to the options that may differ per route;
// the global options form the default route, which matches every path.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.hpp"

namespace wsgateway {

struct RouteOptions {
  bool handshake_hook = false;
  bool http_forwarding = false;
  bool forward_close_frames = false;
  bool forward_ping_frames = false;
  bool forward_pong_frames = false;
  bool permessage_deflate = false;
  std::vector<std::string> subprotocols;
  std::size_t max_message_bytes = 0;
  // The configured response_headers, formatted once as "Name: value\r\n"
  // lines for every 101.
  std::string response_header_lines;
};

struct Route {
  // "" for the default route.
  std::string path_prefix;
  // gRPC target; empty: no backend.
  std::string backend;
  // Index of the backend link serving `backend` (one link per distinct
  // target).
  std::size_t backend_index = 0;
  RouteOptions options;
};

// The configured routes, longest prefix first, then the default route.
// backend_index numbers the distinct targets in order of first use.
std::vector<Route> BuildRoutes(const Config& config);

// The distinct backend targets, by backend_index.
std::vector<std::string> BackendTargets(const std::vector<Route>& routes);

// The most specific route whose prefix the path starts with.
const Route& MatchRoute(const std::vector<Route>& routes, std::string_view path);

}  // namespace wsgateway
