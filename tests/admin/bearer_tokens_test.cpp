// The admin API's bearer tokens: what counts as a token in the file and the
// list, how the authorization metadata is read, and that a bad file stops
// start-up but never empties the set on reload.

#include "admin/bearer_tokens.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

namespace wsgateway::admin {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class BearerTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/wsgateway-bearer-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    file_ = std::string(pattern) + "/tokens";
  }
  void Write(const std::string& text) const { std::ofstream(file_, std::ios::trunc) << text; }

  static bool Accepts(const BearerTokens& tokens, const std::string& authorization) {
    return tokens.CheckAuthorization(authorization).ok();
  }

  std::string file_;
};

// Without tokens nothing is required and every call passes.
TEST_F(BearerTokensTest, NoTokensRequireNothing) {
  const BearerTokens tokens("", {"", "  "});
  EXPECT_FALSE(tokens.required());
  EXPECT_TRUE(tokens.CheckAuthorization(std::nullopt).ok());
  EXPECT_TRUE(Accepts(tokens, "Bearer anything"));
}

// Lines are trimmed; blank lines and '#' lines are skipped, CRLF files too.
TEST_F(BearerTokensTest, FileLinesAreTokensExceptBlanksAndComments) {
  Write("# comment\r\n  alpha  \r\n\r\n\tbeta\n#gamma\n");
  const BearerTokens tokens(file_, {});
  EXPECT_TRUE(tokens.required());
  EXPECT_EQ(tokens.count(), 2u);
  EXPECT_TRUE(Accepts(tokens, "Bearer alpha"));
  EXPECT_TRUE(Accepts(tokens, "Bearer beta"));
  EXPECT_FALSE(Accepts(tokens, "Bearer #gamma"));
  EXPECT_FALSE(Accepts(tokens, "Bearer alph"));
}

// The scheme is case-insensitive and must be followed by white space; what
// is not a bearer credential is reported as missing, a wrong token as not
// accepted.
TEST_F(BearerTokensTest, AuthorizationValuesAreParsedStrictly) {
  const BearerTokens tokens("", {"secret"});
  EXPECT_TRUE(Accepts(tokens, "Bearer secret"));
  EXPECT_TRUE(Accepts(tokens, "BEARER   secret "));
  EXPECT_FALSE(Accepts(tokens, "Bearersecret"));
  for (const auto* value : {"", "Bearer", "Bearer   ", "Basic secret", "secret"}) {
    const auto status = tokens.CheckAuthorization(std::string_view(value));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << value;
    EXPECT_THAT(status.error_message(), HasSubstr("missing bearer token")) << value;
  }
  EXPECT_EQ(tokens.CheckAuthorization(std::nullopt).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const auto wrong = tokens.CheckAuthorization(std::string_view("Bearer secreT"));
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "bearer token not accepted");
}

// A missing or token-less file stops start-up with the setting and path.
TEST_F(BearerTokensTest, UnusableFileThrowsNamingSettingAndPath) {
  try {
    BearerTokens tokens(file_, {"listed"});
    FAIL() << "a missing file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("--admin-token-file"), HasSubstr(file_), HasSubstr("cannot read")));
  }
  Write("# only a comment\n\n");
  try {
    BearerTokens tokens(file_, {"listed"});
    FAIL() << "a file without tokens was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("--admin-token-file"), HasSubstr(file_), HasSubstr("holds no token")));
  }
}

// A reload replaces the file's tokens and keeps the listed ones; a reload
// that fails keeps everything in force.
TEST_F(BearerTokensTest, ReloadReplacesFileTokensOrKeepsThemOnFailure) {
  Write("old\n");
  BearerTokens tokens(file_, {"listed"});
  Write("new\n");
  EXPECT_EQ(tokens.Reload(), "");
  EXPECT_TRUE(Accepts(tokens, "Bearer new"));
  EXPECT_TRUE(Accepts(tokens, "Bearer listed"));
  EXPECT_FALSE(Accepts(tokens, "Bearer old"));

  Write("\n# empty\n");
  EXPECT_THAT(tokens.Reload(), AllOf(HasSubstr("holds no token"), HasSubstr("stay")));
  std::remove(file_.c_str());
  EXPECT_THAT(tokens.Reload(), AllOf(HasSubstr("cannot read"), HasSubstr(file_)));
  EXPECT_TRUE(Accepts(tokens, "Bearer new"));
  EXPECT_TRUE(Accepts(tokens, "Bearer listed"));
  EXPECT_EQ(tokens.count(), 2u);
}

}  // namespace
}  // namespace wsgateway::admin
