/* fcgi.c - the FastCGI push target (see fcgi.h).
 *
 * One attempt is one connection and one libuv stream handle. Whatever ends
 * the attempt - END_REQUEST, an error, EOF, abort - first writes the
 * result into the attempt and closes the handle; done() is called from the
 * close callback and nowhere else. That gives the contract of target.h for
 * free: done() runs exactly once, never inside start() (a close callback
 * always runs on a later loop turn), and only once the connection is
 * really gone, so libuv holds no pointer into the attempt or its request
 * bytes any more when the dispatcher frees the task.
 *
 * The request (BEGIN_REQUEST, PARAMS, STDIN) is encoded whole - the
 * payload copied once, freed as soon as it is written - and sent with one
 * write while the response is already being read: php-fpm may answer, and
 * even close, before it has read the body (a script that never reads
 * php://input), and its answer is what counts. A failed write is therefore
 * ignored; the read side says how the attempt ended.
 *
 * Success is a 2xx status, unless PHP logged a fatal error on STDERR: once
 * a script has flushed output PHP can no longer change the status, and
 * with display_errors on it never does, so a script that died would
 * otherwise pass for done. */
#include "dispatch/fcgi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dispatch/fcgi_proto.h"
#include "util/buf.h"
#include "util/errmsg.h"
#include "util/panic.h"
#include "version.h"

#define FCGI_REQUEST_ID 1
#define READ_CHUNK (64 * 1024)
/* How much of STDERR and of the response body go into a failure reason. */
#define EXCERPT_MAX 300

/* How PHP's log messages of the errors that end a script begin. php-fpm
 * passes them on as FastCGI STDERR ("PHP message: PHP Fatal error:  ...")
 * as long as log_errors is on and error_log unset, PHP's defaults. */
static const char *const fatal_marks[] = {
    "PHP Fatal error:",
    "PHP Parse error:",
    "PHP Recoverable fatal error:",
};
/* Longer than the longest mark. */
#define FATAL_CARRY 32

struct push_target {
    uv_loop_t *loop;
    char *address; /* as configured, for messages */
    bool is_unix;
    char *pipe_path;
    struct sockaddr_storage addr;
    char *script;      /* SCRIPT_FILENAME */
    char *script_name; /* SCRIPT_NAME and REQUEST_URI: "/" and the file name */
    char *doc_root;    /* DOCUMENT_ROOT: the script's directory */
    char *read_chunk;  /* reads land here; the loop is single-threaded */
    push_attempt_t *attempts;
    fcgi_target_stats_t stats;
};

/* How far an attempt got, for the reason when it is aborted. */
typedef enum {
    PHASE_CONNECTING,
    PHASE_SENDING,
    PHASE_WAITING, /* request sent, nothing back yet */
    PHASE_RECEIVING,
} phase_t;

struct push_attempt {
    push_target_t *t;
    push_attempt_t *prev, *next;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
        uv_timer_t timer; /* only if the stream handle could not be made */
    } h;
    uv_connect_t connect_req;
    uv_write_t write_req;
    buf_t out; /* the encoded request, until written */
    fcgi_decoder_t dec;
    push_done_fn done;
    void *ctx;
    push_result_t result;
    phase_t phase;
    bool closing;
    uint64_t started_ms;
    /* The first FCGI_KEEP_STDOUT bytes of STDOUT, the last FCGI_KEEP_STDERR
     * of STDERR (a ring: err_total bytes went through it). */
    size_t out_len;
    uint64_t out_total;
    uint64_t err_total;
    /* Whether STDERR carried one of PHP's fatal error messages; the last
     * bytes seen, to find one cut across two pieces. */
    bool saw_fatal;
    uint8_t carry_len;
    char carry[FATAL_CARRY];
    char out_keep[FCGI_KEEP_STDOUT];
    char err_ring[FCGI_KEEP_STDERR];
};

/* ---- creation ---- */


/* "host:port", "[v6]:port": resolved once, here, so that attempts never
 * block on DNS. */
