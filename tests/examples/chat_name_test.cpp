#include "examples/chat_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wsgateway_examples {
namespace {

std::optional<std::string> Name(std::string_view query, bool* malformed) {
  return QueryParameter(query, "name", malformed);
}

// The value is form-decoded: %XX is a byte and '+' a space.
TEST(QueryParameterTest, DecodesPercentEscapesAndPlus) {
  bool malformed = true;
  EXPECT_EQ(Name("name=ann%20b+c", &malformed), "ann b c");
  EXPECT_FALSE(malformed);
  EXPECT_EQ(Name("x=1&name=%C3%A9l%C3%A8ne&y=2", &malformed), "élène");
}

// Another key, or a key that only starts like it, is not the name.
TEST(QueryParameterTest, MissingKeyIsNullopt) {
  bool malformed = true;
  EXPECT_EQ(Name("", &malformed), std::nullopt);
  EXPECT_EQ(Name("names=ann&nam=bob", &malformed), std::nullopt);
  EXPECT_FALSE(malformed);
}

// "name" and "name=" are both an empty name, for NameProblem to refuse.
TEST(QueryParameterTest, KeyWithoutValueIsEmpty) {
  bool malformed = true;
  EXPECT_EQ(Name("name", &malformed), "");
  EXPECT_EQ(Name("name=&x=1", &malformed), "");
}

// The first occurrence counts.
TEST(QueryParameterTest, FirstOccurrenceWins) {
  bool malformed = true;
  EXPECT_EQ(Name("name=ann&name=bob", &malformed), "ann");
}

// A '%' without two hex digits after it is reported, not guessed at.
TEST(QueryParameterTest, BrokenPercentEscapeIsMalformed) {
  for (const char* query : {"name=%", "name=a%4", "name=%zz", "name=%4g"}) {
    bool malformed = false;
    EXPECT_EQ(Name(query, &malformed), std::nullopt) << query;
    EXPECT_TRUE(malformed) << query;
  }
}

// Names of 1-32 printable characters, in any script, are accepted.
TEST(NameProblemTest, AcceptsPrintableNamesUpTo32Characters) {
  EXPECT_EQ(NameProblem("a"), "");
  EXPECT_EQ(NameProblem("Ann Lee"), "");
  EXPECT_EQ(NameProblem("Zoë 🦊"), "");
  EXPECT_EQ(NameProblem(std::string(32, 'x')), "");
  // 32 characters of two bytes each: characters are counted, not bytes.
  std::string cyrillic;
  for (int i = 0; i < 32; ++i) cyrillic += "ж";
  EXPECT_EQ(NameProblem(cyrillic), "");
}

// Empty or too long names are refused with a reason.
TEST(NameProblemTest, RefusesEmptyAndTooLongNames) {
  EXPECT_EQ(NameProblem(""), "The name is empty.");
  EXPECT_EQ(NameProblem(std::string(33, 'x')), "The name is longer than 32 characters.");
}

// Control characters and invisible formatting characters are refused.
TEST(NameProblemTest, RefusesControlAndInvisibleCharacters) {
  for (const char* name : {"a\tb", "a\nb", "a\x7f", "a\u0085", "a\u200bb", "\u202eevil", "a\ufeff"}) {
    EXPECT_EQ(NameProblem(name), "The name contains a control or invisible character.") << name;
  }
  EXPECT_EQ(NameProblem(std::string("a\0b", 3)), "The name contains a control or invisible character.");
}

// A space at either end would make two names look alike.
TEST(NameProblemTest, RefusesSurroundingSpaces) {
  EXPECT_EQ(NameProblem(" ann"), "The name starts or ends with a space.");
  EXPECT_EQ(NameProblem("ann "), "The name starts or ends with a space.");
  EXPECT_EQ(NameProblem("ann\u00a0"), "The name starts or ends with a space.");
}

// Bytes that are not UTF-8 (a stray continuation, an overlong form, a
// surrogate, a truncated sequence) are refused.
TEST(NameProblemTest, RefusesInvalidUtf8) {
  for (const char* name : {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf5\x80\x80\x80"}) {
    EXPECT_EQ(NameProblem(name), "The name is not valid UTF-8.");
  }
}

}  // namespace
}  // namespace wsgateway_examples
