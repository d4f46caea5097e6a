#include "gateway/config/config_printer.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "gateway/config/config_keys.hpp"
#include "gateway/config/units.hpp"

namespace wsgateway {
namespace {

// Text that a YAML 1.1 reader would take for a boolean or null ("off" as a
// log level) is quoted, so that other tools read the file as wsgateway does.
void EmitText(YAML::Emitter& out, const std::string& text) {
  static const std::set<std::string> kMisread = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"};
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (kMisread.contains(lower)) out << YAML::DoubleQuoted;
  out << text;
}

void EmitList(YAML::Emitter& out, const std::vector<std::string>& items) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const auto& item : items) EmitText(out, item);
  out << YAML::EndSeq;
}

void EmitOption(YAML::Emitter& out, const char* key, const std::optional<bool>& value) {
  if (value) out << YAML::Key << key << YAML::Value << *value;
}

// One `routes` entry with the options it sets; the keys follow RouteKeys().
void EmitRoute(YAML::Emitter& out, const RouteConfig& route) {
  out << YAML::BeginMap;
  out << YAML::Key << "path_prefix" << YAML::Value;
  EmitText(out, route.path_prefix);
  if (route.backend) {
    out << YAML::Key << "backend" << YAML::Value;
    EmitText(out, *route.backend);
  }
  EmitOption(out, "handshake_hook", route.handshake_hook);
  EmitOption(out, "http_forwarding", route.http_forwarding);
  EmitOption(out, "forward_close_frames", route.forward_close_frames);
  EmitOption(out, "forward_ping_frames", route.forward_ping_frames);
  EmitOption(out, "forward_pong_frames", route.forward_pong_frames);
  EmitOption(out, "permessage_deflate", route.permessage_deflate);
  if (route.subprotocols) {
    out << YAML::Key << "subprotocols" << YAML::Value;
    EmitList(out, *route.subprotocols);
  }
  if (route.max_message_bytes) {
    out << YAML::Key << "max_message_bytes" << YAML::Value << FormatBytes(*route.max_message_bytes);
  }
  out << YAML::EndMap;
}

}  // namespace

std::string PrintConfig(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& key : ConfigKeys()) {
    out << YAML::Key << std::string(key.name) << YAML::Value;
    if (key.form == ConfigForm::kRoutes) {
      out << (config.routes.empty() ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
      for (const auto& route : config.routes) EmitRoute(out, route);
      out << YAML::EndSeq;
    } else if (IsList(key.form)) {
      EmitList(out, FormatList(key, config));
    } else if (key.form == ConfigForm::kText || key.form == ConfigForm::kFile || key.form == ConfigForm::kRedisUrl) {
      EmitText(out, FormatScalar(key, config));
    } else {
      out << FormatScalar(key, config);
    }
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace wsgateway
