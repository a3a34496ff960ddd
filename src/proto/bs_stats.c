/* bs_stats.c - YAML for stats, stats-job, stats-tube and the tube lists. */
#include "proto/bs_stats.h"

#include <inttypes.h>

bool bs_format_stats(const bs_server_t *srv, buf_t *y, int64_t now) {
    const engine_t *e = srv->engine;
    const engine_counts_t *n = &e->count;
    const uint64_t *op = srv->cmd_count;
    bs_host_stats_t h = {0};
    if (srv->host_stats)
        srv->host_stats(srv->host_ctx, &h);
    return buf_appendf(
        y,
        "---\n"
        "current-jobs-urgent: %" PRIu64 "\n"
        "current-jobs-ready: %" PRIu64 "\n"
        "current-jobs-reserved: %" PRIu64 "\n"
        "current-jobs-delayed: %" PRIu64 "\n"
        "current-jobs-buried: %" PRIu64 "\n"
        "cmd-put: %" PRIu64 "\n"
        "cmd-peek: %" PRIu64 "\n"
        "cmd-peek-ready: %" PRIu64 "\n"
        "cmd-peek-delayed: %" PRIu64 "\n"
        "cmd-peek-buried: %" PRIu64 "\n"
        "cmd-reserve: %" PRIu64 "\n"
        "cmd-reserve-with-timeout: %" PRIu64 "\n"
        "cmd-delete: %" PRIu64 "\n"
        "cmd-release: %" PRIu64 "\n"
        "cmd-use: %" PRIu64 "\n"
        "cmd-watch: %" PRIu64 "\n"
        "cmd-ignore: %" PRIu64 "\n"
        "cmd-bury: %" PRIu64 "\n"
        "cmd-kick: %" PRIu64 "\n"
        "cmd-touch: %" PRIu64 "\n"
        "cmd-stats: %" PRIu64 "\n"
        "cmd-stats-job: %" PRIu64 "\n"
        "cmd-stats-tube: %" PRIu64 "\n"
        "cmd-list-tubes: %" PRIu64 "\n"
        "cmd-list-tube-used: %" PRIu64 "\n"
        "cmd-list-tubes-watched: %" PRIu64 "\n"
        "cmd-pause-tube: %" PRIu64 "\n"
        "job-timeouts: %" PRIu64 "\n"
        "total-jobs: %" PRIu64 "\n"
        "max-job-size: %" PRIu32 "\n"
        "current-tubes: %" PRIu32 "\n"
        "current-connections: %" PRIu32 "\n"
        "current-producers: %" PRIu32 "\n"
        "current-workers: %" PRIu32 "\n"
        "current-waiting: %" PRIu64 "\n"
        "total-connections: %" PRIu32 "\n"
        "pid: %ld\n"
        "version: \"%s\"\n"
        "rusage-utime: %ld.%06ld\n"
        "rusage-stime: %ld.%06ld\n"
        "uptime: %" PRId64 "\n"
        "binlog-oldest-index: %d\n"
        "binlog-current-index: %d\n"
        "binlog-records-migrated: %" PRId64 "\n"
        "binlog-records-written: %" PRId64 "\n"
        "binlog-max-size: %d\n"
        "draining: %s\n"
        "id: %s\n"
        "hostname: %s\n"
        "os: %s\n"
        "platform: %s\n",
        n->urgent, n->ready, n->reserved, n->delayed, n->buried, op[BS_OP_PUT], op[BS_OP_PEEK],
        op[BS_OP_PEEK_READY], op[BS_OP_PEEK_DELAYED], op[BS_OP_PEEK_BURIED], op[BS_OP_RESERVE],
        op[BS_OP_RESERVE_TIMEOUT], op[BS_OP_DELETE], op[BS_OP_RELEASE], op[BS_OP_USE],
        op[BS_OP_WATCH], op[BS_OP_IGNORE], op[BS_OP_BURY], op[BS_OP_KICK], op[BS_OP_TOUCH],
        op[BS_OP_STATS], op[BS_OP_STATS_JOB], op[BS_OP_STATS_TUBE], op[BS_OP_LIST_TUBES],
        op[BS_OP_LIST_TUBE_USED], op[BS_OP_LIST_TUBES_WATCHED], op[BS_OP_PAUSE_TUBE], n->timeouts,
        n->total_jobs, srv->max_job_size, e->ntubes, srv->cur_conns, srv->cur_producers,
        srv->cur_workers, n->waiting, srv->total_conns, srv->pid, srv->version, h.utime_sec,
        h.utime_usec, h.stime_sec, h.stime_usec, (now - srv->started_at) / NS_PER_SEC,
        h.binlog_oldest_index, h.binlog_current_index, h.binlog_records_migrated,
        h.binlog_records_written, h.binlog_max_size, srv->draining ? "true" : "false",
        srv->instance_id, srv->hostname, srv->os, srv->platform);
}

