#include "gateway/config/configured_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace wsgateway {

std::optional<std::string> ReadConfiguredFile(std::string_view key, const std::string& path, std::string* error) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    *error = ConfiguredFileError(key, path, std::string("cannot read: ") + std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char chunk[4096];
  std::size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0) text.append(chunk, n);
  // A directory opens but fails on the first read (EISDIR).
  if (std::ferror(file.get()) != 0) {
    *error = ConfiguredFileError(key, path, std::string("cannot read: ") + std::strerror(errno));
    return std::nullopt;
  }
  return text;
}

std::string ConfiguredFileError(std::string_view key, const std::string& path, std::string_view problem) {
  return "--" + std::string(key) + " '" + path + "': " + std::string(problem);
}

}  // namespace wsgateway
