// Counts heap allocations made by every thread of the test binary while counting is on.
// Normal builds interpose malloc and friends and every operator new; sanitizer builds, where
// the sanitizer owns malloc, use its allocation hooks instead.
#pragma once

#include <cstdint>

namespace rs::test {

void set_alloc_counting(bool on);
std::uint64_t alloc_count();

}  // namespace rs::test
