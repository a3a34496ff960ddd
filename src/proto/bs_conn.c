/* bs_conn.c - beanstalk connection state machine (see bs_conn.h). */
#include "proto/bs_conn.h"

#include <stdlib.h>
#include <string.h>

#include "proto/bs_stats.h"

#define MSG_BAD_FORMAT "BAD_FORMAT\r\n"
#define MSG_UNKNOWN_COMMAND "UNKNOWN_COMMAND\r\n"
#define MSG_NOT_FOUND "NOT_FOUND\r\n"
#define MSG_OUT_OF_MEMORY "OUT_OF_MEMORY\r\n"
#define MSG_JOB_TOO_BIG "JOB_TOO_BIG\r\n"
#define MSG_EXPECTED_CRLF "EXPECTED_CRLF\r\n"
#define MSG_DRAINING "DRAINING\r\n"
#define MSG_TIMED_OUT "TIMED_OUT\r\n"
#define MSG_DEADLINE_SOON "DEADLINE_SOON\r\n"

void bs_server_init(bs_server_t *srv, engine_t *engine) {
    memset(srv, 0, sizeof *srv);
    srv->engine = engine;
    srv->max_job_size = BS_DEFAULT_MAX_JOB_SIZE;
    srv->version = "";
    srv->hostname = srv->os = srv->platform = "";
    memset(srv->instance_id, '0', 16);
    buf_init(&srv->yaml);
}

void bs_server_free(bs_server_t *srv) {
    buf_free(&srv->yaml);
}

/* ---- replies ---- */

/* Output that cannot be buffered (memory exhausted) ends the connection:
 * a reply silently missing would desynchronise the client. */
static void out(bs_conn_t *c, const void *p, size_t n) {
    if (!buf_append(c->out, p, n))
        c->state = BS_CLOSED;
}

static void reply(bs_conn_t *c, const char *msg) {
    out(c, msg, strlen(msg));
}

/* "<word> <number>\r\n" */
static void reply_num(bs_conn_t *c, const char *word, uint64_t n) {
    if (!buf_append(c->out, word, strlen(word)) || !buf_append(c->out, " ", 1) ||
        !buf_append_u64(c->out, n) || !buf_append(c->out, "\r\n", 2))
        c->state = BS_CLOSED;
}

/* "<word> <id> <bytes>\r\n<body>\r\n" */
static void reply_job(bs_conn_t *c, const char *word, const job_t *j) {
    buf_t *b = c->out;
    bool ok = buf_reserve(b, 64 + (size_t)j->size) && buf_append(b, word, strlen(word)) &&
              buf_append(b, " ", 1) && buf_append_u64(b, j->id) && buf_append(b, " ", 1) &&
              buf_append_u64(b, j->size) && buf_append(b, "\r\n", 2) &&
              buf_append(b, j->body, j->size) && buf_append(b, "\r\n", 2);
    if (!ok)
        c->state = BS_CLOSED;
}

static void reply_name(bs_conn_t *c, const char *word, const tube_t *t) {
    out(c, word, strlen(word));
    out(c, t->name, t->name_len);
    out(c, "\r\n", 2);
}

/* The server's scratch buffer, emptied, for a YAML body. */
static buf_t *yaml_scratch(bs_conn_t *c) {
    buf_reset(&c->srv->yaml);
    return &c->srv->yaml;
}

/* "OK <bytes>\r\n<yaml>\r\n", the yaml being in the scratch buffer; ok is
 * false when formatting ran out of memory. */
static void reply_yaml(bs_conn_t *c, bool ok) {
    const buf_t *yaml = &c->srv->yaml;
    if (!ok) {
        reply(c, MSG_OUT_OF_MEMORY);
        return;
    }
    reply_num(c, "OK", yaml->len);
    out(c, buf_head(yaml), yaml->len);
    out(c, "\r\n", 2);
}

/* ---- engine events ---- */

