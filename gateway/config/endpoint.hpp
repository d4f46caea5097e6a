#pragma once
// "host:port" and "[v6]:port" listener addresses.

#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

// Numeric addresses only (listeners bind, they do not resolve names);
// IPv6 in brackets.
std::optional<boost::asio::ip::tcp::endpoint> ParseEndpoint(std::string_view text);

std::string FormatEndpoint(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace wsgateway
