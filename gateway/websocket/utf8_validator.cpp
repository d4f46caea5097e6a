#include "gateway/websocket/utf8_validator.hpp"

#include <array>
#include <cstddef>
#include <cstring>

namespace wsgateway {
namespace {

// The DFA of the Unicode standard's table 3-7 (well-formed byte sequences).
// Bytes fall into classes that every state treats alike; each state knows
// which classes may come next. Restricting the second byte after E0, ED, F0
// and F4 is what rejects overlongs, surrogates and code points past
// U+10FFFF at the earliest byte.
enum State : std::uint8_t {
  kAccept,   // on a code-point boundary
  kReject,   // no continuation can make the message valid
  kTail1,    // one continuation byte (80..BF) owed
  kTail2,    // two continuation bytes owed
  kTail3,    // three continuation bytes owed
  kAfterE0,  // A0..BF, then one more: anything lower is overlong
  kAfterED,  // 80..9F, then one more: anything higher is a surrogate
  kAfterF0,  // 90..BF, then two more: anything lower is overlong
  kAfterF4,  // 80..8F, then two more: anything higher is past U+10FFFF
  kStateCount
};

enum ByteClass : std::uint8_t {
  kAscii,   // 00..7F
  kCont80,  // 80..8F
  kCont90,  // 90..9F
  kContA0,  // A0..BF
  kNever,   // C0, C1 (only overlongs), F5..FF (past U+10FFFF)
  kLead2,   // C2..DF
  kLeadE0,  // E0
  kLead3,   // E1..EC, EE, EF
  kLeadED,  // ED
  kLeadF0,  // F0
  kLead4,   // F1..F3
  kLeadF4,  // F4
  kClassCount
};

constexpr std::array<std::uint8_t, 256> MakeClasses() {
  std::array<std::uint8_t, 256> classes{};
  for (int b = 0; b < 256; ++b) {
    ByteClass c = kNever;
    if (b < 0x80) {
      c = kAscii;
    } else if (b < 0x90) {
      c = kCont80;
    } else if (b < 0xA0) {
      c = kCont90;
    } else if (b < 0xC0) {
      c = kContA0;
    } else if (b >= 0xC2 && b <= 0xDF) {
      c = kLead2;
    } else if (b == 0xE0) {
      c = kLeadE0;
    } else if (b == 0xED) {
      c = kLeadED;
    } else if (b >= 0xE1 && b <= 0xEF) {
      c = kLead3;
    } else if (b == 0xF0) {
      c = kLeadF0;
    } else if (b >= 0xF1 && b <= 0xF3) {
      c = kLead4;
    } else if (b == 0xF4) {
      c = kLeadF4;
    }
    classes[b] = c;
  }
  return classes;
}

using Row = std::array<std::uint8_t, kClassCount>;

// From a boundary, a lead byte picks the state; a continuation byte is invalid.
constexpr Row AcceptRow() {
  Row row{};
  row.fill(kReject);
  row[kAscii] = kAccept;
  row[kLead2] = kTail1;
  row[kLeadE0] = kAfterE0;
  row[kLead3] = kTail2;
  row[kLeadED] = kAfterED;
  row[kLeadF0] = kAfterF0;
  row[kLead4] = kTail3;
  row[kLeadF4] = kAfterF4;
  return row;
}

// Inside a sequence only the listed continuation classes lead to `next`.
constexpr Row ContinuationRow(bool allow80, bool allow90, bool allowA0, State next) {
  Row row{};
  row.fill(kReject);
  if (allow80) row[kCont80] = next;
  if (allow90) row[kCont90] = next;
  if (allowA0) row[kContA0] = next;
  return row;
}

constexpr std::array<Row, kStateCount> MakeTransitions() {
  std::array<Row, kStateCount> table{};
  table[kAccept] = AcceptRow();
  table[kReject].fill(kReject);
  table[kTail1] = ContinuationRow(true, true, true, kAccept);
  table[kTail2] = ContinuationRow(true, true, true, kTail1);
  table[kTail3] = ContinuationRow(true, true, true, kTail2);
  table[kAfterE0] = ContinuationRow(false, false, true, kTail1);
  table[kAfterED] = ContinuationRow(true, true, false, kTail1);
  table[kAfterF0] = ContinuationRow(false, true, true, kTail2);
  table[kAfterF4] = ContinuationRow(true, false, false, kTail2);
  return table;
}

constexpr std::array<std::uint8_t, 256> kClasses = MakeClasses();
constexpr std::array<Row, kStateCount> kTransitions = MakeTransitions();

// Text is mostly ASCII; between code points, whole words of it skip the DFA.
std::size_t SkipAsciiWords(const unsigned char* data, std::size_t size) {
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  std::size_t i = 0;
  while (i + 8 <= size) {
    std::uint64_t word;
    std::memcpy(&word, data + i, sizeof word);
    if (word & kHighBits) break;
    i += 8;
  }
  return i;
}

}  // namespace

bool Utf8Validator::Feed(std::string_view bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t size = bytes.size();
  std::uint32_t state = state_;
  std::size_t i = 0;
  while (i < size && state != kReject) {
    if (state == kAccept) {
      i += SkipAsciiWords(data + i, size - i);
      if (i == size) break;
    }
    state = kTransitions[state][kClasses[data[i]]];
    ++i;
  }
  state_ = state;
  return state != kReject;
}

bool Utf8Validator::Complete() const { return state_ == kAccept; }

void Utf8Validator::Reset() { state_ = kAccept; }

}  // namespace wsgateway
