/* target.h - the contract every push target implements (fastcgi, http,
 * exec), so the dispatcher treats them alike.
 *
 * The dispatcher reserves a task, then asks a target to run one attempt of
 * it: the payload is the request body (or the command's stdin); the task's
 * id, queue and attempt number travel as headers (or environment
 * variables); success is a 2xx status (or exit status 0). Anything else is
 * a failed attempt, and the target says why in words a person can act on.
 *
 * Everything runs on the loop thread. A target never blocks: it starts the
 * attempt and calls `done` exactly once, later, from a libuv callback -
 * never from inside start() itself (on an immediate failure it defers the
 * call to the next loop turn), so the dispatcher's state is never changed
 * under it. */
#ifndef DEFER_TARGET_H
#define DEFER_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Failure reasons are kept with the task (last_error); longer ones are cut. */
#define PUSH_REASON_MAX 512

typedef struct push_request {
    uint64_t task_id;
    const char *queue; /* NUL-terminated */
    uint32_t attempt;  /* 1 for the first */
    /* The payload. Valid until done() is called: the dispatcher holds the
     * task reserved meanwhile, and nothing else may free it. */
    const char *body;
    size_t body_len;
    bool body_is_json; /* sent as application/json, else octet-stream */
} push_request_t;

typedef struct push_result {
    bool ok;
    /* HTTP or FastCGI status, or the exit status; -1 when there was none
     * (could not connect, killed by a signal, ...). */
    int status;
    /* Why it failed, e.g. "php-fpm answered 500: PHP Fatal error: ..." or
     * "exit status 3; stderr: ...". Empty on success. */
    char reason[PUSH_REASON_MAX];
} push_result_t;

typedef void (*push_done_fn)(void *ctx, const push_result_t *result);

typedef struct push_attempt push_attempt_t; /* a target's own per-attempt state */
typedef struct push_target push_target_t;   /* a target's own configured state */

typedef struct push_target_ops {
    const char *name; /* "fastcgi", "http", "exec" */
    /* Run one attempt. Returns the attempt (for abort), or NULL when it
     * could not even be started - then done() has been scheduled with the
     * reason all the same. */
    push_attempt_t *(*start)(push_target_t *t, const push_request_t *req, push_done_fn done,
                             void *ctx);
    /* Stop an attempt (its deadline passed, or the server shuts down).
     * done() follows once it has really stopped - for a command, after
     * SIGTERM and, if need be, SIGKILL - with ok false. Aborting an attempt
     * whose done() was already called is not allowed. */
    void (*abort)(push_attempt_t *a);
    /* Free the target. Every attempt must have completed. */
    void (*free)(push_target_t *t);
} push_target_ops_t;

/* A target together with its operations. */
typedef struct push_target_ref {
    const push_target_ops_t *ops;
    push_target_t *target;
} push_target_ref_t;

#endif
