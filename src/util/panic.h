/* panic.h - stop the process with a message, for states it cannot recover
 * from (memory exhausted in the middle of moving a job between queues).
 * The one place the core may reach outside itself: it never returns. */
#ifndef DEFER_PANIC_H
#define DEFER_PANIC_H

void defer_panic(const char *msg) __attribute__((noreturn));

#endif
