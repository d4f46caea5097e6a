# The fuzz build (scripts/fuzz, folder build-fuzz): every target is
# instrumented for libFuzzer's coverage feedback and built with
# AddressSanitizer and UndefinedBehaviorSanitizer, and any UB report aborts,
# so the fuzzer counts it as a crash. The fuzz executables add libFuzzer's
# main (tests/fuzz/CMakeLists.txt). Clang only: GCC has no libFuzzer.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "WSGATEWAY_FUZZ needs clang (CXX=clang++-14); this is ${CMAKE_CXX_COMPILER_ID}")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