static bool resolve_tcp(push_target_t *t, const char *address, char *err, size_t errlen) {
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1]) {
        errmsg(err, errlen,
                "php-fpm address '%s' is neither unix:/path/to.sock nor host:port", address);
        return false;
    }
    char host[256];
    size_t hlen = (size_t)(colon - address);
    const char *h = address;
    if (address[0] == '[') {
        if (hlen < 2 || address[hlen - 1] != ']') {
            errmsg(err, errlen, "php-fpm address '%s': an IPv6 address goes in brackets",
                    address);
            return false;
        }
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof host) {
        errmsg(err, errlen, "php-fpm address '%s' has no usable host", address);
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || errno || port == 0 || port > 65535 || colon[1] < '0' || colon[1] > '9') {
        errmsg(err, errlen, "php-fpm address '%s': the port must be 1-65535", address);
        return false;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r != 0 || !res) {
        errmsg(err, errlen, "cannot resolve php-fpm host '%s': %s", host,
                r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return false;
    }
    if (res->ai_addrlen > sizeof t->addr) {
        freeaddrinfo(res);
        errmsg(err, errlen, "php-fpm host '%s' resolved to an unusable address", host);
        return false;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

static void target_free_fields(push_target_t *t) {
    free(t->address);
    free(t->pipe_path);
    free(t->script);
    free(t->script_name);
    free(t->doc_root);
    free(t->read_chunk);
    free(t);
}

push_target_t *fcgi_target_new(uv_loop_t *loop, const char *address, const char *script,
                               char *err, size_t errlen) {
    if (!address || !*address) {
        errmsg(err, errlen, "no php-fpm address given");
        return NULL;
    }
    if (!script || script[0] != '/') {
        errmsg(err, errlen,
                "the PHP script must be an absolute path as php-fpm sees it, not '%s'",
                script ? script : "");
        return NULL;
    }
    const char *base = strrchr(script, '/') + 1;
    if (!*base) {
        errmsg(err, errlen, "the PHP script '%s' names a directory, not a file", script);
        return NULL;
    }
    push_target_t *t = calloc(1, sizeof *t);
    if (!t) {
        errmsg(err, errlen, "out of memory");
        return NULL;
    }
    t->loop = loop;
    t->address = strdup(address);
    t->script = strdup(script);
    t->script_name = malloc(strlen(base) + 2);
    size_t dlen = (size_t)(base - script) > 1 ? (size_t)(base - script) - 1 : 1;
    t->doc_root = strndup(script, dlen);
    t->read_chunk = malloc(READ_CHUNK);
    if (!t->address || !t->script || !t->script_name || !t->doc_root || !t->read_chunk) {
        target_free_fields(t);
        errmsg(err, errlen, "out of memory");
        return NULL;
    }
    t->script_name[0] = '/';
    strcpy(t->script_name + 1, base);

    if (strncmp(address, "unix:", 5) == 0) {
        const char *path = address + 5;
        struct sockaddr_un sun;
        if (!*path || strlen(path) >= sizeof sun.sun_path) {
            errmsg(err, errlen, "php-fpm socket path '%s' is empty or longer than %zu bytes",
                    path, sizeof sun.sun_path - 1);
            target_free_fields(t);
            return NULL;
        }
        t->is_unix = true;
        t->pipe_path = strdup(path);
        if (!t->pipe_path) {
            errmsg(err, errlen, "out of memory");
            target_free_fields(t);
            return NULL;
        }
    } else if (!resolve_tcp(t, address, err, errlen)) {
        target_free_fields(t);
        return NULL;
    }
    return t;
}

void fcgi_target_stats(const push_target_t *t, fcgi_target_stats_t *st) {
    *st = t->stats;
}

/* ---- failure reasons ---- */

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    uint32_t cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Append up to `max` bytes of src to the reason as one readable line:
 * line breaks and other controls become spaces, runs of spaces one space,
 * bytes that are not UTF-8 '?'. A cut is marked with "...". The reason
 * ends up in JSON and logs, so it must be clean text. */
static void reason_add_text(char *r, size_t cap, const char *src, size_t n, size_t max) {
    size_t len = strlen(r);
    size_t limit = cap - 1;
    if (max < limit - len)
        limit = len + max;
    const unsigned char *s = (const unsigned char *)src;
    bool space = len == 0 || r[len - 1] == ' ';
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x20 || c == 0x7f) {
            if (!space && len < limit) {
                r[len++] = ' ';
                space = true;
            }
            i++;
            continue;
        }
        if (c == ' ' && space) {
            i++;
            continue;
        }
        size_t k = c < 0x80 ? 1 : utf8_seq(s + i, n - i);
        const char *put = k ? src + i : "?";
        size_t plen = k ? k : 1;
        if (len + plen > limit)
            break;
        memcpy(r + len, put, plen);
        len += plen;
        space = c == ' ';
        i += k ? k : 1;
    }
    while (len && r[len - 1] == ' ')
        len--;
    if (i < n && len + 3 <= cap - 1) {
        memcpy(r + len, "...", 3);
        len += 3;
    }
    r[len] = '\0';
}

