/* script.h - the scripts of the connection harnesses (fuzz_bs_conn,
 * fuzz_http_conn): protocol bytes with '~' control sequences.
 *
 * Plain bytes are data for the current connection; data collected since
 * the last control sequence is handed over as one chunk when the next
 * control sequence or the end of input comes. This file knows the
 * sequences every script shares:
 *
 *   ~~      a literal '~' in the data
 *   ~#      in the data: a number, one more each time it is sent (from 1),
 *           so that a repeated chunk can say "delete ~#" or "watch t~#"
 *   ~c B    set that number to B
 *   ~R B    deliver the last chunk again, B+1 times
 *
 * and hands every other one to the harness, with its argument byte when
 * the op is one of arg_ops. */
#ifndef FUZZ_SCRIPT_H
#define FUZZ_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

typedef struct script_ops {
    /* A chunk of data (expanded) for the current connection. Returns
     * false once the input's budget is spent (repeats stop). */
    bool (*deliver)(void *ctx, const uint8_t *p, size_t n);
    /* A control sequence, after the chunk before it was delivered; also
     * called (to be traced, or ignored) for ~c and ~R. */
    void (*control)(void *ctx, uint8_t op, uint8_t arg);
} script_ops_t;

/* Runs the script data[0..size). *step counts the control sequences (for
 * failure messages), one more before each control call. */
void script_run(const uint8_t *data, size_t size, const char *arg_ops, const script_ops_t *ops,
                void *ctx, size_t *step);

/* ---- cutting a client's data into reads must change nothing ---- */

#define SCRIPT_MAX_CONNS 4

/* What one run of a script produced, to compare two deliveries of it. */
typedef struct script_digest {
    uint64_t out_hash[SCRIPT_MAX_CONNS], out_total[SCRIPT_MAX_CONNS]; /* each connection's */
    uint64_t next_id, ready, delayed, buried, reserved, total_jobs;   /* the engine's */
    bool split_used; /* the script asked for reads in pieces (~b) */
    bool truncated;  /* it hit the harness's budget */
} script_digest_t;

/* One run: whole_reads ignores ~b; fills d (script_digest_engine helps). */
typedef void (*script_run_fn)(const uint8_t *data, size_t size, bool whole_reads,
                              script_digest_t *d);

void script_digest_engine(script_digest_t *d, const engine_t *e);

/* Runs the script as it asks; when it asked for pieces and stayed within
 * its budget, runs it again with whole reads: each of the nconns
 * connections' output, byte for byte, and the engine's counts must be the
 * same, else it aborts with a message naming who. */
void script_run_twice(const char *who, const uint8_t *data, size_t size, int nconns,
                      script_run_fn run, bool trace);

#endif
