/* harness_util.h - small pieces the fuzz harnesses share. */
#ifndef FUZZ_HARNESS_UTIL_H
#define FUZZ_HARNESS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A script's clock step byte b (the argument of "~t"): b < 64: b * 50 ms;
 * < 128: 1..64 s; < 192: 1..64 min; else 1..64 days. In nanoseconds. */
int64_t fuzz_step_ns(uint8_t b);

/* FUZZ_TRACE output: "[slot] what "bytes"" with CR, LF and non-printable
 * bytes escaped. */
void fuzz_trace_bytes(const char *what, int slot, const char *p, size_t n);

#endif