/* The kept STDERR tail, in order, into dst (FCGI_KEEP_STDERR bytes). */
static size_t stderr_kept(const push_attempt_t *a, char *dst) {
    if (a->err_total <= FCGI_KEEP_STDERR) {
        memcpy(dst, a->err_ring, (size_t)a->err_total);
        return (size_t)a->err_total;
    }
    size_t head = (size_t)(a->err_total % FCGI_KEEP_STDERR);
    memcpy(dst, a->err_ring + head, FCGI_KEEP_STDERR - head);
    memcpy(dst + FCGI_KEEP_STDERR - head, a->err_ring, head);
    return FCGI_KEEP_STDERR;
}

static const char *find_last(const char *p, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;)
        if (memcmp(p + i, needle, k) == 0)
            return p + i;
    return NULL;
}

/* Where in the STDERR tail the most useful message starts. php-fpm passes
 * PHP's log messages as "PHP message: PHP Warning:  ...", several joined
 * by "; " in one record; the last fatal error is the likeliest cause, else
 * the last message, else the last EXCERPT_MAX bytes. The "PHP message: "
 * prefix itself says nothing. */
static const char *stderr_excerpt(const char *p, size_t n, size_t *len) {
    static const char prefix[] = "PHP message: ";
    const char *s = NULL;
    for (size_t i = 0; i < sizeof fatal_marks / sizeof *fatal_marks; i++) {
        const char *f = find_last(p, n, fatal_marks[i]);
        if (f && (!s || f > s))
            s = f;
    }
    if (!s)
        s = find_last(p, n, prefix);
    if (!s)
        s = n > EXCERPT_MAX ? p + n - EXCERPT_MAX : p;
    if ((size_t)(s - p) + sizeof prefix - 1 <= n && memcmp(s, prefix, sizeof prefix - 1) == 0)
        s += sizeof prefix - 1;
    *len = n - (size_t)(s - p);
    return s;
}

/* Append ": <stderr excerpt>" and/or "; output: <body excerpt>" - what the
 * script said - to the reason. body may be NULL. */
static void reason_add_details(push_attempt_t *a, const char *body, size_t body_len,
                               const char *lead) {
    char *r = a->result.reason;
    size_t cap = sizeof a->result.reason;
    char tail[FCGI_KEEP_STDERR];
    size_t tn = stderr_kept(a, tail), en = 0;
    const char *e = tn ? stderr_excerpt(tail, tn, &en) : NULL;
    bool have_err = false;
    if (e) {
        size_t before = strlen(r);
        strncat(r, lead, cap - 1 - before);
        size_t mid = strlen(r);
        reason_add_text(r, cap, e, en, EXCERPT_MAX);
        if (strlen(r) == mid)
            r[before] = '\0'; /* only blanks */
        else
            have_err = true;
    }
    if (body && body_len) {
        size_t before = strlen(r);
        strncat(r, have_err ? "; output: " : lead, cap - 1 - before);
        size_t mid = strlen(r);
        reason_add_text(r, cap, body, body_len, EXCERPT_MAX);
        if (strlen(r) == mid)
            r[before] = '\0';
    }
}

__attribute__((format(printf, 3, 4))) static void set_result(push_attempt_t *a, int status,
                                                             const char *fmt, ...) {
    a->result.ok = false;
    a->result.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->result.reason, sizeof a->result.reason, fmt, ap);
    va_end(ap);
}

/* ---- the attempt's life ---- */

