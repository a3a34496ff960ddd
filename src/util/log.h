/* log.h - one-line messages to stderr, prefixed "deferd: ".
 *
 * A daemon's stderr goes to the journal (systemd) or the terminal (make
 * run); both add their own timestamps, so we add none. */
#ifndef DEFER_LOG_H
#define DEFER_LOG_H

extern int log_verbosity; /* -V raises it */

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only when -V was given. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
