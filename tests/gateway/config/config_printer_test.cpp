// --print-config: the effective configuration as YAML that loads back to the
// same configuration.

#include "gateway/config/config_printer.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "gateway/config/config_keys.hpp"
#include "tests/gateway/config/config_loader_fixture.hpp"

namespace wsgateway {
namespace {

std::vector<std::string> TopLevelKeys(const std::string& yaml) {
  std::vector<std::string> keys;
  for (const auto& entry : YAML::Load(yaml)) keys.push_back(entry.first.as<std::string>());
  return keys;
}

std::vector<std::string> TableKeys() {
  std::vector<std::string> keys;
  for (const auto& key : ConfigKeys()) keys.emplace_back(key.name);
  return keys;
}

// Every key, in the order of the table (and so of the docs), with sizes and
// durations in the docs' form and lists as YAML lists.
TEST(ConfigPrinterTest, PrintsEveryKeyInOrderInTheDocsForm) {
  Config config;
  config.subprotocols = {"chat.v1", "chat.v2"};
  const std::string yaml = PrintConfig(config);
  EXPECT_EQ(TopLevelKeys(yaml), TableKeys());
  for (const char* line : {"\nmax_message_bytes: 2MiB\n", "\nhandshake_timeout: 10s\n", "\nbackend_event_timeout: 1m\n",
                           "\nbackend_reconnect_min: 100ms\n", "\npermessage_deflate: false\n", "\nthreads: 0\n",
                           "\nsubprotocols: [chat.v1, chat.v2]\n", "\nresponse_headers: []\n", "\nroutes: []\n"}) {
    EXPECT_NE(yaml.find(line), std::string::npos) << line << "in\n" << yaml;
  }
  EXPECT_TRUE(YAML::Load(yaml)["subprotocols"].IsSequence());
  EXPECT_EQ(yaml.rfind("listen: ", 0), 0u) << yaml;
}

// Tokens never appear: each is printed as "<redacted>", so the count shows.
TEST(ConfigPrinterTest, RedactsAdminTokens) {
  Config config;
  config.admin_tokens = {"s3cret-one", "s3cret-two"};
  const std::string yaml = PrintConfig(config);
  EXPECT_EQ(yaml.find("s3cret"), std::string::npos) << yaml;
  const auto tokens = YAML::Load(yaml)["admin_tokens"];
  ASSERT_TRUE(tokens.IsSequence()) << yaml;
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].as<std::string>(), "<redacted>");
  EXPECT_EQ(tokens[1].as<std::string>(), "<redacted>");
}

// The Redis password never appears either; the rest of the URL does, and a
// URL without a password prints as given.
TEST(ConfigPrinterTest, RedactsTheClusterRedisPassword) {
  Config config;
  config.cluster_redis = "redis://gateway:s3cret@redis:6380/2";
  const std::string yaml = PrintConfig(config);
  EXPECT_EQ(yaml.find("s3cret"), std::string::npos) << yaml;
  EXPECT_EQ(YAML::Load(yaml)["cluster_redis"].as<std::string>(), "redis://gateway:<redacted>@redis:6380/2");

  config.cluster_redis = "redis://redis:6379";
  EXPECT_EQ(YAML::Load(PrintConfig(config))["cluster_redis"].as<std::string>(), "redis://redis:6379");
}

// Values YAML would read as something else are quoted: they come back as the
// same text.
TEST(ConfigPrinterTest, QuotesWhatYamlWouldMisread) {
  Config config;
  config.allowed_origins = {"*", "https://*.example.com"};
  config.response_headers = {"X-Served-By: edge-1", "X-Note: #1"};
  config.backend = "";
  const auto node = YAML::Load(PrintConfig(config));
  EXPECT_EQ(node["allowed_origins"].as<std::vector<std::string>>(), config.allowed_origins);
  EXPECT_EQ(node["response_headers"].as<std::vector<std::string>>(), config.response_headers);
  EXPECT_EQ(node["backend"].as<std::string>(), "");
}

