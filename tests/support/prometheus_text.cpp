#include "tests/support/prometheus_text.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

bool IsNameChar(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

std::optional<double> ParseValue(const std::string& text) {
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return std::nullopt;
  return v;
}

// Parses `name{a="x",b="y"} value [timestamp]`.
std::optional<Sample> ParseSample(const std::string& line) {
  Sample sample;
  std::size_t i = 0;
  while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
  if (i == 0) return std::nullopt;
  sample.name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const std::size_t start = i;
      while (i < line.size() && IsNameChar(line[i], i == start)) ++i;
      if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return std::nullopt;
      const std::string key = line.substr(start, i - start);
      i += 2;
      std::string value;
      for (;; ++i) {
        if (i >= line.size()) return std::nullopt;
        if (line[i] == '"') break;
        if (line[i] == '\\') {
          if (++i >= line.size()) return std::nullopt;
          value.push_back(line[i] == 'n' ? '\n' : line[i]);
        } else {
          value.push_back(line[i]);
        }
      }
      ++i;  // closing quote
      sample.labels[key] = value;
      if (i < line.size() && line[i] == ',') ++i;
    }
  }
  if (i >= line.size() || line[i] != ' ') return std::nullopt;
  std::istringstream rest(line.substr(i));
  std::string value_text;
  rest >> value_text;
  const auto value = ParseValue(value_text);
  if (!value) return std::nullopt;
  sample.value = *value;
  return sample;
}

}  // namespace

Scrape Scrape::Parse(const std::string& text) {
  Scrape scrape;
  scrape.text_ = text;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name, kind;
      words >> hash >> keyword >> name >> kind;
      if (keyword == "TYPE") scrape.types_[name] = kind;
      continue;
    }
    if (auto sample = ParseSample(line)) {
      scrape.samples_.push_back(std::move(*sample));
    } else {
      scrape.errors_.push_back(line);
    }
  }
  return scrape;
}

std::optional<double> Scrape::Value(const std::string& name, const std::map<std::string, std::string>& labels) const {
  for (const auto& s : samples_) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

double Scrape::Sum(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double sum = 0;
  for (const auto& s : samples_) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match) sum += s.value;
  }
  return sum;
}

bool Scrape::Has(const std::string& name) const {
  for (const auto& s : samples_) {
    if (s.name == name) return true;
  }
  return false;
}

std::optional<Scrape> ScrapeMetrics(std::uint16_t port, std::chrono::milliseconds timeout) {
  const HttpResult result = HttpGet(port, "/metrics", timeout);
  if (result.ec || result.status != 200) return std::nullopt;
  return Scrape::Parse(result.body);
}

}  // namespace wsgateway::testing
