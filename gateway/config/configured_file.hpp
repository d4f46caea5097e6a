#pragma once
// A file named by a configuration key (a token file, a PEM), read whole.
// Errors name the key and the path, so the operator knows which setting to
// fix.

#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

// The file's contents, or nullopt with "--key 'path': cannot read: reason"
// in *error.
std::optional<std::string> ReadConfiguredFile(std::string_view key, const std::string& path, std::string* error);

// "--key 'path': problem", the form of every error about such a file.
std::string ConfiguredFileError(std::string_view key, const std::string& path, std::string_view problem);

}  // namespace wsgateway
