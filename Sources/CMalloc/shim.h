// glibc's malloc statistics and tuning (<malloc.h> is not part of Swift's Glibc module).
#include <malloc.h>
