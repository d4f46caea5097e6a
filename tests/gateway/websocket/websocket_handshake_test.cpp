#include "gateway/websocket/websocket_handshake.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wsgateway {
namespace {

namespace http = boost::beast::http;

http::request<http::empty_body> ValidRequest() {
  http::request<http::empty_body> request{http::verb::get, "/chat", 11};
  request.set(http::field::host, "server.example.com");
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "keep-alive, Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

// RFC 6455 section 1.3's example.
TEST(WebSocketHandshakeTest, AcceptKeyOfTheRfcExample) {
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshakeTest, ValidRequestPasses) {
  const auto request = ValidRequest();
  EXPECT_TRUE(IsWebSocketUpgrade(request));
  EXPECT_FALSE(CheckUpgradeRequest(request).has_value());
}

TEST(WebSocketHandshakeTest, EachMissingPieceIsRefused) {
  auto request = ValidRequest();
  request.method(http::verb::post);
  EXPECT_EQ(CheckUpgradeRequest(request)->status, http::status::bad_request);

  request = ValidRequest();
  request.erase(http::field::host);
  EXPECT_EQ(CheckUpgradeRequest(request)->status, http::status::bad_request);

  request = ValidRequest();
  request.set(http::field::connection, "keep-alive");
  EXPECT_EQ(CheckUpgradeRequest(request)->status, http::status::bad_request);

  for (const char* key :
       {"", "short", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZ!==", "dGhlIHNhbXBsZSBub25jZQ"}) {
    request = ValidRequest();
    request.set(http::field::sec_websocket_key, key);
    EXPECT_EQ(CheckUpgradeRequest(request)->status, http::status::bad_request) << key;
  }

  for (const char* version : {"", "8", "12", "14"}) {
    request = ValidRequest();
    request.set(http::field::sec_websocket_version, version);
    EXPECT_EQ(CheckUpgradeRequest(request)->status, http::status::upgrade_required) << version;
  }

  request = ValidRequest();
  request.erase(http::field::upgrade);
  EXPECT_FALSE(IsWebSocketUpgrade(request));
}

TEST(WebSocketHandshakeTest, SubprotocolIsTheClientsFirstSupportedOffer) {
  auto request = ValidRequest();
  request.insert(http::field::sec_websocket_protocol, "mqtt, chat.v2");
  request.insert(http::field::sec_websocket_protocol, "chat.v1");
  const std::vector<std::string> supported = {"chat.v1", "chat.v2"};
  EXPECT_EQ(SelectSubprotocol(request, supported), "chat.v2");
  EXPECT_EQ(SelectSubprotocol(request, std::vector<std::string>{"wamp"}), "");
  EXPECT_EQ(SelectSubprotocol(ValidRequest(), supported), "") << "never one the client did not offer";
}

TEST(WebSocketHandshakeTest, ResponseCarriesWhatWasNegotiated) {
  const auto response = BuildUpgradeResponse(
      {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "chat.v2", "permessage-deflate; server_no_context_takeover", "X-Edge: 1\r\n"});
  EXPECT_EQ(response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Protocol: chat.v2\r\n"), std::string::npos);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"),
            std::string::npos);
  EXPECT_NE(response.find("\r\nX-Edge: 1\r\n\r\n"), std::string::npos);
  const auto bare = BuildUpgradeResponse({"abc", "", "", ""});
  EXPECT_EQ(bare.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ(bare.find("Sec-WebSocket-Extensions"), std::string::npos);
}

}  // namespace
}  // namespace wsgateway
