/* engine_internal.h - what the engine's files share: engine.c (tubes,
 * sessions, the job state machine), task.c (keys, attempt limits, cancel)
 * and history.c (finished tasks). Not for use outside core/. */
#ifndef DEFER_ENGINE_INTERNAL_H
#define DEFER_ENGINE_INTERNAL_H

#include "core/engine.h"

void eng_journal(engine_t *e, journal_kind_t kind, const job_t *j, const tube_t *t);
void eng_emit(engine_t *e, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now);

tube_t *eng_tube_find_or_make(engine_t *e, const char *name, size_t len);
void eng_tube_ref(tube_t *t);
void eng_tube_unref(engine_t *e, tube_t *t);

/* Job placement: j is in no container before these. */
engine_result_t eng_make_ready(engine_t *e, tube_t *t, job_t *j, int64_t now);
/* Delayed until j->deadline. */
engine_result_t eng_place_delayed(engine_t *e, tube_t *t, job_t *j);
/* Buried, next in burial order. */
void eng_bury(engine_t *e, tube_t *t, job_t *j);
/* Take j out of its ready, delayed or buried heap. */
void eng_unlink(engine_t *e, tube_t *t, job_t *j);
/* A new job (id set, in no container): index it and place it, ready at
 * run_at when > 0, else after its delay. */
engine_result_t eng_insert(engine_t *e, tube_t *t, job_t *j, int64_t run_at, int64_t now);
/* Free j (in no container) and whatever it owns. */
void eng_destroy(engine_t *e, job_t *j);

/* task.c */
job_ext_t *eng_ext(const engine_t *e, const job_t *j);
/* j's extension, created if missing; NULL when memory ran out. */
job_ext_t *eng_ext_get(engine_t *e, job_t *j);
void eng_ext_drop(engine_t *e, job_t *j);
/* An attempt of reserved j (out of its session) failed: its TTR ran out,
 * its worker released it, or its push target said no. Keeps why (when not
 * NULL) as its last error; when its attempts are used up - its own limit,
 * else max_attempts (0: none) - buries it as failed and returns true. */
bool eng_attempt_failed(engine_t *e, tube_t *t, job_t *j, const char *why, uint32_t max_attempts,
                        int64_t now);
/* A kicked job starts its attempts afresh. */
void eng_fresh_attempts(engine_t *e, job_t *j);

/* history.c */
/* Record that j ends now (before it is freed). */
void eng_history_add(engine_t *e, const job_t *j, task_end_t end, int64_t now);
void eng_history_free(engine_t *e);
/* The entry of the task that ended last, if it is id and no history is
 * kept. */
const task_history_t *eng_history_last(const engine_t *e, uint64_t id);

#endif
