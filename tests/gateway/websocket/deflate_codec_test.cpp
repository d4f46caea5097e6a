// The permessage-deflate codec against the examples of RFC 7692 section
// 7.2.3, round trips of every size, context takeover and its absence,
// window sizes, streaming in tiny frames, corrupt and truncated data, and a
// decompression bomb that must be stopped at the limit.

#include "gateway/websocket/deflate_codec.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace wsgateway {
namespace {

using Result = MessageInflater::Result;

constexpr std::size_t kNoLimit = std::size_t{1} << 40;

std::string Bytes(std::initializer_list<unsigned> bytes) {
  std::string out;
  for (const unsigned b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// RFC 7692 7.2.3.1: "Hello" as one compressed message.
const std::string kHello = Bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});

// Text that compresses like real messages: words repeat, order varies.
std::string Text(std::size_t size, unsigned seed = 1) {
  static const std::vector<std::string> words = {"the ",  "gateway ", "sends ",  "{\"type\":", "\"message\", ",
                                                 "data ", "to ",      "client ", "42, ",       "websocket "};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, words.size() - 1);
  std::string text;
  while (text.size() < size) text += words[pick(rng)];
  text.resize(size);
  return text;
}

std::string RandomBytes(std::size_t size, unsigned seed = 2) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(byte(rng));
  return bytes;
}

std::string Compress(MessageDeflater& deflater, std::string_view message, bool reset_after = true) {
  std::string out;
  EXPECT_TRUE(deflater.Compress(message, out, reset_after));
  return out;
}

std::string Compress(std::string_view message, int window_bits = 15) {
  MessageDeflater deflater(window_bits);
  return Compress(deflater, message);
}

// Inflates one message delivered as `frames`; kOk leaves it in `out`.
Result Inflate(MessageInflater& inflater, const std::vector<std::string>& frames, std::string& out,
               std::size_t limit = kNoLimit, bool reset_after = true) {
  for (const std::string& frame : frames) {
    const Result result = inflater.Feed(frame, out, limit);
    if (result != Result::kOk) return result;
  }
  return inflater.Finish(out, limit, reset_after);
}

std::string MustInflate(MessageInflater& inflater, const std::vector<std::string>& frames, bool reset_after = true) {
  std::string out;
  EXPECT_EQ(Inflate(inflater, frames, out, kNoLimit, reset_after), Result::kOk);
  return out;
}

std::string MustInflate(const std::string& compressed, int window_bits = 15) {
  MessageInflater inflater(window_bits);
  return MustInflate(inflater, {compressed});
}

std::vector<std::string> Pieces(const std::string& data, std::size_t piece) {
  std::vector<std::string> pieces;
  for (std::size_t i = 0; i < data.size(); i += piece) pieces.push_back(data.substr(i, piece));
  return pieces;
}

// ------------------------------------------------------ RFC 7692 7.2.3
TEST(DeflateCodecTest, RfcHelloCompressed) { EXPECT_EQ(Compress("Hello"), kHello); }

TEST(DeflateCodecTest, RfcHelloInflated) { EXPECT_EQ(MustInflate(kHello), "Hello"); }

// 7.2.3.1: the same message split over two frames.
TEST(DeflateCodecTest, RfcHelloInTwoFrames) {
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf2, 0x48, 0xcd}), Bytes({0xc9, 0xc9, 0x07, 0x00})}), "Hello");
}

// 7.2.3.2: with context takeover the second "Hello" is a back-reference.
TEST(DeflateCodecTest, RfcSharedWindowCompressesTheRepeat) {
  MessageDeflater deflater(15);
  EXPECT_EQ(Compress(deflater, "Hello", false), kHello);
  EXPECT_EQ(Compress(deflater, "Hello", false), Bytes({0xf2, 0x00, 0x11, 0x00, 0x00}));
}

TEST(DeflateCodecTest, RfcSharedWindowInflates) {
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {kHello}, false), "Hello");
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf2, 0x00, 0x11, 0x00, 0x00})}, false), "Hello");
}

