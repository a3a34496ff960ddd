/* engine_check.h - the engine's invariants, checked from the outside, for
 * the fuzz harnesses (fuzz_bs_conn, fuzz_http_conn, fuzz_wal_replay).
 *
 * engine_check() walks the whole engine and aborts, naming the invariant
 * and what it found, at the first one that does not hold. It knows nothing
 * of the protocols: a harness passes what only it can know (the sessions
 * alive, the jobs allocated but not put yet, the time) and keeps its own
 * protocol checks.
 *
 * What it checks:
 *   - tubes: the table, the free slots, the list (list-tubes order) and the
 *     name map agree; names are valid; "default" is the default tube; a
 *     tube nothing refers to exists only while the log is replayed
 *     (e->restoring); refs = jobs in it (pending ones included) + sessions
 *     using it + sessions watching it (+1 for default); reserved, using,
 *     watching and waiting equal what the sessions hold;
 *   - jobs: every heap (ready by priority, delayed by time, buried by
 *     burial order, each session's reservations by TTR end) is ordered, and
 *     its jobs know their position, state and tube; every job of the id map
 *     is in exactly one of them, a reserved one held by exactly one of the
 *     sessions given; ids below next_id, ttr >= 1, burial order <= bury_seq;
 *     the engine's counters (ready, delayed, buried, urgent, reserved,
 *     waiting, job bytes) equal what the heaps and sessions hold;
 *   - sessions: a valid used tube, 1..capwatch distinct watched tubes, and
 *     while waiting a node in each watched tube's waiter list, and no
 *     others; an unpaused tube never has both ready jobs and waiters;
 *   - task extensions: a job has one exactly when it is flagged so; ext's
 *     count equals the flagged jobs; a key (1..200 bytes, NUL-terminated,
 *     no NUL inside) is in its tube's key map, held by its job, and each
 *     map holds nothing else; each tube's failed count equals its buried
 *     jobs whose extension says failed;
 *   - history: the list (oldest first) and the map agree, within the
 *     retention count (none at all when it is 0); entries end done, failed
 *     or cancelled, in a valid queue;
 *   - timers: a tube's is armed exactly when it has delayed jobs or a
 *     pause (at the sooner of the two), a session's when it holds a
 *     reservation or waits with a timeout (DEADLINE_MARGIN earlier while it
 *     waits), and the timer heap holds exactly those, ordered;
 *   - queue rates are finite and not negative.
 * With live (an engine driven by operations, not by a log replay), also:
 * jobs created within [created_min, now]; JSON-flagged bodies are JSON;
 * attempt_base <= reserves; a failed job used up its max_attempts; history
 * in finish order, created <= finished <= now, of no live job, a failed
 * end only with an attempt limit; the peak of job bytes >= job bytes; and
 * after engine_tick(now): no delayed job, reservation or pause end due at
 * or before now. */
#ifndef FUZZ_ENGINE_CHECK_H
#define FUZZ_ENGINE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

typedef struct engine_check_opts {
    const char *who;     /* the harness, first word of a failure message */
    const char *context; /* where in the input (a script step), or NULL */
    /* Every session alive; a reserved job must be held by one of them. */
    session_t *const *sessions;
    size_t nsessions;
    /* Jobs from engine_job_new not put yet (a put's body being read): each
     * holds a reference to its tube. */
    const job_t *const *pending;
    size_t npending;
    bool live;
    int64_t now;         /* live: the time of the last engine_tick (0: none) */
    int64_t created_min; /* live: no job created before this (0: unchecked) */
} engine_check_opts_t;

/* Aborts with a message when an invariant does not hold. Cost: about
 * jobs + tubes + history entries. */
void engine_check(const engine_t *e, const engine_check_opts_t *o);

#endif
