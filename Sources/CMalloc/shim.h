// glibc's malloc statistics and tuning (<malloc.h> is not part of Swift's Glibc module).
#include <malloc.h>
#include <stddef.h>

// Writes a zero at the start of every `page` bytes of `bytes` at `start`, through a volatile
// pointer: a compiler may drop plain stores to a block that is freed next, and these stores are
// for the kernel, which faults the pages in, not for a later read.
static inline void tenops_touch_pages(void *start, size_t bytes, size_t page) {
    volatile unsigned char *cursor = (volatile unsigned char *)start;
    for (size_t offset = 0; offset < bytes; offset += page) cursor[offset] = 0;
    if (bytes > 0) cursor[bytes - 1] = 0;
}
