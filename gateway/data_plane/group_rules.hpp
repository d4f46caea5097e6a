#pragma once
// What a group name may be and how many groups a connection may hold. Shared
// by the admin API and the handshake hook so both refuse the same names the
// same way.

#include <cstddef>
#include <string>
#include <string_view>

namespace wsgateway {

// Long enough for "tenant/room/thread" style names, short enough that a
// connection's 64 groups stay a few KiB.
inline constexpr std::size_t kMaxGroupNameBytes = 128;
// Bounds the memory and the per-connection cost of a group filter.
inline constexpr std::size_t kMaxGroupsPerConnection = 64;

// Empty when `name` may name a group: 1-128 bytes of valid UTF-8.
// Otherwise a sentence about `field` (e.g. "groups[2]") that says what is
// wrong.
std::string CheckGroupName(std::string_view field, std::string_view name);

}  // namespace wsgateway
