// Configuration from defaults, a YAML file, WSGATEWAY_* variables and flags.

#include "gateway/config/config_loader.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gateway/config/config_keys.hpp"
#include "tests/gateway/config/config_loader_fixture.hpp"

namespace wsgateway {
namespace {

using std::chrono::milliseconds;

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
  EXPECT_EQ(c.backend_batch_interval, milliseconds(1));
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
                           "--backend-batch-interval",
                           "0ms",
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
  EXPECT_EQ(c.backend_batch_interval, milliseconds(0));
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

// A key without a value in the file sets the empty value.
TEST_F(ConfigLoaderTest, KeyWithoutValueInFileSetsTheEmptyValue) {
  const Config c = LoadOk({"--config", WriteFile("empty-values.yaml", "listen:\nsubprotocols:\n")});
  EXPECT_EQ(c.listen, "");
  EXPECT_TRUE(c.subprotocols.empty());
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
  const std::string output = outcome.out + outcome.err;
  for (const char* flag : {"--config", "--check-config", "--print-config"}) {
    EXPECT_NE(output.find(flag), std::string::npos) << flag;
  }
  for (const auto& key : ConfigKeys()) {
    if (key.form == ConfigForm::kRoutes) continue;
    EXPECT_NE(output.find("--" + FlagName(key.name) + " "), std::string::npos) << key.name;
    EXPECT_NE(output.find(EnvName(key.name)), std::string::npos) << key.name;
  }
}

// ------------------------------------------------------------ precedence

// One key of each kind of value: its text in the file, the environment and
// on the command line, and the field as the test reads it (independently of
// the loader's own formatting), expected after default, file, env and flag.
struct PrecedenceCase {
  std::string key;
  std::string file_value;
  std::string env_value;
  std::string flag_value;
  std::function<std::string(const Config&)> read;
  std::vector<std::string> expected;
};

std::string JoinedForTest(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : "|") + item;
  return text;
}

// One case per row.
// clang-format off
const PrecedenceCase kPrecedenceCases[] = {
    {"listen", "127.0.0.1:1001", "127.0.0.1:2001", "127.0.0.1:3001",
     [](const Config& c) { return c.listen; },
     {"0.0.0.0:8080", "127.0.0.1:1001", "127.0.0.1:2001", "127.0.0.1:3001"}},
    {"admin_token_file", "/file.txt", "/env.txt", "/flag.txt",
     [](const Config& c) { return c.admin_token_file; },
     {"", "/file.txt", "/env.txt", "/flag.txt"}},
    {"compression_level", "3", "5", "9",
     [](const Config& c) { return std::to_string(c.compression_level); },
     {"1", "3", "5", "9"}},
    {"drain_rate", "10", "20", "30",
     [](const Config& c) { return std::to_string(c.drain_rate); },
     {"500", "10", "20", "30"}},
    {"permessage_deflate", "true", "false", "true",
     [](const Config& c) { return std::string(c.permessage_deflate ? "on" : "off"); },
     {"off", "on", "off", "on"}},
    {"reject_upgrades_without_backend", "false", "true", "false",
     [](const Config& c) { return std::string(c.reject_upgrades_without_backend ? "on" : "off"); },
     {"on", "off", "on", "off"}},
    {"max_message_bytes", "1KiB", "2KiB", "3000",
     [](const Config& c) { return std::to_string(c.max_message_bytes); },
     {"2097152", "1024", "2048", "3000"}},
    {"ping_interval", "45s", "500ms", "2m",
     [](const Config& c) { return std::to_string(c.ping_interval.count()); },
     {"25000", "45000", "500", "120000"}},
    {"subprotocols", "[mqtt, wamp]", "a.v1, b.v1", "chat.v2",
     [](const Config& c) { return JoinedForTest(c.subprotocols); },
     {"", "mqtt|wamp", "a.v1|b.v1", "chat.v2"}},
    {"admin_tokens", "[t1]", "t2,t3", "t4",
     [](const Config& c) { return JoinedForTest(c.admin_tokens); },
     {"", "t1", "t2|t3", "t4"}},
};
// clang-format on

void PrintTo(const PrecedenceCase& c, std::ostream* os) { *os << c.key; }

class ConfigPrecedenceTest : public ConfigLoaderTest, public ::testing::WithParamInterface<PrecedenceCase> {};

// Default < file < environment < flag, for every kind of value: each source
// added on top of the others changes the value to its own.
TEST_P(ConfigPrecedenceTest, FlagOverEnvironmentOverFileOverDefault) {
  const auto& c = GetParam();
  EXPECT_EQ(c.read(LoadOk({})), c.expected[0]) << "default";
  const std::string file = WriteFile("precedence.yaml", c.key + ": " + c.file_value + "\n");
  EXPECT_EQ(c.read(LoadOk({"--config", file})), c.expected[1]) << "file over default";
  SetEnv(EnvName(c.key), c.env_value);
  EXPECT_EQ(c.read(LoadOk({"--config", file})), c.expected[2]) << "environment over file";
  EXPECT_EQ(c.read(LoadOk({"--config", file, "--" + FlagName(c.key), c.flag_value})), c.expected[3])
      << "flag over environment and file";
}

INSTANTIATE_TEST_SUITE_P(EveryKindOfValue, ConfigPrecedenceTest, ::testing::ValuesIn(kPrecedenceCases),
                         [](const auto& info) { return info.param.key; });

// ------------------------------------------------------------ refusals

// A configuration start-up refuses (exit code 2), and what the message must
// say: the key, the bad value where there is one, and the expected form.
struct RefusalCase {
  std::string name;
  std::vector<std::string> flags;
  // YAML text of a --config file; empty: no file.
  std::string file;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> message;
};

// One case per row.
// clang-format off
const RefusalCase kRefusalCases[] = {
    // Validate: one case per requirement.
    {"MaxMessageBytesZero", {"--max-message-bytes", "0"}, "", {},
     {"--max-message-bytes", "at least 1 byte"}},
    {"SendQueueZero", {"--send-queue-max-bytes", "0"}, "", {},
     {"--send-queue-max-bytes", "at least 1 byte"}},
    {"HandshakeBytesTooSmall", {"--max-handshake-bytes", "512"}, "", {},
     {"--max-handshake-bytes", "at least 1KiB"}},
    {"HandshakeTimeoutZero", {"--handshake-timeout", "0ms"}, "", {},
     {"--handshake-timeout", "must be positive"}},
    {"BackendBufferTooSmall", {"--backend-buffer-bytes", "1KiB"}, "", {},
     {"--backend-buffer-bytes", "at least 64KiB"}},
    {"BackendEventTimeoutZero", {"--backend-event-timeout", "0ms"}, "", {},
     {"--backend-event-timeout", "must be positive"}},
    {"BackendBatchIntervalTooLong", {"--backend-batch-interval", "101ms"}, "", {},
     {"--backend-batch-interval", "at most 100ms"}},
    {"BackendReconnectMinZero", {"--backend-reconnect-min", "0ms"}, "", {},
     {"--backend-reconnect-min", "must be positive and not above --backend-reconnect-max"}},
    {"BackendReconnectMinAboveMax", {"--backend-reconnect-min", "10s", "--backend-reconnect-max", "1s"}, "", {},
     {"--backend-reconnect-min", "not above --backend-reconnect-max"}},
    {"PongTimeoutZeroWithHeartbeats", {"--pong-timeout", "0ms"}, "", {},
     {"--pong-timeout", "must be positive while heartbeats are on"}},
    {"CloseTimeoutZero", {"--close-timeout", "0ms"}, "", {},
     {"--close-timeout", "must be positive"}},
    {"HandshakeHookTimeoutZero", {"--handshake-hook-timeout", "0ms"}, "", {},
     {"--handshake-hook-timeout", "must be positive"}},
    {"HttpRequestTimeoutZero", {"--http-request-timeout", "0ms"}, "", {},
     {"--http-request-timeout", "must be positive"}},
    {"HttpKeepaliveRequestsZero", {"--http-keepalive-requests", "0"}, "", {},
     {"--http-keepalive-requests", "must be at least 1"}},
    {"DuplicateRoutePrefix", {}, "routes:\n  - path_prefix: /a\n  - path_prefix: /b\n  - path_prefix: /a\n", {},
     {"routes[2].path_prefix", "'/a' twice", "also routes[0]", "each path_prefix may appear once"}},
    {"CompressionLevelZero", {"--compression-level", "0"}, "", {},
     {"--compression-level", "between 1 and 9"}},
    {"CompressionLevelTen", {"--compression-level", "10"}, "", {},
     {"--compression-level", "between 1 and 9"}},
    {"ResponseHeaderWithoutColon", {"--response-headers", "X-Ok: 1, NoColon"}, "", {},
     {"--response-headers", "'NoColon'", "'Name: value'"}},
    {"TlsCertWithoutKey", {"--tls-cert-file", "/cert.pem"}, "", {},
     {"--tls-key-file", "give both --tls-cert-file and --tls-key-file, or neither"}},
    {"TlsKeyWithoutCert", {"--tls-key-file", "/key.pem"}, "", {},
     {"--tls-cert-file", "give both --tls-cert-file and --tls-key-file, or neither"}},
    {"AdminTlsCertWithoutKey", {"--admin-tls-cert-file", "/cert.pem"}, "", {},
     {"--admin-tls-key-file", "give both --admin-tls-cert-file and --admin-tls-key-file, or neither"}},
    {"AdminTlsKeyWithoutCert", {"--admin-tls-key-file", "/key.pem"}, "", {},
     {"--admin-tls-cert-file", "give both --admin-tls-cert-file and --admin-tls-key-file, or neither"}},
    {"AdminClientCaWithoutCert", {"--admin-tls-client-ca-file", "/ca.pem"}, "", {},
     {"--admin-tls-client-ca-file", "needs --admin-tls-cert-file and --admin-tls-key-file"}},
    {"AllowedOriginWithoutScheme", {}, "allowed_origins: [https://ok.example.com, app.example.com]\n", {},
     {"--allowed-origins", "'app.example.com'", "an origin such as https://app.example.com"}},
    {"RetryAfterBelowOneSecond", {"--retry-after", "500ms"}, "", {},
     {"--retry-after", "at least 1s"}},
    {"DrainTimeoutZero", {"--drain-timeout", "0ms"}, "", {},
     {"--drain-timeout", "must be positive"}},
    {"DrainRateZero", {"--drain-rate", "0"}, "", {},
     {"--drain-rate", "at least 1 connection per second"}},
    {"ThreadsTooMany", {"--threads", "300"}, "", {},
     {"--threads", "between 0 (one per core) and 256"}},
    {"LogLevelUnknown", {"--log-level", "loud"}, "", {},
     {"--log-level", "one of trace, debug, info"}},
    {"LogFormatUnknown", {"--log-format", "xml"}, "", {},
     {"--log-format", "text or json"}},
    {"RedactedToken", {}, "admin_tokens: ['<redacted>']\n", {},
     {"--admin-tokens", "--print-config writes"}},
    // Values that are not of their key's form, from each source.
    {"BadSizeFlag", {"--max-message-bytes", "lots"}, "", {},
     {"--max-message-bytes", "'lots'", "a size such as 2MiB"}},
    {"BadSizeFile", {}, "send_queue_max_bytes: 12XB\n", {},
     {"--send-queue-max-bytes", "'12XB'", "a size such as 2MiB"}},
    {"BadSizeEnv", {}, "", {{"WSGATEWAY_BACKEND_BUFFER_BYTES", "-5"}},
     {"--backend-buffer-bytes", "'-5'", "a size such as 2MiB"}},
    {"BadDurationFlag", {"--ping-interval", "10"}, "", {},
     {"--ping-interval", "'10'", "a duration such as 500ms, 30s or 5m"}},
    {"BadDurationFile", {}, "handshake_timeout: soon\n", {},
     {"--handshake-timeout", "'soon'", "a duration such as 500ms"}},
    {"BadBool", {"--permessage-deflate", "maybe"}, "", {},
     {"--permessage-deflate", "'maybe'", "true or false"}},
    {"BadBoolEnv", {}, "", {{"WSGATEWAY_HTTP_FORWARDING", "enabled"}},
     {"--http-forwarding", "'enabled'", "true or false"}},
    {"BadInteger", {"--compression-level", "high"}, "", {},
     {"--compression-level", "'high'", "a whole number"}},
    {"NegativeCount", {"--threads", "-1"}, "", {},
     {"--threads", "'-1'", "a whole number"}},
    {"CountWithTrailingText", {"--max-connections", "10k"}, "", {},
     {"--max-connections", "'10k'", "a whole number"}},
    {"UnknownFlag", {"--no-such-flag", "1"}, "", {},
     {"--no-such-flag"}},
    // The file itself.
    {"UnknownFileKey", {}, "max_mesage_bytes: 1KiB\n", {},
     {"unknown key 'max_mesage_bytes'", "the keys are the flag names"}},
    {"ActionFlagAsFileKey", {}, "print_config: true\n", {},
     {"unknown key 'print_config'"}},
    {"ConfigAsFileKey", {}, "config: other.yaml\n", {},
     {"unknown key 'config'"}},
    {"NestedMapping", {}, "listen:\n  host: 0.0.0.0\n  port: 80\n", {},
     {"config key 'listen'", "a single value or a list, not a mapping"}},
    {"NestedList", {}, "subprotocols: [[a, b]]\n", {},
     {"config key 'subprotocols'", "a list of single values"}},
    {"FileIsAList", {}, "- listen\n- admin\n", {},
     {"--config", "must be a YAML mapping of key: value"}},
    {"InvalidYaml", {}, "listen: [unclosed\n", {},
     {"--config", "is not valid YAML"}},
    {"ListAsKey", {}, "? [listen, backend]\n: x\n", {},
     {"--config", "a key that is not a name"}},
    {"MissingFile", {"--config", "/nonexistent-wsgateway-dir/gateway.yaml"}, "", {},
     {"--config", "'/nonexistent-wsgateway-dir/gateway.yaml'", "no such file", "a readable YAML file"}},
    // Routes.
    {"RoutesNotAList", {}, "routes:\n  path_prefix: /a\n", {},
     {"config key 'routes'", "a YAML list of mappings with path_prefix"}},
    {"RouteNotAMapping", {}, "routes: [/a]\n", {},
     {"routes[0]", "a mapping with path_prefix and options"}},
    {"UnknownRouteKey", {}, "routes:\n  - path_prefix: /a\n    hook: true\n", {},
     {"routes[0]: unknown key 'hook'", "a route may set path_prefix, backend, handshake_hook"}},
    {"RoutePrefixWithoutSlash", {}, "routes:\n  - path_prefix: chat\n", {},
     {"routes[0].path_prefix", "a path starting with '/'"}},
    {"ClusterRedisNotAUrl", {"--cluster-redis", "redis:6379"}, "", {},
     {"--cluster-redis", "'redis:6379'", "redis://"}},
    {"ClusterRedisBadPort", {}, "cluster_redis: redis://redis:99999\n", {},
     {"--cluster-redis", "the port must be 1-65535"}},
    {"ClusterRedisRedactedPassword", {}, "", {{"WSGATEWAY_CLUSTER_REDIS", "redis://:<redacted>@redis:6379"}},
     {"--cluster-redis", "--print-config writes in place of the password"}},
    {"ClusterWithoutToken", {"--cluster-redis", "redis://redis:6379"}, "", {},
     {"--cluster-token-file", "is required with --cluster-redis", "shared token"}},
    {"ClusterListenNotAnAddress",
     {"--cluster-redis", "redis://redis:6379", "--cluster-token-file", "/run/token", "--cluster-listen",
      "gateway:50061"},
     "", {}, {"--cluster-listen", "'gateway:50061' is not host:port"}},
    {"ClusterKeyPrefixWithBraces", {"--cluster-key-prefix", "{a}"}, "", {},
     {"--cluster-key-prefix", "without braces"}},
    {"RouteWithoutPrefix", {}, "routes:\n  - path_prefix: /a\n  - backend: x:1\n", {},
     {"routes[1].path_prefix", "a path starting with '/'"}},
    {"RouteBadBool", {}, "routes:\n  - path_prefix: /a\n    handshake_hook: maybe\n", {},
     {"routes[0].handshake_hook", "'maybe'", "true or false"}},
    {"RouteBadSize", {}, "routes:\n  - path_prefix: /a\n    max_message_bytes: big\n", {},
     {"routes[0].max_message_bytes", "'big'", "a size such as 2MiB"}},
    {"RouteSubprotocolsNotAList", {}, "routes:\n  - path_prefix: /a\n    subprotocols: chat.v1\n", {},
     {"routes[0].subprotocols", "a YAML list"}},
};
// clang-format on

void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class ConfigRefusalTest : public ConfigLoaderTest, public ::testing::WithParamInterface<RefusalCase> {};

// Start-up stops with exit code 2 and a message that names the key and the
// expected form, so an operator can fix the line without reading the code.
TEST_P(ConfigRefusalTest, StopsNamingTheKeyAndTheExpectedForm) {
  const auto& c = GetParam();
  std::vector<std::string> args = c.flags;
  if (!c.file.empty()) {
    args.insert(args.begin(), {"--config", WriteFile("refused.yaml", c.file)});
  }
  for (const auto& [name, value] : c.env) SetEnv(name, value);
  const std::string output = LoadFails(args);
  for (const auto& expected : c.message)
    EXPECT_NE(output.find(expected), std::string::npos) << expected << "\n" << output;
  // --check-config refuses the same configuration the same way.
  args.push_back("--check-config");
  const std::string checked = LoadFails(args);
  for (const auto& expected : c.message)
    EXPECT_NE(checked.find(expected), std::string::npos) << expected << "\n" << checked;
}

INSTANTIATE_TEST_SUITE_P(EveryRefusal, ConfigRefusalTest, ::testing::ValuesIn(kRefusalCases),
                         [](const auto& info) { return info.param.name; });

// ------------------------------------------------------------ --check-config

// --check-config accepts a valid configuration: it prints "configuration OK"
// with the file's name, exits 0, and does not start the gateway.
TEST_F(ConfigLoaderTest, CheckConfigAcceptsAValidConfiguration) {
  const std::string pem = WriteFile("present.pem", "not checked here\n");
  const std::string file = WriteFile("good.yaml",
                                     "listen: 127.0.0.1:0\n"
                                     "tls_cert_file: " +
                                         pem +
                                         "\n"
                                         "tls_key_file: " +
                                         pem +
                                         "\n"
                                         "admin_tls_cert_file: " +
                                         pem +
                                         "\n"
                                         "admin_tls_key_file: " +
                                         pem +
                                         "\n"
                                         "admin_tls_client_ca_file: " +
                                         pem +
                                         "\n"
                                         "admin_token_file: " +
                                         pem +
                                         "\n"
                                         "routes:\n  - path_prefix: /chat\n");
  EXPECT_EQ(RunOk({"--config", file, "--check-config"}), "configuration OK: " + file + "\n");
  EXPECT_EQ(RunOk({"--check-config"}), "configuration OK\n");
}

// --check-config refuses a configuration whose files are missing, not regular
// files or not readable, naming the key; loading without it leaves the
// files to start-up.
class ConfigFileCheckTest : public ConfigLoaderTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ConfigFileCheckTest, CheckConfigNamesTheKeyOfAnUnreadableFile) {
  const std::string key = GetParam();
  const std::string pem = WriteFile("present.pem", "x\n");
  const std::string missing = (dir_ / "missing.pem").string();
  std::string yaml;
  for (const auto& k : ConfigKeys()) {
    if (k.form == ConfigForm::kFile) yaml += std::string(k.name) + ": " + (k.name == key ? missing : pem) + "\n";
  }
  const std::string file = WriteFile("files.yaml", yaml);
  LoadOk({"--config", file});
  std::string output = LoadFails({"--config", file, "--check-config"});
  for (const auto& expected :
       {"--" + FlagName(key), "'" + missing + "' does not exist", std::string("a readable file")}) {
    EXPECT_NE(output.find(expected), std::string::npos) << expected << "\n" << output;
  }
  output = LoadFails({"--config", file, "--check-config", "--" + FlagName(key), dir_.string()});
  EXPECT_NE(output.find("is not a regular file"), std::string::npos) << output;
  if (geteuid() != 0) {  // root reads every file
    const std::string locked = WriteFile("locked.pem", "x\n");
    chmod(locked.c_str(), 0);
    output = LoadFails({"--config", file, "--check-config", "--" + FlagName(key), locked});
    EXPECT_NE(output.find("'" + locked + "' cannot be read"), std::string::npos) << output;
  }
}

std::vector<std::string> FileKeys() {
  std::vector<std::string> keys;
  for (const auto& key : ConfigKeys()) {
    if (key.form == ConfigForm::kFile) keys.emplace_back(key.name);
  }
  return keys;
}

INSTANTIATE_TEST_SUITE_P(EveryFileKey, ConfigFileCheckTest, ::testing::ValuesIn(FileKeys()),
                         [](const auto& info) { return info.param; });

// --check-config and --print-config are one action each.
TEST_F(ConfigLoaderTest, CheckConfigAndPrintConfigExcludeEachOther) {
  const std::string output = LoadFails({"--check-config", "--print-config"});
  EXPECT_NE(output.find("excludes"), std::string::npos) << output;
}

}  // namespace
}  // namespace wsgateway
