// The configuration commands as an operator runs them on the real binary:
// --check-config in a deploy pipeline, --print-config to see what a pod
// really runs with, --help for the list of keys.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gateway/config/config_keys.hpp"
#include "tests/support/processes.hpp"

extern char** environ;

namespace wsgateway::testing {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;
};

// Runs wsgateway to completion with `env` added and every other WSGATEWAY_*
// variable of the test's environment removed.
Outcome RunToExit(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> unset;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.starts_with("WSGATEWAY_")) unset.push_back(entry.substr(0, entry.find('=')));
  }
  ChildProcess child({WsgatewayPath(), args, env, unset, "wsgateway"});
  const auto status = child.Wait(std::chrono::seconds(30));
  Outcome run;
  for (const auto& line : child.Lines()) run.output += line + "\n";
  if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  return run;
}

class ConfigCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("wsgateway-config-cli-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
};

// A valid file passes: "configuration OK" with the file's name, exit 0, and
// no listener is opened (the default ports need not be free).
TEST_F(ConfigCliTest, CheckConfigAcceptsAGoodFile) {
  const std::string pem = WriteFile("server.pem", "checked at start-up, not here\n");
  const std::string file = WriteFile("good.yaml",
                                     "listen: 0.0.0.0:8443\n"
                                     "backend: 127.0.0.1:50052\n"
                                     "tls_cert_file: " +
                                         pem +
                                         "\n"
                                         "tls_key_file: " +
                                         pem +
                                         "\n"
                                         "routes:\n"
                                         "  - path_prefix: /chat\n"
                                         "    handshake_hook: true\n");
  const Outcome run = RunToExit({"--check-config", "--config", file});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "configuration OK: " + file + "\n");
}

// A bad value fails with exit code 2 and names the key and the expected form.
TEST_F(ConfigCliTest, CheckConfigRefusesABadFileNamingTheKey) {
  Outcome run = RunToExit({"--check-config", "--config", WriteFile("bad.yaml", "ping_interval: soon\n")});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("--ping-interval: 'soon' is not a duration such as 500ms"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("configuration OK"), std::string::npos) << run.output;

  // A certificate file that is not there.
  const std::string missing = (dir_ / "missing.pem").string();
  const std::string pem = WriteFile("key.pem", "x\n");
  run = RunToExit({"--check-config", "--tls-cert-file", missing, "--tls-key-file", pem});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("--tls-cert-file: '" + missing + "' does not exist"), std::string::npos) << run.output;
}

// The flag's value wins over the variable's and the file's, and what the
// binary prints it reads back to the same text.
TEST_F(ConfigCliTest, PrintConfigShowsTheEffectiveValuesAndReadsBack) {
  const std::string file = WriteFile("gateway.yaml",
                                     "max_message_bytes: 1KiB\n"
                                     "handshake_timeout: 3s\n"
                                     "log_format: json\n");
  const Outcome run = RunToExit({"--config", file, "--max-message-bytes", "3KiB", "--print-config"},
                                {{"WSGATEWAY_MAX_MESSAGE_BYTES", "2KiB"},
                                 {"WSGATEWAY_HANDSHAKE_TIMEOUT", "4s"},
                                 {"WSGATEWAY_ADMIN_TOKENS", "s3cret"}});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("\nmax_message_bytes: 3KiB\n"), std::string::npos) << "flag\n" << run.output;
  EXPECT_NE(run.output.find("\nhandshake_timeout: 4s\n"), std::string::npos) << "variable\n" << run.output;
  EXPECT_NE(run.output.find("\nlog_format: json\n"), std::string::npos) << "file\n" << run.output;
  EXPECT_NE(run.output.find("\nadmin_tokens: [<redacted>]\n"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("s3cret"), std::string::npos) << run.output;

  const Outcome defaults = RunToExit({"--print-config"});
  ASSERT_EQ(defaults.exit_code, 0) << defaults.output;
  const Outcome again = RunToExit({"--config", WriteFile("printed.yaml", defaults.output), "--print-config"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output, defaults.output);
}

// --help lists every key as a flag with its variable.
TEST_F(ConfigCliTest, HelpListsEveryKey) {
  const Outcome run = RunToExit({"--help"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const auto& key : ConfigKeys()) {
    if (key.form == ConfigForm::kRoutes) {
      EXPECT_NE(run.output.find("routes"), std::string::npos) << run.output;
      continue;
    }
    EXPECT_NE(run.output.find("--" + FlagName(key.name) + " "), std::string::npos) << key.name;
    EXPECT_NE(run.output.find(EnvName(key.name)), std::string::npos) << key.name;
  }
  EXPECT_NE(run.output.find("--check-config"), std::string::npos);
  EXPECT_NE(run.output.find("--print-config"), std::string::npos);
}

}  // namespace
}  // namespace wsgateway::testing
