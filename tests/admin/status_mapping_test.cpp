// The admin API's statuses: codes chosen by meaning, and messages that name
// the connection and its state so an operator can act on them.

#include "admin/status_mapping.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace wsgateway::admin {
namespace {

using ::testing::HasSubstr;

constexpr char kId[] = "00000000000000ab-1-2a";

// Every connection state has its own upper-case name.
TEST(StatusMappingTest, StateNameSpellsEveryState) {
  EXPECT_EQ(StateName(v1::CONNECTION_STATE_CONNECTION), "CONNECTION");
  EXPECT_EQ(StateName(v1::CONNECTION_STATE_HANDSHAKE), "HANDSHAKE");
  EXPECT_EQ(StateName(v1::CONNECTION_STATE_ACTIVE), "ACTIVE");
  EXPECT_EQ(StateName(v1::CONNECTION_STATE_CLOSING), "CLOSING");
}

// A session that has finished reports UNSPECIFIED; it and any value outside
// the enum read as CLOSED rather than as garbage.
TEST(StatusMappingTest, StateNameCallsUnspecifiedAndUnknownStatesClosed) {
  EXPECT_EQ(StateName(v1::CONNECTION_STATE_UNSPECIFIED), "CLOSED");
  EXPECT_EQ(StateName(static_cast<v1::ConnectionState>(5)), "CLOSED");
  EXPECT_EQ(StateName(static_cast<v1::ConnectionState>(-1)), "CLOSED");
  EXPECT_EQ(StateName(static_cast<v1::ConnectionState>(1000)), "CLOSED");
}

// An empty id is the caller's mistake: INVALID_ARGUMENT naming the field.
TEST(StatusMappingTest, MissingConnectionIdIsInvalidArgumentNamingTheField) {
  const auto status = MissingConnectionId("connection_ids[3]");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("connection_ids[3]"));
  EXPECT_THAT(status.error_message(), HasSubstr("empty"));
}

// An id with no connection behind it is NOT_FOUND and names the id.
TEST(StatusMappingTest, ConnectionNotFoundIsNotFoundNamingTheId) {
  const auto status = ConnectionNotFound(kId);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr(std::string("'") + kId + "'"));
}

// Ids come from callers: whatever bytes they hold are quoted, not interpreted.
TEST(StatusMappingTest, ConnectionNotFoundQuotesArbitraryIdsVerbatim) {
  const std::string odd("a'b%s{}\n", 8);
  const auto status = ConnectionNotFound(odd);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr(odd));
}

// Acting on a connection that is not ACTIVE is FAILED_PRECONDITION; the
// message names the id, the state it is in and what only ACTIVE ones do.
TEST(StatusMappingTest, NotActiveIsFailedPreconditionNamingIdStateAndAction) {
  const std::vector<std::pair<v1::ConnectionState, std::string>> states = {
      {v1::CONNECTION_STATE_CONNECTION, "CONNECTION"},
      {v1::CONNECTION_STATE_HANDSHAKE, "HANDSHAKE"},
      {v1::CONNECTION_STATE_CLOSING, "CLOSING"},
      {v1::CONNECTION_STATE_UNSPECIFIED, "CLOSED"}};
  for (const auto& [state, name] : states) {
    const auto status = NotActive(kId, state, "can be disconnected");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << name;
    EXPECT_THAT(status.error_message(), HasSubstr(std::string("'") + kId + "'")) << name;
    EXPECT_THAT(status.error_message(), HasSubstr("is " + name + ";")) << name;
    EXPECT_THAT(status.error_message(), HasSubstr("only ACTIVE connections can be disconnected")) << name;
  }
}

// Passing the group limit is FAILED_PRECONDITION (it clears only when the
// caller leaves groups), naming the id, the counts and the way out.
TEST(StatusMappingTest, TooManyGroupsIsFailedPreconditionNamingIdCountsAndRemedy) {
  const auto status = TooManyGroups(kId, 62, 3);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr(std::string("'") + kId + "'"));
  EXPECT_THAT(status.error_message(), HasSubstr("is in 62 groups; joining 3 more"));
  EXPECT_THAT(status.error_message(), HasSubstr("limit of 64"));
  EXPECT_THAT(status.error_message(), HasSubstr("leave some groups first"));
}