// Without context takeover each message starts from an empty window.
TEST(DeflateCodecTest, NoContextTakeoverCompressesEachMessageAlike) {
  MessageDeflater deflater(15);
  EXPECT_EQ(Compress(deflater, "Hello", true), kHello);
  EXPECT_EQ(Compress(deflater, "Hello", true), kHello);
}

// A back-reference into a window that was reset points at nothing.
TEST(DeflateCodecTest, ResetInflaterRejectsReferenceToThePreviousMessage) {
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {kHello}, true), "Hello");
  std::string out;
  EXPECT_EQ(Inflate(inflater, {Bytes({0xf2, 0x00, 0x11, 0x00, 0x00})}, out), Result::kCorrupt);
}

// 7.2.3.3: a stored (uncompressed) block.
TEST(DeflateCodecTest, RfcStoredBlock) {
  EXPECT_EQ(MustInflate(Bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})), "Hello");
}

// 7.2.3.4: a final block, then the byte that starts the appended empty block.
TEST(DeflateCodecTest, RfcFinalBlock) {
  EXPECT_EQ(MustInflate(Bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})), "Hello");
}

// Senders that stop right after the final block are read the same way.
TEST(DeflateCodecTest, FinalBlockWithoutTheExtraByte) {
  EXPECT_EQ(MustInflate(Bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})), "Hello");
}

// The window survives a final block when context is taken over.
TEST(DeflateCodecTest, FinalBlockKeepsTheWindowForTheNextMessage) {
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})}, false), "Hello");
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf2, 0x00, 0x11, 0x00, 0x00})}, false), "Hello");
}

// Blocks may follow a final block in the same message, even across frames.
TEST(DeflateCodecTest, FinalBlockFollowedByMoreBlocks) {
  MessageDeflater deflater(15);
  const std::string second = Compress(deflater, "world", true);
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) + second}), "Helloworld");
  EXPECT_EQ(MustInflate(inflater, {Bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), second}), "Helloworld");
}

// 7.2.3.5: two blocks in one message.
TEST(DeflateCodecTest, RfcTwoBlocks) {
  EXPECT_EQ(MustInflate(Bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})),
            "Hello");
}

// 7.2.3.6: an empty message is a single 00 byte.
TEST(DeflateCodecTest, RfcEmptyMessage) {
  EXPECT_EQ(Compress(""), Bytes({0x00}));
  EXPECT_EQ(MustInflate(Bytes({0x00})), "");
}

// Some senders mark an empty message compressed and send no payload at all.
TEST(DeflateCodecTest, EmptyPayloadIsAnEmptyMessage) {
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {}), "");
  EXPECT_EQ(MustInflate(inflater, {"", ""}), "");
  EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");
}

// ------------------------------------------------------------- round trips
TEST(DeflateCodecTest, RoundTripsOfEverySize) {
  for (const std::string& message :
       {std::string(), std::string("a"), std::string("Hello"), Text(100), Text(4096), Text(1 << 20), RandomBytes(1),
        RandomBytes(1000), RandomBytes(1 << 20), std::string(1 << 20, '\0')}) {
    const std::string compressed = Compress(message);
    EXPECT_EQ(MustInflate(compressed), message) << message.size() << " bytes";
  }
}

TEST(DeflateCodecTest, TextCompressesAndRandomBytesDoNotGrowMuch) {
  const std::string text = Text(1 << 20);
  EXPECT_LT(Compress(text).size(), text.size() / 4);
  const std::string random = RandomBytes(1 << 20);
  const std::string compressed = Compress(random);
  EXPECT_LT(compressed.size(), random.size() + random.size() / 100);
}

TEST(DeflateCodecTest, CompressAppendsToOut) {
  MessageDeflater deflater(15);
  std::string out = "prefix";
  ASSERT_TRUE(deflater.Compress("Hello", out, true));
  EXPECT_EQ(out, "prefix" + kHello);
}

TEST(DeflateCodecTest, FeedAppendsToOut) {
  MessageInflater inflater(15);
  std::string out = "Hi, ";
  ASSERT_EQ(Inflate(inflater, {kHello}, out), Result::kOk);
  EXPECT_EQ(out, "Hi, Hello");
}

