/* clock.h - the one place the server reads the time.
 *
 * Wall-clock nanoseconds: delays and run-at times are stored in the log and
 * must mean the same instant after a restart, which a monotonic clock
 * cannot promise. (beanstalkd makes the same choice.) */
#ifndef DEFER_CLOCK_H
#define DEFER_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
