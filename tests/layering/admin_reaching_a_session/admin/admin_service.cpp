// A fixture of the layering check (tests/CMakeLists.txt, layering.*): admin/
// reaching a session past the data plane, which scripts/check-layering must
// report. Never compiled.
#include "gateway/data_plane/data_plane.hpp"
#include "gateway/runtime/session.hpp"
