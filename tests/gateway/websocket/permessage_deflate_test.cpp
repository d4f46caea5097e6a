// permessage-deflate negotiation (RFC 7692 sections 5 and 7.1) against the
// offers real clients send, the parameter rules of 7.1.1 and 7.1.2, the
// header syntax of RFC 6455 9.1, and malformed input of every kind, which
// must decline the offer, never fail the handshake.

#include "gateway/websocket/permessage_deflate.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace wsgateway {
namespace {

constexpr std::string_view kBothNoTakeover =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

DeflatePolicy Enabled() {
  DeflatePolicy policy;
  policy.enabled = true;
  return policy;
}

// Context takeover allowed both ways: the gateway adds nothing unasked.
DeflatePolicy Permissive() {
  DeflatePolicy policy = Enabled();
  policy.server_no_context_takeover = false;
  policy.client_no_context_takeover = false;
  return policy;
}

DeflateAgreement MustAgree(std::string_view offers, const DeflatePolicy& policy = Enabled()) {
  const auto agreement = NegotiateDeflate(offers, policy);
  EXPECT_TRUE(agreement.has_value()) << offers;
  return agreement.value_or(DeflateAgreement{});
}

std::string ResponseTo(std::string_view offers, const DeflatePolicy& policy = Enabled()) {
  return MustAgree(offers, policy).response;
}

void ExpectDeclined(std::string_view offers, const DeflatePolicy& policy = Enabled()) {
  const auto agreement = NegotiateDeflate(offers, policy);
  EXPECT_FALSE(agreement.has_value()) << "offer: " << offers << "\nresponse: " << agreement->response;
}

// ------------------------------------------------------------ clients
TEST(PermessageDeflateTest, DisabledPolicyDeclinesEverything) {
  DeflatePolicy policy;
  ExpectDeclined("permessage-deflate", policy);
  ExpectDeclined("permessage-deflate; client_max_window_bits", policy);
}

TEST(PermessageDeflateTest, NoOfferNoAgreement) {
  ExpectDeclined("");
  ExpectDeclined("x-webkit-deflate-frame");
  ExpectDeclined("foo; bar=baz, baz");
}

TEST(PermessageDeflateTest, FirefoxOffer) {
  const DeflateAgreement agreement = MustAgree("permessage-deflate");
  EXPECT_EQ(agreement.response, kBothNoTakeover);
  EXPECT_TRUE(agreement.server_no_context_takeover);
  EXPECT_TRUE(agreement.client_no_context_takeover);
  EXPECT_EQ(agreement.server_max_window_bits, 15);
  EXPECT_EQ(agreement.client_max_window_bits, 15);
}

TEST(PermessageDeflateTest, ChromeOffer) {
  const DeflateAgreement agreement = MustAgree("permessage-deflate; client_max_window_bits");
  // 15 is what the client assumes anyway, so it is not stated.
  EXPECT_EQ(agreement.response, kBothNoTakeover);
  EXPECT_EQ(agreement.client_max_window_bits, 15);
  EXPECT_EQ(agreement.server_max_window_bits, 15);
}

TEST(PermessageDeflateTest, ChromeOfferWithSmallerClientWindowPolicy) {
  DeflatePolicy policy = Enabled();
  policy.client_max_window_bits = 10;
  const DeflateAgreement agreement = MustAgree("permessage-deflate; client_max_window_bits", policy);
  EXPECT_EQ(agreement.response, std::string(kBothNoTakeover) + "; client_max_window_bits=10");
  EXPECT_EQ(agreement.client_max_window_bits, 10);
}

TEST(PermessageDeflateTest, PermissivePolicyAnswersWithTheBareName) {
  const DeflateAgreement agreement = MustAgree("permessage-deflate", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate");
  EXPECT_FALSE(agreement.server_no_context_takeover);
  EXPECT_FALSE(agreement.client_no_context_takeover);
}

// Autobahn section 12 and 13 offers (autobahn's PerMessageDeflateOffer).
TEST(PermessageDeflateTest, AutobahnOffers) {
  EXPECT_EQ(ResponseTo("permessage-deflate; client_no_context_takeover; client_max_window_bits", Permissive()),
            "permessage-deflate; client_no_context_takeover");
  EXPECT_EQ(ResponseTo("permessage-deflate; client_max_window_bits=8", Permissive()),
            "permessage-deflate; client_max_window_bits=8");
  EXPECT_EQ(ResponseTo("permessage-deflate; client_max_window_bits=15", Permissive()), "permessage-deflate");
  EXPECT_EQ(ResponseTo("permessage-deflate; server_max_window_bits=9", Permissive()),
            "permessage-deflate; server_max_window_bits=9");
  EXPECT_EQ(ResponseTo("permessage-deflate; server_max_window_bits=15", Permissive()),
            "permessage-deflate; server_max_window_bits=15");
  EXPECT_EQ(ResponseTo("permessage-deflate; server_no_context_takeover; server_max_window_bits=12", Permissive()),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12");
  // 13.7: several offers; the first asks for a window zlib cannot deflate with.
  const DeflateAgreement agreement = MustAgree(
      "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8, "
      "permessage-deflate; client_no_context_takeover; client_max_window_bits, permessage-deflate",
      Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; client_no_context_takeover");
  EXPECT_EQ(agreement.server_max_window_bits, 15);
}

// ------------------------------------------------- context takeover (7.1.1)
TEST(PermessageDeflateTest, OfferedServerNoContextTakeoverIsAlwaysEchoed) {
  const DeflateAgreement agreement = MustAgree("permessage-deflate; server_no_context_takeover", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; server_no_context_takeover");
  EXPECT_TRUE(agreement.server_no_context_takeover);
  EXPECT_FALSE(agreement.client_no_context_takeover);
}

TEST(PermessageDeflateTest, OfferedClientNoContextTakeoverIsEchoedToMakeItBinding) {
  const DeflateAgreement agreement = MustAgree("permessage-deflate; client_no_context_takeover", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; client_no_context_takeover");
  EXPECT_TRUE(agreement.client_no_context_takeover);
  EXPECT_FALSE(agreement.server_no_context_takeover);
}

TEST(PermessageDeflateTest, PolicyAddsEachNoContextTakeoverOnItsOwn) {
  DeflatePolicy server_only = Permissive();
  server_only.server_no_context_takeover = true;
  EXPECT_EQ(ResponseTo("permessage-deflate", server_only), "permessage-deflate; server_no_context_takeover");
  DeflatePolicy client_only = Permissive();
  client_only.client_no_context_takeover = true;
  EXPECT_EQ(ResponseTo("permessage-deflate", client_only), "permessage-deflate; client_no_context_takeover");
}

TEST(PermessageDeflateTest, NoContextTakeoverWithAValueDeclines) {
  ExpectDeclined("permessage-deflate; server_no_context_takeover=true");
  ExpectDeclined("permessage-deflate; client_no_context_takeover=1");
  ExpectDeclined("permessage-deflate; client_no_context_takeover=\"\"");
  ExpectDeclined("permessage-deflate; server_no_context_takeover=");
}

// ----------------------------------------------- server_max_window_bits (7.1.2.1)
TEST(PermessageDeflateTest, ServerMaxWindowBitsIsAnsweredWithTheSmallerOfOfferAndPolicy) {
  for (int offered = 9; offered <= 15; ++offered) {
    for (int policy_bits = 9; policy_bits <= 15; ++policy_bits) {
      DeflatePolicy policy = Permissive();
      policy.server_max_window_bits = policy_bits;
      const std::string offer = "permessage-deflate; server_max_window_bits=" + std::to_string(offered);
      const DeflateAgreement agreement = MustAgree(offer, policy);
      const int expected = std::min(offered, policy_bits);
      EXPECT_EQ(agreement.server_max_window_bits, expected) << offer;
      EXPECT_EQ(agreement.response, "permessage-deflate; server_max_window_bits=" + std::to_string(expected));
    }
  }
}

// zlib cannot deflate with a 256-byte window, so an offer that demands one
// is declined and the next one considered.
TEST(PermessageDeflateTest, ServerMaxWindowBitsEightDeclinesThatOffer) {
  ExpectDeclined("permessage-deflate; server_max_window_bits=8");
  DeflatePolicy small = Enabled();
  small.server_max_window_bits = 9;
  ExpectDeclined("permessage-deflate; server_max_window_bits=8", small);
  const DeflateAgreement agreement =
      MustAgree("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9");
  EXPECT_EQ(agreement.server_max_window_bits, 9);
}

// RFC 7692 allows stating a smaller window unasked but does not require it;
// the client's 15-bit inflater reads it either way.
TEST(PermessageDeflateTest, UnofferedServerMaxWindowBitsIsUsedButNotStated) {
  DeflatePolicy policy = Enabled();
  policy.server_max_window_bits = 10;
  const DeflateAgreement agreement = MustAgree("permessage-deflate", policy);
  EXPECT_EQ(agreement.response, kBothNoTakeover);
  EXPECT_EQ(agreement.server_max_window_bits, 10);
}

TEST(PermessageDeflateTest, ServerMaxWindowBitsNeedsAValue) {
  ExpectDeclined("permessage-deflate; server_max_window_bits");
  ExpectDeclined("permessage-deflate; server_max_window_bits=");
}

// ----------------------------------------------- client_max_window_bits (7.1.2.2)
TEST(PermessageDeflateTest, ClientMaxWindowBitsIsAnsweredOnlyWhenOffered) {
  DeflatePolicy policy = Enabled();
  policy.client_max_window_bits = 9;
  const DeflateAgreement agreement = MustAgree("permessage-deflate", policy);
  EXPECT_EQ(agreement.response, kBothNoTakeover);
  // The client did not say it can limit its window, so it will use 15.
  EXPECT_EQ(agreement.client_max_window_bits, 15);
}

TEST(PermessageDeflateTest, ClientMaxWindowBitsNeverExceedsTheOfferedValue) {
  for (int offered = 8; offered <= 15; ++offered) {
    for (int policy_bits = 8; policy_bits <= 15; ++policy_bits) {
      DeflatePolicy policy = Permissive();
      policy.client_max_window_bits = policy_bits;
      const std::string offer = "permessage-deflate; client_max_window_bits=" + std::to_string(offered);
      const DeflateAgreement agreement = MustAgree(offer, policy);
      const int expected = std::min(offered, policy_bits);
      EXPECT_EQ(agreement.client_max_window_bits, expected) << offer;
      EXPECT_EQ(agreement.response, expected == 15
                                        ? std::string("permessage-deflate")
                                        : "permessage-deflate; client_max_window_bits=" + std::to_string(expected));
    }
  }
}

TEST(PermessageDeflateTest, ClientMaxWindowBitsWithoutValueTakesThePolicy) {
  for (int policy_bits = 8; policy_bits <= 14; ++policy_bits) {
    DeflatePolicy policy = Permissive();
    policy.client_max_window_bits = policy_bits;
    const DeflateAgreement agreement = MustAgree("permessage-deflate; client_max_window_bits", policy);
    EXPECT_EQ(agreement.client_max_window_bits, policy_bits);
    EXPECT_EQ(agreement.response, "permessage-deflate; client_max_window_bits=" + std::to_string(policy_bits));
  }
}

TEST(PermessageDeflateTest, AllParametersTogether) {
  DeflatePolicy policy = Enabled();
  policy.server_max_window_bits = 12;
  policy.client_max_window_bits = 11;
  const DeflateAgreement agreement = MustAgree(
      "permessage-deflate; client_max_window_bits=13; server_max_window_bits=14; "
      "client_no_context_takeover; server_no_context_takeover",
      policy);
  EXPECT_EQ(agreement.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=12; client_max_window_bits=11");
  EXPECT_EQ(agreement.server_max_window_bits, 12);
  EXPECT_EQ(agreement.client_max_window_bits, 11);
}

// -------------------------------------------------------- parameter values
TEST(PermessageDeflateTest, WindowBitsValuesMustBeEightToFifteenWithoutLeadingZeros) {
  for (const std::string value : {"7", "16", "0", "08", "010", "+9", "-9", "9.0", "0x9", "1e1", "99999999999999999999",
                                  "\"08\"", "\"\"", "ten", "9a"}) {
    ExpectDeclined("permessage-deflate; client_max_window_bits=" + value);
    ExpectDeclined("permessage-deflate; server_max_window_bits=" + value);
  }
}

TEST(PermessageDeflateTest, QuotedValuesAreAccepted) {
  EXPECT_EQ(MustAgree("permessage-deflate; client_max_window_bits=\"10\"").client_max_window_bits, 10);
  EXPECT_EQ(MustAgree("permessage-deflate; server_max_window_bits=\"9\"").server_max_window_bits, 9);
  // A quoted-pair stands for its character.
  EXPECT_EQ(MustAgree("permessage-deflate; client_max_window_bits=\"1\\1\"").client_max_window_bits, 11);
}

TEST(PermessageDeflateTest, MalformedQuotedValuesDecline) {
  ExpectDeclined("permessage-deflate; client_max_window_bits=\"10");      // unterminated
  ExpectDeclined("permessage-deflate; client_max_window_bits=10\"");      // stray quote
  ExpectDeclined("permessage-deflate; client_max_window_bits=\"10\"x");   // text after it
  ExpectDeclined("permessage-deflate; client_max_window_bits=\" 10\"");   // not a token inside
  ExpectDeclined("permessage-deflate; client_max_window_bits=\"10\\\"");  // closing quote escaped
}

TEST(PermessageDeflateTest, UnknownParametersDecline) {
  ExpectDeclined("permessage-deflate; foo");
  ExpectDeclined("permessage-deflate; foo=bar");
  ExpectDeclined("permessage-deflate; client_max_window");
  ExpectDeclined("permessage-deflate; max_window_bits=10");
  const DeflateAgreement agreement =
      MustAgree("permessage-deflate; foo, permessage-deflate; server_no_context_takeover", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; server_no_context_takeover");
}

TEST(PermessageDeflateTest, DuplicateParametersDecline) {
  ExpectDeclined("permessage-deflate; server_no_context_takeover; server_no_context_takeover");
  ExpectDeclined("permessage-deflate; client_no_context_takeover; client_no_context_takeover");
  ExpectDeclined("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10");
  ExpectDeclined("permessage-deflate; client_max_window_bits; client_max_window_bits=10");
  ExpectDeclined("permessage-deflate; client_max_window_bits=10; CLIENT_MAX_WINDOW_BITS=10");
}

// ------------------------------------------------------------------ syntax
TEST(PermessageDeflateTest, NamesAreCaseInsensitive) {
  EXPECT_EQ(ResponseTo("PerMessage-Deflate", Permissive()), "permessage-deflate");
  const DeflateAgreement agreement =
      MustAgree("PERMESSAGE-DEFLATE; Server_No_Context_Takeover; CLIENT_MAX_WINDOW_BITS=9", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
}

TEST(PermessageDeflateTest, OptionalWhitespaceAnywhereItIsAllowed) {
  const DeflateAgreement agreement = MustAgree(
      " \tpermessage-deflate \t;\t client_max_window_bits \t= \t10 ; server_no_context_takeover\t ", Permissive());
  EXPECT_EQ(agreement.response, "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
  EXPECT_EQ(ResponseTo("permessage-deflate;client_max_window_bits=10", Permissive()),
            "permessage-deflate; client_max_window_bits=10");
}

TEST(PermessageDeflateTest, EmptyListElementsAreSkipped) {
  EXPECT_EQ(ResponseTo(", ,permessage-deflate ,,", Permissive()), "permessage-deflate");
  ExpectDeclined(",,,");
}

TEST(PermessageDeflateTest, OtherExtensionsAreIgnored) {
  EXPECT_EQ(ResponseTo("x-webkit-deflate-frame, permessage-deflate", Permissive()), "permessage-deflate");
  EXPECT_EQ(ResponseTo("foo; a=\"x, y; z\", permessage-deflate; client_no_context_takeover", Permissive()),
            "permessage-deflate; client_no_context_takeover");
  ExpectDeclined("permessage-deflate-x, deflate-frame, permessage, x-permessage-deflate");
}

// Several Sec-WebSocket-Extensions headers joined with ", " keep their order.
TEST(PermessageDeflateTest, TheClientsFirstAcceptableOfferWins) {
  DeflatePolicy policy = Permissive();
  policy.client_max_window_bits = 12;
  const DeflateAgreement agreement =
      MustAgree("permessage-deflate; client_max_window_bits=9, permessage-deflate; client_max_window_bits=10", policy);
  EXPECT_EQ(agreement.client_max_window_bits, 9);
  // Declined offers of every kind fall through to the last one.
  const DeflateAgreement fallback = MustAgree(
      "permessage-deflate; server_max_window_bits=8, permessage-deflate; foo, permessage-deflate;;, "
      "permessage-deflate; client_max_window_bits=07, permessage-deflate; server_no_context_takeover=x, "
      "permessage-deflate; client_max_window_bits=11",
      policy);
  EXPECT_EQ(fallback.response, "permessage-deflate; client_max_window_bits=11");
}

TEST(PermessageDeflateTest, QuotedCommasDoNotSplitOffers) {
  EXPECT_EQ(ResponseTo("permessage-deflate; client_max_window_bits=\"1,0\", permessage-deflate", Permissive()),
            "permessage-deflate");
  ExpectDeclined("permessage-deflate; client_max_window_bits=\"1,0\"");
}

// An unterminated quote swallows the rest of the header: nothing after it
// can be read as an offer, though offers before it still count.
TEST(PermessageDeflateTest, UnterminatedQuoteDeclinesTheRest) {
  ExpectDeclined("permessage-deflate; client_max_window_bits=\"10, permessage-deflate");
  EXPECT_EQ(ResponseTo("permessage-deflate, foo; a=\"b, permessage-deflate; server_no_context_takeover", Permissive()),
            "permessage-deflate");
}

TEST(PermessageDeflateTest, GarbageDeclines) {
  for (const std::string& offer : std::vector<std::string>{
           ";", "permessage-deflate;", "permessage-deflate;;", "permessage-deflate; ;client_no_context_takeover",
           "permessage-deflate; =10", "permessage-deflate; client_max_window_bits==10",
           "permessage-deflate; client_max_window_bits=10 11", "permessage-deflate; client max_window_bits=10",
           "permessage deflate", "\"permessage-deflate\"", "permessage-deflate=1", "permessage-deflate; \"a\"",
           "permessage-deflate; client_max_window_bits=(10)", "permessage-deflate; client_max_window_bits=1\x7f",
           std::string("permessage-deflate\0", 19), "permessage-deflate; client_no_context_takeover\r\n",
           "permessage-deflate\xff", "permessage-deflate; client_max_window_bits=\xc2\xb9\xc2\xb0"}) {
    ExpectDeclined(offer);
  }
}

// An out-of-range configuration is brought into range, never obeyed.
TEST(PermessageDeflateTest, OutOfRangePolicyIsClamped) {
  DeflatePolicy policy = Enabled();
  policy.server_max_window_bits = 8;
  policy.client_max_window_bits = 4;
  const DeflateAgreement small =
      MustAgree("permessage-deflate; client_max_window_bits; server_max_window_bits=15", policy);
  EXPECT_EQ(small.server_max_window_bits, 9);
  EXPECT_EQ(small.client_max_window_bits, 8);
  policy.server_max_window_bits = 20;
  policy.client_max_window_bits = 20;
  const DeflateAgreement large = MustAgree("permessage-deflate; client_max_window_bits", policy);
  EXPECT_EQ(large.server_max_window_bits, 15);
  EXPECT_EQ(large.client_max_window_bits, 15);
}

// Random headers from the pieces of real ones: whatever is agreed is in
// range, and the response is itself an offer that negotiates to the same
// agreement.
TEST(PermessageDeflateTest, RandomHeadersAgreeOnlyOnValidParameters) {
  const std::vector<std::string> pieces = {"permessage-deflate",
                                           "PerMessage-Deflate",
                                           "x-foo",
                                           ";",
                                           ";",
                                           ",",
                                           ",",
                                           " ",
                                           "\t",
                                           "=",
                                           "\"",
                                           "\\",
                                           "server_no_context_takeover",
                                           "client_no_context_takeover",
                                           "server_max_window_bits",
                                           "client_max_window_bits",
                                           "8",
                                           "9",
                                           "10",
                                           "15",
                                           "16",
                                           "08",
                                           "\"10\"",
                                           "x"};
  std::mt19937 rng(7692);
  std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
  std::uniform_int_distribution<int> length(1, 16);
  for (int round = 0; round < 20000; ++round) {
    std::string offers;
    for (int i = length(rng); i > 0; --i) offers += pieces[pick(rng)];
    for (const DeflatePolicy& policy : {Enabled(), Permissive()}) {
      const auto agreement = NegotiateDeflate(offers, policy);
      if (!agreement) continue;
      SCOPED_TRACE(offers);
      EXPECT_GE(agreement->server_max_window_bits, 9);
      EXPECT_LE(agreement->server_max_window_bits, 15);
      EXPECT_GE(agreement->client_max_window_bits, 8);
      EXPECT_LE(agreement->client_max_window_bits, 15);
      const auto again = NegotiateDeflate(agreement->response, policy);
      ASSERT_TRUE(again.has_value()) << agreement->response;
      EXPECT_EQ(again->response, agreement->response);
      EXPECT_EQ(again->server_no_context_takeover, agreement->server_no_context_takeover);
      EXPECT_EQ(again->client_no_context_takeover, agreement->client_no_context_takeover);
      EXPECT_EQ(again->server_max_window_bits, agreement->server_max_window_bits);
      EXPECT_EQ(again->client_max_window_bits, agreement->client_max_window_bits);
    }
  }
}

}  // namespace
}  // namespace wsgateway
