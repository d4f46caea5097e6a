#pragma once
// Which connections a Broadcast or a listing applies to: the checks a
// ConnectionFilter must pass before any loop walks its connections, and the
// match run for each of them.

#include <string>
#include <string_view>

#include "gateway/data_plane/connection_tags.hpp"
#include "wsgateway/v1/admin.pb.h"

namespace wsgateway {

// Empty when `filter` may match some connection; otherwise a sentence naming
// the field at fault (a group no connection can be in, for instance).
std::string CheckFilter(const v1::ConnectionFilter& filter);

// CheckFilter for a Broadcast, which reaches ACTIVE connections only: a
// filter.state other than unset or ACTIVE could never match, so it is
// refused (naming filter.state) rather than run as a broadcast to nobody.
std::string CheckBroadcastFilter(const v1::ConnectionFilter& filter);

// Whether a connection in `state`, upgraded on `path` and carrying `tags`
// passes every field set in `filter`.
bool Matches(v1::ConnectionState state, std::string_view path, const ConnectionTags& tags,
             const v1::ConnectionFilter& filter);

}  // namespace wsgateway
