// Counts heap allocations made by every thread of the test binary while counting is on, or only
// by the threads started after counting began. Normal builds interpose malloc and friends and
// every operator new; sanitizer builds, where the sanitizer owns malloc, use its allocation
// hooks instead.
#pragma once

#include <cstdint>

namespace rs::test {

// On: what every thread allocates counts. Off: nothing counts (either mode ends).
void set_alloc_counting(bool on);
// On, counting only what threads that do not exist yet will allocate, from their first
// instruction (the threads a server starts from now on, such as a worker made for a client
// that connects after this call); every thread of the process now is left out. The threads are
// read from /proc/self/task: false (and counting stays off) when that cannot be read.
[[nodiscard]] bool count_allocations_of_new_threads();
std::uint64_t alloc_count();

}  // namespace rs::test