// Every frame one byte: the inflater keeps its place between frames.
TEST(DeflateCodecTest, OneByteFrames) {
  const std::string message = Text(20000) + RandomBytes(3000) + Text(5000, 3);
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, Pieces(Compress(message), 1)), message);
  EXPECT_EQ(MustInflate(inflater, Pieces(Compress("Hello"), 1)), "Hello");
}

TEST(DeflateCodecTest, FramesOfEverySize) {
  const std::string message = Text(50000, 4);
  const std::string compressed = Compress(message);
  MessageInflater inflater(15);
  for (std::size_t piece = 2; piece < compressed.size(); piece = piece * 3 / 2 + 1) {
    EXPECT_EQ(MustInflate(inflater, Pieces(compressed, piece)), message) << piece;
  }
}

// ---------------------------------------------------------- context takeover
TEST(DeflateCodecTest, ContextTakeoverShrinksARepeatedMessage) {
  // Bytes with no inner redundancy, so everything the second copy saves
  // comes from the window the first one left behind.
  const std::string message = RandomBytes(2000, 5);
  MessageDeflater deflater(15);
  const std::string first = Compress(deflater, message, false);
  const std::string second = Compress(deflater, message, false);
  EXPECT_GT(first.size(), message.size());
  EXPECT_LT(second.size() * 20, first.size());
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {first}, false), message);
  EXPECT_EQ(MustInflate(inflater, {second}, false), message);
}

// Level 1 does not index the inside of its matches, so repeated text gains
// little from the window; higher levels find the whole repeat.
TEST(DeflateCodecTest, ContextTakeoverWithHigherLevelShrinksRepeatedText) {
  const std::string message = Text(2000, 5);
  MessageDeflater deflater(15, 6);
  const std::string first = Compress(deflater, message, false);
  const std::string second = Compress(deflater, message, false);
  EXPECT_LT(second.size() * 10, first.size());
  MessageInflater inflater(15);
  EXPECT_EQ(MustInflate(inflater, {first}, false), message);
  EXPECT_EQ(MustInflate(inflater, {second}, false), message);
}

TEST(DeflateCodecTest, ResetAfterForgetsThePreviousMessage) {
  const std::string message = Text(2000, 5);
  MessageDeflater deflater(15);
  const std::string first = Compress(deflater, message, true);
  EXPECT_EQ(Compress(deflater, message, true), first);
  // A deflater shared by many connections: B compresses as if A never was.
  Compress(deflater, Text(3000, 6), true);
  EXPECT_EQ(Compress(deflater, message, true), first);
}

TEST(DeflateCodecTest, ManyMessagesWithContextTakeover) {
  MessageDeflater deflater(15);
  MessageInflater inflater(15);
  for (unsigned i = 0; i < 50; ++i) {
    const std::string message = i % 7 == 0 ? RandomBytes(300 + i, i) : Text(100 + 37 * i, i % 3);
    EXPECT_EQ(MustInflate(inflater, Pieces(Compress(deflater, message, false), 1 + i), false), message) << i;
  }
}

// ------------------------------------------------------------- window sizes
// zlib deflates with 9 bits when a client asks the gateway for 8.
TEST(DeflateCodecTest, NineBitDeflaterIsReadByEightAndNineBitInflaters) {
  const std::string message = Text(100000, 7) + RandomBytes(200, 8) + RandomBytes(200, 8);
  const std::string compressed = Compress(message, 9);
  for (const int bits : {8, 9, 10, 15}) EXPECT_EQ(MustInflate(compressed, bits), message) << bits;
}

TEST(DeflateCodecTest, EveryWindowSizeRoundTrips) {
  const std::string message = Text(30000, 9) + RandomBytes(5000, 9) + Text(30000, 9);
  for (int bits = 9; bits <= 15; ++bits) {
    const std::string compressed = Compress(message, bits);
    EXPECT_EQ(MustInflate(compressed, bits), message) << bits;
    EXPECT_EQ(MustInflate(compressed, 15), message) << bits;
  }
}

