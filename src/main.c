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
#include "net/net.h"
#include "opts.h"
#include "proto/bs_conn.h"
#include "util/clock.h"
#include "util/log.h"
#include "version.h"

/* Unused memory is handed back to the system once the bytes held by
 * tasks fall below half of what they were at the last trim. */
#define TRIM_INTERVAL_MS 1000

typedef struct deferd {
    opts_t opts;
    uv_loop_t *loop;
    engine_t *engine;
    bs_server_t bs;
    net_proto_t bs_proto;
    net_t *net;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uv_timer_t trim_timer;
    uint64_t trim_mark;
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

static void host_stats(void *ctx, bs_host_stats_t *h) {
    (void)ctx;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        h->utime_sec = ru.ru_utime.tv_sec;
        h->utime_usec = ru.ru_utime.tv_usec;
        h->stime_sec = ru.ru_stime.tv_sec;
        h->stime_usec = ru.ru_stime.tv_usec;
    }
}

/* ---- engine time, driven by the network layer's timer ---- */

static void hook_tick(void *ctx, int64_t now) {
    engine_tick(((deferd_t *)ctx)->engine, now);
}

static int64_t hook_next_deadline(void *ctx) {
    return engine_next_deadline(((deferd_t *)ctx)->engine);
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
    net_close_all(d->net);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_usr1, NULL);
    uv_close((uv_handle_t *)&d->trim_timer, NULL);
}

static void on_trim_timer(uv_timer_t *h) {
    deferd_t *d = h->data;
    uint64_t held = d->engine->count.job_bytes;
    if (held > d->trim_mark) {
        d->trim_mark = held;
    } else if (held < d->trim_mark / 2) {
        malloc_trim(0);
        d->trim_mark = held;
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
    for (int i = 0; i < d.opts.nnotes; i++)
        log_msg("%s", d.opts.notes[i]);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);
    fit_connection_limit(&d.opts);

    d.loop = uv_default_loop();
    d.engine = engine_new();
    if (!d.engine) {
        log_msg("out of memory at start-up");
        return 1;
    }
    bs_server_init(&d.bs, d.engine);
    d.bs.max_job_size = d.opts.max_job_size;
    d.bs.out_limit = NET_OUT_HIGH;
    d.bs.started_at = clock_now_ns();
    d.bs.host_stats = host_stats;
    init_identity(&d);
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
    net_hooks_t hooks = {.tick = hook_tick, .next_deadline = hook_next_deadline, .ctx = &d};
    d.net = net_new(d.loop, &hooks, d.opts.max_conns);
    if (!d.net || open_listeners(&d) != 0)
        return 111;
    if (d.opts.user && become_user(d.opts.user) != 0)
        return 1;

    if (d.opts.data_dir)
        log_msg("-b %s: the durable log is not built yet; tasks are kept in memory only",
                d.opts.data_dir);
    else
        log_msg("no data directory (-b): tasks are kept in memory only");

    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    uv_signal_init(d.loop, &d.sig_usr1);
    d.sig_term.data = d.sig_int.data = d.sig_usr1.data = &d;
    uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&d.sig_usr1, on_drain_signal, SIGUSR1);
    uv_timer_init(d.loop, &d.trim_timer);
    d.trim_timer.data = &d;
    uv_timer_start(&d.trim_timer, on_trim_timer, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
    uv_unref((uv_handle_t *)&d.trim_timer);

    uv_run(d.loop, UV_RUN_DEFAULT);

    net_free(d.net);
    bs_server_free(&d.bs);
    engine_free(d.engine);
    uv_loop_close(d.loop);
    log_msg("stopped");
    return 0;
}
