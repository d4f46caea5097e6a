// Connection ids and page tokens. ParseConnectionId (gateway/data_plane/connection_id.*)
// reads every id an API client hands in; Gateway::Resolve reads
// ListConnections' page_token (admin_service.cpp) and every command's
// connection id with it. An id parses only in its one canonical spelling
// (formatting it again gives the same text), and a formatted id always
// parses back to itself. A token with another process's epoch, or a loop
// this gateway does not have, resolves to nothing.
//
// Input: the text of an id or page token.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "gateway/data_plane/connection_id.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/fuzz/idle_gateway.hpp"

using namespace wsgateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto id = ParseConnectionId(text);
  if (id) FUZZ_CHECK(FormatConnectionId(*id) == text);

  // The page token path: this process's epoch is random, so a token from
  // the input can only resolve if the input guessed it.
  const auto location = fuzz::TheIdleGateway().gateway->Resolve(text);
  if (location) {
    FUZZ_CHECK(id.has_value());
    FUZZ_CHECK(location->loop == id->loop && location->loop < fuzz::kIdleGatewayLoops);
    FUZZ_CHECK(location->counter == id->counter);
  }

  // The other direction: any id, formatted and parsed.
  if (size >= 20) {
    ConnectionId made;
    std::memcpy(&made.epoch, data, 8);
    std::memcpy(&made.loop, data + 8, 4);
    std::memcpy(&made.counter, data + 12, 8);
    const auto formatted = FormatConnectionId(made);
    const auto back = ParseConnectionId(formatted);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(*back == made);
  }
  return 0;
}
