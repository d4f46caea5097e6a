// The configuration loader (gateway/config/config_loader.*) on a YAML file, as
// `wsgateway --config FILE` reads it: every refusal is an ordinary error
// (exit code 2), never an exception out of LoadConfig or a crash. A
// configuration it accepts prints (--print-config) as YAML that loads back
// to the same configuration, as config_printer.hpp promises.
//
// Input: the file's bytes.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <streambuf>
#include <string>

#include "gateway/config/config_loader.hpp"
#include "gateway/config/config_printer.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

// Swallows what is written to it.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// One file per fuzzing process, in TMPDIR.
const std::string& ConfigPath() {
  static const std::string* path = [] {
    auto* p = new std::string(
        (std::filesystem::temp_directory_path() / ("wsgateway-fuzz-config-" + std::to_string(getpid()) + ".yaml"))
            .string());
    std::atexit([] { std::filesystem::remove(ConfigPath()); });
    return p;
  }();
  return *path;
}

wsgateway::ConfigLoadResult LoadFrom(const std::string& text) {
  std::ofstream(ConfigPath(), std::ios::binary | std::ios::trunc) << text;
  const char* argv[] = {"wsgateway", "--config", ConfigPath().c_str(), nullptr};
  return wsgateway::LoadConfig(3, argv);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The loader prints its errors (and CLI11 its help); the fuzzer's output
  // is for the fuzzer. Sanitizer reports write to the descriptor directly.
  static NullBuffer sink;
  std::cout.rdbuf(&sink);
  std::cerr.rdbuf(&sink);
  // The environment must not configure anything.
  for (char** e = environ; *e != nullptr;) {
    const std::string entry = *e;
    if (entry.starts_with("WSGATEWAY_")) {
      unsetenv(entry.substr(0, entry.find('=')).c_str());
    } else {
      ++e;
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto result = LoadFrom(text);
  FUZZ_CHECK(result.config.has_value() == (result.exit_code == 0));
  FUZZ_CHECK(result.config.has_value() || result.exit_code == 2);
  if (!result.config || !result.config->admin_tokens.empty()) return 0;  // tokens print redacted

  const auto printed = wsgateway::PrintConfig(*result.config);
  const auto reloaded = LoadFrom(printed);
  if (!reloaded.config) std::fprintf(stderr, "printed configuration refused:\n%s\n", printed.c_str());
  FUZZ_CHECK(reloaded.config.has_value());
  const auto reprinted = wsgateway::PrintConfig(*reloaded.config);
  if (reprinted != printed) {
    std::fprintf(stderr, "printed:\n%s\nreloaded and printed:\n%s\n", printed.c_str(), reprinted.c_str());
  }
  FUZZ_CHECK(reprinted == printed);
  return 0;
}
