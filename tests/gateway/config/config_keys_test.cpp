// The key table against docs/configuration.md, the reference operators read:
// every key the code knows is documented with the code's default, in the
// code's order, and the docs list no key the code does not know.

#include "gateway/config/config_keys.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace wsgateway {
namespace {

struct DocsRow {
  std::string key;
  std::string default_text;
  std::string meaning;
};

std::string Trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

std::string ReadDocs() {
  std::ifstream in(std::string(WSGATEWAY_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The rows "| `key` | default | meaning |" of the reference table. A meaning
// may hold '|' only inside backticks, which the docs do not do.
std::vector<DocsRow> ReferenceRows(const std::string& docs) {
  std::vector<DocsRow> rows;
  std::istringstream lines(docs);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    std::size_t start = 1;
    for (auto bar = line.find('|', start); bar != std::string::npos; bar = line.find('|', start)) {
      cells.push_back(Trimmed(line.substr(start, bar - start)));
      start = bar + 1;
    }
    if (cells.size() != 3) {
      ADD_FAILURE() << "a reference row needs 3 cells: " << line;
      continue;
    }
    rows.push_back({cells[0].substr(1, cells[0].size() - 2), cells[1], cells[2]});
  }
  return rows;
}

// How the docs write a default: `2MiB`, or (none) for an empty value.
std::string DocumentedDefault(const ConfigKey& key) {
  static const Config defaults;
  std::string text;
  if (key.form == ConfigForm::kRoutes) {
    text = defaults.routes.empty() ? "" : "routes";
  } else if (IsList(key.form)) {
    for (const auto& item : FormatList(key, defaults)) text += (text.empty() ? "" : ",") + item;
  } else {
    text = FormatScalar(key, defaults);
  }
  return text.empty() ? "(none)" : "`" + text + "`";
}

TEST(ConfigKeysTest, DocsListEveryKeyInTheCodesOrderAndNoOther) {
  std::vector<std::string> documented;
  for (const auto& row : ReferenceRows(ReadDocs())) documented.push_back(row.key);
  // `config` names the file, so it is the one key that is not in the file.
  std::vector<std::string> known = {"config"};
  for (const auto& key : ConfigKeys()) known.emplace_back(key.name);
  const auto contains = [](const std::vector<std::string>& keys, const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (const auto& key : known) EXPECT_TRUE(contains(documented, key)) << "undocumented key: " << key;
  for (const auto& key : documented) EXPECT_TRUE(contains(known, key)) << "documented key the code lacks: " << key;
  EXPECT_EQ(documented, known) << "the docs list the keys in another order than ConfigKeys()";
}

TEST(ConfigKeysTest, DocsGiveTheCodesDefaultAndAMeaning) {
  std::map<std::string, DocsRow> rows;
  for (auto& row : ReferenceRows(ReadDocs())) rows[row.key] = row;
  for (const auto& key : ConfigKeys()) {
    const auto row = rows.find(std::string(key.name));
    if (row == rows.end()) continue;  // reported by the test above
    EXPECT_EQ(row->second.default_text, DocumentedDefault(key)) << key.name;
    EXPECT_FALSE(row->second.meaning.empty()) << key.name;
  }
  ASSERT_TRUE(rows.contains("config"));
  EXPECT_EQ(rows["config"].default_text, "(none)");
}

// The Routes section names every key a route may set.
TEST(ConfigKeysTest, DocsNameEveryRouteKey) {
  const std::string docs = ReadDocs();
  const auto routes = docs.find("\n## Routes");
  ASSERT_NE(routes, std::string::npos);
  const std::string section = docs.substr(routes);
  for (const auto key : RouteKeys()) {
    EXPECT_NE(section.find("`" + std::string(key) + "`"), std::string::npos) << key;
  }
}

// Names, variables and the forms a value is written in.
TEST(ConfigKeysTest, FlagAndVariableNamesFollowTheKey) {
  EXPECT_EQ(FlagName("max_message_bytes"), "max-message-bytes");
  EXPECT_EQ(EnvName("max_message_bytes"), "WSGATEWAY_MAX_MESSAGE_BYTES");
}

TEST(ConfigKeysTest, EveryKeyFormatsAndParsesBackItsDefault) {
  for (const auto& key : ConfigKeys()) {
    if (IsList(key.form)) continue;
    Config config;
    const std::string text = FormatScalar(key, Config{});
    ASSERT_TRUE(ParseValue(key, text, config)) << key.name << ": " << text;
    EXPECT_EQ(FormatScalar(key, config), text) << key.name;
    EXPECT_FALSE(key.help.empty()) << key.name;
  }
}

TEST(ConfigKeysTest, BoolsTakeTheUsualSpellings) {
  const ConfigKey* deflate = nullptr;
  for (const auto& key : ConfigKeys()) {
    if (key.name == "permessage_deflate") deflate = &key;
  }
  ASSERT_NE(deflate, nullptr);
  Config config;
  for (const char* yes : {"true", "True", "yes", "on", "1"}) {
    config.permessage_deflate = false;
    EXPECT_TRUE(ParseValue(*deflate, yes, config) && config.permessage_deflate) << yes;
  }
  for (const char* no : {"false", "FALSE", "no", "off", "0"}) {
    config.permessage_deflate = true;
    EXPECT_TRUE(ParseValue(*deflate, no, config) && !config.permessage_deflate) << no;
  }
  EXPECT_FALSE(ParseValue(*deflate, "", config));
  EXPECT_FALSE(ParseValue(*deflate, "maybe", config));
}

}  // namespace
}  // namespace wsgateway
