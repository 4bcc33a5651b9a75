// Counts every operator new in the test binary, so tests can prove a code path allocates
// nothing. The replacement operators live in alloc_counter.cpp, their own translation unit,
// so that no caller sees them inline (GCC then misreports new/free as mismatched).
#pragma once

#include <cstddef>

namespace rs::http::test {

size_t allocation_count();

}  // namespace rs::http::test
