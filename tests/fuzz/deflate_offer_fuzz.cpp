// permessage-deflate offer negotiation (gateway/websocket/permessage_deflate.*) on
// the client's Sec-WebSocket-Extensions values. Whatever the offers, an
// agreement stays within the policy and zlib's ranges, its response is a
// plain header value, and offering that response again agrees to exactly
// the same parameters (the server's answer is a valid offer of itself).
//
// Input: 1 byte of policy, then the offers.
//   bit 0: server_no_context_takeover; bit 1: client_no_context_takeover;
//   bits 2-4: server_max_window_bits - 8 (8 is clamped to 9);
//   bits 5-7: client_max_window_bits - 8.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/websocket/permessage_deflate.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using wsgateway::DeflateAgreement;
using wsgateway::DeflatePolicy;

bool IsResponseChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ';' || c == ' ' || c == '=';
}

bool SameParameters(const DeflateAgreement& a, const DeflateAgreement& b) {
  return a.server_no_context_takeover == b.server_no_context_takeover &&
         a.client_no_context_takeover == b.client_no_context_takeover &&
         a.server_max_window_bits == b.server_max_window_bits && a.client_max_window_bits == b.client_max_window_bits &&
         a.response == b.response;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  DeflatePolicy policy;
  policy.enabled = true;
  policy.server_no_context_takeover = (data[0] & 1) != 0;
  policy.client_no_context_takeover = (data[0] & 2) != 0;
  policy.server_max_window_bits = 8 + ((data[0] >> 2) & 7);
  policy.client_max_window_bits = 8 + ((data[0] >> 5) & 7);
  const std::string_view offers(reinterpret_cast<const char*>(data) + 1, size - 1);

  DeflatePolicy disabled = policy;
  disabled.enabled = false;
  FUZZ_CHECK(!wsgateway::NegotiateDeflate(offers, disabled));

  const auto agreement = wsgateway::NegotiateDeflate(offers, policy);
  if (!agreement) return 0;
  FUZZ_CHECK(agreement->server_max_window_bits >= 9 && agreement->server_max_window_bits <= 15);
  FUZZ_CHECK(agreement->server_max_window_bits <= std::max(policy.server_max_window_bits, 9));
  FUZZ_CHECK(agreement->client_max_window_bits >= 8 && agreement->client_max_window_bits <= 15);
  FUZZ_CHECK(agreement->client_max_window_bits == 15 ||
             agreement->client_max_window_bits <= policy.client_max_window_bits);
  FUZZ_CHECK(!policy.server_no_context_takeover || agreement->server_no_context_takeover);
  FUZZ_CHECK(!policy.client_no_context_takeover || agreement->client_no_context_takeover);
  FUZZ_CHECK(agreement->response.starts_with("permessage-deflate"));
  for (const char c : agreement->response) FUZZ_CHECK(IsResponseChar(c));

  const auto again = wsgateway::NegotiateDeflate(agreement->response, policy);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(SameParameters(*agreement, *again));
  return 0;
}
