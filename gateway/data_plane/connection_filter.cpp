#include "gateway/data_plane/connection_filter.hpp"

#include "gateway/data_plane/group_rules.hpp"

namespace wsgateway {
namespace {

bool HasEveryEntry(const ConnectionTags& tags, const google::protobuf::Map<std::string, std::string>& wanted) {
  for (const auto& [key, value] : wanted) {
    const std::string* actual = tags.FindMetadata(key);
    if (actual == nullptr || *actual != value) return false;
  }
  return true;
}

}  // namespace

std::string CheckFilter(const v1::ConnectionFilter& filter) {
  if (filter.group().empty()) return {};
  return CheckGroupName("filter.group", filter.group());
}

std::string CheckBroadcastFilter(const v1::ConnectionFilter& filter) {
  const auto state = filter.state();
  if (state != v1::CONNECTION_STATE_UNSPECIFIED && state != v1::CONNECTION_STATE_ACTIVE) {
    const auto& name = v1::ConnectionState_Name(state);
    return "filter.state is " + (name.empty() ? std::to_string(state) : name) +
           ", but Broadcast reaches only ACTIVE connections: leave filter.state unset or set it to "
           "CONNECTION_STATE_ACTIVE";
  }
  return CheckFilter(filter);
}

bool Matches(v1::ConnectionState state, std::string_view path, const ConnectionTags& tags,
             const v1::ConnectionFilter& filter) {
  // Cheapest first: a broadcast runs this for every connection of a loop.
  if (filter.state() != v1::CONNECTION_STATE_UNSPECIFIED && state != filter.state()) return false;
  if (!filter.group().empty() && !tags.InGroup(filter.group())) return false;
  if (!path.starts_with(filter.path_prefix())) return false;
  return filter.metadata().empty() || HasEveryEntry(tags, filter.metadata());
}

}  // namespace wsgateway