static void on_close(uv_handle_t *h) {
    push_attempt_t *a = h->data;
    push_target_t *t = a->t;
    if (a->prev)
        a->prev->next = a->next;
    else
        t->attempts = a->next;
    if (a->next)
        a->next->prev = a->prev;
    t->stats.in_flight--;
    if (a->result.ok)
        t->stats.succeeded++;
    else
        t->stats.failed++;
    /* The dispatcher may free the target from inside done(): nothing of
     * the attempt or the target is touched after it. */
    push_done_fn done = a->done;
    void *ctx = a->ctx;
    push_result_t res = a->result;
    buf_free(&a->out);
    free(a);
    done(ctx, &res);
}

/* End the attempt with the result already set. */
static void finish(push_attempt_t *a) {
    if (a->closing)
        return;
    a->closing = true;
    uv_close(&a->h.handle, on_close);
}

/* Connecting failed: say what to check, for the errors that have a usual
 * cause (on a unix socket EAGAIN means php-fpm's backlog is full). */
static void fail_connect(push_attempt_t *a, int err) {
    const char *hint = "";
    switch (err) {
    case UV_ECONNREFUSED:
    case UV_ENOENT:
        hint = " \u2014 is php-fpm running?";
        break;
    case UV_EACCES:
    case UV_EPERM:
        hint = " \u2014 check the socket's owner and mode (listen.owner, listen.group, "
               "listen.mode)";
        break;
    case UV_EAGAIN:
        hint = " \u2014 its listen queue is full: every worker is busy (raise pm.max_children "
               "or listen.backlog)";
        break;
    case UV_ETIMEDOUT:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
        hint = " \u2014 is the address right, and php-fpm reachable from here?";
        break;
    default:
        break;
    }
    set_result(a, -1, "cannot connect to php-fpm at %s: %s%s", a->t->address, uv_strerror(err),
               hint);
    finish(a);
}

/* STDOUT: the start matters (the head, the first words of an error page);
 * the rest is only counted. */
static void keep_stdout(push_attempt_t *a, const uint8_t *p, size_t n) {
    a->out_total += n;
    a->t->stats.stdout_bytes += n;
    size_t room = FCGI_KEEP_STDOUT - a->out_len;
    size_t k = n < room ? n : room;
    memcpy(a->out_keep + a->out_len, p, k);
    a->out_len += k;
}

/* Look for a fatal error message in the next piece of STDERR, also
 * across the cut between this piece and the one before. */
static void scan_fatal(push_attempt_t *a, const uint8_t *p, size_t n) {
    if (a->saw_fatal)
        return;
    char joint[2 * FATAL_CARRY];
    size_t k = n < FATAL_CARRY ? n : FATAL_CARRY;
    memcpy(joint, a->carry, a->carry_len);
    memcpy(joint + a->carry_len, p, k);
    size_t jn = a->carry_len + k;
    for (size_t i = 0; i < sizeof fatal_marks / sizeof *fatal_marks; i++) {
        size_t ml = strlen(fatal_marks[i]);
        if (memmem(joint, jn, fatal_marks[i], ml) || memmem(p, n, fatal_marks[i], ml)) {
            a->saw_fatal = true;
            return;
        }
    }
    /* Keep the last FATAL_CARRY bytes of everything so far. */
    if (n >= FATAL_CARRY) {
        memcpy(a->carry, p + n - FATAL_CARRY, FATAL_CARRY);
        a->carry_len = FATAL_CARRY;
    } else {
        size_t drop = jn > FATAL_CARRY ? jn - FATAL_CARRY : 0;
        memmove(a->carry, joint + drop, jn - drop);
        a->carry_len = (uint8_t)(jn - drop);
    }
}

/* STDERR: the end matters (the fatal error comes last), so it goes round a
 * ring that always holds the latest FCGI_KEEP_STDERR bytes. */
static void keep_stderr(push_attempt_t *a, const uint8_t *p, size_t n) {
    a->t->stats.stderr_bytes += n;
    scan_fatal(a, p, n);
    if (n > FCGI_KEEP_STDERR) {
        a->err_total += n - FCGI_KEEP_STDERR;
        p += n - FCGI_KEEP_STDERR;
        n = FCGI_KEEP_STDERR;
    }
    while (n) {
        size_t at = (size_t)(a->err_total % FCGI_KEEP_STDERR);
        size_t k = FCGI_KEEP_STDERR - at < n ? FCGI_KEEP_STDERR - at : n;
        memcpy(a->err_ring + at, p, k);
        a->err_total += k;
        p += k;
        n -= k;
    }
}

