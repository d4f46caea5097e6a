#pragma once
// Which web origins may open WebSockets (allowed_origins): the defence
// against cross-site WebSocket hijacking. Browsers send the page's origin
// with every upgrade and the WebSocket API has no same-origin rule of its
// own, so without this check any web page can open a connection that
// carries the visitor's cookies.
//
// Entries are origins as RFC 6454 serialises them, "scheme://host[:port]",
// compared with scheme and host case-insensitive and a default port (80 for
// http and ws, 443 for https and wss) equal to no port; "scheme://*.domain"
// for every subdomain of domain at any depth (never domain itself); "null"
// for the opaque origin of sandboxed frames and local files; or "*" for
// every origin.
//
// Thread-safety: immutable after construction; Allows from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgateway {

// Why `entry` is not an allowed_origins entry; empty when it is one.
std::string CheckOriginPattern(std::string_view entry);

class OriginPolicy {
 public:
  // Throws std::invalid_argument naming the first bad entry: start-up only
  // (the configuration loader has already refused them with
  // CheckOriginPattern).
  explicit OriginPolicy(const std::vector<std::string>& allowed);

  // No list, or "*" in it.
  bool allows_every_origin() const { return every_origin_; }

  // `origin` is the Origin header's value, nullopt when the request has
  // none: such a client is not a browser, so no page can be abusing it, and
  // it is allowed. A value that is not an origin is refused, and so is the
  // opaque origin "null" unless the list names it.
  bool Allows(std::optional<std::string_view> origin) const;

 private:
  struct Pattern {
    std::string scheme;
    // The host, or for "*.example.com" the suffix ".example.com".
    std::string host;
    bool any_subdomain = false;
    // The explicit port or the scheme's default; 0 when neither exists.
    std::uint32_t port = 0;
  };

  bool every_origin_ = false;
  bool null_allowed_ = false;
  std::vector<Pattern> patterns_;
};

}  // namespace wsgateway
