#pragma once
// How a connection ended, as reported to the backend (the Close event) and
// counted: the code, the reason and who closed. Plain value.

#include <cstdint>
#include <string>

#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

struct CloseInfo {
  std::uint16_t code = 1006;
  std::string reason;
  v1::ClosedBy closed_by = v1::CLOSED_BY_ERROR;
};

}  // namespace wsgateway
