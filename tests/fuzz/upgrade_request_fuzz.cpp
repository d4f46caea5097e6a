// The HTTP upgrade request as the session reads it: raw bytes through
// Beast's request parser (header limit as configured, bytes arriving in
// chunks), then the route, the RFC 6455 checks
// (gateway/websocket/websocket_handshake.*), the origin policy, subprotocol
// selection, permessage-deflate negotiation, and the 101 response, which
// must parse back as a valid one.
//
// Input: 1 byte of chunk size (0: everything in one read), then the bytes
// the client sends.

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/backend/route.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/origin_policy.hpp"
#include "gateway/websocket/permessage_deflate.hpp"
#include "gateway/websocket/websocket_handshake.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;
using namespace wsgateway;

struct Setup {
  Config config;
  std::vector<Route> routes;
  OriginPolicy origins{{"https://app.example.com", "https://*.example.org", "null"}};

  Setup() {
    config.max_handshake_bytes = 4096;
    config.permessage_deflate = true;
    config.subprotocols = {"chat.v1", "chat.v2"};
    RouteConfig plain;
    plain.path_prefix = "/plain";
    plain.permessage_deflate = false;
    plain.subprotocols = std::vector<std::string>{};
    config.routes.push_back(plain);
    routes = BuildRoutes(config);
  }
};

const Setup& TheSetup() {
  static const Setup* setup = new Setup();
  return *setup;
}

// As the session takes it (session_handshake.cpp): two Origin fields are
// refused as an empty one.
std::optional<std::string_view> OriginOf(const UpgradeRequest& request) {
  const auto [first, last] = request.equal_range(http::field::origin);
  if (first == last) return std::nullopt;
  if (std::next(first) != last) return std::string_view();
  return first->value();
}

// The rest of the session's handshake on a parsed request header.
void Handshake(const Setup& setup, const UpgradeRequest& request) {
  const std::string_view target = request.target();
  const auto path = target.substr(0, target.find('?'));
  const Route& route = MatchRoute(setup.routes, path);
  FUZZ_CHECK(path.starts_with(route.path_prefix));
  if (!IsWebSocketUpgrade(request)) return;
  if (const auto refusal = CheckUpgradeRequest(request)) {
    FUZZ_CHECK(refusal->status == http::status::bad_request || refusal->status == http::status::upgrade_required);
    FUZZ_CHECK(!refusal->reason_label.empty() && !refusal->message.empty());
    return;
  }
  if (!setup.origins.Allows(OriginOf(request))) return;

  const auto subprotocol = SelectSubprotocol(request, route.options.subprotocols);
  const auto offered = OfferedSubprotocols(request);
  if (!subprotocol.empty()) {
    FUZZ_CHECK(std::find(offered.begin(), offered.end(), subprotocol) != offered.end());
  }
  DeflatePolicy policy;
  policy.enabled = route.options.permessage_deflate;
  std::string extensions;
  if (auto agreement = NegotiateDeflate(JoinedFieldValues(request, http::field::sec_websocket_extensions), policy)) {
    FUZZ_CHECK(policy.enabled);
    extensions = std::move(agreement->response);
  }
  const auto accept = WebSocketAccept(request[http::field::sec_websocket_key]);
  FUZZ_CHECK(accept.size() == 28);
  const auto response = BuildUpgradeResponse({accept, subprotocol, extensions, route.options.response_header_lines});

  // The client must be able to read what the gateway writes.
  http::response_parser<http::empty_body> parser;
  parser.skip(true);
  boost::beast::error_code ec;
  const auto used = parser.put(net::buffer(response), ec);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(used == response.size());
  FUZZ_CHECK(parser.is_header_done());
  const auto& parsed = parser.get();
  FUZZ_CHECK(parsed.result() == http::status::switching_protocols);
  FUZZ_CHECK(parsed[http::field::sec_websocket_accept] == accept);
  FUZZ_CHECK(parsed[http::field::sec_websocket_protocol] == subprotocol);
  FUZZ_CHECK(parsed[http::field::sec_websocket_extensions] == extensions);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Setup& setup = TheSetup();

  // As http::async_read_header: the parser stops after the header, and the
  // bytes it has not taken yet are offered again with the next read.
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(setup.config.max_handshake_bytes));
  parser.body_limit(setup.config.max_request_body_bytes);
  std::string pending;
  std::size_t offset = 0;
  while (!parser.is_header_done() && offset < bytes.size()) {
    const std::size_t n = chunk == 0 ? bytes.size() - offset : std::min(chunk, bytes.size() - offset);
    pending.append(bytes.substr(offset, n));
    offset += n;
    while (!pending.empty() && !parser.is_header_done()) {
      boost::beast::error_code ec;
      const auto used = parser.put(net::buffer(pending), ec);
      FUZZ_CHECK(used <= pending.size());
      pending.erase(0, used);
      if (ec == http::error::need_more) break;
      if (ec) return 0;  // 400, or 431 past the header limit
      if (used == 0) break;
    }
  }
  if (!parser.is_header_done()) return 0;
  Handshake(setup, parser.get());
  return 0;
}
