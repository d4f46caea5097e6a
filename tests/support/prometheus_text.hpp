#pragma once
// A small parser for the Prometheus text exposition format (0.0.4), enough
// to read the gateway's /metrics in tests, and a scraper.
//
// Thread-safety: Scrape is a value; use one per thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wsgateway::testing {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

class Scrape {
 public:
  // Parses the text; lines that are not samples (comments, blanks) are
  // skipped, malformed sample lines are recorded in errors().
  static Scrape Parse(const std::string& text);

  const std::vector<Sample>& samples() const { return samples_; }
  const std::vector<std::string>& errors() const { return errors_; }
  // "# TYPE name kind" lines.
  const std::map<std::string, std::string>& types() const { return types_; }
  const std::string& text() const { return text_; }

  // The value of the sample with exactly this name and exactly these labels.
  std::optional<double> Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  // The sum over samples with this name whose labels include `labels`.
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  bool Has(const std::string& name) const;

 private:
  std::vector<Sample> samples_;
  std::vector<std::string> errors_;
  std::map<std::string, std::string> types_;
  std::string text_;
};

// GETs http://127.0.0.1:port/metrics and parses it; nullopt if the request
// fails or the status is not 200.
std::optional<Scrape> ScrapeMetrics(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace wsgateway::testing
