/* engine.h - queues (tubes), tasks (jobs) and their state machine.
 *
 * The engine is pure logic: it never does I/O and never reads the clock.
 * Every operation that depends on time takes `now` (wall-clock nanoseconds)
 * from its caller, so the same sequence of calls always yields the same
 * state - which is what makes recovery from a log, and tests, simple.
 *
 * Clients of the engine are sessions (one per beanstalk connection, and
 * later one per push dispatcher). A session uses one tube, watches a set of
 * tubes, holds reservations, and may wait for a job. When something happens
 * to a waiting session outside of its own call - a job arrives, its wait
 * times out - the engine calls the session's notify function. That callback
 * must not call back into the engine; it records the event and lets its
 * owner act on it later.
 *
 * Timing: delayed jobs, TTR expiry, reserve timeouts and tube pauses all
 * live in one timer heap (of tubes and sessions). engine_tick() fires
 * whatever is due and engine_next_deadline() says when to call it next. */
#ifndef DEFER_ENGINE_H
#define DEFER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/heap.h"
#include "core/idmap.h"
#include "core/job.h"
#include "core/strmap.h"
#include "core/u64map.h"

#define NS_PER_SEC INT64_C(1000000000)
/* beanstalkd's limits, kept so every client sees the same rules. */
#define TUBE_NAME_MAX 200
#define URGENT_PRI 1024
/* A waiting reserve is answered DEADLINE_SOON this long before a held
 * reservation's TTR ends. */
#define DEADLINE_MARGIN NS_PER_SEC
#define ENGINE_NEVER INT64_MAX

typedef struct engine engine_t;
typedef struct session session_t;
typedef struct tube tube_t;

typedef enum engine_result {
    ENGINE_OK = 0,
    ENGINE_NOT_FOUND,
    ENGINE_NO_MEMORY,
    ENGINE_NOT_IGNORED,
    ENGINE_DEADLINE_SOON,
    ENGINE_TIMED_OUT,
    ENGINE_WAITING,
    ENGINE_BURIED, /* put or release could not grow a queue; the job was buried */
    ENGINE_RUNNING,  /* the task is reserved: it cannot be changed now */
    ENGINE_FINISHED, /* the task already ended (done or failed) */
} engine_result_t;

typedef enum session_event {
    SESSION_RESERVED,      /* a waiting reserve got a job */
    SESSION_TIMED_OUT,     /* a waiting reserve-with-timeout ran out */
    SESSION_DEADLINE_SOON, /* a held reservation entered its last second */
} session_event_t;

typedef void (*session_notify_fn)(void *owner, session_event_t ev, const job_t *job);

/* Changes that must survive a restart, reported to the journal (the
 * write-ahead log) as they happen. Reservations, TTR expiry and a delay
 * running out are not reported: after a restart a reserved job is ready
 * again, and a delayed job's ready-at time is in its record. */
typedef enum journal_kind {
    JOURNAL_PUT,    /* j is new */
    JOURNAL_UPDATE, /* j's priority, delay, state or counters changed */
    JOURNAL_DELETE, /* j is about to be freed */
    JOURNAL_PAUSE,  /* t was paused */
    JOURNAL_SETTINGS, /* t's push settings changed */
} journal_kind_t;

typedef void (*engine_journal_fn)(void *ctx, journal_kind_t kind, const job_t *j,
                                  const tube_t *t);

/* What happens to tasks, for whoever watches (the HTTP event stream). */
typedef enum engine_event {
    EVENT_ENQUEUED,
    EVENT_RESERVED,
    EVENT_RELEASED,
    EVENT_BURIED,
    EVENT_FAILED,
    EVENT_KICKED,
    EVENT_DONE,
    EVENT_CANCELLED,
    EVENT_TIMED_OUT,
    EVENT_REPLACED,
} engine_event_t;

typedef void (*engine_observe_fn)(void *ctx, engine_event_t ev, uint64_t id, const tube_t *t,
                                  int64_t now);

