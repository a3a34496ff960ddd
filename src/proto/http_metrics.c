/* http_metrics.c - GET /metrics (Prometheus text format) and GET
 * /v1/stats (the same facts as JSON, for deferctl and scripts). */
#include <inttypes.h>
#include <string.h>

#include "proto/http.h"
#include "util/json_out.h"

static void host_stats(http_server_t *srv, http_host_stats_t *h) {
    memset(h, 0, sizeof *h);
    if (srv->host_stats)
        srv->host_stats(srv->host_ctx, h);
}

static bool draining(const http_server_t *srv) {
    return srv->draining && *srv->draining;
}

typedef enum counter {
    C_ENQUEUED,
    C_RESERVED,
    C_DONE,
    C_FAILED,
    C_CANCELLED,
    C_TIMEOUTS,
    C_COUNT
} counter_t;

static const struct {
    const char *name, *help;
} counters[C_COUNT] = {
    [C_ENQUEUED] = {"defer_enqueued_total", "Tasks enqueued."},
    [C_RESERVED] = {"defer_reserved_total", "Reservations (attempts started)."},
    [C_DONE] = {"defer_done_total", "Tasks deleted by their worker."},
    [C_FAILED] = {"defer_failed_total", "Tasks whose attempts ran out."},
    [C_CANCELLED] = {"defer_cancelled_total", "Tasks cancelled, or deleted while waiting."},
    [C_TIMEOUTS] = {"defer_timeouts_total", "Attempts whose TTR ran out."},
};

static uint64_t counter_value(const tube_t *t, counter_t c) {
    switch (c) {
    case C_ENQUEUED:
        return t->total_jobs;
    case C_RESERVED:
        return t->reserved_total;
    case C_DONE:
        return t->done_total;
    case C_FAILED:
        return t->failed_total;
    case C_CANCELLED:
        return t->cancelled_total;
    default:
        return t->timeouts_total;
    }
}

