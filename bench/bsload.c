/* bsload.c - a load generator for servers speaking the beanstalkd protocol.
 *
 * Written so deferd and beanstalkd can be measured with the very same client:
 * one process, one thread, one epoll loop, so that pinned to one CPU it adds
 * as little noise as possible and never competes with itself. Every reply is
 * checked (a fast server that answers wrongly must not look fast), and the
 * run always ends by itself: by operation count, by duration, when a drained
 * queue is empty, or at a hard timeout.
 *
 * Model: each connection runs `depth` independent chains. A chain has at
 * most one command in flight and issues its next command when that one's
 * reply arrives (put -> put, reserve -> delete -> reserve, put -> reserve ->
 * delete -> put, put -> delete -> put). Replies on a connection come back in
 * command order, so a FIFO of in-flight commands per connection tells which
 * reply answers what.
 *
 * Modes (one summary line on stdout, key=value, for scripts):
 *   put    puts; ops = puts
 *   fill   the same as put, meant for pre-filling a queue (use -n)
 *   drain  reserve-with-timeout 0 + delete until the queue is empty;
 *          ops = jobs removed
 *   cycle  put -> reserve -> delete; ops = complete cycles
 *   churn  put -> delete of the id just inserted (no reserve), so jobs
 *          already in the queue are never touched; ops = complete pairs
 *   stats  print a few numbers from the server's `stats`
 * With --redis, put and fill speak Redis's protocol (RESP) instead: each put
 * is LPUSH <tube> <body>, answered with the list's new length, so the very
 * same client can load Redis for a side-by-side comparison.
 * Latency (p50/p99/p99.9) is per command, from the moment it is handed to
 * the kernel to the moment its complete reply has been read.
 *
 * Exit status: 0 success, 1 bad usage, 2 connection error or unexpected
 * reply, 3 hard timeout. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 1
#define EXIT_FAIL 2
#define EXIT_TIMEOUT 3

/* Longer reply lines than this are never valid for the commands we send. */
#define REPLY_LINE_MAX 256
/* Setup commands (use/watch/stats) must answer within this. */
#define SYNC_TIMEOUT_SEC 10

typedef enum run_mode {
    MODE_PUT,
    MODE_FILL,
    MODE_DRAIN,
    MODE_CYCLE,
    MODE_CHURN,
    MODE_STATS
} run_mode_t;

static const char *const mode_names[] = {"put", "fill", "drain", "cycle", "churn", "stats"};

typedef enum cmd_kind { CMD_PUT, CMD_RESERVE, CMD_DELETE } cmd_kind_t;

typedef struct config {
    const char *addr;
    const char *port;
    run_mode_t mode;
    unsigned conns;
    unsigned depth;
    uint32_t size;
    uint64_t ops;       /* 0 = no count limit */
    double duration;    /* seconds; 0 = no time limit */
    double hard_timeout;
    const char *tube;
    bool tube_per_conn;
    bool redis; /* RESP: put = LPUSH tube body */
    uint32_t pri;
    uint32_t ttr;
    unsigned reserve_timeout; /* drain mode */
} config_t;

static config_t cfg = {
    .addr = "127.0.0.1",
    .port = "11300",
    .mode = MODE_PUT,
    .conns = 1,
    .depth = 1,
    .size = 100,
    .tube = "default",
    .pri = 1024,
    .ttr = 60,
};

