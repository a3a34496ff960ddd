/* log.c - see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

int log_verbosity;

static void log_v(const char *fmt, va_list ap) {
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "deferd: %s\n", line);
}

void log_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_v(fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...) {
    if (log_verbosity < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(fmt, ap);
    va_end(ap);
}
