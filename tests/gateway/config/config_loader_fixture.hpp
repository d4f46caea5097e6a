#pragma once
// A fixture for tests that call LoadConfig in-process: it clears the
// WSGATEWAY_* variables of the environment the test runs in (and restores
// them afterwards), sets variables for one test, writes YAML files into a
// directory of its own, and captures what LoadConfig prints.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gateway/config/config_loader.hpp"

extern char** environ;

namespace wsgateway {

struct Outcome {
  ConfigLoadResult result;
  std::string out;
  std::string err;
};

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The test must not depend on the environment it runs in.
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (entry.rfind("WSGATEWAY_", 0) == 0) names.push_back(entry.substr(0, entry.find('=')));
    }
    for (const auto& name : names) {
      saved_[name] = std::getenv(name.c_str());
      unsetenv(name.c_str());
    }
    std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : test_name) {
      if (c == '/') c = '_';
    }
    dir_ = std::filesystem::temp_directory_path() /
           ("wsgateway-config-test-" + std::to_string(getpid()) + "-" + test_name);
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    for (const auto& name : set_) unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void SetEnv(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    set_.push_back(name);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  static Outcome Load(std::vector<std::string> args) {
    args.insert(args.begin(), "wsgateway");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    Outcome outcome;
    outcome.result = LoadConfig(static_cast<int>(args.size()), argv.data());
    outcome.out = ::testing::internal::GetCapturedStdout();
    outcome.err = ::testing::internal::GetCapturedStderr();
    return outcome;
  }

  // Loads a configuration that must be accepted.
  static Config LoadOk(std::vector<std::string> args) {
    const Outcome outcome = Load(std::move(args));
    EXPECT_TRUE(outcome.result.config.has_value()) << outcome.err;
    EXPECT_EQ(outcome.result.exit_code, 0);
    return outcome.result.config.value_or(Config{});
  }

  // Loads a configuration that must be refused with exit code 2; returns
  // what was printed.
  static std::string LoadFails(std::vector<std::string> args) {
    const Outcome outcome = Load(std::move(args));
    EXPECT_FALSE(outcome.result.config.has_value());
    EXPECT_EQ(outcome.result.exit_code, 2);
    return outcome.out + outcome.err;
  }

  // Runs an action flag (--print-config, --check-config) that must succeed;
  // returns its standard output.
  static std::string RunOk(std::vector<std::string> args) {
    const Outcome outcome = Load(std::move(args));
    EXPECT_FALSE(outcome.result.config.has_value());
    EXPECT_EQ(outcome.result.exit_code, 0) << outcome.err;
    return outcome.out;
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> saved_;
  std::vector<std::string> set_;
};

}  // namespace wsgateway
