/* dispatch.h - push dispatch: deferd runs the tasks of configured queues
 * itself, through a target (fastcgi, http, exec; see target.h).
 *
 * Each queue with push settings gets a pusher: an engine session watching
 * that queue alone. At the end of every loop turn the pushers reserve what
 * their concurrency and rate limit allow and start an attempt for each. An
 * attempt's task stays reserved while it runs; success deletes it (done),
 * failure records why and delays it for a retry with exponential backoff,
 * or, after its last attempt, buries it as failed.
 *
 * Everything runs on the loop thread. */
#ifndef DEFER_DISPATCH_H
#define DEFER_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/engine.h"
#include "dispatch/config.h"
#include "util/buf.h"

/* After an attempt's deadline it is aborted; its reservation is held this
 * much longer, so that the engine's own TTR never ends it first. */
#define DISPATCH_HOLD_MARGIN (INT64_C(120) * NS_PER_SEC)

typedef struct dispatch dispatch_t;

/* file (may be NULL) holds the queues of the --config file; the dispatcher
 * takes it over and sets up their targets at once, so that a program that
 * does not exist or a host that does not resolve stops the start before
 * anything listens. NULL with err filled when one cannot be set up. */
dispatch_t *dispatch_new(uv_loop_t *loop, engine_t *e, config_t *file, char *err, size_t errlen);
void dispatch_free(dispatch_t *d);

/* Add the queues whose settings were read back from the log (those the
 * config file also names keep the file's). Call once the log is replayed;
 * pushing starts with the loop. A logged queue whose target cannot be set
 * up now is reported and left unpushed. */
void dispatch_start(dispatch_t *d);

/* Answers of dispatch_configure, as HTTP statuses. */
#define DISPATCH_OK 200
#define DISPATCH_INVALID 400
#define DISPATCH_FIXED 409       /* the queue is set in the config file */
#define DISPATCH_NO_MEMORY 503
/* PUT /v1/queues/{queue}: new settings (JSON) for a queue; {"target":
 * "none"} stops pushing it. The change is logged. err says what was wrong. */
int dispatch_configure(dispatch_t *d, const char *queue, size_t len, const char *json,
                       size_t json_len, char *err, size_t errlen);

/* The "push" member of a queue object: settings and counters, or null. */
bool dispatch_render_queue(const dispatch_t *d, buf_t *b, const tube_t *t);
/* Prometheus lines for /metrics. */
bool dispatch_render_metrics(const dispatch_t *d, buf_t *b);

/* The end of a loop turn: start what may be started. */
void dispatch_end_turn(dispatch_t *d, int64_t now);

/* Stop: no new attempts; running ones get grace_ns to finish, then are
 * aborted. Their tasks stay reserved, and become ready again when the
 * server stops (or after a restart: nothing is lost). stopped(ctx) is
 * called once every attempt has ended and the dispatcher's handles are
 * closed. */
void dispatch_stop(dispatch_t *d, int64_t grace_ns, void (*stopped)(void *ctx), void *ctx);

#endif