static size_t kept_bytes(const push_attempt_t *a) {
    return a->out_len + (size_t)(a->err_total < FCGI_KEEP_STDERR ? a->err_total
                                                                 : FCGI_KEEP_STDERR);
}

/* END_REQUEST arrived: judge the response. */
static void on_end(push_attempt_t *a, const fcgi_event_t *ev) {
    char appst[40] = "";
    if (ev->app_status)
        snprintf(appst, sizeof appst, " (app status %u)", (unsigned)ev->app_status);
    if (ev->protocol_status != FCGI_REQUEST_COMPLETE) {
        set_result(a, -1, "php-fpm refused the request: %s (FastCGI protocol status %u)%s",
                   fcgi_protocol_status_name(ev->protocol_status), ev->protocol_status, appst);
        reason_add_details(a, NULL, 0, ": ");
        finish(a);
        return;
    }
    fcgi_head_t head;
    switch (fcgi_parse_head(a->out_keep, a->out_len, &head)) {
    case FCGI_HEAD_OK:
        break;
    case FCGI_HEAD_BAD:
        set_result(a, -1, "php-fpm sent a malformed response head: %s%s", head.error, appst);
        reason_add_details(a, a->out_keep, a->out_len, ": ");
        finish(a);
        return;
    case FCGI_HEAD_PARTIAL:
        if (a->out_total == 0)
            set_result(a, -1, "php-fpm ended the request without any output%s", appst);
        else if (a->out_total > a->out_len)
            set_result(a, -1, "php-fpm's response head is longer than %d KiB%s",
                       FCGI_KEEP_STDOUT / 1024, appst);
        else
            set_result(a, -1, "php-fpm's response head is incomplete (no blank line after "
                              "the headers)%s", appst);
        reason_add_details(a, NULL, 0, ": ");
        finish(a);
        return;
    }
    if (head.status >= 200 && head.status <= 299 && a->saw_fatal) {
        /* PHP cannot change the status once output was flushed, nor does
         * it with display_errors on: a script that died says 200. */
        set_result(a, head.status, "php-fpm answered %d, but PHP reported a fatal error%s",
                   head.status, appst);
        reason_add_details(a, NULL, 0, ": ");
        finish(a);
        return;
    }
    if (head.status >= 200 && head.status <= 299) {
        a->result.ok = true;
        a->result.status = head.status;
        a->result.reason[0] = '\0';
        finish(a);
        return;
    }
    set_result(a, head.status, "php-fpm answered %d%s", head.status, appst);
    size_t before = strlen(a->result.reason);
    reason_add_details(a, a->out_keep + head.head_len, a->out_len - head.head_len, ": ");
    if (strlen(a->result.reason) == before)
        strncat(a->result.reason, " with no output",
                sizeof a->result.reason - 1 - strlen(a->result.reason));
    finish(a);
}

static void feed(push_attempt_t *a, const uint8_t *p, size_t n) {
    while (n && !a->closing) {
        fcgi_event_t ev;
        size_t used = fcgi_decode(&a->dec, p, n, &ev);
        p += used;
        n -= used;
        switch (ev.type) {
        case FCGI_EV_NONE:
            break;
        case FCGI_EV_STDOUT:
            keep_stdout(a, ev.data, ev.len);
            break;
        case FCGI_EV_STDERR:
            keep_stderr(a, ev.data, ev.len);
            break;
        case FCGI_EV_END:
            on_end(a, &ev);
            return;
        case FCGI_EV_ERROR:
            set_result(a, -1, "php-fpm sent malformed FastCGI: %s", ev.error);
            finish(a);
            return;
        }
    }
    size_t kept = kept_bytes(a);
    if (kept > a->t->stats.kept_peak)
        a->t->stats.kept_peak = kept;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    push_attempt_t *a = h->data;
    *b = uv_buf_init(a->t->read_chunk, READ_CHUNK);
}

/* The connection ended without END_REQUEST. When php-fpm kills a worker
 * (request_terminate_timeout, a crash, a restart) the kernel closes its
 * socket: EOF, or a reset when the worker left input unread (on a unix
 * socket, that is any part of the request the script did not read). */
