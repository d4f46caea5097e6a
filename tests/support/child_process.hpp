#pragma once
// Runs a program as a child of the test: stdout and stderr are captured line
// by line by reader threads so a test can wait for a log line (with a
// deadline) instead of sleeping. The child gets SIGKILL if the test process
// dies, and the destructor kills and reaps it; nothing else is ever signalled.
//
// Thread-safety: all members may be called from any thread.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace wsgateway::testing {

class ChildProcess {
 public:
  struct Options {
    std::string program;
    std::vector<std::string> args;
    // Added to (or overriding) the test's environment.
    std::map<std::string, std::string> env;
    // Variables removed from the child's environment.
    std::vector<std::string> unset_env;
    // Prefix for the lines echoed to the test's stderr when WSG_TEST_VERBOSE
    // is set; also used in failure messages.
    std::string name;
  };

  struct Match {
    std::size_t line_index = 0;
    std::string line;
    std::vector<std::string> groups;  // groups[0] is the whole match
  };

  // Starts the program; throws std::runtime_error if it cannot be started.
  // `open_file_limit`: when set, the child's RLIMIT_NOFILE (soft and
  // hard), so a test can run it out of file descriptors.
  explicit ChildProcess(Options options, std::optional<std::uint64_t> open_file_limit = std::nullopt);
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return options_.name; }

  // Waits until a line at index >= from_line (stdout and stderr interleaved
  // in arrival order) matches `pattern` (std::regex_search). Nullopt when the
  // deadline passes or the child's output ends first.
  std::optional<Match> WaitForLine(const std::string& pattern, std::chrono::milliseconds timeout,
                                   std::size_t from_line = 0);

  // Number of lines captured so far.
  std::size_t LineCount() const;
  // The captured lines, for failure messages.
  std::vector<std::string> Lines() const;
  // The last `n` lines joined with newlines.
  std::string Tail(std::size_t n = 60) const;

  // Sends a signal to this child (by its PID) unless it has been reaped.
  void Signal(int signal);

  // Waits for the child to exit and for its output to be read to the end;
  // returns the wait status (as from waitpid) or nullopt when the deadline
  // passes before the child exited.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // True until the child has been reaped.
  bool Running();

  // Calls fn for every ChildProcess alive in this test process (to print
  // their logs when a test fails).
  static void ForEachLive(const std::function<void(const ChildProcess&)>& fn);

 private:
  void ReadLoop(int fd, const char* stream);
  // Reaps the child by the deadline; false if it is still running.
  bool WaitForExit(std::chrono::steady_clock::time_point deadline);
  bool TryReap();

  Options options_;
  std::optional<std::uint64_t> open_file_limit_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::thread out_reader_;
  std::thread err_reader_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
  int open_streams_ = 2;
  std::mutex reap_mutex_;
};

}  // namespace wsgateway::testing