static void bs_notify(void *owner, session_event_t ev, const job_t *j) {
    bs_conn_t *c = owner;
    c->state = BS_WANT_LINE;
    switch (ev) {
    case SESSION_RESERVED:
        reply_job(c, "RESERVED", j);
        break;
    case SESSION_TIMED_OUT:
        reply(c, MSG_TIMED_OUT);
        break;
    case SESSION_DEADLINE_SOON:
        reply(c, MSG_DEADLINE_SOON);
        break;
    }
    c->wake(c->ctx);
}

bs_conn_t *bs_conn_new(bs_server_t *srv, buf_t *out_buf, void (*wake)(void *ctx), void *ctx) {
    bs_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->session = engine_session_new(srv->engine, bs_notify, c);
    if (!c->session) {
        free(c);
        return NULL;
    }
    c->srv = srv;
    c->out = out_buf;
    c->wake = wake;
    c->ctx = ctx;
    c->state = BS_WANT_LINE;
    srv->cur_conns++;
    srv->total_conns++;
    return c;
}

void bs_conn_free(bs_conn_t *c, int64_t now) {
    if (!c)
        return;
    engine_t *e = c->srv->engine;
    if (c->in_job)
        engine_job_discard(e, c->in_job);
    engine_session_free(e, c->session, now);
    c->srv->cur_conns--;
    if (c->producer)
        c->srv->cur_producers--;
    if (c->worker)
        c->srv->cur_workers--;
    free(c);
}

void bs_conn_eof(bs_conn_t *c) {
    if (c->state != BS_WAITING)
        return;
    engine_cancel_wait(c->srv->engine, c->session);
    c->state = BS_WANT_LINE;
    reply(c, MSG_TIMED_OUT);
}

/* ---- commands ---- */

static void discard_then_reply(bs_conn_t *c, uint64_t n, const char *msg) {
    c->state = BS_DISCARD;
    c->discard_left = n;
    c->discard_reply = msg;
}

static void set_producer(bs_conn_t *c) {
    if (!c->producer) {
        c->producer = true;
        c->srv->cur_producers++;
    }
}

static void set_worker(bs_conn_t *c) {
    if (!c->worker) {
        c->worker = true;
        c->srv->cur_workers++;
    }
}

static void cmd_put(bs_conn_t *c, const bs_cmd_t *cmd, int64_t now) {
    /* The body is read (and dropped) before answering JOB_TOO_BIG, so the
     * client and server stay in step. */
    if (cmd->size > c->srv->max_job_size) {
        discard_then_reply(c, (uint64_t)cmd->size + 2, MSG_JOB_TOO_BIG);
        return;
    }
    if (cmd->bad_format) {
        reply(c, MSG_BAD_FORMAT);
        return;
    }
    set_producer(c);
    job_t *j = engine_job_new(c->srv->engine, c->session->use, cmd->pri, cmd->delay, cmd->ttr,
                              cmd->size, now);
    if (!j) {
        discard_then_reply(c, (uint64_t)cmd->size + 2, MSG_OUT_OF_MEMORY);
        return;
    }
    c->in_job = j;
    c->in_read = 0;
    c->state = BS_WANT_BODY;
}

/* Can the log take a change of this size? Without a log, always. */
static size_t log_room(const bs_conn_t *c, bool for_put) {
    const bs_server_t *srv = c->srv;
    return srv->log_room ? srv->log_room(srv->host_ctx, for_put) : SIZE_MAX;
}

static bool log_fits(const bs_conn_t *c, bool for_put, size_t bytes) {
    return log_room(c, for_put) >= bytes;
}

static void finish_put(bs_conn_t *c, int64_t now) {
    engine_t *e = c->srv->engine;
    job_t *j = c->in_job;
    c->in_job = NULL;
    c->state = BS_WANT_LINE;
    if (c->trailer[0] != '\r' || c->trailer[1] != '\n') {
        engine_job_discard(e, j);
        reply(c, MSG_EXPECTED_CRLF);
        return;
    }
    if (c->srv->draining) {
        engine_job_discard(e, j);
        reply(c, MSG_DRAINING);
        return;
    }
    /* The disk is full: refuse new tasks before anything else. */
    if (!log_fits(c, true, (size_t)j->size + BS_LOG_PUT_BYTES)) {
        engine_job_discard(e, j);
        reply(c, MSG_OUT_OF_MEMORY);
        return;
    }
    uint64_t id = j->id;
    switch (engine_put(e, j, now)) {
    case ENGINE_OK:
        reply_num(c, "INSERTED", id);
        break;
    case ENGINE_BURIED:
        reply_num(c, "BURIED", id);
        break;
    default:
        reply(c, MSG_OUT_OF_MEMORY);
        break;
    }
}