static void on_cut(push_attempt_t *a, ssize_t err) {
    if (err != UV_EOF && err != UV_ECONNRESET)
        set_result(a, -1, "the connection to php-fpm failed before the request finished: %s",
                   uv_strerror((int)err));
    else if (a->phase == PHASE_SENDING)
        set_result(a, -1,
                   "php-fpm closed the connection before reading the whole request (killed by "
                   "request_terminate_timeout, crashed, or restarting)");
    else
        set_result(a, -1,
                   "php-fpm closed the connection before finishing the request (killed by "
                   "request_terminate_timeout, or crashed)");
    reason_add_details(a, NULL, 0, "; stderr: ");
    finish(a);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    push_attempt_t *a = s->data;
    if (a->closing)
        return;
    if (nread < 0) {
        on_cut(a, nread);
        return;
    }
    if (nread == 0)
        return;
    a->phase = PHASE_RECEIVING;
    feed(a, (const uint8_t *)b->base, (size_t)nread);
}

static void on_write(uv_write_t *req, int status) {
    push_attempt_t *a = req->data;
    buf_free(&a->out);
    if (a->closing)
        return;
    if (status < 0)
        return; /* php-fpm went away or answered early: the read side says which */
    if (a->phase == PHASE_SENDING)
        a->phase = PHASE_WAITING;
}

static void on_connect(uv_connect_t *req, int status) {
    push_attempt_t *a = req->data;
    if (a->closing)
        return;
    if (status < 0) {
        fail_connect(a, status);
        return;
    }
    a->phase = PHASE_SENDING;
    int r = uv_read_start(&a->h.stream, on_alloc, on_read);
    uv_buf_t b = uv_buf_init(buf_head(&a->out), (unsigned)a->out.len);
    a->write_req.data = a;
    if (r == 0)
        r = uv_write(&a->write_req, &a->h.stream, &b, 1, on_write);
    if (r) {
        set_result(a, -1, "cannot send the request to php-fpm at %s: %s", a->t->address,
                   uv_strerror(r));
        finish(a);
    }
}

/* BEGIN_REQUEST, PARAMS and STDIN, encoded into a->out. */
static bool build_request(push_attempt_t *a, const push_request_t *req) {
    const push_target_t *t = a->t;
    char id[24], attempt[16], clen[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)req->task_id);
    snprintf(attempt, sizeof attempt, "%u", (unsigned)req->attempt);
    snprintf(clen, sizeof clen, "%zu", req->body_len);
    const char *queue = req->queue ? req->queue : "";
    buf_t pairs;
    buf_init(&pairs);
    bool ok = fcgi_put_pair_str(&pairs, "SCRIPT_FILENAME", t->script) &&
              fcgi_put_pair_str(&pairs, "SCRIPT_NAME", t->script_name) &&
              fcgi_put_pair_str(&pairs, "REQUEST_URI", t->script_name) &&
              fcgi_put_pair_str(&pairs, "DOCUMENT_ROOT", t->doc_root) &&
              fcgi_put_pair_str(&pairs, "REQUEST_METHOD", "POST") &&
              fcgi_put_pair_str(&pairs, "QUERY_STRING", "") &&
              fcgi_put_pair_str(&pairs, "CONTENT_TYPE",
                                req->body_is_json ? "application/json"
                                                  : "application/octet-stream") &&
              fcgi_put_pair_str(&pairs, "CONTENT_LENGTH", clen) &&
              fcgi_put_pair_str(&pairs, "SERVER_PROTOCOL", "HTTP/1.1") &&
              fcgi_put_pair_str(&pairs, "GATEWAY_INTERFACE", "CGI/1.1") &&
              fcgi_put_pair_str(&pairs, "SERVER_SOFTWARE", "deferd/" DEFER_VERSION) &&
              fcgi_put_pair_str(&pairs, "REMOTE_ADDR", "127.0.0.1") &&
              fcgi_put_pair_str(&pairs, "SERVER_NAME", "localhost") &&
              fcgi_put_pair_str(&pairs, "SERVER_PORT", "80") &&
              fcgi_put_pair_str(&pairs, "HTTP_X_DEFER_TASK_ID", id) &&
              fcgi_put_pair_str(&pairs, "HTTP_X_DEFER_QUEUE", queue) &&
              fcgi_put_pair_str(&pairs, "HTTP_X_DEFER_ATTEMPT", attempt);
    ok = ok && fcgi_put_begin_request(&a->out, FCGI_REQUEST_ID, FCGI_RESPONDER, 0) &&
         fcgi_put_params(&a->out, FCGI_REQUEST_ID, buf_head(&pairs), pairs.len) &&
         fcgi_put_stream(&a->out, FCGI_STDIN, FCGI_REQUEST_ID, req->body, req->body_len, true);
    buf_free(&pairs);
    /* libuv writes at most UINT_MAX bytes from one buffer. */
    return ok && a->out.len <= UINT32_MAX;
}