/* ---- failing loudly ---- */

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("bsload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* A last resort in case something blocks where we did not expect it: the
 * run must end by itself whatever the server does. */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "bsload: hard timeout (alarm): giving up\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    _exit(EXIT_TIMEOUT);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A reply, made printable and cut short, for error messages. */
static const char *show(const char *p, size_t n) {
    static char buf[100];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof buf - 4; i++)
        buf[k++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
    if (n > k)
        buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = '\0';
    return buf;
}

/* ---- latency histogram ----
 * Log-linear buckets (128 per power of two, so under 1% error) keep memory
 * fixed however long the run is, unlike storing every sample. */

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 40 /* 2^41 ns is about 36 minutes; longer is clamped */
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count, hist_max;
static double hist_sum;

static size_t hist_index(uint64_t v) {
    if (v < HIST_SUB)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    unsigned shift = e - HIST_SUB_BITS;
    uint64_t m = v >> shift; /* HIST_SUB .. 2*HIST_SUB-1 */
    return HIST_SUB + (size_t)shift * HIST_SUB + (size_t)(m - HIST_SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(size_t i) {
    if (i < HIST_SUB)
        return i;
    size_t shift = (i - HIST_SUB) / HIST_SUB;
    uint64_t m = HIST_SUB + (i - HIST_SUB) % HIST_SUB;
    return (m << shift) + ((UINT64_C(1) << shift) >> 1);
}

static void hist_record(int64_t ns) {
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
    hist[hist_index(v)]++;
    hist_count++;
    hist_sum += (double)v;
    if (v > hist_max)
        hist_max = v;
}

/* The value below which a fraction p of the samples lie, in microseconds. */
static double hist_percentile_us(double p) {
    if (hist_count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)hist_count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return (double)(v < hist_max ? v : hist_max) / 1000.0;
        }
    }
    return (double)hist_max / 1000.0;
}

/* ---- connections ---- */

/* A command awaiting its reply. */
typedef struct pending {
    cmd_kind_t kind;
    uint64_t id; /* the job a delete names */
    int64_t sent_ns;
} pending_t;

typedef struct conn {
    int fd;
    unsigned index;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_off, out_len, out_cap;
    pending_t *fifo; /* ring of `depth` entries, oldest first */
    unsigned fifo_head, fifo_count;
    unsigned live_chains;
    bool empty;        /* drain: the server said TIMED_OUT, the queue is empty */
    bool want_out;     /* EPOLLOUT is registered */
    bool done;
    uint64_t last_id;  /* ids this connection put must increase */
} conn_t;

static conn_t *conns;
static unsigned live_conns;
static int epfd = -1;
static char *put_cmd; /* "put ...\r\n<body>\r\n", the same for every put */
static size_t put_cmd_len;
static char *body_pattern;
static uint64_t ops_started, ops_done, cmds_done;
static int64_t deadline_ns;    /* stop starting new operations after this; 0 = never */
static int64_t hard_deadline_ns;

/* Connect with a blocking socket; setup uses it that way and the load loop
 * switches it to non-blocking afterwards. "unix:/path" means a Unix socket
 * (deferd listens on those too). */
static int connect_one(unsigned index) {
    int fd = -1;
    if (strncmp(cfg.addr, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(cfg.addr + 5) >= sizeof sun.sun_path)
            die(EXIT_USAGE, "unix socket path too long: %s", cfg.addr + 5);
        strcpy(sun.sun_path, cfg.addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
            die(EXIT_FAIL, "connection %u: cannot connect to %s: %s", index, cfg.addr,
                strerror(errno));
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(cfg.addr, cfg.port, &hints, &res);
        if (rc != 0)
            die(EXIT_FAIL, "cannot resolve %s:%s: %s", cfg.addr, cfg.port, gai_strerror(rc));
        int err = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                err = errno;
                continue;
            }
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            err = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
            die(EXIT_FAIL, "connection %u: cannot connect to %s:%s: %s", index, cfg.addr,
                cfg.port, strerror(err));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct timeval tv = {.tv_sec = SYNC_TIMEOUT_SEC};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *p, size_t n, const char *what) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EXIT_FAIL, "sending %s: %s", what, w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
    }
}

/* Read exactly n bytes (blocking, with the socket's timeout). */
static void recv_exact(int fd, char *p, size_t n, const char *what) {
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die(EXIT_FAIL, "waiting for the reply to %s: %s", what,
                errno == EAGAIN ? "timed out" : strerror(errno));
        if (r == 0)
            die(EXIT_FAIL, "waiting for the reply to %s: the server closed the connection",
                what);
        p += r;
        n -= (size_t)r;
    }
}