bool http_render_metrics(buf_t *b, http_server_t *srv, int64_t now) {
    const engine_t *e = srv->engine;
    http_host_stats_t h;
    host_stats(srv, &h);
    bool ok = buf_puts(b, "# HELP defer_tasks Tasks by queue and state.\n# TYPE defer_tasks gauge\n");
    for (uint32_t i = 0; ok && i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        ok = buf_appendf(b,
                         "defer_tasks{queue=\"%s\",state=\"ready\"} %" PRIu32 "\n"
                         "defer_tasks{queue=\"%s\",state=\"delayed\"} %" PRIu32 "\n"
                         "defer_tasks{queue=\"%s\",state=\"reserved\"} %" PRIu64 "\n"
                         "defer_tasks{queue=\"%s\",state=\"buried\"} %" PRIu64 "\n"
                         "defer_tasks{queue=\"%s\",state=\"failed\"} %" PRIu64 "\n",
                         t->name, t->ready.len, t->name, t->delayed.len, t->name, t->reserved,
                         t->name, t->buried.len - t->failed, t->name, t->failed);
    }
    for (counter_t k = 0; ok && k < C_COUNT; k++) {
        ok = buf_appendf(b, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
                         counters[k].name);
        for (uint32_t i = 0; ok && i < e->ntubes; i++)
            ok = buf_appendf(b, "%s{queue=\"%s\"} %" PRIu64 "\n", counters[k].name,
                             e->tube_list[i]->name, counter_value(e->tube_list[i], k));
    }
    ok = ok && buf_appendf(b,
                           "# HELP defer_connections Open client connections.\n"
                           "# TYPE defer_connections gauge\n"
                           "defer_connections{protocol=\"beanstalk\"} %" PRIu32 "\n"
                           "defer_connections{protocol=\"http\"} %" PRIu32 "\n",
                           h.beanstalk_conns, srv->cur_conns);
    if (ok && h.log) {
        ok = buf_puts(b, "# HELP defer_log_fsync_seconds Time to fdatasync a batch of the log.\n"
                         "# TYPE defer_log_fsync_seconds histogram\n");
        uint64_t cum = 0;
        for (int i = 0; ok && i < 24; i++) {
            cum += h.log_sync_us_buckets[i];
            ok = buf_appendf(b, "defer_log_fsync_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                             (double)((uint64_t)1 << i) / 1e6, cum);
        }
        ok = ok && buf_appendf(b,
                               "defer_log_fsync_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                               "defer_log_fsync_seconds_sum %.6f\n"
                               "defer_log_fsync_seconds_count %" PRIu64 "\n"
                               "# HELP defer_log_bytes Bytes the data directory uses on disk.\n"
                               "# TYPE defer_log_bytes gauge\n"
                               "defer_log_bytes %" PRIu64 "\n"
                               "# HELP defer_log_disk_full 1 while the disk is full.\n"
                               "# TYPE defer_log_disk_full gauge\n"
                               "defer_log_disk_full %d\n",
                               cum, (double)h.log_sync_us_sum / 1e6, h.log_syncs, h.log_bytes,
                               h.log_space_low ? 1 : 0);
    }
    return ok && buf_appendf(b,
                             "# HELP defer_resident_memory_bytes Resident memory of deferd.\n"
                             "# TYPE defer_resident_memory_bytes gauge\n"
                             "defer_resident_memory_bytes %" PRIu64 "\n"
                             "# HELP defer_task_bytes Bytes of task bodies held.\n"
                             "# TYPE defer_task_bytes gauge\n"
                             "defer_task_bytes %" PRIu64 "\n"
                             "# HELP defer_history_tasks Finished tasks kept in the history.\n"
                             "# TYPE defer_history_tasks gauge\n"
                             "defer_history_tasks %zu\n"
                             "# HELP defer_draining 1 in drain mode (new tasks refused).\n"
                             "# TYPE defer_draining gauge\n"
                             "defer_draining %d\n"
                             "# HELP defer_uptime_seconds Seconds since start.\n"
                             "# TYPE defer_uptime_seconds gauge\n"
                             "defer_uptime_seconds %" PRId64 "\n",
                             h.rss_bytes, e->count.job_bytes, e->history.count,
                             draining(srv) ? 1 : 0, (now - srv->started_at) / NS_PER_SEC) &&
           (!srv->push_metrics || srv->push_metrics(srv->push_ctx, b));
}

bool http_render_stats(buf_t *b, http_server_t *srv, int64_t now) {
    const engine_t *e = srv->engine;
    const engine_counts_t *n = &e->count;
    http_host_stats_t h;
    host_stats(srv, &h);
    bool ok = buf_puts(b, "{\"version\":") &&
              json_out_str(b, srv->version, strlen(srv->version)) &&
              buf_appendf(b,
                          ",\"uptime_seconds\":%" PRId64 ",\"draining\":%s,\"tasks\":{\"ready\":%" PRIu64
                          ",\"delayed\":%" PRIu64 ",\"reserved\":%" PRIu64 ",\"buried\":%" PRIu64
                          ",\"urgent\":%" PRIu64 "},\"total_enqueued\":%" PRIu64
                          ",\"timeouts\":%" PRIu64 ",\"workers_waiting\":%" PRIu64
                          ",\"queues\":%" PRIu32 ",\"history\":%zu,\"connections\":{\"beanstalk\":%" PRIu32
                          ",\"http\":%" PRIu32 "},\"memory\":{\"rss_bytes\":%" PRIu64
                          ",\"task_bytes\":%" PRIu64 "},\"log\":",
                          (now - srv->started_at) / NS_PER_SEC, draining(srv) ? "true" : "false",
                          n->ready, n->delayed, n->reserved, n->buried, n->urgent, n->total_jobs,
                          n->timeouts, n->waiting, e->ntubes, e->history.count, h.beanstalk_conns,
                          srv->cur_conns, h.rss_bytes, n->job_bytes);
    if (ok && h.log)
        ok = buf_appendf(b,
                         "{\"bytes\":%" PRIu64 ",\"records_written\":%" PRIu64 ",\"syncs\":%" PRIu64
                         ",\"compactions\":%" PRIu64 ",\"current_segment\":%" PRIu64
                         ",\"disk_full\":%s}}",
                         h.log_bytes, h.log_records_written, h.log_syncs, h.log_compactions,
                         h.log_current_segment, h.log_space_low ? "true" : "false");
    else if (ok)
        ok = buf_puts(b, "null}");
    return ok;
}
