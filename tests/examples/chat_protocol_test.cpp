#include "examples/chat_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wsgateway_examples {
namespace {

// Quotes, backslashes and control characters are escaped; everything else,
// UTF-8 included, passes as it is.
TEST(JsonStringTest, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonString(""), R"("")");
  EXPECT_EQ(JsonString(R"(say "hi" \o/)"), R"("say \"hi\" \\o/")");
  EXPECT_EQ(JsonString("a\nb\tc\r"), R"("a\nb\tc\r")");
  EXPECT_EQ(JsonString(std::string("\x01\x1f\0", 3)), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(JsonString("élan </script>"), R"("élan </script>")");
}

// A chat line names its sender.
TEST(ChatProtocolTest, ChatLineCarriesSenderAndText) {
  EXPECT_EQ(ChatLineJson("ann", "hi \"bob\""), R"({"type":"message","from":"ann","text":"hi \"bob\""})");
}

// Joins and leaves carry who is online after them.
TEST(ChatProtocolTest, PresenceCarriesTheOnlineList) {
  EXPECT_EQ(PresenceJson("joined", "bob", {"ann", "bob"}), R"({"type":"joined","name":"bob","online":["ann","bob"]})");
  EXPECT_EQ(PresenceJson("left", "bob", {}), R"({"type":"left","name":"bob","online":[]})");
}

}  // namespace
}  // namespace wsgateway_examples
