#pragma once
// A test suite whose tests share one scripted stack (ScriptedBackend +
// gateway); see SharedStack for Flags() and the helpers. After every test
// the backend is back to its default answers and holds no call, so that no
// test's script answers for the next one.

#include <gtest/gtest.h>

#include "tests/support/scripted_backend.hpp"
#include "tests/support/scripted_stack.hpp"
#include "tests/support/shared_stack.hpp"

namespace wsgateway::testing {

template <typename Suite>
class SharedScriptedStack : public SharedStack<Suite, ScriptedStack> {
  using Base = SharedStack<Suite, ScriptedStack>;

 protected:
  void TearDown() override {
    if (!Base::started()) return;
    backend().ResetHandlers();
    backend().ReleaseHeld();
  }

  static ScriptedBackend& backend() { return *Base::stack().backend; }
};

}  // namespace wsgateway::testing
