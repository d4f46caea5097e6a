// allowed_origins: which Origin header values may open WebSockets, and which
// entries the configuration accepts.

#include "gateway/http/origin_policy.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace wsgateway {
namespace {

// Without a list every origin is allowed, even "null" and nonsense: the
// check is opt-in.
TEST(OriginPolicyTest, EmptyListAllowsEveryOrigin) {
  const OriginPolicy policy({});
  EXPECT_TRUE(policy.allows_every_origin());
  for (const char* origin : {"https://evil.example", "null", "not an origin", ""}) {
    EXPECT_TRUE(policy.Allows(origin)) << origin;
  }
}

// A request without Origin is not from a browser, so no page can be
// abusing it: allowed whatever the list.
TEST(OriginPolicyTest, RequestWithoutOriginIsAlwaysAllowed) {
  const OriginPolicy policy({"https://app.example.com"});
  EXPECT_FALSE(policy.allows_every_origin());
  EXPECT_TRUE(policy.Allows(std::nullopt));
}

TEST(OriginPolicyTest, ExactOriginMatchesOnlyItself) {
  const OriginPolicy policy({"https://app.example.com"});
  EXPECT_TRUE(policy.Allows("https://app.example.com"));
  EXPECT_FALSE(policy.Allows("http://app.example.com")) << "another scheme is another origin";
  EXPECT_FALSE(policy.Allows("https://app.example.com:8443")) << "another port is another origin";
  EXPECT_FALSE(policy.Allows("https://other.example.com"));
  EXPECT_FALSE(policy.Allows("https://example.com"));
  EXPECT_FALSE(policy.Allows("https://app.example.com.evil.net"));
  EXPECT_FALSE(policy.Allows("https://evilapp.example.com"));
}

// RFC 6454: scheme and host are case-insensitive, in the list and in the
// header.
TEST(OriginPolicyTest, SchemeAndHostCompareCaseInsensitively) {
  const OriginPolicy policy({"HTTPS://App.Example.COM"});
  EXPECT_TRUE(policy.Allows("https://app.example.com"));
  EXPECT_TRUE(policy.Allows("Https://APP.example.com"));
}

// Browsers leave the scheme's default port out; a list that spells it
// out means the same origin.
TEST(OriginPolicyTest, DefaultPortEqualsNoPort) {
  const OriginPolicy https({"https://app.example.com:443"});
  EXPECT_TRUE(https.Allows("https://app.example.com"));
  EXPECT_TRUE(https.Allows("https://app.example.com:443"));
  const OriginPolicy http({"http://localhost"});
  EXPECT_TRUE(http.Allows("http://localhost:80"));
  EXPECT_FALSE(http.Allows("http://localhost:8080"));
}

TEST(OriginPolicyTest, ExplicitPortMustMatch) {
  const OriginPolicy policy({"http://localhost:8080", "http://127.0.0.1:3000", "http://[::1]:3000"});
  EXPECT_TRUE(policy.Allows("http://localhost:8080"));
  EXPECT_TRUE(policy.Allows("http://127.0.0.1:3000"));
  EXPECT_TRUE(policy.Allows("http://[::1]:3000"));
  EXPECT_FALSE(policy.Allows("http://localhost"));
  EXPECT_FALSE(policy.Allows("http://localhost:8081"));
  EXPECT_FALSE(policy.Allows("http://[::1]"));
}

// "*.example.com" is every subdomain at any depth, never example.com
// itself nor a domain that merely ends in the same letters.
TEST(OriginPolicyTest, WildcardMatchesSubdomainsOnly) {
  const OriginPolicy policy({"https://*.example.com"});
  EXPECT_TRUE(policy.Allows("https://a.example.com"));
  EXPECT_TRUE(policy.Allows("https://a.b.example.com"));
  EXPECT_TRUE(policy.Allows("https://A.Example.Com"));
  EXPECT_FALSE(policy.Allows("https://example.com"));
  EXPECT_FALSE(policy.Allows("https://evil-example.com"));
  EXPECT_FALSE(policy.Allows("https://evilexample.com"));
  EXPECT_FALSE(policy.Allows("https://example.com.evil.net"));
  EXPECT_FALSE(policy.Allows("https://.example.com"));
  EXPECT_FALSE(policy.Allows("http://a.example.com")) << "the scheme still counts";
  EXPECT_FALSE(policy.Allows("https://a.example.com:8443")) << "the port still counts";
}

TEST(OriginPolicyTest, StarAllowsEveryOrigin) {
  const OriginPolicy policy({"https://app.example.com", "*"});
  EXPECT_TRUE(policy.allows_every_origin());
  EXPECT_TRUE(policy.Allows("https://anything.test"));
  EXPECT_TRUE(policy.Allows("null"));
}

// Sandboxed frames and local files send "null": any of them could be
// anyone, so it is refused unless listed.
TEST(OriginPolicyTest, OpaqueOriginOnlyWhenListed) {
  EXPECT_FALSE(OriginPolicy({"https://app.example.com"}).Allows("null"));
  const OriginPolicy listed({"https://app.example.com", "null"});
  EXPECT_TRUE(listed.Allows("null"));
  EXPECT_FALSE(listed.Allows("https://other.example.com"));
}

// A header value that is not an origin matches nothing.
TEST(OriginPolicyTest, MalformedOriginsAreRefused) {
  const OriginPolicy policy({"https://app.example.com", "https://*.example.com"});
  for (const char* origin : {"", "app.example.com", "https://app.example.com/", "https://app.example.com/path",
                             "https://user@app.example.com", "https://app.example.com:",
                             "https://app.example.com:99999", "https://app.example.com:80x", "https://",
                             "https://*.example.com", "https://app example.com", "https:/app.example.com"}) {
    EXPECT_FALSE(policy.Allows(origin)) << origin;
  }
}

TEST(OriginPolicyTest, CheckOriginPatternAcceptsTheDocumentedForms) {
  for (const char* entry : {"https://app.example.com", "http://localhost:8080", "https://*.example.com", "*", "null",
                            "http://[::1]:3000", "chrome-extension://abcdef"}) {
    EXPECT_EQ(CheckOriginPattern(entry), "") << entry;
  }
}

// Entries that could never match a browser's Origin are configuration
// mistakes; the reason names what is wrong.
TEST(OriginPolicyTest, CheckOriginPatternExplainsBadEntries) {
  EXPECT_NE(CheckOriginPattern("app.example.com").find("scheme"), std::string::npos);
  EXPECT_NE(CheckOriginPattern("https://app.example.com/").find("path"), std::string::npos);
  EXPECT_NE(CheckOriginPattern("https://app.example.com:http").find("port"), std::string::npos);
  EXPECT_NE(CheckOriginPattern("https://").find("host"), std::string::npos);
  EXPECT_NE(CheckOriginPattern("https://a.*.example.com"), "");
  EXPECT_NE(CheckOriginPattern("https://*."), "");
  EXPECT_NE(CheckOriginPattern("https://[::1"), "");
  EXPECT_NE(CheckOriginPattern("1http://x"), "");
}

TEST(OriginPolicyTest, ConstructorRefusesBadEntries) {
  EXPECT_THROW(OriginPolicy({"https://app.example.com/"}), std::invalid_argument);
}

}  // namespace
}  // namespace wsgateway
