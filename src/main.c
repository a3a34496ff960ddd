/* main.c - deferd: parse options, build the engine, open listeners, run the
 * loop, shut down cleanly.
 *
 * Start-up order follows beanstalkd's, because service files depend on it:
 * bind the listening socket first (it may be a privileged port), then drop
 * privileges (-u), then touch the data directory. */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include "core/engine.h"
#include "dispatch/dispatch.h"
#include "net/net.h"
#include "opts.h"
#include "proto/bs_conn.h"
#include "proto/http.h"
#include "store/wal.h"
#include "util/clock.h"
#include "util/log.h"
#include "version.h"

#define HOUSEKEEPING_MS 1000

typedef struct deferd {
    opts_t opts;
    uv_loop_t *loop;
    engine_t *engine;
    wal_t *wal; /* NULL without a data directory */
    bs_server_t bs;
    net_proto_t bs_proto;
    http_server_t http;
    net_proto_t http_proto;
    net_t *net;
    dispatch_t *dispatch;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uv_timer_t housekeeping;
    struct utsname uts;
} deferd_t;

/* ---- the beanstalk protocol, plugged into the network layer ---- */

static void *bs_open(void *ctx, buf_t *out, void (*wake)(void *), void *conn) {
    return bs_conn_new(ctx, out, wake, conn);
}
static size_t bs_feed(void *st, const char *data, size_t len, int64_t now) {
    return bs_conn_feed(st, data, len, now);
}
static void bs_eof(void *st) {
    bs_conn_eof(st);
}
static bool bs_waiting(void *st) {
    return bs_conn_waiting(st);
}
static bool bs_closed(void *st) {
    return bs_conn_closed(st);
}
static void bs_close(void *st, int64_t now) {
    bs_conn_free(st, now);
}

/* ---- the HTTP API, plugged into the network layer ---- */

static void *http_open(void *ctx, buf_t *out, void (*wake)(void *), void *conn) {
    return http_conn_new(ctx, out, wake, conn);
}
static size_t http_feed(void *st, const char *data, size_t len, int64_t now) {
    return http_conn_feed(st, data, len, now);
}
static void http_eof(void *st) {
    http_conn_eof(st);
}
static bool http_waiting(void *st) {
    (void)st;
    return false;
}
static bool http_closed(void *st) {
    return http_conn_closed(st);
}
static void http_close(void *st, int64_t now) {
    (void)now;
    http_conn_free(st);
}

/* What an HTTP client refused at the connection limit reads. */
static const char *http_refusal(void) {
    static char text[256];
    static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many "
                               "connections; raise --max-connections\"}}";
    snprintf(text, sizeof text,
             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             sizeof body - 1, body);
    return text;
}

static uint64_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void http_host_stats(void *ctx, http_host_stats_t *h) {
    deferd_t *d = ctx;
    h->rss_bytes = resident_bytes();
    h->beanstalk_conns = d->bs.cur_conns;
    if (d->wal) {
        wal_stats_t ws;
        wal_get_stats(d->wal, &ws);
        h->log = true;
        h->log_bytes = ws.disk_bytes;
        h->log_records_written = ws.records_written;
        h->log_syncs = ws.syncs;
        h->log_sync_us_sum = ws.sync_us_sum;
        memcpy(h->log_sync_us_buckets, ws.sync_us_buckets, sizeof h->log_sync_us_buckets);
        h->log_compactions = ws.compactions;
        h->log_current_segment = ws.current_segment;
        h->log_space_low = ws.space_low;
    }
}

static void host_stats(void *ctx, bs_host_stats_t *h) {
    deferd_t *d = ctx;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        h->utime_sec = ru.ru_utime.tv_sec;
        h->utime_usec = ru.ru_utime.tv_usec;
        h->stime_sec = ru.ru_stime.tv_sec;
        h->stime_usec = ru.ru_stime.tv_usec;
    }
    h->binlog_max_size = (int)d->opts.segment_size;
    if (d->wal) {
        wal_stats_t ws;
        wal_get_stats(d->wal, &ws);
        h->binlog_oldest_index = (int)ws.oldest_segment;
        h->binlog_current_index = (int)ws.current_segment;
        h->binlog_records_migrated = (int64_t)ws.records_migrated;
        h->binlog_records_written = (int64_t)ws.records_written;
    }
}

static size_t host_log_room(void *ctx, bool for_put) {
    deferd_t *d = ctx;
    return wal_room(d->wal, for_put);
}

/* ---- engine time, driven by the network layer's timer ---- */

static void hook_tick(void *ctx, int64_t now) {
    engine_tick(((deferd_t *)ctx)->engine, now);
}

static int64_t hook_next_deadline(void *ctx) {
    return engine_next_deadline(((deferd_t *)ctx)->engine);
}

/* ---- the log, driven by the network layer's turn ---- */