// The inflater's window is really the agreed one: a reference into the
// previous message further back than 512 bytes is refused by a 9-bit
// inflater. (Within one Feed zlib resolves references from the output
// buffer itself, so only references across calls show the window.)
TEST(DeflateCodecTest, SmallWindowInflaterRejectsFarReferences) {
  const std::string block = RandomBytes(4096, 10);
  MessageDeflater deflater(15);
  const std::string first = Compress(deflater, block, false);
  const std::string second = Compress(deflater, block, false);
  MessageInflater wide(15);
  EXPECT_EQ(MustInflate(wide, {first}, false), block);
  EXPECT_EQ(MustInflate(wide, {second}, false), block);
  MessageInflater narrow(9);
  EXPECT_EQ(MustInflate(narrow, {first}, false), block);
  std::string out;
  EXPECT_EQ(Inflate(narrow, {second}, out), Result::kCorrupt);
}

TEST(DeflateCodecTest, EightBitDeflaterIsRefused) {
  MessageDeflater deflater(8);
  std::string out = "kept";
  EXPECT_FALSE(deflater.Compress("Hello", out, true));
  EXPECT_EQ(out, "kept");
  EXPECT_FALSE(deflater.allocated());
}

// ------------------------------------------------------------------ limits
TEST(DeflateCodecTest, DecompressionBombStopsAtTheLimit) {
  MessageDeflater best(15, 9);
  const std::string bomb = Compress(best, std::string(10 << 20, '\0'));
  ASSERT_LT(bomb.size(), 11u << 10);  // about 1:1000
  constexpr std::size_t kLimit = 64 << 10;
  MessageInflater inflater(15);
  std::string out;
  EXPECT_EQ(inflater.Feed(bomb, out, kLimit), Result::kTooBig);
  EXPECT_LE(out.size(), kLimit);
  // It never held more than the limit plus the byte that detects it (and
  // whatever slack std::string's growth adds).
  EXPECT_LE(out.capacity(), 2 * (kLimit + 1) + 64);
  // The inflater is ready for the next message.
  EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");
}

TEST(DeflateCodecTest, DecompressionBombInManyFrames) {
  const std::string bomb = Compress(std::string(10 << 20, 'x'));
  constexpr std::size_t kLimit = 100000;
  MessageInflater inflater(15);
  std::string out;
  Result result = Result::kOk;
  std::size_t frames = 0;
  for (const std::string& frame : Pieces(bomb, 64)) {
    ++frames;
    result = inflater.Feed(frame, out, kLimit);
    ASSERT_LE(out.size(), kLimit);
    if (result != Result::kOk) break;
  }
  EXPECT_EQ(result, Result::kTooBig);
  EXPECT_LT(frames, Pieces(bomb, 64).size());  // stopped long before the end
  EXPECT_LE(out.capacity(), 2 * (kLimit + 1) + 64);
}

TEST(DeflateCodecTest, MessageOfExactlyTheLimitFits) {
  const std::string message = Text(10000, 11);
  const std::string compressed = Compress(message);
  MessageInflater inflater(15);
  std::string out;
  EXPECT_EQ(Inflate(inflater, {compressed}, out, message.size()), Result::kOk);
  EXPECT_EQ(out, message);
  out.clear();
  EXPECT_EQ(Inflate(inflater, {compressed}, out, message.size() - 1), Result::kTooBig);
  EXPECT_LE(out.size(), message.size() - 1);
  out.clear();
  EXPECT_EQ(Inflate(inflater, Pieces(compressed, 7), out, message.size() - 1), Result::kTooBig);
}

// The limit is on the whole message: what `out` holds already counts.
TEST(DeflateCodecTest, LimitCountsWhatOutAlreadyHolds) {
  MessageInflater inflater(15);
  std::string out(10, 'p');
  EXPECT_EQ(Inflate(inflater, {kHello}, out, 14), Result::kTooBig);
  out.assign(10, 'p');
  EXPECT_EQ(Inflate(inflater, {kHello}, out, 15), Result::kOk);
  EXPECT_EQ(out, "ppppppppppHello");
  out.assign(20, 'p');
  EXPECT_EQ(inflater.Feed(kHello, out, 15), Result::kTooBig);
}

