#pragma once
// What a connection carries besides its socket: metadata attached at the
// handshake (a user id, a tenant) and the groups (rooms) it belongs to.
// Broadcast and ListConnections filter on them. Small sorted vectors: a
// connection has a handful of each, and an empty one costs no allocation.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgateway {

class ConnectionTags {
 public:
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  // Sets `key` (replacing an earlier value).
  void SetMetadata(std::string key, std::string value);
  // The value of `key`, or nullptr.
  const std::string* FindMetadata(std::string_view key) const;
  // Sorted by key.
  const Metadata& metadata() const { return metadata_; }

  // False when already a member.
  bool Join(std::string group);
  // False when not a member.
  bool Leave(std::string_view group);
  bool InGroup(std::string_view group) const;
  // Sorted.
  const std::vector<std::string>& groups() const { return groups_; }

 private:
  Metadata metadata_;
  std::vector<std::string> groups_;
};

}  // namespace wsgateway