static uint64_t hook_log_position(void *ctx) {
    return wal_position(((deferd_t *)ctx)->wal);
}

static uint64_t hook_log_durable(void *ctx) {
    return wal_durable(((deferd_t *)ctx)->wal);
}

/* Start the push attempts the turn made possible, then seal the log's
 * batch (which then holds whatever those changed too). */
static void hook_end_turn(void *ctx) {
    deferd_t *d = ctx;
    int64_t now = clock_now_ns();
    dispatch_end_turn(d->dispatch, now);
    if (d->wal)
        wal_end_turn(d->wal, now);
}

/* ---- push dispatch, as the HTTP API sees it ---- */

static int push_configure(void *ctx, const char *queue, size_t len, const char *json,
                          size_t json_len, char *err, size_t errlen) {
    return dispatch_configure(ctx, queue, len, json, json_len, err, errlen);
}

static bool push_render(void *ctx, buf_t *b, const tube_t *t) {
    return dispatch_render_queue(ctx, b, t);
}

static bool push_metrics(void *ctx, buf_t *b) {
    return dispatch_render_metrics(ctx, b);
}

static void on_log_durable(void *ctx) {
    net_durable(((deferd_t *)ctx)->net);
}

static int open_log(deferd_t *d) {
    char err[1024];
    wal_config_t cfg = {
        .dir = d->opts.data_dir,
        .sync = d->opts.fsync,
        .sync_ms = d->opts.fsync_ms,
        .segment_size = d->opts.segment_size,
        .repair = d->opts.repair_log,
    };
    if (wal_open(&d->wal, &cfg, d->engine, clock_now_ns(), err, sizeof err) != 0) {
        log_msg("%s", err);
        return -1;
    }
    engine_set_journal(d->engine, wal_journal, d->wal);
    if (wal_start(d->wal, d->loop, on_log_durable, d) != 0) {
        log_msg("cannot start the log writer thread");
        return -1;
    }
    if (d->opts.fsync == WAL_SYNC_INTERVAL)
        log_msg("tasks are kept in %s (fsync every %u ms)", d->opts.data_dir, d->opts.fsync_ms);
    else
        log_msg("tasks are kept in %s (fsync %s)", d->opts.data_dir,
                d->opts.fsync == WAL_SYNC_ALWAYS ? "always" : "never");
    return 0;
}

/* ---- signals and housekeeping ---- */

static void on_drain_signal(uv_signal_t *h, int signum) {
    (void)signum;
    deferd_t *d = h->data;
    if (!d->bs.draining)
        log_msg("drain mode: new tasks are refused (SIGUSR1)");
    d->bs.draining = true;
}

static void on_stop_signal(uv_signal_t *h, int signum) {
    deferd_t *d = h->data;
    log_msg("shutting down (%s)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Running push attempts may finish within the grace period; the loop
     * runs until they have (their outcomes are logged at wal_close). */
    dispatch_stop(d->dispatch, (int64_t)d->opts.shutdown_grace * NS_PER_SEC, NULL, NULL);
    net_close_all(d->net);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_usr1, NULL);
    uv_close((uv_handle_t *)&d->housekeeping, NULL);
}

/* Once a second: queue rates, history retention, event-stream heartbeats,
 * and handing unused memory back. */
static void on_housekeeping(uv_timer_t *h) {
    deferd_t *d = h->data;
    int64_t now = clock_now_ns();
    engine_update_rates(d->engine, now);
    engine_expire_history(d->engine, now);
    http_server_tick(&d->http, now);
    /* The engine keeps the high-water mark, so a burst that comes and goes
     * between two ticks is seen too. */
    engine_counts_t *n = &d->engine->count;
    if (n->job_bytes < n->job_bytes_peak / 2) {
        malloc_trim(0);
        n->job_bytes_peak = n->job_bytes;
    }
}

/* ---- start-up ---- */