/* What some tasks have beyond a beanstalk job: a unique key, an attempt
 * limit, why the last attempt failed. Kept beside the job, by id, so that
 * a plain beanstalk job stays 68 bytes. */
typedef struct job_ext {
    char *key; /* NULL: none. Unique among its tube's unfinished tasks */
    uint16_t key_len;
    bool failed;           /* buried because its attempts ran out */
    int64_t failed_at;     /* when, if failed */
    uint32_t max_attempts; /* 0: no limit */
    uint32_t attempt_base; /* attempts = reserves - attempt_base */
    char *last_error;      /* NUL-terminated, or NULL */
} job_ext_t;

/* How a task ended. */
typedef enum task_end {
    TASK_DONE = 1,      /* deleted by the worker holding it */
    TASK_FAILED = 2,    /* deleted after its attempts ran out */
    TASK_CANCELLED = 3, /* deleted while waiting, or cancelled */
} task_end_t;

/* A finished task, kept for a while so that "what happened to task 812?"
 * has an answer. One allocation: the queue name follows the struct. */
typedef struct task_history {
    uint64_t id;
    int64_t created, finished;
    uint32_t pri, ttr, attempts, max_attempts;
    task_end_t end;
    struct task_history *newer; /* finish order, oldest first */
    char *key;                  /* NULL or NUL-terminated */
    char *error;                /* NULL or NUL-terminated */
    uint16_t queue_len;
    char queue[];               /* NUL-terminated */
} task_history_t;

/* A timer queue entry, embedded in tubes and sessions. */
typedef struct engine_timer {
    int64_t at;
    uint32_t pos;
    bool armed;
    bool is_tube;
    void *owner;
} engine_timer_t;

/* A node of a tube's list of waiting sessions. */
typedef struct waiter {
    struct waiter *prev, *next;
    session_t *session;
} waiter_t;

struct tube {
    char *name;
    size_t name_len;
    uint32_t index;     /* in the engine's tube table; jobs refer to it */
    uint32_t list_pos;  /* in the engine's tube list (list-tubes order) */
    uint32_t refs;      /* jobs + sessions using or watching it (+1 for default) */
    heap_t ready;       /* by (pri, id) */
    heap_t delayed;     /* by (deadline, id) */
    heap_t buried;      /* by burial order */
    waiter_t waiters;   /* list head: sessions waiting on this tube, oldest first */
    uint64_t urgent;    /* ready jobs with pri < URGENT_PRI */
    uint64_t reserved;
    uint64_t total_jobs;
    uint64_t deletes;
    uint64_t pauses;
    uint32_t using;
    uint32_t watching;
    uint32_t waiting;
    int64_t pause_ns;   /* > 0 while paused */
    int64_t unpause_at;
    engine_timer_t timer;
    strmap_t keys;      /* unique key -> job */
    uint64_t failed;    /* buried jobs whose attempts ran out */
    /* Totals since start, and their one-minute moving averages per second. */
    uint64_t reserved_total, done_total, failed_total, cancelled_total, timeouts_total;
    uint64_t rate_enqueued_mark, rate_done_mark;
    double enqueued_rate, done_rate;
    /* Push settings as text (JSON) that the engine keeps and logs without
     * reading it - the dispatcher does; NULL: none. A tube with settings
     * holds a reference to itself, so it outlives its last job. */
    char *settings;
    uint32_t settings_len;
};

typedef struct watch {
    tube_t *tube;
    waiter_t node; /* linked into tube->waiters while the session waits */
} watch_t;

struct session {
    tube_t *use;
    watch_t *watch; /* beanstalkd's watch-list order, swap-removed */
    uint32_t nwatch, capwatch;
    heap_t reserved; /* by (deadline, id) */
    bool waiting;
    int64_t wait_until; /* ENGINE_NEVER = no timeout */
    engine_timer_t timer;
    session_notify_fn notify;
    void *owner;
};

typedef struct engine_counts {
    uint64_t urgent, ready, reserved, delayed, buried;
    uint64_t total_jobs; /* successful puts */
    uint64_t timeouts;   /* TTR expiries */
    uint64_t waiting;    /* sessions in a waiting reserve */
    uint64_t job_bytes;  /* body bytes held */
    uint64_t job_bytes_peak; /* highest job_bytes since the host last reset it */
} engine_counts_t;

