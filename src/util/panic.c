/* panic.c - see panic.h. */
#include "util/panic.h"

#include <stdio.h>
#include <stdlib.h>

void defer_panic(const char *msg) {
    fprintf(stderr, "deferd: fatal: %s\n", msg);
    fflush(stderr);
    abort();
}
