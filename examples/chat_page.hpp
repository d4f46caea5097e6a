// The chat's web page: one self-contained HTML document (styles and script
// inline, nothing loaded from elsewhere) that asks for a name, connects to
// ws(s)://<its own host>/chat?name=..., and shows the conversation and who
// is online. It speaks chat_protocol.hpp.
#pragma once

#include <string_view>

namespace wsgateway_examples {

std::string_view ChatPageHtml();

}  // namespace wsgateway_examples
