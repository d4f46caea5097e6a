#pragma once
// Process-wide logger set-up: one line per event, text or JSON, to stderr.

#include <string>

namespace wsgateway {

// Throws spdlog::spdlog_ex on a bad level; call once at start-up.
void SetupLogging(const std::string& level, const std::string& format);

}  // namespace wsgateway