static void cmd_reserve(bs_conn_t *c, int64_t timeout_ns, int64_t now) {
    set_worker(c);
    job_t *j = NULL;
    switch (engine_reserve(c->srv->engine, c->session, timeout_ns, now, &j)) {
    case ENGINE_OK:
        reply_job(c, "RESERVED", j);
        break;
    case ENGINE_DEADLINE_SOON:
        reply(c, MSG_DEADLINE_SOON);
        break;
    case ENGINE_TIMED_OUT:
        reply(c, MSG_TIMED_OUT);
        break;
    case ENGINE_WAITING:
        c->state = BS_WAITING;
        break;
    default:
        reply(c, MSG_OUT_OF_MEMORY);
        break;
    }
}

static void reply_found(bs_conn_t *c, const job_t *j) {
    if (j)
        reply_job(c, "FOUND", j);
    else
        reply(c, MSG_NOT_FOUND);
}

/* OK -> ok_msg, NOT_FOUND -> NOT_FOUND, anything else as named. */
static void reply_result(bs_conn_t *c, engine_result_t r, const char *ok_msg) {
    switch (r) {
    case ENGINE_OK:
        reply(c, ok_msg);
        break;
    case ENGINE_NOT_FOUND:
        reply(c, MSG_NOT_FOUND);
        break;
    case ENGINE_BURIED:
        reply(c, "BURIED\r\n");
        break;
    case ENGINE_NOT_IGNORED:
        reply(c, "NOT_IGNORED\r\n");
        break;
    default:
        reply(c, MSG_OUT_OF_MEMORY);
        break;
    }
}

