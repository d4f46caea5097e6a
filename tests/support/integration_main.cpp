// main() for the integration test binaries: lifts the open-file limit (the
// scale tests hold thousands of sockets, and the gateway inherits the
// limit), ignores SIGPIPE, and prints the logs of the processes under test
// when a test fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <iostream>

#include "tests/support/child_process.hpp"

namespace {

class DumpChildLogsOnFailure : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed() || dumped_) return;
    dumped_ = true;
    wsgateway::testing::ChildProcess::ForEachLive([](const wsgateway::testing::ChildProcess& child) {
      std::cerr << "---- last lines of " << child.name() << " (pid " << child.pid() << ") ----\n" << child.Tail(40);
    });
  }
  void OnTestStart(const ::testing::TestInfo&) override { dumped_ = false; }

  bool dumped_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new DumpChildLogsOnFailure());
  return RUN_ALL_TESTS();
}