struct engine {
    idmap_t jobs;
    strmap_t tubes_by_name;
    tube_t **tube_table; /* by tube index; NULL = free slot */
    uint32_t tube_table_len;
    uint32_t *free_slots; /* free indices of tube_table */
    uint32_t nfree;
    tube_t **tube_list;  /* every tube, in list-tubes order */
    uint32_t ntubes;
    uint32_t tube_cap;   /* capacity of the three arrays above */
    tube_t *default_tube;
    heap_t timers;
    engine_journal_fn journal;
    void *journal_ctx;
    engine_observe_fn observe;
    void *observe_ctx;
    u64map_t ext;      /* id -> job_ext_t, for jobs flagged JOB_FLAG_EXT */
    u64map_t history;  /* id -> task_history_t */
    task_history_t *history_oldest, *history_newest;
    task_history_t *history_last; /* the last task to end, when none is kept */
    uint64_t history_max;
    int64_t history_age;
    int64_t rates_at;  /* when the rates were last updated */
    bool restoring;    /* replaying the log: tubes outlive their last job */
    uint64_t next_id;
    int64_t bury_seq;
    engine_counts_t count;
};

engine_t *engine_new(void);
void engine_free(engine_t *e);

/* --- tubes --- */
/* Valid names: 1..200 bytes of A-Z a-z 0-9 - + / ; . $ _ ( ), not starting
 * with '-'. */
bool engine_tube_name_valid(const char *name, size_t len);
tube_t *engine_tube_find(const engine_t *e, const char *name, size_t len);
static inline tube_t *engine_job_tube(const engine_t *e, const job_t *j) {
    return e->tube_table[j->tube];
}
/* Pause a tube: nothing is reserved from it for delay_ns (0 counts as 1). */
/* End t's pause now. */
void engine_resume(engine_t *e, tube_t *t, int64_t now);
/* The tube of that name, created if missing (it lives while jobs or
 * sessions refer to it). NULL when memory ran out. */
tube_t *engine_tube_get(engine_t *e, const char *name, size_t len);
engine_result_t engine_pause(engine_t *e, const char *name, size_t len, int64_t delay_ns,
                             int64_t now);

/* --- sessions --- */
session_t *engine_session_new(engine_t *e, session_notify_fn notify, void *owner);
/* Ends a session: its reservations go back to ready, its waits end. */
void engine_session_free(engine_t *e, session_t *s, int64_t now);
engine_result_t engine_use(engine_t *e, session_t *s, const char *name, size_t len);
/* *count is the number of watched tubes afterwards. A session's watch list
 * changes only while it is not waiting. */
engine_result_t engine_watch(engine_t *e, session_t *s, const char *name, size_t len,
                             uint32_t *count);
engine_result_t engine_ignore(engine_t *e, session_t *s, const char *name, size_t len,
                              uint32_t *count);

/* --- jobs --- */
/* Allocate a job (assigning the next id) whose body the caller fills in,
 * then hands over with engine_put or engine_job_discard. NULL when memory
 * is exhausted. */
job_t *engine_job_new(engine_t *e, tube_t *t, uint32_t pri, uint32_t delay, uint32_t ttr,
                      uint32_t size, int64_t now);
void engine_job_discard(engine_t *e, job_t *j);
/* Insert a new job. ENGINE_OK, ENGINE_BURIED (queue could not grow, job
 * buried instead) or ENGINE_NO_MEMORY (job dropped). */
engine_result_t engine_put(engine_t *e, job_t *j, int64_t now);
job_t *engine_job_find(const engine_t *e, uint64_t id);

/* Reserve the best ready job of the watched tubes. timeout_ns < 0 waits
 * forever. Returns ENGINE_OK with *out, ENGINE_DEADLINE_SOON,
 * ENGINE_TIMED_OUT (timeout 0 and nothing ready) or ENGINE_WAITING (the
 * answer comes later through notify). */
