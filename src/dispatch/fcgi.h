/* fcgi.h - the "fastcgi" push target: deferd runs a task by sending it as
 * a FastCGI request straight into php-fpm, as a web server would.
 *
 * Each attempt opens its own connection (unix socket or TCP), sends one
 * RESPONDER request - a POST of the payload to the configured script, the
 * task's id, queue and attempt as X-Defer-* headers - and reads the answer
 * until END_REQUEST. A 2xx status is success, unless PHP logged a fatal
 * error (a script that dies after flushing output still says 200). The
 * connection is not kept: php-fpm pins a worker to a kept connection for
 * as long as it stays open (and request_terminate_timeout kills it for
 * idling), which would starve the pool's web traffic.
 *
 * Memory per attempt is bounded whatever the script prints: the first
 * FCGI_KEEP_STDOUT bytes of its output (the response head and the start of
 * the body) and the last FCGI_KEEP_STDERR bytes of its FastCGI stderr
 * (where php-fpm puts PHP's error messages) are kept for the failure
 * reason; the rest is counted and dropped. */
#ifndef DEFER_FCGI_H
#define DEFER_FCGI_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dispatch/target.h"

#define FCGI_KEEP_STDOUT (16 * 1024)
#define FCGI_KEEP_STDERR (8 * 1024)

/* A target for php-fpm at `address` - "unix:/run/php/php8.2-fpm.sock" or
 * "host:port" ("127.0.0.1:9000", "[::1]:9000", "fpm.internal:9000"; a name
 * is resolved here, once) - running `script`, the absolute path of the PHP
 * file as php-fpm sees it (SCRIPT_FILENAME). NULL with a message in err
 * when the address or script cannot be used. */
push_target_t *fcgi_target_new(uv_loop_t *loop, const char *address, const char *script,
                               char *err, size_t errlen);

extern const push_target_ops_t fcgi_target_ops;

/* Counters since the target was made, for stats and tests. */
typedef struct fcgi_target_stats {
    uint64_t started;      /* attempts started */
    uint64_t succeeded;    /* ended with a 2xx status */
    uint64_t failed;       /* every other end, aborts included */
    uint64_t in_flight;    /* started and done() not called yet */
    uint64_t stdout_bytes; /* STDOUT received, kept or not */
    uint64_t stderr_bytes; /* STDERR received, kept or not */
    size_t kept_peak;      /* most output bytes one attempt held at once */
} fcgi_target_stats_t;

void fcgi_target_stats(const push_target_t *t, fcgi_target_stats_t *st);

#endif