/* Returns NULL only when the attempt failed before it could connect; its
 * handle is closing then, and done() comes from the close callback like
 * every other end. */
static push_attempt_t *fcgi_start(push_target_t *t, const push_request_t *req,
                                  push_done_fn done, void *ctx) {
    push_attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        defer_panic("out of memory starting a FastCGI attempt");
    a->t = t;
    a->done = done;
    a->ctx = ctx;
    a->phase = PHASE_CONNECTING;
    a->started_ms = uv_now(t->loop);
    a->result.status = -1;
    buf_init(&a->out);
    fcgi_decoder_init(&a->dec, FCGI_REQUEST_ID);
    a->connect_req.data = a;
    a->next = t->attempts;
    if (t->attempts)
        t->attempts->prev = a;
    t->attempts = a;
    t->stats.started++;
    t->stats.in_flight++;

    int r = t->is_unix ? uv_pipe_init(t->loop, &a->h.pipe, 0) : uv_tcp_init(t->loop, &a->h.tcp);
    if (r) {
        /* Cannot happen on Unix, but done() must still come, later. */
        uv_timer_init(t->loop, &a->h.timer);
        a->h.handle.data = a;
        set_result(a, -1, "cannot make a socket for php-fpm: %s", uv_strerror(r));
        finish(a);
        return NULL;
    }
    a->h.handle.data = a;
    if (!build_request(a, req)) {
        set_result(a, -1, "cannot encode the FastCGI request (%zu bytes of payload): out of "
                          "memory", req->body_len);
        finish(a);
        return NULL;
    }
    if (t->is_unix) {
        uv_pipe_connect(&a->connect_req, &a->h.pipe, t->pipe_path, on_connect);
    } else {
        r = uv_tcp_connect(&a->connect_req, &a->h.tcp, (const struct sockaddr *)&t->addr,
                           on_connect);
        if (r) {
            fail_connect(a, r);
            return NULL;
        }
    }
    return a;
}

/* The reason names what the attempt was doing: connecting for long means
 * php-fpm's listen queue is full, waiting means the script is slow. */
static void fcgi_abort(push_attempt_t *a) {
    if (a->closing)
        return;
    double secs = (double)(uv_now(a->t->loop) - a->started_ms) / 1000.0;
    switch (a->phase) {
    case PHASE_CONNECTING:
        set_result(a, -1, "aborted after %.1f s while still connecting to php-fpm at %s "
                          "(is its listen queue full, or the host unreachable?)",
                   secs, a->t->address);
        break;
    case PHASE_SENDING:
        set_result(a, -1, "aborted after %.1f s while still sending the request to php-fpm",
                   secs);
        break;
    case PHASE_WAITING:
        set_result(a, -1, "aborted after %.1f s while php-fpm was running the script (no "
                          "output yet)", secs);
        break;
    case PHASE_RECEIVING:
        set_result(a, -1, "aborted after %.1f s while php-fpm was running the script (%llu "
                          "bytes of output so far)", secs, (unsigned long long)a->out_total);
        break;
    }
    reason_add_details(a, NULL, 0, "; stderr: ");
    finish(a);
}

static void fcgi_free(push_target_t *t) {
    if (!t)
        return;
    if (t->attempts)
        defer_panic("a FastCGI target was freed with attempts in flight");
    target_free_fields(t);
}

const push_target_ops_t fcgi_target_ops = {
    .name = "fastcgi",
    .start = fcgi_start,
    .abort = fcgi_abort,
    .free = fcgi_free,
};
