#pragma once
// Loop-only code states that it runs on its loop's thread:
// WSG_ASSERT_ON_LOOP(loop) aborts with the file and line when it does not.
// Checked in builds without NDEBUG (the sanitizer build, Debug); free in
// release builds. Sessions, a loop's registry and its event batches are
// never locked, so this check is what keeps a stray cross-thread call from
// becoming a silent data race.

#include <cstdio>
#include <cstdlib>

namespace wsgateway::detail {

[[noreturn]] inline void NotOnLoopThread(const char* file, int line) {
  std::fprintf(stderr, "%s:%d: loop-only code ran off its loop's thread\n", file, line);
  std::abort();
}

}  // namespace wsgateway::detail

#ifdef NDEBUG
#define WSG_ASSERT_ON_LOOP(loop) ((void)0)
#else
#define WSG_ASSERT_ON_LOOP(loop) \
  ((loop).running_on_loop() ? (void)0 : ::wsgateway::detail::NotOnLoopThread(__FILE__, __LINE__))
#endif
