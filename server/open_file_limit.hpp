#pragma once
// Every client connection holds a file descriptor, and the default soft
// limit (often 1024) would cap the gateway far below what the machine
// allows. Like nginx's worker_rlimit_nofile, the gateway raises its soft
// limit to the hard limit at start-up.

#include <cstdint>

namespace wsgateway {

struct OpenFileLimit {
  std::uint64_t before = 0;
  std::uint64_t after = 0;
};

// Raises RLIMIT_NOFILE's soft limit to its hard limit; reports both values
// (equal when nothing changed or the call failed).
OpenFileLimit RaiseOpenFileLimit();

}  // namespace wsgateway
