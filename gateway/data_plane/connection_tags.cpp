#include "gateway/data_plane/connection_tags.hpp"

#include <algorithm>

namespace wsgateway {

void ConnectionTags::SetMetadata(std::string key, std::string value) {
  const auto it = std::lower_bound(metadata_.begin(), metadata_.end(), key,
                                   [](const auto& entry, const std::string& k) { return entry.first < k; });
  if (it != metadata_.end() && it->first == key) {
    it->second = std::move(value);
    return;
  }
  metadata_.emplace(it, std::move(key), std::move(value));
}

const std::string* ConnectionTags::FindMetadata(std::string_view key) const {
  const auto it = std::lower_bound(metadata_.begin(), metadata_.end(), key,
                                   [](const auto& entry, std::string_view k) { return entry.first < k; });
  return it != metadata_.end() && it->first == key ? &it->second : nullptr;
}

bool ConnectionTags::Join(std::string group) {
  const auto it = std::lower_bound(groups_.begin(), groups_.end(), group);
  if (it != groups_.end() && *it == group) return false;
  groups_.insert(it, std::move(group));
  return true;
}

bool ConnectionTags::Leave(std::string_view group) {
  const auto it = std::lower_bound(groups_.begin(), groups_.end(), group);
  if (it == groups_.end() || *it != group) return false;
  groups_.erase(it);
  return true;
}

bool ConnectionTags::InGroup(std::string_view group) const {
  return std::binary_search(groups_.begin(), groups_.end(), group);
}

}  // namespace wsgateway