TEST(DeflateCodecTest, ZeroLimitAllowsOnlyEmptyMessages) {
  MessageInflater inflater(15);
  std::string out;
  EXPECT_EQ(Inflate(inflater, {Bytes({0x00})}, out, 0), Result::kOk);
  EXPECT_EQ(Inflate(inflater, {kHello}, out, 0), Result::kTooBig);
  EXPECT_TRUE(out.empty());
}

// ----------------------------------------------------------------- corrupt
TEST(DeflateCodecTest, CorruptDataIsRejected) {
  for (const std::string& bad :
       {Bytes({0x06}),                          // reserved block type 11
        Bytes({0x00, 0x05, 0x00, 0x00, 0x00}),  // stored length check fails
        Bytes({0xff, 0xff, 0xff, 0xff}), Bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), RandomBytes(1000, 12)}) {
    MessageInflater inflater(15);
    std::string out;
    EXPECT_EQ(Inflate(inflater, {bad}, out), Result::kCorrupt) << ::testing::PrintToString(bad);
    EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");  // usable again
  }
}

// A message cut short inflates without a zlib error; ending it mid-block
// must still be refused.
TEST(DeflateCodecTest, TruncatedMessageIsRejected) {
  const std::string compressed = Compress(Text(5000, 13));
  for (const std::size_t cut : {std::size_t{1}, std::size_t{3}, compressed.size() / 2, compressed.size() - 1}) {
    MessageInflater inflater(15);
    std::string out;
    EXPECT_EQ(Inflate(inflater, {compressed.substr(0, cut)}, out), Result::kCorrupt) << cut;
  }
  MessageInflater inflater(15);
  std::string out;
  EXPECT_EQ(Inflate(inflater, {Bytes({0xf2, 0x48, 0xcd})}, out), Result::kCorrupt);
}

TEST(DeflateCodecTest, ResetDropsAMessageInProgress) {
  MessageInflater inflater(15);
  std::string out;
  ASSERT_EQ(inflater.Feed(Bytes({0xf2, 0x48, 0xcd}), out, kNoLimit), Result::kOk);
  inflater.Reset();
  EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");
}

// ------------------------------------------------------------ allocation
TEST(DeflateCodecTest, DeflaterAllocatesLazilyAndAfterRelease) {
  MessageDeflater deflater(15);
  EXPECT_FALSE(deflater.allocated());
  const std::string first = Compress(deflater, Text(3000, 14), false);
  EXPECT_TRUE(deflater.allocated());
  deflater.Release();
  EXPECT_FALSE(deflater.allocated());
  deflater.Release();  // twice is harmless
  // Release also forgets the context: the same message compresses the same.
  EXPECT_EQ(Compress(deflater, Text(3000, 14), false), first);
  EXPECT_TRUE(deflater.allocated());
}

TEST(DeflateCodecTest, InflaterAllocatesLazilyAndAfterRelease) {
  MessageInflater inflater(15);
  EXPECT_FALSE(inflater.allocated());
  EXPECT_EQ(MustInflate(inflater, {kHello}, false), "Hello");
  EXPECT_TRUE(inflater.allocated());
  inflater.Release();
  EXPECT_FALSE(inflater.allocated());
  // The window went with the state: a back-reference now points at nothing.
  std::string out;
  EXPECT_EQ(Inflate(inflater, {Bytes({0xf2, 0x00, 0x11, 0x00, 0x00})}, out), Result::kCorrupt);
  EXPECT_TRUE(inflater.allocated());
  EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");
}

TEST(DeflateCodecTest, ReleaseInTheMiddleOfAMessage) {
  MessageInflater inflater(15);
  std::string out;
  ASSERT_EQ(inflater.Feed(Bytes({0xf2, 0x48, 0xcd}), out, kNoLimit), Result::kOk);
  inflater.Release();
  EXPECT_EQ(MustInflate(inflater, {kHello}), "Hello");
}

}  // namespace
}  // namespace wsgateway
