#include "gateway/backend/route.hpp"

#include <algorithm>

#include "gateway/backend/event_wire.hpp"

namespace wsgateway {

namespace {

// A client message becomes one event, and an event must fit in one batch
// the backend accepts: a larger message is refused (1009) as it arrives,
// rather than stalling the stream that every connection shares.
void FitToBackend(RouteOptions& options, const Config& config) {
  options.max_message_bytes =
      std::min(options.max_message_bytes, config.backend_max_message_bytes - kEventEnvelopeBytes);
}

RouteOptions GlobalOptions(const Config& config) {
  RouteOptions options;
  options.handshake_hook = config.handshake_hook;
  options.http_forwarding = config.http_forwarding;
  options.forward_close_frames = config.forward_close_frames;
  options.forward_ping_frames = config.forward_ping_frames;
  options.forward_pong_frames = config.forward_pong_frames;
  options.permessage_deflate = config.permessage_deflate;
  options.subprotocols = config.subprotocols;
  options.max_message_bytes = config.max_message_bytes;
  FitToBackend(options, config);
  for (const auto& header : config.response_headers) options.response_header_lines.append(header).append("\r\n");
  return options;
}

template <typename T>
void Override(T& target, const std::optional<T>& value) {
  if (value) target = *value;
}

Route FromConfig(const RouteConfig& entry, const Config& config) {
  Route route;
  route.path_prefix = entry.path_prefix;
  route.backend = entry.backend.value_or(config.backend);
  route.options = GlobalOptions(config);
  Override(route.options.handshake_hook, entry.handshake_hook);
  Override(route.options.http_forwarding, entry.http_forwarding);
  Override(route.options.forward_close_frames, entry.forward_close_frames);
  Override(route.options.forward_ping_frames, entry.forward_ping_frames);
  Override(route.options.forward_pong_frames, entry.forward_pong_frames);
  Override(route.options.permessage_deflate, entry.permessage_deflate);
  Override(route.options.subprotocols, entry.subprotocols);
  Override(route.options.max_message_bytes, entry.max_message_bytes);
  FitToBackend(route.options, config);
  return route;
}

}  // namespace

std::vector<Route> BuildRoutes(const Config& config) {
  std::vector<Route> routes;
  for (const auto& entry : config.routes) routes.push_back(FromConfig(entry, config));
  std::stable_sort(routes.begin(), routes.end(),
                   [](const Route& a, const Route& b) { return a.path_prefix.size() > b.path_prefix.size(); });
  Route fallback;
  fallback.backend = config.backend;
  fallback.options = GlobalOptions(config);
  routes.push_back(std::move(fallback));

  std::vector<std::string> targets;
  // The default route's target is always link 0, so a gateway without
  // routes has exactly the one link it always had.
  targets.push_back(config.backend);
  for (auto& route : routes) {
    const auto it = std::find(targets.begin(), targets.end(), route.backend);
    route.backend_index = static_cast<std::size_t>(it - targets.begin());
    if (it == targets.end()) targets.push_back(route.backend);
  }
  return routes;
}

std::vector<std::string> BackendTargets(const std::vector<Route>& routes) {
  std::vector<std::string> targets;
  for (const auto& route : routes) {
    if (route.backend_index >= targets.size()) targets.resize(route.backend_index + 1);
    targets[route.backend_index] = route.backend;
  }
  return targets;
}

const Route& MatchRoute(const std::vector<Route>& routes, std::string_view path) {
  for (const auto& route : routes) {
    if (path.starts_with(route.path_prefix)) return route;
  }
  return routes.back();
}

}  // namespace wsgateway