/* Sockets handed over by systemd (LISTEN_PID / LISTEN_FDS), from fd 3. */
static int inherited_fds(void) {
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    int n = (int)strtol(fds, NULL, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n > 0 ? n : 0;
}

static int open_listeners(deferd_t *d) {
    char err[512];
    int n = inherited_fds();
    if (n > 0) {
        if (d->opts.listen_given)
            log_msg("inherited listening sockets from systemd; ignoring -l/-p");
        for (int i = 0; i < n; i++) {
            if (net_listen_fd(d->net, 3 + i, &d->bs_proto, err, sizeof err) != 0) {
                log_msg("%s", err);
                return -1;
            }
        }
        log_msg("beanstalk protocol on %d socket(s) from systemd", n);
        return 0;
    }
    if (net_listen(d->net, d->opts.listen_addr, d->opts.port, &d->bs_proto, err, sizeof err)) {
        log_msg("%s", err);
        return -1;
    }
    if (strncmp(d->opts.listen_addr, "unix:", 5) == 0)
        log_msg("beanstalk protocol on %s", d->opts.listen_addr);
    else
        log_msg("beanstalk protocol on %s:%s", d->opts.listen_addr, d->opts.port);
    return 0;
}

static bool loopback(const char *addr) {
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strcmp(addr, "localhost") == 0;
}

/* The token is the file's first line, whatever its length. */
static int load_token(deferd_t *d) {
    const char *path = d->opts.http_token_file;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = f ? getline(&line, &cap, f) : -1;
    if (f)
        fclose(f);
    if (got <= 0) {
        log_msg("--http-token-file %s: cannot read a token from it: %s", path,
                f ? "it is empty" : strerror(errno));
        free(line);
        return -1;
    }
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n < 16) {
        log_msg("--http-token-file %s: the token is %zu characters; use at least 16 (for "
                "example: head -c 24 /dev/urandom | base64)",
                path, n);
        free(line);
        return -1;
    }
    d->http.token = line;
    d->http.token_len = n;
    return 0;
}

/* The HTTP API: on the default address it is optional (another deferd may
 * have the port); asked for with --http it is required. */
static int open_http(deferd_t *d) {
    const opts_t *o = &d->opts;
    if (o->http_off)
        return 0;
    if (o->http_token_file && load_token(d) != 0)
        return -1;
    if (!d->http.token && !loopback(o->http_addr)) {
        log_msg("--http %s:%s: without --http-token-file the API would be open to anyone who can "
                "reach that address; give a token file, or listen on 127.0.0.1",
                o->http_addr, o->http_port);
        return -1;
    }
    char err[512];
    int r = net_listen(d->net, o->http_addr, o->http_port, &d->http_proto, err, sizeof err);
    if (r == 0) {
        log_msg("HTTP API on %s:%s%s", o->http_addr, o->http_port,
                d->http.token ? " (token required)" : "");
        return 0;
    }
    if (!o->http_given && r == UV_EADDRINUSE) {
        log_msg("HTTP API not started: %s:%s is in use (another deferd?); use --http ADDR:PORT to "
                "choose a port",
                o->http_addr, o->http_port);
        return 0;
    }
    log_msg("%s", err);
    return -1;
}

static int become_user(const char *user) {
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_msg("-u %s: no such user", user);
        return -1;
    }
    if (setgid(pw->pw_gid) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        log_msg("-u %s: cannot become that user: %s (start deferd as root to use -u)", user,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* Thousands of connections need thousands of descriptors: raise the soft
 * limit to the hard one, and keep max-connections within it. */
static void fit_connection_limit(opts_t *o) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    const rlim_t reserve = 64; /* listeners, log files, the loop's own */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)o->max_conns + reserve) {
        uint32_t fit = rl.rlim_cur > reserve ? (uint32_t)(rl.rlim_cur - reserve) : 1;
        log_msg("max-connections lowered from %u to %u to fit the open-files limit (%lu); "
                "raise it with ulimit -n or LimitNOFILE=",
                o->max_conns, fit, (unsigned long)rl.rlim_cur);
        o->max_conns = fit;
    }
}

static void init_identity(deferd_t *d) {
    unsigned char rnd[8] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(d->bs.instance_id + 2 * i, 3, "%02x", rnd[i]);
    if (uname(&d->uts) == 0) {
        d->bs.hostname = d->uts.nodename;
        d->bs.os = d->uts.version;
        d->bs.platform = d->uts.machine;
    }
    d->bs.pid = (long)getpid();
    d->bs.version = DEFER_VERSION;
}

