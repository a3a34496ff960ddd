/* harness_util.c - see harness_util.h. */
#include "harness_util.h"

#include <stdio.h>

#include "core/engine.h"

int64_t fuzz_step_ns(uint8_t b) {
    if (b < 64)
        return (int64_t)b * (NS_PER_SEC / 20);
    if (b < 128)
        return (int64_t)(b - 63) * NS_PER_SEC;
    if (b < 192)
        return (int64_t)(b - 127) * 60 * NS_PER_SEC;
    return (int64_t)(b - 191) * 86400 * NS_PER_SEC;
}

void fuzz_trace_bytes(const char *what, int slot, const char *p, size_t n) {
    fprintf(stderr, "[%d] %s \"", slot, what);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch < 32 || ch > 126 || ch == '"' || ch == '\\')
            fprintf(stderr, "\\x%02x", ch);
        else
            fputc(ch, stderr);
    }
    fputs("\"\n", stderr);
}