// A queued frame is OK, with no message.
TEST(StatusMappingTest, EnqueueStatusOfQueuedIsOk) {
  const auto status = EnqueueStatus(Outcome::kOk, kId, v1::CONNECTION_STATE_ACTIVE, 1024);
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OK);
  EXPECT_TRUE(status.error_message().empty());
}

// A frame for a connection that is not ACTIVE is FAILED_PRECONDITION naming
// the id and the state the connection was in when the push arrived.
TEST(StatusMappingTest, EnqueueStatusOfNotActiveIsFailedPreconditionNamingIdAndState) {
  for (const auto& [state, name] :
       std::vector<std::pair<v1::ConnectionState, std::string>>{{v1::CONNECTION_STATE_CONNECTION, "CONNECTION"},
                                                                {v1::CONNECTION_STATE_HANDSHAKE, "HANDSHAKE"},
                                                                {v1::CONNECTION_STATE_CLOSING, "CLOSING"}}) {
    const auto status = EnqueueStatus(Outcome::kNotActive, kId, state, 1024);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << name;
    EXPECT_THAT(status.error_message(), HasSubstr(std::string("'") + kId + "'")) << name;
    EXPECT_THAT(status.error_message(), HasSubstr("is " + name + ";")) << name;
    EXPECT_THAT(status.error_message(), HasSubstr("accept messages")) << name;
  }
}

// A full send queue is RESOURCE_EXHAUSTED (backpressure) naming the id, the
// limit in bytes and the 1008 the slow client was closed with.
TEST(StatusMappingTest, EnqueueStatusOfQueueFullIsResourceExhaustedNamingIdLimitAndCloseCode) {
  const auto status = EnqueueStatus(Outcome::kQueueFull, kId, v1::CONNECTION_STATE_ACTIVE, 4 * 1024 * 1024);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr(std::string("'") + kId + "'"));
  EXPECT_THAT(status.error_message(), HasSubstr("4194304 bytes"));
  EXPECT_THAT(status.error_message(), HasSubstr("1008"));
}

// Caller input longer than 64 bytes is quoted as its first 64 bytes and its
// size, so an 8 KiB id cannot swell a status past a client's metadata limit.
TEST(StatusMappingTest, QuotedInputKeepsShortInputWholeAndCutsLongInput) {
  EXPECT_EQ(QuotedInput("abc"), "'abc'");
  EXPECT_EQ(QuotedInput(""), "''");
  const std::string exactly(kMaxQuotedInputBytes, 'x');
  EXPECT_EQ(QuotedInput(exactly), "'" + exactly + "'");
  const std::string huge(8192, 'i');
  EXPECT_EQ(QuotedInput(huge), "'" + std::string(kMaxQuotedInputBytes, 'i') + "'...(8192 bytes)");
}

// The cut never splits a UTF-8 sequence: a character that would straddle
// the limit is left out whole.
TEST(StatusMappingTest, QuotedInputCutsAtACharacterBoundary) {
  // 63 ASCII bytes, then a 3-byte character over bytes 64-66.
  const std::string text = std::string(63, 'a') + "\xE2\x9C\x93" + std::string(100, 'b');
  EXPECT_EQ(QuotedInput(text), "'" + std::string(63, 'a') + "'...(166 bytes)");
}

// Every status that names a connection quotes its id that way.
TEST(StatusMappingTest, StatusesQuoteAHugeIdAsAShortPrefix) {
  const std::string huge(8192, 'i');
  const std::vector<grpc::Status> statuses = {
      ConnectionNotFound(huge),
      NotActive(huge, v1::CONNECTION_STATE_CLOSING, "accept messages"),
      TooManyGroups(huge, 64, 1),
      EnqueueStatus(Outcome::kNotActive, huge, v1::CONNECTION_STATE_CLOSING, 1024),
      EnqueueStatus(Outcome::kNoMessageToContinue, huge, v1::CONNECTION_STATE_ACTIVE, 1024),
      EnqueueStatus(Outcome::kQueueFull, huge, v1::CONNECTION_STATE_ACTIVE, 1024)};
  for (const auto& status : statuses) {
    EXPECT_LT(status.error_message().size(), 400u) << status.error_message().substr(0, 200);
    EXPECT_THAT(status.error_message(), HasSubstr(QuotedInput(huge)));
  }
}

}  // namespace
}  // namespace wsgateway::admin
