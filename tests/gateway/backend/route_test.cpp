#include "gateway/backend/route.hpp"

#include <gtest/gtest.h>

namespace wsgateway {
namespace {

Config ConfigWithRoutes() {
  Config config;
  config.backend = "127.0.0.1:50052";
  config.max_message_bytes = 1000;
  config.subprotocols = {"echo"};
  RouteConfig chat;
  chat.path_prefix = "/chat";
  chat.backend = "127.0.0.1:50053";
  chat.handshake_hook = true;
  chat.subprotocols = std::vector<std::string>{"chat.v1"};
  RouteConfig chat_admin;
  chat_admin.path_prefix = "/chat/admin";
  chat_admin.max_message_bytes = 10;
  RouteConfig feed;
  feed.path_prefix = "/feed";
  feed.backend = "127.0.0.1:50053";
  config.routes = {chat, chat_admin, feed};
  return config;
}

TEST(RouteTest, LongestPrefixWinsAndTheDefaultRouteCatchesTheRest) {
  const auto routes = BuildRoutes(ConfigWithRoutes());
  EXPECT_EQ(MatchRoute(routes, "/chat/admin/x").path_prefix, "/chat/admin");
  EXPECT_EQ(MatchRoute(routes, "/chat/room").path_prefix, "/chat");
  EXPECT_EQ(MatchRoute(routes, "/chatter").path_prefix, "/chat") << "a plain prefix, as in nginx's location";
  EXPECT_EQ(MatchRoute(routes, "/feed").path_prefix, "/feed");
  EXPECT_EQ(MatchRoute(routes, "/").path_prefix, "");
  EXPECT_EQ(MatchRoute(routes, "").path_prefix, "");
}

TEST(RouteTest, UnsetOptionsComeFromTheGlobalOnes) {
  const auto routes = BuildRoutes(ConfigWithRoutes());
  const auto& chat = MatchRoute(routes, "/chat");
  EXPECT_TRUE(chat.options.handshake_hook);
  EXPECT_EQ(chat.options.subprotocols, std::vector<std::string>{"chat.v1"});
  EXPECT_EQ(chat.options.max_message_bytes, 1000u);
  const auto& chat_admin = MatchRoute(routes, "/chat/admin");
  EXPECT_FALSE(chat_admin.options.handshake_hook) << "routes do not inherit from shorter routes";
  EXPECT_EQ(chat_admin.options.max_message_bytes, 10u);
  EXPECT_EQ(chat_admin.backend, "127.0.0.1:50052");
  EXPECT_EQ(MatchRoute(routes, "/").options.subprotocols, std::vector<std::string>{"echo"});
}

TEST(RouteTest, OneBackendIndexPerDistinctTargetWithTheDefaultFirst) {
  const auto routes = BuildRoutes(ConfigWithRoutes());
  EXPECT_EQ(MatchRoute(routes, "/").backend_index, 0u);
  EXPECT_EQ(MatchRoute(routes, "/chat/admin").backend_index, 0u);
  EXPECT_EQ(MatchRoute(routes, "/chat").backend_index, 1u);
  EXPECT_EQ(MatchRoute(routes, "/feed").backend_index, 1u);
  EXPECT_EQ(BackendTargets(routes), (std::vector<std::string>{"127.0.0.1:50052", "127.0.0.1:50053"}));
}

TEST(RouteTest, WithoutRoutesThereIsOneDefaultRoute) {
  Config config;
  config.backend = "b:1";
  const auto routes = BuildRoutes(config);
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(BackendTargets(routes), std::vector<std::string>{"b:1"});
}

}  // namespace
}  // namespace wsgateway
