# Strict warnings for the project's own code; generated code is exempt.
function(wsgateway_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()

# Boost.Asio/Beast are header-only; these keep them consistent across targets.
add_library(wsgateway_boost INTERFACE)
target_link_libraries(wsgateway_boost INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(wsgateway_boost INTERFACE
  BOOST_ASIO_NO_DEPRECATED)