engine_result_t engine_reserve(engine_t *e, session_t *s, int64_t timeout_ns, int64_t now,
                               job_t **out);
/* Reserve a ready, delayed or buried job by id, from any tube. */
engine_result_t engine_reserve_job(engine_t *e, session_t *s, uint64_t id, int64_t now,
                                   job_t **out);
/* End a wait without an answer (the client went away). */
void engine_cancel_wait(engine_t *e, session_t *s);
/* Delete: a job reserved by s, or any ready, delayed or buried job. The
 * task ends done (deleted by its worker), failed (its attempts had run out)
 * or cancelled (deleted while waiting). */
engine_result_t engine_delete(engine_t *e, session_t *s, uint64_t id, int64_t now);
engine_result_t engine_release(engine_t *e, session_t *s, uint64_t id, uint32_t pri,
                               uint32_t delay, int64_t now);
engine_result_t engine_bury(engine_t *e, session_t *s, uint64_t id, uint32_t pri, int64_t now);
engine_result_t engine_touch(engine_t *e, session_t *s, uint64_t id, int64_t now);
/* Keep a reservation of s until `until` (ns), whatever the job's TTR: the
 * push dispatcher enforces its own deadline on an attempt. */
engine_result_t engine_hold(engine_t *e, session_t *s, uint64_t id, int64_t until);
/* Kick up to bound jobs of tube t: buried ones if it has any, else delayed.
 * Returns how many moved. */
uint32_t engine_kick(engine_t *e, tube_t *t, uint32_t bound, int64_t now);
engine_result_t engine_kick_job(engine_t *e, uint64_t id, int64_t now);

job_t *engine_peek_ready(const tube_t *t);
job_t *engine_peek_delayed(const tube_t *t);
job_t *engine_peek_buried(const tube_t *t);

/* True when s holds a reservation whose TTR ends within DEADLINE_MARGIN. */
bool engine_deadline_soon(const engine_t *e, const session_t *s, int64_t now);
bool engine_session_holds(const session_t *s, const job_t *j);

/* --- tasks: keys, attempt limits, cancel, history (core/task.c) --- */

typedef struct engine_put_opts {
    const char *key; /* NULL: no key */
    size_t key_len;
    bool replace;          /* on a held key: replace the holder (else keep it) */
    uint32_t max_attempts; /* 0: no limit */
    bool json;             /* the body is JSON text */
    int64_t run_at;        /* > 0: ready at this time (ns), instead of the delay */
} engine_put_opts_t;

typedef enum put_outcome {
    PUT_CREATED,
    PUT_DEDUPLICATED, /* the key's holder was kept; the new job was dropped */
    PUT_REPLACED,     /* the holder took the new payload and settings in place */
    PUT_SUPERSEDED,   /* the holder is running: the new job took its key */
} put_outcome_t;

typedef struct engine_put_result {
    job_t *job; /* the task that now answers the request */
    put_outcome_t outcome;
    uint64_t superseded; /* PUT_SUPERSEDED: the running task's id */
} engine_put_result_t;

/* engine_put with the HTTP API's options. ENGINE_OK, ENGINE_BURIED or
 * ENGINE_NO_MEMORY as engine_put; res says what became of the request. */
engine_result_t engine_put_opts(engine_t *e, job_t *j, const engine_put_opts_t *o, int64_t now,
                                engine_put_result_t *res);
/* Cancel a waiting task (ready, delayed or buried). ENGINE_OK with *out
 * its history entry (also when it was cancelled before), ENGINE_RUNNING,
 * ENGINE_FINISHED (done, or failed: its attempts ran out) or
 * ENGINE_NOT_FOUND. */
engine_result_t engine_cancel(engine_t *e, uint64_t id, int64_t now, const task_history_t **out);
/* Cancel the unfinished task holding key in t. */
engine_result_t engine_cancel_key(engine_t *e, tube_t *t, const char *key, size_t len, int64_t now,
                                  const task_history_t **out);