static void execute(bs_conn_t *c, const char *line, size_t len, int64_t now) {
    bs_server_t *srv = c->srv;
    engine_t *e = srv->engine;
    session_t *s = c->session;
    bs_cmd_t cmd;
    bs_parse(line, len, &cmd);
    if (cmd.counted)
        srv->cmd_count[cmd.op]++;
    if (cmd.op == BS_OP_PUT && cmd.counted) {
        cmd_put(c, &cmd, now);
        return;
    }
    if (cmd.bad_format) {
        reply(c, MSG_BAD_FORMAT);
        return;
    }

    /* Changes that the log cannot take any more are refused up front. */
    switch (cmd.op) {
    case BS_OP_DELETE:
    case BS_OP_RELEASE:
    case BS_OP_BURY:
    case BS_OP_KICK_JOB:
    case BS_OP_PAUSE_TUBE:
        if (!log_fits(c, false, BS_LOG_CHANGE_BYTES)) {
            reply(c, MSG_OUT_OF_MEMORY);
            return;
        }
        break;
    case BS_OP_KICK: {
        size_t most = log_room(c, false) / BS_LOG_KICK_BYTES;
        if (most < cmd.bound)
            cmd.bound = (uint32_t)most;
        break;
    }
    default:
        break;
    }

    job_t *j = NULL;
    uint32_t n;
    switch (cmd.op) {
    case BS_OP_UNKNOWN:
    case BS_OP_PUT:
    case BS_OP_COUNT:
        reply(c, MSG_UNKNOWN_COMMAND);
        break;
    case BS_OP_PEEK:
        reply_found(c, engine_job_find(e, cmd.id));
        break;
    case BS_OP_PEEK_READY:
        reply_found(c, engine_peek_ready(s->use));
        break;
    case BS_OP_PEEK_DELAYED:
        reply_found(c, engine_peek_delayed(s->use));
        break;
    case BS_OP_PEEK_BURIED:
        reply_found(c, engine_peek_buried(s->use));
        break;
    case BS_OP_RESERVE:
        cmd_reserve(c, -1, now);
        break;
    case BS_OP_RESERVE_TIMEOUT:
        cmd_reserve(c, cmd.timeout < 0 ? -1 : (int64_t)cmd.timeout * NS_PER_SEC, now);
        break;
    case BS_OP_RESERVE_JOB:
        /* Only a reservation made counts the connection as a worker. */
        if (engine_reserve_job(e, s, cmd.id, now, &j) == ENGINE_OK) {
            set_worker(c);
            reply_job(c, "RESERVED", j);
        } else {
            reply(c, MSG_NOT_FOUND);
        }
        break;
    case BS_OP_DELETE:
        reply_result(c, engine_delete(e, s, cmd.id, now), "DELETED\r\n");
        break;
    case BS_OP_RELEASE:
        reply_result(c, engine_release(e, s, cmd.id, cmd.pri, cmd.delay, now), "RELEASED\r\n");
        break;
    case BS_OP_BURY:
        reply_result(c, engine_bury(e, s, cmd.id, cmd.pri, now), "BURIED\r\n");
        break;
    case BS_OP_KICK:
        reply_num(c, "KICKED", engine_kick(e, s->use, cmd.bound, now));
        break;
    case BS_OP_KICK_JOB:
        reply_result(c, engine_kick_job(e, cmd.id, now), "KICKED\r\n");
        break;
    case BS_OP_TOUCH:
        reply_result(c, engine_touch(e, s, cmd.id, now), "TOUCHED\r\n");
        break;
    case BS_OP_STATS:
        reply_yaml(c, bs_format_stats(srv, yaml_scratch(c), now));
        break;
    case BS_OP_STATS_JOB:
        j = engine_job_find(e, cmd.id);
        if (!j) {
            reply(c, MSG_NOT_FOUND);
            break;
        }
        reply_yaml(c, bs_format_job_stats(e, j, yaml_scratch(c), now));
        break;
    case BS_OP_STATS_TUBE: {
        tube_t *t = engine_tube_find(e, cmd.name, cmd.name_len);
        if (!t) {
            reply(c, MSG_NOT_FOUND);
            break;
        }
        reply_yaml(c, bs_format_tube_stats(t, yaml_scratch(c), now));
        break;
    }
    case BS_OP_USE:
        if (engine_use(e, s, cmd.name, cmd.name_len) == ENGINE_OK)
            reply_name(c, "USING ", s->use);
        else
            reply(c, MSG_OUT_OF_MEMORY);
        break;
    case BS_OP_WATCH:
        if (engine_watch(e, s, cmd.name, cmd.name_len, &n) == ENGINE_OK)
            reply_num(c, "WATCHING", n);
        else
            reply(c, MSG_OUT_OF_MEMORY);
        break;
    case BS_OP_IGNORE:
        if (engine_ignore(e, s, cmd.name, cmd.name_len, &n) == ENGINE_OK)
            reply_num(c, "WATCHING", n);
        else
            reply(c, "NOT_IGNORED\r\n");
        break;
    case BS_OP_LIST_TUBES:
        reply_yaml(c, bs_format_tube_list(e, yaml_scratch(c)));
        break;
    case BS_OP_LIST_TUBE_USED:
        reply_name(c, "USING ", s->use);
        break;
    case BS_OP_LIST_TUBES_WATCHED:
        reply_yaml(c, bs_format_watch_list(s, yaml_scratch(c)));
        break;
    case BS_OP_PAUSE_TUBE:
        reply_result(c, engine_pause(e, cmd.name, cmd.name_len, (int64_t)cmd.delay * NS_PER_SEC, now),
                     "PAUSED\r\n");
        break;
    case BS_OP_QUIT:
        c->state = BS_CLOSED;
        break;
    }
}

/* ---- framing ---- */

/* Index of the first "\r\n" wholly inside p[0..n), or n when none. */
static size_t find_crlf(const char *p, size_t n) {
    const char *q = p;
    const char *end = p + n;
    while (q + 1 < end && (q = memchr(q, '\r', (size_t)(end - q - 1)))) {
        if (q[1] == '\n')
            return (size_t)(q - p);
        q++;
    }
    return n;
}

