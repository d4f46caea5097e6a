#include "examples/chat_handshake.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wsgateway_examples {
namespace {

using wsgateway::v1::HandshakeRequest;

HandshakeRequest Upgrade(const std::string& path, const std::string& query) {
  HandshakeRequest request;
  request.set_connection_id("c1");
  request.set_path(path);
  request.set_query(query);
  return request;
}

// A good name is attached as metadata and the connection joins the lobby.
TEST(ChatHandshakeTest, AcceptsANameIntoTheLobby) {
  const auto response = DecideHandshake(Upgrade("/chat", "name=Ann%20Lee"));
  EXPECT_FALSE(response.has_reject());
  EXPECT_EQ(response.metadata().at("name"), "Ann Lee");
  ASSERT_EQ(response.groups_size(), 1);
  EXPECT_EQ(response.groups(0), "lobby");
}

// chat.v1 is chosen when offered, and nothing is chosen otherwise: the
// hook may only pick what the client offered.
TEST(ChatHandshakeTest, PicksChatV1OnlyWhenOffered) {
  auto request = Upgrade("/chat", "name=ann");
  EXPECT_EQ(DecideHandshake(request).subprotocol(), "");
  request.add_offered_subprotocols("other");
  request.add_offered_subprotocols("chat.v1");
  EXPECT_EQ(DecideHandshake(request).subprotocol(), "chat.v1");
}

// A missing or bad name is refused with 400 and a body saying why.
TEST(ChatHandshakeTest, RefusesBadNamesWith400AndAReason) {
  const struct {
    const char* query;
    const char* says;
  } cases[] = {
      {"", "connect to /chat?name=YOUR_NAME"},
      {"name=", "The name is empty."},
      {"name=%zz", "not valid percent-encoding"},
      {"name=%01x", "control or invisible character"},
      {"name=123456789012345678901234567890123", "longer than 32 characters"},
  };
  for (const auto& c : cases) {
    const auto response = DecideHandshake(Upgrade("/chat", c.query));
    ASSERT_TRUE(response.has_reject()) << c.query;
    EXPECT_EQ(response.reject().status(), 400u) << c.query;
    EXPECT_NE(response.reject().body().find(c.says), std::string::npos) << response.reject().body();
    ASSERT_EQ(response.reject().headers_size(), 1);
    EXPECT_EQ(response.reject().headers(0).value(), "text/plain; charset=utf-8");
  }
}

// Upgrades elsewhere than /chat are not the chat's.
TEST(ChatHandshakeTest, RefusesOtherPathsWith404) {
  const auto response = DecideHandshake(Upgrade("/chat/ann", "name=ann"));
  ASSERT_TRUE(response.has_reject());
  EXPECT_EQ(response.reject().status(), 404u);
}

}  // namespace
}  // namespace wsgateway_examples