/* --check-log: replay the directory read-only and report. */
static int check_log(const opts_t *o) {
    engine_t *e = engine_new();
    if (!e) {
        log_msg("out of memory");
        return 1;
    }
    char err[1024];
    wal_config_t cfg = {.dir = o->data_dir, .segment_size = o->segment_size};
    int rc = wal_check(&cfg, e, err, sizeof err);
    if (rc == 0) {
        const engine_counts_t *n = &e->count;
        printf("%s: intact: %llu tasks (%llu ready, %llu delayed, %llu buried), %u tubes, next "
               "id %llu\n",
               o->data_dir, (unsigned long long)e->jobs.count, (unsigned long long)n->ready,
               (unsigned long long)n->delayed, (unsigned long long)n->buried, e->ntubes,
               (unsigned long long)e->next_id);
    } else {
        printf("%s: %s\n", o->data_dir, err);
    }
    engine_free(e);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    static deferd_t d;
    char err[512];
    opts_defaults(&d.opts);
    if (opts_parse(&d.opts, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "deferd: %s\n\n%s", err, opts_usage());
        return 5;
    }
    if (d.opts.show_help) {
        fputs(opts_usage(), stdout);
        return 0;
    }
    if (d.opts.show_version) {
        printf("deferd %s (beanstalkd %s protocol)\n", DEFER_VERSION, DEFER_BEANSTALK_COMPAT);
        return 0;
    }
    log_verbosity = d.opts.verbosity;
    if (d.opts.check_log)
        return check_log(&d.opts);
    for (int i = 0; i < d.opts.nnotes; i++)
        log_msg("%s", d.opts.notes[i]);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);
    fit_connection_limit(&d.opts);

    config_t config = {0};
    if (d.opts.config_file && !config_load(d.opts.config_file, &config, err, sizeof err)) {
        log_msg("%s", err);
        return 1;
    }

    d.loop = uv_default_loop();
    d.engine = engine_new();
    if (!d.engine) {
        log_msg("out of memory at start-up");
        return 1;
    }
    d.dispatch = dispatch_new(d.loop, d.engine, &config, err, sizeof err);
    if (!d.dispatch) {
        log_msg("%s%s%s", d.opts.config_file ? d.opts.config_file : "",
                d.opts.config_file ? ": " : "", err);
        return 1;
    }
    bs_server_init(&d.bs, d.engine);
    d.bs.max_job_size = d.opts.max_job_size;
    d.bs.out_limit = NET_OUT_HIGH;
    d.bs.started_at = clock_now_ns();
    d.bs.host_stats = host_stats;
    d.bs.host_ctx = &d;
    init_identity(&d);
    http_server_init(&d.http, d.engine);
    d.http.draining = &d.bs.draining;
    d.http.max_job_size = d.opts.max_job_size;
    d.http.max_body = d.opts.http_max_body;
    d.http.out_limit = NET_OUT_HIGH;
    d.http.host_stats = http_host_stats;
    d.http.host_ctx = &d;
    d.http.version = DEFER_VERSION;
    d.http.push_configure = push_configure;
    d.http.push_render = push_render;
    d.http.push_metrics = push_metrics;
    d.http.push_ctx = d.dispatch;
    d.http.started_at = d.bs.started_at;
    d.http_proto = (net_proto_t){
        .name = "http",
        .refusal = http_refusal(),
        .open = http_open,
        .feed = http_feed,
        .eof = http_eof,
        .waiting = http_waiting,
        .closed = http_closed,
        .close = http_close,
        .ctx = &d.http,
    };
    engine_set_history(d.engine, d.opts.history_max, (int64_t)d.opts.history_age * NS_PER_SEC);
    engine_set_observer(d.engine, http_events_observe, &d.http);
    d.bs_proto = (net_proto_t){
        .name = "beanstalk",
        .refusal = "OUT_OF_MEMORY\r\n",
        .open = bs_open,
        .feed = bs_feed,
        .eof = bs_eof,
        .waiting = bs_waiting,
        .closed = bs_closed,
        .close = bs_close,
        .ctx = &d.bs,
    };
    net_hooks_t hooks = {.tick = hook_tick,
                         .next_deadline = hook_next_deadline,
                         .end_turn = hook_end_turn,
                         .ctx = &d};
    if (d.opts.data_dir) {
        hooks.log_position = hook_log_position;
        hooks.log_durable = hook_log_durable;
    }
    d.net = net_new(d.loop, &hooks, d.opts.max_conns);
    if (!d.net || open_listeners(&d) != 0 || open_http(&d) != 0)
        return 111;
    if (d.opts.user && become_user(d.opts.user) != 0)
        return 1;

    if (d.opts.data_dir) {
        if (open_log(&d) != 0)
            return 1;
        d.bs.log_room = host_log_room;
        d.http.log_room = host_log_room;
    } else {
        log_msg("no data directory (-b): tasks are kept in memory only");
    }
    dispatch_start(d.dispatch);

    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    uv_signal_init(d.loop, &d.sig_usr1);
    d.sig_term.data = d.sig_int.data = d.sig_usr1.data = &d;
    uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&d.sig_usr1, on_drain_signal, SIGUSR1);
    /* Rates count from now: tasks enqueued before the first tick count. */
    engine_update_rates(d.engine, clock_now_ns());
    uv_timer_init(d.loop, &d.housekeeping);
    d.housekeeping.data = &d;
    uv_timer_start(&d.housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    uv_unref((uv_handle_t *)&d.housekeeping);

    uv_run(d.loop, UV_RUN_DEFAULT);

    /* Connections are closed: write what the log still holds, stop its
     * thread, and let the loop close its handle. */
    engine_set_journal(d.engine, NULL, NULL);
    wal_close(d.wal);
    uv_run(d.loop, UV_RUN_DEFAULT);
    net_free(d.net);
    dispatch_free(d.dispatch);
    http_server_free(&d.http);
    bs_server_free(&d.bs);
    engine_free(d.engine);
    uv_loop_close(d.loop);
    log_msg("stopped");
    return 0;
}
