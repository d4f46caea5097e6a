// Configuration from defaults, a YAML file, WSGATEWAY_* variables and flags.

#include "gateway/config_loader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace wsgateway {
namespace {

using std::chrono::milliseconds;

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
    dir_ = std::filesystem::temp_directory_path() / ("wsgateway-config-test-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
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

  std::filesystem::path dir_;
  std::map<std::string, std::string> saved_;
  std::vector<std::string> set_;
};

// Without any input the defaults of the product definition apply, and the
// number of threads is resolved to at least one.
TEST_F(ConfigLoaderTest, DefaultsAreTheDocumentedOnes) {
  const Config c = LoadOk({});
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.admin_listen, "127.0.0.1:50051");
  EXPECT_EQ(c.metrics_listen, "0.0.0.0:9100");
  EXPECT_EQ(c.backend, "");
  EXPECT_GE(c.threads, 1u);
  EXPECT_EQ(c.max_message_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(c.send_queue_max_bytes, Config{}.send_queue_max_bytes);
  EXPECT_EQ(c.handshake_timeout, Config{}.handshake_timeout);
  EXPECT_EQ(c.ping_interval, milliseconds(25'000));
  EXPECT_EQ(c.pong_timeout, milliseconds(10'000));
  EXPECT_TRUE(c.subprotocols.empty());
  EXPECT_FALSE(c.permessage_deflate);
  EXPECT_FALSE(c.forward_close_frames);
  EXPECT_TRUE(c.reject_upgrades_without_backend);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "text");
}

// Every flag reaches its field, with sizes and durations converted.
TEST_F(ConfigLoaderTest, FlagsSetEveryField) {
  const Config c = LoadOk({"--listen",
                           "127.0.0.1:1",
                           "--admin-listen",
                           "127.0.0.1:2",
                           "--metrics-listen",
                           "127.0.0.1:3",
                           "--backend",
                           "dns:///echo:50052",
                           "--threads",
                           "3",
                           "--max-message-bytes",
                           "64KiB",
                           "--send-queue-max-bytes",
                           "1MB",
                           "--max-handshake-bytes",
                           "8KiB",
                           "--handshake-timeout",
                           "2s",
                           "--ping-interval",
                           "5m",
                           "--pong-timeout",
                           "3s",
                           "--close-timeout",
                           "4s",
                           "--subprotocols",
                           "chat.v2, chat.v1",
                           "--response-headers",
                           "X-Served-By: edge-1",
                           "--permessage-deflate",
                           "true",
                           "--compression-threshold",
                           "1KiB",
                           "--compression-level",
                           "6",
                           "--forward-close-frames",
                           "true",
                           "--forward-ping-frames",
                           "true",
                           "--forward-pong-frames",
                           "true",
                           "--backend-buffer-bytes",
                           "1MiB",
                           "--backend-event-timeout",
                           "750ms",
                           "--backend-reconnect-min",
                           "10ms",
                           "--backend-reconnect-max",
                           "1s",
                           "--reject-upgrades-without-backend",
                           "false",
                           "--log-level",
                           "debug",
                           "--log-format",
                           "json"});
  EXPECT_EQ(c.listen, "127.0.0.1:1");
  EXPECT_EQ(c.admin_listen, "127.0.0.1:2");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:3");
  EXPECT_EQ(c.backend, "dns:///echo:50052");
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.max_message_bytes, 64u * 1024);
  EXPECT_EQ(c.send_queue_max_bytes, 1'000'000u);
  EXPECT_EQ(c.max_handshake_bytes, 8u * 1024);
  EXPECT_EQ(c.handshake_timeout, milliseconds(2000));
  EXPECT_EQ(c.ping_interval, milliseconds(300'000));
  EXPECT_EQ(c.pong_timeout, milliseconds(3'000));
  EXPECT_EQ(c.close_timeout, milliseconds(4'000));
  EXPECT_EQ(c.subprotocols, (std::vector<std::string>{"chat.v2", "chat.v1"}));
  EXPECT_EQ(c.response_headers, (std::vector<std::string>{"X-Served-By: edge-1"}));
  EXPECT_TRUE(c.permessage_deflate);
  EXPECT_EQ(c.compression_threshold, 1024u);
  EXPECT_EQ(c.compression_level, 6);
  EXPECT_TRUE(c.forward_close_frames);
  EXPECT_TRUE(c.forward_ping_frames);
  EXPECT_TRUE(c.forward_pong_frames);
  EXPECT_EQ(c.backend_buffer_bytes, 1u << 20);
  EXPECT_EQ(c.backend_event_timeout, milliseconds(750));
  EXPECT_EQ(c.backend_reconnect_min, milliseconds(10));
  EXPECT_EQ(c.backend_reconnect_max, milliseconds(1000));
  EXPECT_FALSE(c.reject_upgrades_without_backend);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "json");
}

// A YAML file sets values; keys may be written with '-' or '_'.
TEST_F(ConfigLoaderTest, YamlFileSetsValues) {
  const std::string file = WriteFile("gateway.yaml",
                                     "listen: 127.0.0.1:7000\n"
                                     "max_message_bytes: 128KiB\n"
                                     "ping-interval: 45s\n"
                                     "subprotocols: [mqtt, wamp]\n"
                                     "reject_upgrades_without_backend: false\n"
                                     "threads: 2\n");
  const Config c = LoadOk({"--config", file});
  EXPECT_EQ(c.listen, "127.0.0.1:7000");
  EXPECT_EQ(c.max_message_bytes, 128u * 1024);
  EXPECT_EQ(c.ping_interval, milliseconds(45'000));
  EXPECT_EQ(c.subprotocols, (std::vector<std::string>{"mqtt", "wamp"}));
  EXPECT_FALSE(c.reject_upgrades_without_backend);
  EXPECT_EQ(c.threads, 2u);
  EXPECT_EQ(c.admin_listen, "127.0.0.1:50051");
}

// WSGATEWAY_<FLAG> variables set values.
TEST_F(ConfigLoaderTest, EnvironmentSetsValues) {
  SetEnv("WSGATEWAY_MAX_MESSAGE_BYTES", "32KiB");
  SetEnv("WSGATEWAY_HANDSHAKE_TIMEOUT", "3s");
  SetEnv("WSGATEWAY_REJECT_UPGRADES_WITHOUT_BACKEND", "false");
  SetEnv("WSGATEWAY_BACKEND", "127.0.0.1:9");
  const Config c = LoadOk({});
  EXPECT_EQ(c.max_message_bytes, 32u * 1024);
  EXPECT_EQ(c.handshake_timeout, milliseconds(3000));
  EXPECT_FALSE(c.reject_upgrades_without_backend);
  EXPECT_EQ(c.backend, "127.0.0.1:9");
}

// WSGATEWAY_CONFIG names the YAML file, like --config.
TEST_F(ConfigLoaderTest, ConfigVariableNamesTheFile) {
  SetEnv("WSGATEWAY_CONFIG", WriteFile("env.yaml", "backend: 127.0.0.1:9\n"));
  const Config c = LoadOk({});
  EXPECT_EQ(c.backend, "127.0.0.1:9");
}

// A flag beats the environment, which beats the file, which beats the default.
TEST_F(ConfigLoaderTest, PrecedenceIsFlagThenEnvironmentThenFileThenDefault) {
  const std::string file = WriteFile("all.yaml",
                                     "listen: 127.0.0.1:1001\n"
                                     "admin_listen: 127.0.0.1:1002\n"
                                     "metrics_listen: 127.0.0.1:1003\n"
                                     "max_message_bytes: 1KiB\n");
  SetEnv("WSGATEWAY_LISTEN", "127.0.0.1:2001");
  SetEnv("WSGATEWAY_ADMIN_LISTEN", "127.0.0.1:2002");
  SetEnv("WSGATEWAY_MAX_MESSAGE_BYTES", "2KiB");
  const Config c = LoadOk({"--config", file, "--listen", "127.0.0.1:3001", "--max-message-bytes", "3KiB"});
  EXPECT_EQ(c.listen, "127.0.0.1:3001") << "flag over environment and file";
  EXPECT_EQ(c.max_message_bytes, 3u * 1024) << "flag over environment and file";
  EXPECT_EQ(c.admin_listen, "127.0.0.1:2002") << "environment over file";
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:1003") << "file over default";
  EXPECT_EQ(c.backend, "") << "default";
}

// A key the gateway does not know fails start-up with exit code 2 and names
// the key, so a typo cannot silently leave a default in force.
TEST_F(ConfigLoaderTest, UnknownKeyInFileFailsNamingTheKey) {
  const std::string output = LoadFails({"--config", WriteFile("typo.yaml", "max_mesage_bytes: 1KiB\n")});
  EXPECT_NE(output.find("max"), std::string::npos) << output;
  EXPECT_NE(output.find("mesage"), std::string::npos) << output;
}

// An unknown flag fails start-up with exit code 2.
TEST_F(ConfigLoaderTest, UnknownFlagFails) {
  const std::string output = LoadFails({"--no-such-flag", "1"});
  EXPECT_NE(output.find("no-such-flag"), std::string::npos) << output;
}

// A bad size fails with a message naming the key and the bad value, from any
// source.
TEST_F(ConfigLoaderTest, BadSizeFailsNamingTheKey) {
  std::string output = LoadFails({"--max-message-bytes", "lots"});
  EXPECT_NE(output.find("max-message-bytes"), std::string::npos) << output;
  EXPECT_NE(output.find("lots"), std::string::npos) << output;

  output = LoadFails({"--config", WriteFile("size.yaml", "send_queue_max_bytes: 12XB\n")});
  EXPECT_NE(output.find("send-queue-max-bytes"), std::string::npos) << output;
  EXPECT_NE(output.find("12XB"), std::string::npos) << output;

  SetEnv("WSGATEWAY_BACKEND_BUFFER_BYTES", "-5");
  output = LoadFails({});
  EXPECT_NE(output.find("backend-buffer-bytes"), std::string::npos) << output;
}

// Routes come from the file as a list of mappings.
TEST_F(ConfigLoaderTest, RoutesComeFromTheFile) {
  const std::string file = WriteFile("routes.yaml",
                                     "backend: 127.0.0.1:1\n"
                                     "routes:\n"
                                     "  - path_prefix: /chat\n"
                                     "    backend: 127.0.0.1:2\n"
                                     "    handshake_hook: true\n"
                                     "    subprotocols: [chat.v1, chat.v2]\n"
                                     "    max-message-bytes: 64KiB\n"
                                     "  - path_prefix: /feed\n"
                                     "    forward_close_frames: true\n");
  const Config c = LoadOk({"--config", file});
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].path_prefix, "/chat");
  EXPECT_EQ(c.routes[0].backend, "127.0.0.1:2");
  EXPECT_EQ(c.routes[0].handshake_hook, true);
  EXPECT_EQ(c.routes[0].subprotocols, (std::vector<std::string>{"chat.v1", "chat.v2"}));
  EXPECT_EQ(c.routes[0].max_message_bytes, 64u * 1024);
  EXPECT_FALSE(c.routes[1].backend.has_value());
  EXPECT_EQ(c.routes[1].forward_close_frames, true);
}

// A route with a typo or without a path fails, naming the entry.
TEST_F(ConfigLoaderTest, BadRoutesFailNamingTheEntry) {
  std::string output = LoadFails({"--config", WriteFile("r1.yaml", "routes:\n  - path_prefix: /a\n    hook: true\n")});
  EXPECT_NE(output.find("routes[0]: unknown key 'hook'"), std::string::npos) << output;
  output = LoadFails({"--config", WriteFile("r2.yaml", "routes:\n  - backend: x:1\n")});
  EXPECT_NE(output.find("routes[0].path_prefix"), std::string::npos) << output;
  output = LoadFails({"--config", WriteFile("r3.yaml", "routes:\n  - path_prefix: /a\n  - path_prefix: /a\n")});
  EXPECT_NE(output.find("'/a' twice"), std::string::npos) << output;
  output = LoadFails({"--config", WriteFile("r4.yaml", "routes:\n  - path_prefix: /a\n    handshake_hook: maybe\n")});
  EXPECT_NE(output.find("routes[0].handshake_hook"), std::string::npos) << output;
}

// A bad duration fails with a message naming the key and the bad value.
TEST_F(ConfigLoaderTest, BadDurationFailsNamingTheKey) {
  std::string output = LoadFails({"--ping-interval", "10"});
  EXPECT_NE(output.find("ping-interval"), std::string::npos) << output;

  output = LoadFails({"--config", WriteFile("duration.yaml", "handshake_timeout: soon\n")});
  EXPECT_NE(output.find("handshake-timeout"), std::string::npos) << output;
  EXPECT_NE(output.find("soon"), std::string::npos) << output;
}

// Values outside their allowed range fail with the key named.
TEST_F(ConfigLoaderTest, OutOfRangeValuesFailNamingTheKey) {
  std::string output = LoadFails({"--log-format", "xml"});
  EXPECT_NE(output.find("log-format"), std::string::npos) << output;
  output = LoadFails({"--log-level", "loud"});
  EXPECT_NE(output.find("log-level"), std::string::npos) << output;
  output = LoadFails({"--max-message-bytes", "0"});
  EXPECT_NE(output.find("max-message-bytes"), std::string::npos) << output;
  output = LoadFails({"--threads", "100000"});
  EXPECT_NE(output.find("threads"), std::string::npos) << output;
}

// An allowed_origins entry that could never match a browser's Origin stops
// start-up, naming the key, the entry and what is wrong with it.
TEST_F(ConfigLoaderTest, BadAllowedOriginFailsNamingTheEntry) {
  const auto output = LoadFails({"--allowed-origins", "https://app.example.com, https://app.example.com/"});
  EXPECT_NE(output.find("allowed-origins"), std::string::npos) << output;
  EXPECT_NE(output.find("'https://app.example.com/'"), std::string::npos) << output;
  EXPECT_NE(output.find("path"), std::string::npos) << output;
  const auto config = LoadOk({"--allowed-origins", "https://*.example.com,null,*"});
  EXPECT_EQ(config.allowed_origins, (std::vector<std::string>{"https://*.example.com", "null", "*"}));
}

// A file that is not a flat YAML mapping, or does not exist, fails with
// exit code 2.
TEST_F(ConfigLoaderTest, MalformedOrMissingFileFails) {
  LoadFails({"--config", WriteFile("nested.yaml", "listen:\n  host: 0.0.0.0\n  port: 80\n")});
  LoadFails({"--config", WriteFile("list.yaml", "- listen\n- admin\n")});
  LoadFails({"--config", WriteFile("broken.yaml", "listen: [unclosed\n")});
  LoadFails({"--config", (dir_ / "does-not-exist.yaml").string()});
}

// An empty file is a valid configuration that changes nothing.
TEST_F(ConfigLoaderTest, EmptyFileKeepsDefaults) {
  const Config c = LoadOk({"--config", WriteFile("empty.yaml", "")});
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
}

// --help prints the flags and asks for exit code 0 without starting.
TEST_F(ConfigLoaderTest, HelpPrintsFlagsAndExitsZero) {
  const Outcome outcome = Load({"--help"});
  EXPECT_FALSE(outcome.result.config.has_value());
  EXPECT_EQ(outcome.result.exit_code, 0);
  for (const char* flag : {"--listen", "--admin-listen", "--metrics-listen", "--backend", "--config",
                           "--max-message-bytes", "--send-queue-max-bytes"}) {
    EXPECT_NE((outcome.out + outcome.err).find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace wsgateway
