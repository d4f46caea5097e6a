#pragma once
// Request paths that no other test uses, so that tests sharing one gateway
// can find their own connections (admin API, backend events) by path.
//
// Thread-safety: UniquePath may be called from any thread.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace wsgateway::testing {

// A request path no other test uses: /<prefix>/<test name>/<n>, n with six
// digits so that no such path is a prefix of another.
inline std::string UniquePath(const std::string& prefix = "t") {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  char n[16];
  std::snprintf(n, sizeof n, "%06d", ++counter);
  return "/" + prefix + "/" + (info != nullptr ? info->name() : "none") + "/" + n;
}

}  // namespace wsgateway::testing