bool bs_format_job_stats(const engine_t *e, const job_t *j, buf_t *y, int64_t now) {
    return buf_appendf(y,
                       "---\n"
                       "id: %" PRIu64 "\n"
                       "tube: %s\n"
                       "state: %s\n"
                       "pri: %" PRIu32 "\n"
                       "age: %" PRId64 "\n"
                       "delay: %" PRIu32 "\n"
                       "ttr: %" PRIu32 "\n"
                       "time-left: %" PRId64 "\n"
                       "file: %d\n"
                       "reserves: %" PRIu32 "\n"
                       "timeouts: %" PRIu32 "\n"
                       "releases: %" PRIu32 "\n"
                       "buries: %" PRIu32 "\n"
                       "kicks: %" PRIu32 "\n",
                       j->id, engine_job_tube(e, j)->name, job_state_name(job_state(j)), j->pri,
                       (now - j->created) / NS_PER_SEC, j->delay, j->ttr,
                       engine_job_time_left(j, now), 0, j->reserves, j->timeouts, j->releases,
                       j->buries, j->kicks);
}

bool bs_format_tube_stats(const tube_t *t, buf_t *y, int64_t now) {
    bool paused = t->pause_ns > 0;
    return buf_appendf(y,
                       "---\n"
                       "name: %s\n"
                       "current-jobs-urgent: %" PRIu64 "\n"
                       "current-jobs-ready: %" PRIu32 "\n"
                       "current-jobs-reserved: %" PRIu64 "\n"
                       "current-jobs-delayed: %" PRIu32 "\n"
                       "current-jobs-buried: %" PRIu32 "\n"
                       "total-jobs: %" PRIu64 "\n"
                       "current-using: %" PRIu32 "\n"
                       "current-watching: %" PRIu32 "\n"
                       "current-waiting: %" PRIu32 "\n"
                       "cmd-delete: %" PRIu64 "\n"
                       "cmd-pause-tube: %" PRIu64 "\n"
                       "pause: %" PRId64 "\n"
                       "pause-time-left: %" PRId64 "\n",
                       t->name, t->urgent, t->ready.len, t->reserved, t->delayed.len,
                       t->buried.len, t->total_jobs, t->using, t->watching, t->waiting, t->deletes,
                       t->pauses, paused ? t->pause_ns / NS_PER_SEC : 0,
                       paused ? engine_seconds_left(t->unpause_at, now) : 0);
}

static bool list_item(buf_t *y, const tube_t *t) {
    return buf_append(y, "- ", 2) && buf_append(y, t->name, t->name_len) &&
           buf_append(y, "\n", 1);
}

bool bs_format_tube_list(const engine_t *e, buf_t *y) {
    bool ok = buf_append(y, "---\n", 4);
    for (uint32_t i = 0; ok && i < e->ntubes; i++)
        ok = list_item(y, e->tube_list[i]);
    return ok;
}

bool bs_format_watch_list(const session_t *s, buf_t *y) {
    bool ok = buf_append(y, "---\n", 4);
    for (uint32_t i = 0; ok && i < s->nwatch; i++)
        ok = list_item(y, s->watch[i].tube);
    return ok;
}
