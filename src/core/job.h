/* job.h - a task as the engine keeps it.
 *
 * A job and its body are one allocation. The struct is packed by hand to 68
 * bytes so that a 100-byte task costs one 176-byte malloc chunk: memory per
 * queued task is a headline number for a job server (beanstalkd needs about
 * 300 bytes for the same task). Fields that depend on the state share space:
 * `deadline` means "ready at" for a delayed job, "TTR ends at" for a
 * reserved one, and the burial sequence for a buried one. */
#ifndef DEFER_JOB_H
#define DEFER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum job_state {
    JOB_READY = 0,
    JOB_DELAYED = 1,
    JOB_RESERVED = 2,
    JOB_BURIED = 3,
} job_state_t;

/* `slot` holds the job's position in whichever heap contains it (low 28
 * bits), its state (2 bits) and two flags. */
#define JOB_POS_BITS 28
#define JOB_POS_MAX ((1u << JOB_POS_BITS) - 1)
#define JOB_POS_MASK JOB_POS_MAX
#define JOB_STATE_SHIFT JOB_POS_BITS
#define JOB_STATE_MASK (3u << JOB_STATE_SHIFT)
/* The job has a job_ext_t in the engine's side table. */
#define JOB_FLAG_EXT (1u << 30)
/* The body is JSON text (it came as a JSON payload over HTTP). */
#define JOB_FLAG_JSON (1u << 31)

typedef struct job {
    uint64_t id;
    int64_t deadline; /* ns; see above */
    int64_t created;  /* ns, wall clock */
    uint32_t tube;    /* index in the engine's tube table */
    uint32_t pri;     /* 0 is most urgent */
    uint32_t delay;   /* seconds, of the last put or release */
    uint32_t ttr;     /* seconds, at least 1 */
    uint32_t size;    /* body bytes */
    uint32_t slot;
    uint32_t reserves, timeouts, releases, buries, kicks;
    char body[];
} job_t;

_Static_assert(offsetof(job_t, body) == 68, "job_t grew: check memory per task");

static inline job_state_t job_state(const job_t *j) {
    return (job_state_t)((j->slot & JOB_STATE_MASK) >> JOB_STATE_SHIFT);
}
static inline uint32_t job_pos(const job_t *j) { return j->slot & JOB_POS_MASK; }
static inline void job_set_state(job_t *j, job_state_t s) {
    j->slot = (j->slot & ~JOB_STATE_MASK) | ((uint32_t)s << JOB_STATE_SHIFT);
}
static inline bool job_flag(const job_t *j, uint32_t flag) { return (j->slot & flag) != 0; }
static inline void job_set_flag(job_t *j, uint32_t flag, bool on) {
    j->slot = on ? j->slot | flag : j->slot & ~flag;
}
static inline void job_set_pos(job_t *j, uint32_t pos) {
    j->slot = (j->slot & ~JOB_POS_MASK) | (pos & JOB_POS_MASK);
}

static inline size_t job_alloc_size(uint32_t body_size) {
    return offsetof(job_t, body) + body_size;
}

const char *job_state_name(job_state_t s);

#endif