static void start_discard_line(bs_conn_t *c, bool last_was_cr) {
    c->state = BS_DISCARD_LINE;
    c->line_cr = last_was_cr;
}

/* A command line longer than BS_LINE_MAX (CRLF included) is answered
 * BAD_FORMAT once its CRLF arrives; nothing of it is executed. */
static size_t feed_line(bs_conn_t *c, const char *p, size_t n, int64_t now) {
    if (c->line_len == 0) {
        size_t window = n < BS_LINE_MAX ? n : BS_LINE_MAX;
        size_t eol = find_crlf(p, window);
        if (eol < window) {
            execute(c, p, eol, now);
            return eol + 2;
        }
        if (n >= BS_LINE_MAX) {
            start_discard_line(c, p[BS_LINE_MAX - 1] == '\r');
            return BS_LINE_MAX;
        }
        memcpy(c->line, p, n);
        c->line_len = n;
        return n;
    }
    size_t old = c->line_len;
    size_t take = n < BS_LINE_MAX - old ? n : BS_LINE_MAX - old;
    memcpy(c->line + old, p, take);
    c->line_len += take;
    size_t from = old - 1; /* a CR may already be waiting for its LF */
    size_t eol = from + find_crlf(c->line + from, c->line_len - from);
    if (eol < c->line_len) {
        c->line_len = 0;
        execute(c, c->line, eol, now);
        return eol + 2 - old;
    }
    if (c->line_len == BS_LINE_MAX) {
        c->line_len = 0;
        start_discard_line(c, c->line[BS_LINE_MAX - 1] == '\r');
    }
    return take;
}

static size_t feed_discard_line(bs_conn_t *c, const char *p, size_t n) {
    size_t end;
    if (c->line_cr && p[0] == '\n') {
        end = 1;
    } else {
        size_t eol = find_crlf(p, n);
        if (eol == n) {
            c->line_cr = p[n - 1] == '\r';
            return n;
        }
        end = eol + 2;
    }
    c->state = BS_WANT_LINE;
    reply(c, MSG_BAD_FORMAT);
    return end;
}

static size_t feed_body(bs_conn_t *c, const char *p, size_t n, int64_t now) {
    job_t *j = c->in_job;
    uint64_t total = (uint64_t)j->size + 2;
    size_t take = (uint64_t)n < total - c->in_read ? n : (size_t)(total - c->in_read);
    for (size_t i = 0; i < take;) {
        if (c->in_read < j->size) {
            size_t k = take - i < j->size - c->in_read ? take - i : j->size - c->in_read;
            memcpy(j->body + c->in_read, p + i, k);
            c->in_read += (uint32_t)k;
            i += k;
        } else {
            c->trailer[c->in_read - j->size] = p[i++];
            c->in_read++;
        }
    }
    if (c->in_read == total)
        finish_put(c, now);
    return take;
}

static size_t feed_discard(bs_conn_t *c, size_t n) {
    size_t take = (uint64_t)n < c->discard_left ? n : (size_t)c->discard_left;
    c->discard_left -= take;
    if (c->discard_left == 0) {
        c->state = BS_WANT_LINE;
        reply(c, c->discard_reply);
    }
    return take;
}

size_t bs_conn_feed(bs_conn_t *c, const char *data, size_t len, int64_t now) {
    size_t pos = 0;
    while (pos < len) {
        switch (c->state) {
        case BS_WANT_LINE:
            /* Back-pressure: a client that pipelines commands but does not
             * read the replies gets no more commands executed. */
            if (c->srv->out_limit && c->out->len >= c->srv->out_limit)
                return pos;
            pos += feed_line(c, data + pos, len - pos, now);
            break;
        case BS_WANT_BODY:
            pos += feed_body(c, data + pos, len - pos, now);
            break;
        case BS_DISCARD:
            pos += feed_discard(c, len - pos);
            break;
        case BS_DISCARD_LINE:
            pos += feed_discard_line(c, data + pos, len - pos);
            break;
        case BS_WAITING:
        case BS_CLOSED:
            return pos;
        }
    }
    return pos;
}
