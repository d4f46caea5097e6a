#include "gateway/data_plane/group_rules.hpp"

#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {

std::string CheckGroupName(std::string_view field, std::string_view name) {
  if (name.empty()) return std::string(field) + " is empty: a group needs a name of 1-128 bytes";
  if (name.size() > kMaxGroupNameBytes) {
    return std::string(field) + " is " + std::to_string(name.size()) + " bytes long; a group name is at most " +
           std::to_string(kMaxGroupNameBytes) + " bytes";
  }
  if (!IsValidUtf8(name)) return std::string(field) + " is not valid UTF-8; group names are UTF-8 text";
  return {};
}

}  // namespace wsgateway
