// Listener addresses: numeric "host:port" and "[v6]:port", parsed without
// resolving names and formatted back the same way.

#include "gateway/config/endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wsgateway {
namespace {

namespace ip = boost::asio::ip;

// A dotted IPv4 address and a port parse into that endpoint.
TEST(EndpointTest, ParsesIpv4HostAndPort) {
  const auto endpoint = ParseEndpoint("127.0.0.1:8080");
  ASSERT_TRUE(endpoint.has_value());
  EXPECT_TRUE(endpoint->address().is_v4());
  EXPECT_EQ(endpoint->address(), ip::make_address("127.0.0.1"));
  EXPECT_EQ(endpoint->port(), 8080);
}

// The wildcard address and port 0 (let the OS choose) are valid.
TEST(EndpointTest, ParsesWildcardAddressAndPortZero) {
  const auto endpoint = ParseEndpoint("0.0.0.0:0");
  ASSERT_TRUE(endpoint.has_value());
  EXPECT_TRUE(endpoint->address().is_unspecified());
  EXPECT_EQ(endpoint->port(), 0);
}

// Ports run from 0 to 65535.
TEST(EndpointTest, AcceptsTheHighestPort) {
  const auto endpoint = ParseEndpoint("10.1.2.3:65535");
  ASSERT_TRUE(endpoint.has_value());
  EXPECT_EQ(endpoint->port(), 65535);
}

// IPv6 addresses are written in brackets.
TEST(EndpointTest, ParsesBracketedIpv6) {
  const auto loopback = ParseEndpoint("[::1]:9000");
  ASSERT_TRUE(loopback.has_value());
  EXPECT_TRUE(loopback->address().is_v6());
  EXPECT_TRUE(loopback->address().is_loopback());
  EXPECT_EQ(loopback->port(), 9000);

  const auto any = ParseEndpoint("[::]:80");
  ASSERT_TRUE(any.has_value());
  EXPECT_TRUE(any->address().is_v6());
  EXPECT_TRUE(any->address().is_unspecified());

  const auto full = ParseEndpoint("[2001:db8:0:0:0:0:0:1]:443");
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->address(), ip::make_address("2001:db8::1"));
  EXPECT_EQ(full->port(), 443);

  const auto mapped = ParseEndpoint("[::ffff:127.0.0.1]:1");
  ASSERT_TRUE(mapped.has_value());
  EXPECT_TRUE(mapped->address().is_v6());
  EXPECT_TRUE(mapped->address().to_v6().is_v4_mapped());
}

// Listeners bind, they do not resolve: host names are refused.
TEST(EndpointTest, RefusesHostNames) {
  for (const char* text : {"localhost:8080", "example.com:80", "ip6-localhost:80", "[localhost]:80"}) {
    EXPECT_EQ(ParseEndpoint(text), std::nullopt) << text;
  }
}

// Ports that are missing, out of range or not plain decimal are refused.
TEST(EndpointTest, RefusesBadPorts) {
  for (const char* text :
       {"127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999999999999999999", "127.0.0.1:-1", "127.0.0.1:+80",
        "127.0.0.1: 80", "127.0.0.1:80 ", "127.0.0.1:0x50", "127.0.0.1:8o", "[::1]:", "[::1]:70000", "[::1]:http"}) {
    EXPECT_EQ(ParseEndpoint(text), std::nullopt) << text;
  }
}

// Text that is not host:port at all is refused without throwing.
TEST(EndpointTest, RefusesMalformedInput) {
  const std::string with_nul("127.0.0.1:80\0", 13);
  for (const std::string& text : {std::string(),
                                  std::string(":"),
                                  std::string(":80"),
                                  std::string("8080"),
                                  std::string("127.0.0.1"),
                                  std::string("[::1]"),
                                  std::string("[::1:80"),
                                  std::string("::1]:80"),
                                  std::string("[]:80"),
                                  std::string("256.0.0.1:80"),
                                  std::string("1.2.3:80"),
                                  std::string("1.2.3.4.5:80"),
                                  std::string(" 127.0.0.1:80"),
                                  std::string("[::1]]:80"),
                                  std::string("[[::1]]:80"),
                                  std::string("[:::1]:80"),
                                  std::string("[12345::1]:80"),
                                  with_nul,
                                  std::string(4096, ':'),
                                  std::string(4096, '1') + ":80"}) {
    EXPECT_EQ(ParseEndpoint(text), std::nullopt) << "'" << text << "'";
  }
}

// IPv4 endpoints format as "a.b.c.d:port".
TEST(EndpointTest, FormatsIpv4WithoutBrackets) {
  EXPECT_EQ(FormatEndpoint({ip::make_address("127.0.0.1"), 8080}), "127.0.0.1:8080");
  EXPECT_EQ(FormatEndpoint({ip::make_address("0.0.0.0"), 0}), "0.0.0.0:0");
  EXPECT_EQ(FormatEndpoint({ip::make_address("255.255.255.255"), 65535}), "255.255.255.255:65535");
}

// IPv6 endpoints format in brackets, in the canonical short form.
TEST(EndpointTest, FormatsIpv6InBrackets) {
  EXPECT_EQ(FormatEndpoint({ip::make_address("::1"), 9000}), "[::1]:9000");
  EXPECT_EQ(FormatEndpoint({ip::make_address("::"), 80}), "[::]:80");
  EXPECT_EQ(FormatEndpoint({ip::make_address("2001:db8:0:0:0:0:0:1"), 443}), "[2001:db8::1]:443");
}

// What FormatEndpoint writes, ParseEndpoint reads back to the same endpoint.
TEST(EndpointTest, FormatAndParseRoundTrip) {
  for (const char* text : {"127.0.0.1:8080", "0.0.0.0:0", "10.0.0.255:65535", "[::1]:9000", "[::]:1",
                           "[2001:db8::1]:443", "[fe80::1:2:3:4]:5", "[::ffff:127.0.0.1]:6"}) {
    const auto parsed = ParseEndpoint(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(FormatEndpoint(*parsed), text);
    EXPECT_EQ(ParseEndpoint(FormatEndpoint(*parsed)), parsed) << text;
  }
}

}  // namespace
}  // namespace wsgateway