job_t *engine_key_holder(const tube_t *t, const char *key, size_t len);
const job_ext_t *engine_job_ext(const engine_t *e, const job_t *j);
uint32_t engine_job_attempts(const engine_t *e, const job_t *j);
/* A buried job whose attempts ran out. */
bool engine_job_failed(const engine_t *e, const job_t *j);
/* A finished task still retained, or NULL. */
const task_history_t *engine_history_find(const engine_t *e, uint64_t id, int64_t now);
/* An attempt of a task held by s failed (a pushed task: its target said
 * why, in reason). It is the last attempt when the task's own attempt limit,
 * or else max_attempts (0: none), is reached: then the task is buried as
 * failed and ENGINE_BURIED returned; otherwise it is delayed until
 * retry_at (ns) and ENGINE_OK returned. The reason is kept either way. */
engine_result_t engine_attempt_failed(engine_t *e, session_t *s, uint64_t id, const char *reason,
                                      uint32_t max_attempts, int64_t retry_at, int64_t now);
/* Set (text_len > 0) or clear (text_len 0) a queue's push settings, which
 * the engine keeps and logs. Creates the queue if need be. */
engine_result_t engine_set_settings(engine_t *e, const char *name, size_t len, const char *text,
                                    size_t text_len);
/* Keep at most max finished tasks, for at most age_ns (0: none kept). */
void engine_set_history(engine_t *e, uint64_t max, int64_t age_ns);
/* Drop history older than the retention age; call now and then. */
void engine_expire_history(engine_t *e, int64_t now);
/* Update the queues' moving averages; call about once a second. */
void engine_update_rates(engine_t *e, int64_t now);
void engine_set_observer(engine_t *e, engine_observe_fn fn, void *ctx);

/* --- durability --- */
void engine_set_journal(engine_t *e, engine_journal_fn fn, void *ctx);

/* A job as read back from the log. */
typedef struct engine_restore {
    uint64_t id;
    const char *tube;
    size_t tube_len;
    job_state_t state; /* ready, delayed or buried */
    int64_t deadline;  /* delayed: ready-at; buried: burial order */
    int64_t created;
    uint32_t pri, delay, ttr;
    uint32_t reserves, timeouts, releases, buries, kicks;
} engine_restore_t;

/* Replaying the log into the engine. These never call the journal. A
 * record for a job that is already there replaces it; an update or delete
 * of a job that is not there is ignored (a snapshot and the log written
 * after it may overlap). */
engine_result_t engine_restore_job(engine_t *e, const engine_restore_t *r, const char *body,
                                   uint32_t size);
/* Only state, deadline, pri, delay and the counters of r are used. */
void engine_restore_update(engine_t *e, const engine_restore_t *r);
/* A job's extension as logged (replacing any it had; all zero = none). */
engine_result_t engine_restore_ext(engine_t *e, uint64_t id, const job_ext_t *x, bool json);
/* A finished task's history entry as logged. */
engine_result_t engine_restore_history(engine_t *e, const task_history_t *h);
void engine_restore_delete(engine_t *e, uint64_t id);
engine_result_t engine_restore_pause(engine_t *e, const char *name, size_t len, int64_t pause_ns,
                                     int64_t unpause_at);
void engine_restore_next_id(engine_t *e, uint64_t next_id);
/* A queue's push settings as logged (text_len 0: none). */
engine_result_t engine_restore_settings(engine_t *e, const char *name, size_t len,
                                        const char *text, size_t text_len);
/* After replay: drop tubes nothing refers to. */
void engine_restore_done(engine_t *e);

/* --- time --- */
/* Fire everything due at or before now. */
void engine_tick(engine_t *e, int64_t now);
/* When engine_tick next has work; ENGINE_NEVER when nothing is scheduled. */
int64_t engine_next_deadline(const engine_t *e);

/* Whole seconds left until deadline, as beanstalkd reports them. */
int64_t engine_seconds_left(int64_t deadline, int64_t now);
/* Seconds left until a delayed job is ready or a reserved job's TTR ends;
 * 0 in other states. */
int64_t engine_job_time_left(const job_t *j, int64_t now);

#endif