/* Read one reply line, byte by byte: only used for the few setup commands,
 * and reading no further than the line keeps any body in the socket. */
static size_t recv_line(int fd, char *line, size_t cap, const char *what) {
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap)
            die(EXIT_FAIL, "reply to %s too long: %s", what, show(line, n));
        recv_exact(fd, line + n, 1, what);
        n++;
        if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n') {
            n -= 2;
            line[n] = '\0';
            return n;
        }
    }
}

/* Send one command and insist on one exact reply line. */
static void sync_command(int fd, const char *cmd, const char *expect) {
    char line[REPLY_LINE_MAX + 8];
    char what[REPLY_LINE_MAX];
    snprintf(what, sizeof what, "'%s'", cmd);
    size_t n = strlen(cmd);
    char *wire = malloc(n + 3);
    if (!wire)
        die(EXIT_FAIL, "out of memory");
    memcpy(wire, cmd, n);
    memcpy(wire + n, "\r\n", 3);
    send_all(fd, wire, n + 2, what);
    free(wire);
    recv_line(fd, line, sizeof line, what);
    if (strcmp(line, expect) != 0)
        die(EXIT_FAIL, "%s: expected '%s', got '%s'", what, expect, show(line, strlen(line)));
}

/* The tube of connection i. */
static void tube_name(unsigned i, char *buf, size_t cap) {
    if (cfg.tube_per_conn)
        snprintf(buf, cap, "%s-%u", cfg.tube, i);
    else
        snprintf(buf, cap, "%s", cfg.tube);
}

/* use/watch the configured tube before the clock starts, so the measured
 * part only holds the commands being measured. */
static void setup_tube(int fd, unsigned i) {
    char tube[256], cmd[300], expect[300];
    tube_name(i, tube, sizeof tube);
    if (strcmp(tube, "default") == 0 || cfg.redis)
        return;
    if (cfg.mode == MODE_PUT || cfg.mode == MODE_FILL || cfg.mode == MODE_CYCLE ||
        cfg.mode == MODE_CHURN) {
        snprintf(cmd, sizeof cmd, "use %s", tube);
        snprintf(expect, sizeof expect, "USING %s", tube);
        sync_command(fd, cmd, expect);
    }
    if (cfg.mode == MODE_DRAIN || cfg.mode == MODE_CYCLE) {
        snprintf(cmd, sizeof cmd, "watch %s", tube);
        sync_command(fd, cmd, "WATCHING 2");
        sync_command(fd, "ignore default", "WATCHING 1");
    }
}

static bool parse_u64(const char *p, const char *end, uint64_t *out) {
    if (p == end)
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ---- the stats mode ---- */

/* One line of a few stats numbers, used by run.sh to check a server's
 * state (e.g. that a fill really left N ready jobs) and to see it is up. */
static int run_stats(void) {
    static const char *const keys[] = {
        "pid", "current-jobs-ready", "current-jobs-reserved", "current-jobs-delayed",
        "current-jobs-buried", "total-jobs", "current-connections", "cmd-put", "cmd-delete",
    };
    int fd = connect_one(0);
    char line[REPLY_LINE_MAX + 8];
    send_all(fd, "stats\r\n", 7, "'stats'");
    size_t n = recv_line(fd, line, sizeof line, "'stats'");
    uint64_t len;
    if (n < 4 || memcmp(line, "OK ", 3) != 0 || !parse_u64(line + 3, line + n, &len) ||
        len > 1u << 20)
        die(EXIT_FAIL, "'stats': expected 'OK <bytes>', got '%s'", show(line, n));
    char *yaml = malloc(len + 3);
    if (!yaml)
        die(EXIT_FAIL, "out of memory");
    recv_exact(fd, yaml, len + 2, "'stats'");
    if (yaml[len] != '\r' || yaml[len + 1] != '\n')
        die(EXIT_FAIL, "'stats': body not followed by CRLF");
    yaml[len] = '\0';
    close(fd);

    printf("mode=stats");
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t kl = strlen(keys[k]);
        const char *value = "?";
        size_t vl = 1;
        for (char *l = yaml; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            if (strncmp(l, keys[k], kl) == 0 && l[kl] == ':' && l[kl + 1] == ' ') {
                value = l + kl + 2;
                vl = strcspn(value, "\n");
                break;
            }
        }
        printf(" %s=%.*s", keys[k], (int)vl, value);
    }
    printf("\n");
    free(yaml);
    return 0;
}