// A route prints the options it sets, in the order of RouteKeys(), and no
// other.
TEST(ConfigPrinterTest, RoutesPrintTheOptionsTheySet) {
  Config config;
  RouteConfig full;
  full.path_prefix = "/chat";
  full.backend = "127.0.0.1:50053";
  full.handshake_hook = true;
  full.http_forwarding = false;
  full.forward_close_frames = true;
  full.forward_ping_frames = false;
  full.forward_pong_frames = true;
  full.permessage_deflate = true;
  full.subprotocols = std::vector<std::string>{"chat.v1"};
  full.max_message_bytes = 64 * 1024;
  RouteConfig bare;
  bare.path_prefix = "/feed";
  config.routes = {full, bare};
  const auto routes = YAML::Load(PrintConfig(config))["routes"];
  ASSERT_TRUE(routes.IsSequence());
  ASSERT_EQ(routes.size(), 2u);
  std::vector<std::string> keys;
  for (const auto& entry : routes[0]) keys.push_back(entry.first.as<std::string>());
  EXPECT_EQ(keys, std::vector<std::string>(RouteKeys().begin(), RouteKeys().end()));
  EXPECT_EQ(routes[0]["max_message_bytes"].as<std::string>(), "64KiB");
  EXPECT_EQ(routes[0]["subprotocols"].as<std::vector<std::string>>(), std::vector<std::string>{"chat.v1"});
  EXPECT_EQ(routes[1].size(), 1u);
  EXPECT_EQ(routes[1]["path_prefix"].as<std::string>(), "/feed");
}

// --print-config after file, environment and flags; loading what it printed
// and printing again gives the same text.
TEST_F(ConfigLoaderTest, PrintedConfigurationLoadsBackToTheSameText) {
  const std::string pem = WriteFile("some.pem", "x\n");
  const std::string file = WriteFile("gateway.yaml",
                                     "listen: 127.0.0.1:7000\n"
                                     "threads: 3\n"
                                     "max_message_bytes: 1536\n"
                                     "ping_interval: 0ms\n"
                                     "response_headers: ['X-Served-By: edge-1', 'X-Note: #1']\n"
                                     "allowed_origins: ['*', 'https://*.example.com']\n"
                                     "tls_cert_file: " +
                                         pem +
                                         "\n"
                                         "tls_key_file: " +
                                         pem +
                                         "\n"
                                         "routes:\n"
                                         "  - path_prefix: /chat\n"
                                         "    backend: 127.0.0.1:50053\n"
                                         "    handshake_hook: true\n"
                                         "    subprotocols: [chat.v1, chat.v2]\n"
                                         "    max_message_bytes: 64KiB\n"
                                         "  - path_prefix: /feed\n"
                                         "    forward_close_frames: false\n");
  SetEnv("WSGATEWAY_HANDSHAKE_TIMEOUT", "90s");
  SetEnv("WSGATEWAY_PERMESSAGE_DEFLATE", "true");
  const std::string first =
      RunOk({"--config", file, "--compression-level", "7", "--subprotocols", "mqtt,wamp", "--print-config"});
  EXPECT_NE(first.find("\nhandshake_timeout: 90s\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\ncompression_level: 7\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\nmax_message_bytes: 1536\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\nsubprotocols: [mqtt, wamp]\n"), std::string::npos) << first;

  unsetenv("WSGATEWAY_HANDSHAKE_TIMEOUT");
  unsetenv("WSGATEWAY_PERMESSAGE_DEFLATE");
  const std::string printed = WriteFile("printed.yaml", first);
  EXPECT_EQ(RunOk({"--config", printed, "--print-config"}), first);
}

// The defaults print and load back to themselves too.
TEST_F(ConfigLoaderTest, PrintedDefaultsLoadBackToTheSameText) {
  const std::string first = RunOk({"--print-config"});
  EXPECT_EQ(first, PrintConfig(Config{}));
  EXPECT_EQ(RunOk({"--config", WriteFile("defaults.yaml", first), "--print-config"}), first);
}

// A printed configuration with its tokens redacted is refused, so the
// placeholder never becomes a token that anyone can present.
TEST_F(ConfigLoaderTest, PrintedRedactedTokensAreRefused) {
  SetEnv("WSGATEWAY_ADMIN_TOKENS", "s3cret");
  const std::string printed = RunOk({"--print-config"});
  EXPECT_EQ(printed.find("s3cret"), std::string::npos) << printed;
  unsetenv("WSGATEWAY_ADMIN_TOKENS");
  const std::string output = LoadFails({"--config", WriteFile("printed.yaml", printed)});
  EXPECT_NE(output.find("--admin-tokens"), std::string::npos) << output;
}

}  // namespace
}  // namespace wsgateway
