# One library per folder of the product code: wsgateway_<name> with the
# alias wsgateway::<name>, the repository root as its include root (every
# include names its folder, e.g. "gateway/websocket/frame_codec.hpp") and
# strict warnings.
#
#   wsgateway_library(<name> SOURCES <file>... DEPENDS <target>... [PRIVATE <target>...])
#
# DEPENDS are public: what the library's headers include. PRIVATE stays out
# of them.
function(wsgateway_library name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;DEPENDS;PRIVATE")
  set(target wsgateway_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(wsgateway::${name} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PUBLIC ${ARG_DEPENDS})
  if(ARG_PRIVATE)
    target_link_libraries(${target} PRIVATE ${ARG_PRIVATE})
  endif()
  wsgateway_strict_warnings(${target})
endfunction()