/* ---- sending ---- */

static void conn_watch_out(conn_t *c, bool on) {
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die(EXIT_FAIL, "epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

/* Send what is queued; the rest waits for EPOLLOUT. */
static void conn_flush(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0)
            die(EXIT_FAIL, "connection %u: send: %s", c->index, strerror(errno));
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    conn_watch_out(c, c->out_len > 0);
}

static void conn_append(conn_t *c, const char *p, size_t n) {
    if (c->out_len + n > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    /* At most one command per chain is ever queued, and out_cap fits
     * `depth` of the longest, so this is a bug, not a condition. */
    if (c->out_len + n > c->out_cap)
        die(EXIT_FAIL, "internal error: output buffer overflow");
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* Drain asks with the configured timeout (0: answer now, TIMED_OUT when
 * empty); cycle always has a job coming, so a timeout there is an error. */
static unsigned reserve_timeout(void) {
    return cfg.mode == MODE_DRAIN ? cfg.reserve_timeout : SYNC_TIMEOUT_SEC;
}

static void send_cmd(conn_t *c, cmd_kind_t kind, uint64_t id, int64_t now) {
    if (c->fifo_count == cfg.depth)
        die(EXIT_FAIL, "internal error: more commands in flight than chains");
    pending_t *pd = &c->fifo[(c->fifo_head + c->fifo_count) % cfg.depth];
    pd->kind = kind;
    pd->id = id;
    pd->sent_ns = now;
    c->fifo_count++;
    switch (kind) {
    case CMD_PUT:
        conn_append(c, put_cmd, put_cmd_len);
        break;
    case CMD_RESERVE: {
        char line[64];
        int n = snprintf(line, sizeof line, "reserve-with-timeout %u\r\n", reserve_timeout());
        conn_append(c, line, (size_t)n);
        break;
    }
    case CMD_DELETE: {
        char line[64];
        int n = snprintf(line, sizeof line, "delete %llu\r\n", (unsigned long long)id);
        conn_append(c, line, (size_t)n);
        break;
    }
    }
}

/* Begin a chain's next operation, or end the chain when the run is over. */
static void chain_next(conn_t *c, int64_t now) {
    bool go = (cfg.ops == 0 || ops_started < cfg.ops) && (deadline_ns == 0 || now < deadline_ns) &&
              !c->empty;
    if (!go) {
        c->live_chains--;
        return;
    }
    ops_started++;
    send_cmd(c, cfg.mode == MODE_DRAIN ? CMD_RESERVE : CMD_PUT, 0, now);
}

/* ---- receiving ---- */

_Noreturn static void unexpected(const conn_t *c, const pending_t *pd, const char *line, size_t n) {
    char cmd[64];
    if (pd->kind == CMD_RESERVE)
        snprintf(cmd, sizeof cmd, "reserve-with-timeout %u", reserve_timeout());
    else if (pd->kind == CMD_DELETE)
        snprintf(cmd, sizeof cmd, "delete %llu", (unsigned long long)pd->id);
    else if (cfg.redis)
        snprintf(cmd, sizeof cmd, "LPUSH %s <%u bytes>", cfg.tube, cfg.size);
    else
        snprintf(cmd, sizeof cmd, "put %u 0 %u %u", cfg.pri, cfg.ttr, cfg.size);
    die(EXIT_FAIL, "connection %u: unexpected reply to '%s': '%s'", c->index, cmd,
        show(line, n));
}

/* Parse and act on one complete reply at c->in + pos. Returns the bytes it
 * took, or 0 when the reply is not complete yet. */
static size_t take_reply(conn_t *c, size_t pos, int64_t now) {
    const char *p = c->in + pos;
    size_t avail = c->in_len - pos;
    size_t scan = avail < REPLY_LINE_MAX ? avail : REPLY_LINE_MAX;
    const char *eol = NULL;
    for (size_t i = 0; i + 1 < scan; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n') {
            eol = p + i;
            break;
        }
    }
    if (!eol) {
        if (avail >= REPLY_LINE_MAX)
            die(EXIT_FAIL, "connection %u: reply line longer than %d bytes: '%s'", c->index,
                REPLY_LINE_MAX, show(p, avail));
        return 0;
    }
    size_t n = (size_t)(eol - p);
    size_t used = n + 2;
    if (c->fifo_count == 0)
        die(EXIT_FAIL, "connection %u: reply with no command in flight: '%s'", c->index,
            show(p, n));
    pending_t pd = c->fifo[c->fifo_head];

#define IS(word) (n >= sizeof(word) - 1 && memcmp(p, word, sizeof(word) - 1) == 0)
    switch (pd.kind) {
    case CMD_PUT: {
        uint64_t id = 0;
        if (cfg.redis) {
            /* LPUSH answers the list's new length: it grows with every
             * push, so it must increase on each connection too. */
            if (!IS(":") || !parse_u64(p + 1, eol, &id))
                unexpected(c, &pd, p, n);
            if (id <= c->last_id)
                die(EXIT_FAIL, "connection %u: list length %llu after %llu: must increase",
                    c->index, (unsigned long long)id, (unsigned long long)c->last_id);
            c->last_id = id;
            break;
        }
        if (!IS("INSERTED ") || !parse_u64(p + 9, eol, &id))
            unexpected(c, &pd, p, n);
        if (id <= c->last_id)
            die(EXIT_FAIL, "connection %u: INSERTED %llu after %llu: ids must increase", c->index,
                (unsigned long long)id, (unsigned long long)c->last_id);
        c->last_id = id;
        break;
    }
    case CMD_RESERVE: {
        if (n == 9 && memcmp(p, "TIMED_OUT", 9) == 0 && cfg.mode == MODE_DRAIN)
            break;
        const char *sp = IS("RESERVED ") ? memchr(p + 9, ' ', n - 9) : NULL;
        uint64_t id = 0, bytes = 0;
        if (!sp || !parse_u64(p + 9, sp, &id) || !parse_u64(sp + 1, eol, &bytes) || id == 0)
            unexpected(c, &pd, p, n); /* ids start at 1; 0 also marks TIMED_OUT below */
        if (bytes != cfg.size)
            die(EXIT_FAIL, "connection %u: RESERVED job %llu has %llu bytes, expected %u (-s)",
                c->index, (unsigned long long)id, (unsigned long long)bytes, cfg.size);
        if (avail < used + bytes + 2)
            return 0; /* the body is still on its way */
        if (memcmp(p + used, body_pattern, bytes) != 0 || p[used + bytes] != '\r' ||
            p[used + bytes + 1] != '\n')
            die(EXIT_FAIL, "connection %u: RESERVED job %llu: body differs from what was put",
                c->index, (unsigned long long)id);
        used += (size_t)bytes + 2;
        pd.id = id;
        break;
    }
    case CMD_DELETE:
        if (n != 7 || memcmp(p, "DELETED", 7) != 0)
            unexpected(c, &pd, p, n);
        break;
    }
#undef IS

    /* The reply is good: retire the command and move its chain on. */
    c->fifo_head = (c->fifo_head + 1) % cfg.depth;
    c->fifo_count--;
    cmds_done++;
    hist_record(now - pd.sent_ns);
    switch (pd.kind) {
    case CMD_PUT:
        if (cfg.mode == MODE_CYCLE) {
            send_cmd(c, CMD_RESERVE, 0, now);
        } else if (cfg.mode == MODE_CHURN) {
            send_cmd(c, CMD_DELETE, c->last_id, now);
        } else {
            ops_done++;
            chain_next(c, now);
        }
        break;
    case CMD_RESERVE:
        if (pd.id == 0) { /* TIMED_OUT: nothing left to drain */
            c->empty = true;
            c->live_chains--;
        } else {
            send_cmd(c, CMD_DELETE, pd.id, now);
        }
        break;
    case CMD_DELETE:
        ops_done++;
        chain_next(c, now);
        break;
    }
    return used;
}

static void conn_finish_if_done(conn_t *c) {
    if (!c->done && c->live_chains == 0 && c->fifo_count == 0) {
        c->done = true;
        live_conns--;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_read(conn_t *c) {
    ssize_t r;
    do
        r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r < 0)
        die(EXIT_FAIL, "connection %u: recv: %s (%u commands in flight)", c->index,
            strerror(errno), c->fifo_count);
    if (r == 0)
        die(EXIT_FAIL, "connection %u: the server closed the connection (%u commands in flight)",
            c->index, c->fifo_count);
    c->in_len += (size_t)r;
    int64_t now = now_ns();
    size_t pos = 0, used;
    while (pos < c->in_len && (used = take_reply(c, pos, now)) > 0)
        pos += used;
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    if (c->in_len == c->in_cap)
        die(EXIT_FAIL, "internal error: input buffer full without a complete reply");
    conn_flush(c);
    conn_finish_if_done(c);
}

/* ---- the load run ---- */

static void prepare_put_command(void) {
    body_pattern = malloc((size_t)cfg.size + 1);
    if (!body_pattern)
        die(EXIT_FAIL, "out of memory");
    /* A varied body, so a server that mixes up or truncates bodies shows. */
    for (uint32_t i = 0; i < cfg.size; i++)
        body_pattern[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
    char head[300];
    int hn;
    if (cfg.redis)
        hn = snprintf(head, sizeof head, "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%u\r\n",
                      strlen(cfg.tube), cfg.tube, cfg.size);
    else
        hn = snprintf(head, sizeof head, "put %u 0 %u %u\r\n", cfg.pri, cfg.ttr, cfg.size);
    put_cmd_len = (size_t)hn + cfg.size + 2;
    put_cmd = malloc(put_cmd_len);
    if (!put_cmd)
        die(EXIT_FAIL, "out of memory");
    memcpy(put_cmd, head, (size_t)hn);
    memcpy(put_cmd + hn, body_pattern, cfg.size);
    memcpy(put_cmd + hn + cfg.size, "\r\n", 2);
}

/* Thousands of connections need as many descriptors. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int run_load(void) {
    prepare_put_command();
    raise_fd_limit();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(EXIT_FAIL, "epoll_create1: %s", strerror(errno));
    conns = calloc(cfg.conns, sizeof *conns);
    if (!conns)
        die(EXIT_FAIL, "out of memory");
    size_t longest = put_cmd_len > 64 ? put_cmd_len : 64;
    for (unsigned i = 0; i < cfg.conns; i++) {
        conn_t *c = &conns[i];
        c->index = i;
        c->fd = connect_one(i);
        setup_tube(c->fd, i);
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
            die(EXIT_FAIL, "fcntl: %s", strerror(errno));
        c->out_cap = (size_t)cfg.depth * longest;
        c->in_cap = 2 * ((size_t)cfg.size + REPLY_LINE_MAX) + 64 * 1024;
        c->out = malloc(c->out_cap);
        c->in = malloc(c->in_cap);
        c->fifo = calloc(cfg.depth, sizeof *c->fifo);
        if (!c->out || !c->in || !c->fifo)
            die(EXIT_FAIL, "out of memory (%u connections x depth %u)", cfg.conns, cfg.depth);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die(EXIT_FAIL, "epoll_ctl: %s", strerror(errno));
    }

    int64_t start = now_ns();
    if (cfg.duration > 0)
        deadline_ns = start + (int64_t)(cfg.duration * 1e9);
    hard_deadline_ns = start + (int64_t)(cfg.hard_timeout * 1e9);
    live_conns = cfg.conns;
    for (unsigned i = 0; i < cfg.conns; i++) {
        conn_t *c = &conns[i];
        /* Each connection's own clock: writing to thousands of them takes
         * long enough to show in the latency of the last ones. */
        int64_t now = now_ns();
        c->live_chains = cfg.depth;
        for (unsigned d = 0; d < cfg.depth; d++)
            chain_next(c, now);
        conn_flush(c);
        conn_finish_if_done(c);
    }

    struct epoll_event evs[256];
    int64_t end = start;
    while (live_conns > 0) {
        int n = epoll_wait(epfd, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die(EXIT_FAIL, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->done)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c);
            if (!c->done && (evs[i].events & EPOLLOUT))
                conn_flush(c);
        }
        end = now_ns();
        if (end > hard_deadline_ns)
            die(EXIT_TIMEOUT,
                "hard timeout after %.1f s: %llu of %llu operations done, %u connections "
                "still busy (raise -T, or is the server stuck?)",
                (double)(end - start) / 1e9, (unsigned long long)ops_done,
                (unsigned long long)ops_started, live_conns);
    }

    double secs = (double)(end - start) / 1e9;
    printf("mode=%s%s conns=%u depth=%u size=%u tube=%s%s ops=%llu cmds=%llu secs=%.3f "
           "ops_per_sec=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f\n",
           mode_names[cfg.mode], cfg.redis ? " proto=resp" : "", cfg.conns, cfg.depth, cfg.size,
           cfg.tube, cfg.tube_per_conn ? "-N" : "", (unsigned long long)ops_done,
           (unsigned long long)cmds_done, secs, secs > 0 ? (double)ops_done / secs : 0.0,
           hist_percentile_us(0.50), hist_percentile_us(0.99), hist_percentile_us(0.999),
           (double)hist_max / 1000.0, hist_count ? hist_sum / (double)hist_count / 1000.0 : 0.0);
    return 0;
}

/* ---- options ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bsload [options]\n"
            "  -m, --mode MODE        put | fill | drain | cycle | churn | stats\n"
            "                         (default put)\n"
            "  -a, --addr HOST        server address, or unix:/path (default 127.0.0.1)\n"
            "  -p, --port PORT        server port (default 11300)\n"
            "  -c, --conns N          connections (default 1)\n"
            "  -D, --depth N          commands in flight per connection (default 1;\n"
            "                         64 for fill)\n"
            "  -s, --size BYTES       job body size (default 100)\n"
            "  -n, --ops N            stop after N operations (puts, drained jobs, cycles,\n"
            "                         put+delete pairs)\n"
            "  -d, --duration SECS    stop starting operations after SECS (fractions ok)\n"
            "  -t, --tube NAME        tube to use/watch (default 'default')\n"
            "      --tube-per-conn    connection i uses tube NAME-i instead\n"
            "      --redis            put/fill only: speak Redis's protocol, each put\n"
            "                         being LPUSH <tube> <body> (for comparisons)\n"
            "      --pri N            put priority (default 1024)\n"
            "      --ttr N            put time-to-run (default 60)\n"
            "  -r, --reserve-timeout N  drain: reserve-with-timeout N (default 0); with\n"
            "                         N > 0 each reserve already sent when the queue\n"
            "                         runs dry waits N s, so the end takes up to D*N s\n"
            "  -T, --timeout SECS     hard timeout: fail if not done by then\n"
            "                         (default: duration + 30, or 300 without -d)\n"
            "  -h, --help\n"
            "put/cycle/churn need -n or -d (default -d 5); fill needs -n; drain runs until\n"
            "the queue is empty. Output: one line of key=value pairs on stdout.\n");
}

static unsigned long long num_arg(const char *opt, const char *s, unsigned long long max) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        die(EXIT_USAGE, "%s: not a number in range 0..%llu: '%s'", opt, max, s);
    return v;
}

static void parse_args(int argc, char **argv) {
    enum { OPT_PRI = 256, OPT_TTR, OPT_TUBE_PER_CONN, OPT_REDIS };
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"addr", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'D'},
        {"size", required_argument, NULL, 's'},
        {"ops", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"tube", required_argument, NULL, 't'},
        {"tube-per-conn", no_argument, NULL, OPT_TUBE_PER_CONN},
        {"redis", no_argument, NULL, OPT_REDIS},
        {"pri", required_argument, NULL, OPT_PRI},
        {"ttr", required_argument, NULL, OPT_TTR},
        {"reserve-timeout", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    char *end;
    bool depth_given = false;
    while ((o = getopt_long(argc, argv, "m:a:p:c:D:s:n:d:t:r:T:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'm': {
            size_t k;
            for (k = 0; k < sizeof mode_names / sizeof mode_names[0]; k++)
                if (strcmp(optarg, mode_names[k]) == 0)
                    break;
            if (k == sizeof mode_names / sizeof mode_names[0])
                die(EXIT_USAGE, "unknown mode '%s' (put, fill, drain, cycle, churn, stats)",
                    optarg);
            cfg.mode = (run_mode_t)k;
            break;
        }
        case 'a':
            cfg.addr = optarg;
            break;
        case 'p':
            num_arg("-p", optarg, 65535);
            cfg.port = optarg;
            break;
        case 'c':
            cfg.conns = (unsigned)num_arg("-c", optarg, 100000);
            break;
        case 'D':
            cfg.depth = (unsigned)num_arg("-D", optarg, 100000);
            depth_given = true;
            break;
        case 's':
            cfg.size = (uint32_t)num_arg("-s", optarg, 64u << 20);
            break;
        case 'n':
            cfg.ops = num_arg("-n", optarg, UINT64_MAX / 2);
            break;
        case 'd':
        case 'T': {
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0) || v > 86400)
                die(EXIT_USAGE, "-%c: expected seconds (0 < s <= 86400), got '%s'", o, optarg);
            if (o == 'd')
                cfg.duration = v;
            else
                cfg.hard_timeout = v;
            break;
        }
        case 't':
            cfg.tube = optarg;
            break;
        case OPT_TUBE_PER_CONN:
            cfg.tube_per_conn = true;
            break;
        case OPT_REDIS:
            cfg.redis = true;
            break;
        case OPT_PRI:
            cfg.pri = (uint32_t)num_arg("--pri", optarg, UINT32_MAX);
            break;
        case OPT_TTR:
            cfg.ttr = (uint32_t)num_arg("--ttr", optarg, UINT32_MAX);
            break;
        case 'r':
            cfg.reserve_timeout = (unsigned)num_arg("-r", optarg, 3600);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc)
        die(EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (cfg.conns == 0 || cfg.depth == 0)
        die(EXIT_USAGE, "-c and -D must be at least 1");
    if (strlen(cfg.tube) == 0 || strlen(cfg.tube) > 180)
        die(EXIT_USAGE, "-t: tube names are 1..200 bytes (180 here, to leave room for -N)");
    if (cfg.redis && ((cfg.mode != MODE_PUT && cfg.mode != MODE_FILL) || cfg.tube_per_conn))
        die(EXIT_USAGE, "--redis: only put and fill, with one list (no --tube-per-conn)");
    if (cfg.mode == MODE_FILL && cfg.ops == 0)
        die(EXIT_USAGE, "fill needs -n (how many jobs)");
    if (cfg.mode == MODE_FILL && !depth_given)
        cfg.depth = 64; /* fill is about getting jobs in fast: pipeline */
    if ((cfg.mode == MODE_PUT || cfg.mode == MODE_CYCLE || cfg.mode == MODE_CHURN) &&
        cfg.ops == 0 && cfg.duration == 0)
        cfg.duration = 5;
    if (cfg.hard_timeout == 0)
        cfg.hard_timeout = cfg.duration > 0 ? cfg.duration + 30 : 300;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    /* The loop checks the hard timeout itself; the alarm, a little later,
     * covers anything that might block outside it (connect, setup). */
    alarm((unsigned)ceil(cfg.hard_timeout) + 10);
    if (cfg.mode == MODE_STATS)
        return run_stats();
    return run_load();
}
