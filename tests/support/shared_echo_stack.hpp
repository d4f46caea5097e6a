#pragma once
// A test suite whose tests share one echo stack (echo backend + gateway);
// see SharedStack for Flags() and the helpers.

#include <gtest/gtest.h>

#include "tests/support/echo_stack.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {

template <typename Suite>
class SharedEchoStack : public SharedStack<Suite, EchoStack> {
 protected:
  // Proves that nothing else is queued for the client: its next message is
  // the echo of a fresh marker.
  static void ExpectNothingMoreThan(WsClient& client) {
    const std::string marker = "marker-" + UniquePath();
    ASSERT_FALSE(client.SendText(marker));
    const auto next = client.Read();
    ASSERT_FALSE(next.ec) << next.ec.message();
    EXPECT_EQ(next.payload, marker) << "an unexpected message arrived before the marker";
  }
};

}  // namespace wsgateway::testing
