#include "tests/support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace wsgateway::testing {
namespace {

bool Verbose() {
  const char* v = std::getenv("WSG_TEST_VERBOSE");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

std::mutex& LiveMutex() {
  static std::mutex m;
  return m;
}
std::set<const ChildProcess*>& Live() {
  static std::set<const ChildProcess*> live;
  return live;
}

}  // namespace

void ChildProcess::ForEachLive(const std::function<void(const ChildProcess&)>& fn) {
  std::lock_guard lock(LiveMutex());
  for (const ChildProcess* child : Live()) fn(*child);
}

ChildProcess::ChildProcess(Options options, std::optional<std::uint64_t> open_file_limit)
    : options_(std::move(options)), open_file_limit_(open_file_limit) {
  if (options_.name.empty()) options_.name = options_.program;

  // Everything the child needs is prepared before fork: after it only
  // async-signal-safe calls are allowed (the test process has threads).
  std::vector<std::string> argv_storage;
  argv_storage.push_back(options_.program);
  for (const auto& a : options_.args) argv_storage.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::set<std::string> drop(options_.unset_env.begin(), options_.unset_env.end());
  for (const auto& [k, v] : options_.env) drop.insert(k);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (drop.count(entry.substr(0, entry.find('='))) == 0) env_storage.push_back(entry);
  }
  for (const auto& [k, v] : options_.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    throw std::runtime_error("pipe2 failed");
  }
  const pid_t parent = getpid();

  pid_ = fork();
  if (pid_ < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    // Child: die with the test, keep only stdin and the two pipes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (open_file_limit_) {
      const rlimit files{*open_file_limit_, *open_file_limit_};
      setrlimit(RLIMIT_NOFILE, &files);
    }
    execve(argv[0], argv.data(), envp.data());
    static const char kMessage[] = "exec failed\n";
    (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  const int out_fd = out_pipe[0];
  const int err_fd = err_pipe[0];
  out_reader_ = std::thread([this, out_fd] { ReadLoop(out_fd, "out"); });
  err_reader_ = std::thread([this, err_fd] { ReadLoop(err_fd, "err"); });
  std::lock_guard lock(LiveMutex());
  Live().insert(this);
}

ChildProcess::~ChildProcess() {
  {
    std::lock_guard lock(LiveMutex());
    Live().erase(this);
  }
  if (!TryReap()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(30));
  }
  // The pipes reach EOF once the child (and anything that inherited them)
  // has exited.
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void ChildProcess::ReadLoop(int fd, const char* stream) {
  std::string pending;
  char buffer[8192];
  const bool verbose = Verbose();
  auto emit = [&](std::string line) {
    if (verbose) std::cerr << "[" << options_.name << ":" << stream << "] " << line << "\n";
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
    changed_.notify_all();
  };
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(pending.substr(start, nl - start));
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) emit(std::move(pending));
  close(fd);
  std::lock_guard lock(mutex_);
  --open_streams_;
  changed_.notify_all();
}

std::optional<ChildProcess::Match> ChildProcess::WaitForLine(const std::string& pattern,
                                                             std::chrono::milliseconds timeout, std::size_t from_line) {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mutex_);
  std::size_t next = from_line;
  for (;;) {
    for (; next < lines_.size(); ++next) {
      std::smatch m;
      if (std::regex_search(lines_[next], m, re)) {
        Match match;
        match.line_index = next;
        match.line = lines_[next];
        for (const auto& g : m) match.groups.push_back(g.str());
        return match;
      }
    }
    if (open_streams_ == 0) return std::nullopt;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && next == lines_.size()) {
      return std::nullopt;
    }
  }
}

std::size_t ChildProcess::LineCount() const {
  std::lock_guard lock(mutex_);
  return lines_.size();
}

std::vector<std::string> ChildProcess::Lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

std::string ChildProcess::Tail(std::size_t n) const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  const std::size_t first = lines_.size() > n ? lines_.size() - n : 0;
  for (std::size_t i = first; i < lines_.size(); ++i) out << "  [" << options_.name << "] " << lines_[i] << "\n";
  return out.str();
}

void ChildProcess::Signal(int signal) {
  std::lock_guard lock(reap_mutex_);
  if (pid_ > 0 && !status_) kill(pid_, signal);
}

bool ChildProcess::TryReap() {
  std::lock_guard lock(reap_mutex_);
  if (status_) return true;
  if (pid_ <= 0) return true;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return true;
  }
  return false;
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!WaitForExit(deadline)) return std::nullopt;
  // The child is gone, but its last lines may still be in the pipes: the
  // output is whole once both readers have met EOF.
  {
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline, [this] { return open_streams_ == 0; });
  }
  std::lock_guard lock(reap_mutex_);
  return status_;
}

bool ChildProcess::WaitForExit(std::chrono::steady_clock::time_point deadline) {
  if (TryReap()) return true;
  // A pidfd becomes readable when the child exits: wait on it with the
  // deadline instead of polling waitpid.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  while (!TryReap()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (pidfd >= 0) close(pidfd);
      return false;
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // no pidfd support: poll waitpid
    }
  }
  if (pidfd >= 0) close(pidfd);
  return true;
}

bool ChildProcess::Running() { return !TryReap(); }

}  // namespace wsgateway::testing
