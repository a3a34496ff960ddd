/* conn.c - one client connection: reading, feeding the protocol, sending
 * its output, and back-pressure.
 *
 * Reads land in one shared buffer (the loop is single-threaded) and are
 * copied to the connection; its commands run at the end of the loop turn,
 * after every event of the turn was seen. That way a client's close always
 * takes effect before commands that other clients sent after it, even when
 * the kernel reports the two in the other order: its reservations are back
 * and the counters right when the next command runs. A buffer that grew is
 * released once drained, so idle connections stay cheap. */
#include "net/net_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

#define READ_CHUNK (64 * 1024)

static char read_chunk[READ_CHUNK];

static size_t conn_out_total(const net_conn_t *c) {
    return c->out.len + c->wbuf.len;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h;
    (void)suggested;
    *b = uv_buf_init(read_chunk, sizeof read_chunk);
}

static void conn_wake(void *arg) {
    net_mark_dirty(arg);
}

static void conn_free_cb(uv_handle_t *h) {
    net_conn_t *c = h->data;
    free(c->holds);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    free(c);
}

/* End the connection's protocol side at once: its reservations go back to
 * ready and the counters drop before any other client's later command
 * runs, as in beanstalkd. The socket stays open only to send the output
 * already produced. */
static void conn_end_protocol(net_conn_t *c) {
    if (!c->state)
        return;
    c->proto->close(c->state, clock_now_ns());
    c->state = NULL;
}

/* Nothing more will be read or executed for this client. */
static bool conn_done(const net_conn_t *c) {
    const net_proto_t *p = c->proto;
    return !c->state || p->closed(c->state) ||
           (c->eof && !c->in.len && !p->waiting(c->state));
}

/* Feed buffered input to the protocol for as long as it consumes. After
 * the client's EOF every reserve that would wait is answered TIMED_OUT
 * straight away, as beanstalkd does for a half-closed client. */
static void conn_feed_pending(net_conn_t *c) {
    const net_proto_t *p = c->proto;
    while (c->state) {
        if (c->eof && p->waiting(c->state))
            p->eof(c->state);
        if (!c->in.len || p->closed(c->state) || p->waiting(c->state))
            return;
        size_t used = p->feed(c->state, buf_head(&c->in), c->in.len, clock_now_ns());
        buf_consume(&c->in, used);
        if (used == 0 && !(c->eof && p->waiting(c->state)))
            return; /* back-pressure: wait for output to drain */
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void conn_read_start(net_conn_t *c) {
    if (!c->reading && !c->eof && !c->closing) {
        uv_read_start(&c->h.stream, on_alloc, on_read);
        c->reading = true;
    }
}

static void conn_read_stop(net_conn_t *c) {
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    net_conn_t *c = s->data;
    if (nread == UV_EOF) {
        c->eof = true;
        conn_read_stop(c);
        c->proto->eof(c->state);
        conn_feed_pending(c);
        if (conn_done(c))
            conn_end_protocol(c);
        net_mark_dirty(c);
        return;
    }
    if (nread < 0) {
        net_conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (!buf_append(&c->in, b->base, (size_t)nread)) {
        log_msg("closing a connection: out of memory buffering its input");
        net_conn_close(c);
        return;
    }
    net_mark_dirty(c);
}

static void on_write(uv_write_t *req, int status) {
    net_conn_t *c = req->data;
    c->writing = false;
    buf_reset(&c->wbuf);
    if (c->closing)
        return;
    if (status < 0) {
        net_conn_close(c);
        return;
    }
    net_mark_dirty(c);
}

static void held_list_remove(net_conn_t *c) {
    if (!c->in_held_list)
        return;
    if (c->held_prev)
        c->held_prev->held_next = c->held_next;
    else
        c->net->held_head = c->held_next;
    if (c->held_next)
        c->held_next->held_prev = c->held_prev;
    c->held_prev = c->held_next = NULL;
    c->in_held_list = false;
}

/* Output appended since the last call waits for the log position current
 * now, unless that is already durable. */
static bool conn_hold_new_output(net_conn_t *c) {
    const net_hooks_t *hk = &c->net->hooks;
    size_t fresh = c->out.len - c->out_marked;
    c->out_marked = c->out.len;
    if (!fresh || !hk->log_position)
        return true;
    uint64_t pos = hk->log_position(hk->ctx);
    if (pos <= hk->log_durable(hk->ctx))
        return true;
    if (c->nholds && c->holds[c->nholds - 1].pos == pos) {
        c->holds[c->nholds - 1].bytes += fresh;
    } else {
        if (c->nholds == c->capholds) {
            uint32_t cap = c->capholds ? c->capholds * 2 : 4;
            net_hold_t *h = realloc(c->holds, cap * sizeof *h);
            if (!h)
                return false;
            c->holds = h;
            c->capholds = cap;
        }
        c->holds[c->nholds++] = (net_hold_t){.pos = pos, .bytes = fresh};
    }
    c->held += fresh;
    if (!c->in_held_list) {
        net_t *n = c->net;
        c->held_prev = NULL;
        c->held_next = n->held_head;
        if (n->held_head)
            n->held_head->held_prev = c;
        n->held_head = c;
        c->in_held_list = true;
    }
    return true;
}

/* Release the runs whose log position has become durable. */
static void conn_release_durable(net_conn_t *c) {
    if (!c->nholds)
        return;
    const net_hooks_t *hk = &c->net->hooks;
    uint64_t durable = hk->log_durable(hk->ctx);
    uint32_t i = 0;
    while (i < c->nholds && c->holds[i].pos <= durable)
        c->held -= c->holds[i++].bytes;
    memmove(c->holds, c->holds + i, (c->nholds - i) * sizeof *c->holds);
    c->nholds -= i;
    if (!c->nholds)
        held_list_remove(c);
}

/* Send what may be sent: out, less its held tail. */
static void conn_flush(net_conn_t *c) {
    size_t sendable = c->out.len - c->held;
    if (c->writing || sendable == 0)
        return;
    uv_buf_t b = uv_buf_init(buf_head(&c->out), (unsigned)sendable);
    int n = uv_try_write(&c->h.stream, &b, 1);
    if (n > 0) {
        buf_consume(&c->out, (size_t)n);
        c->out_marked -= (size_t)n;
        sendable -= (size_t)n;
    } else if (n < 0 && n != UV_EAGAIN) {
        net_conn_close(c);
        return;
    }
    if (sendable == 0)
        return;
    /* The rest goes out asynchronously; the protocol keeps appending to
     * out meanwhile, so the bytes in flight move to wbuf: by swapping the
     * buffers when nothing is held, else by copying. */
    if (c->held == 0) {
        buf_t tmp = c->wbuf;
        c->wbuf = c->out;
        c->out = tmp;
        c->out_marked = 0;
    } else {
        if (!buf_append(&c->wbuf, buf_head(&c->out), sendable)) {
            net_conn_close(c);
            return;
        }
        buf_consume(&c->out, sendable);
        c->out_marked -= sendable;
    }
    b = uv_buf_init(buf_head(&c->wbuf), (unsigned)c->wbuf.len);
    c->wreq.data = c;
    int r = uv_write(&c->wreq, &c->h.stream, &b, 1, on_write);
    if (r) {
        net_conn_close(c);
        return;
    }
    c->writing = true;
}

/* The end-of-turn work for a connection: resume input, send output,
 * apply back-pressure, close when done. */
void net_conn_turn(net_conn_t *c) {
    if (c->closing)
        return;
    if (conn_out_total(c) < NET_OUT_HIGH)
        conn_feed_pending(c);
    if (!c->in.len && c->in.cap > NET_IN_KEEP)
        buf_free(&c->in);
    if (!conn_hold_new_output(c)) {
        log_msg("closing a connection: out of memory tracking its replies");
        net_conn_close(c);
        return;
    }
    conn_release_durable(c);
    conn_flush(c);
    if (c->closing)
        return;

    if (conn_done(c)) {
        conn_end_protocol(c);
        conn_read_stop(c);
        if (conn_out_total(c) == 0)
            net_conn_close(c);
        return;
    }
    /* Input stopped by back-pressure can go on once output has drained
     * (a write that completes at once has no callback to say so): serve
     * it again after the other connections of this turn. */
    if (c->in.len && !c->proto->waiting(c->state) && conn_out_total(c) < NET_OUT_HIGH)
        net_mark_dirty(c);
    if (conn_out_total(c) >= NET_OUT_HIGH || c->in.len >= NET_IN_HIGH)
        conn_read_stop(c);
    else if (conn_out_total(c) < NET_OUT_LOW && c->in.len < NET_IN_HIGH)
        conn_read_start(c);
}

static void free_handle_cb(uv_handle_t *h) {
    free(h);
}

static void refuse(net_listener_t *l) {
    net_t *n = l->net;
    /* Accept and answer, so the client sees why instead of hanging in the
     * listen backlog. */
    net_stream_t *tmp = malloc(sizeof *tmp);
    if (!tmp)
        return;
    if (l->is_pipe)
        uv_pipe_init(n->loop, &tmp->pipe, 0);
    else
        uv_tcp_init(n->loop, &tmp->tcp);
    if (uv_accept(&l->h.stream, &tmp->stream) == 0) {
        uv_buf_t b = uv_buf_init((char *)l->proto->refusal, (unsigned)strlen(l->proto->refusal));
        uv_try_write(&tmp->stream, &b, 1);
    }
    uv_close(&tmp->handle, free_handle_cb);
    int64_t now = clock_now_ns();
    if (now - n->last_refusal_log > 10 * 1000000000LL) {
        n->last_refusal_log = now;
        log_msg("refusing %s connections: the limit of %u is reached (raise it with "
                "--max-connections)",
                l->proto->name, n->max_conns);
    }
}

void net_conn_accept(net_listener_t *l) {
    net_t *n = l->net;
    if (n->nconns >= n->max_conns) {
        refuse(l);
        return;
    }
    net_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->net = n;
    c->proto = l->proto;
    c->h.handle.data = c;
    buf_init(&c->in);
    buf_init(&c->out);
    buf_init(&c->wbuf);
    if (l->is_pipe)
        uv_pipe_init(n->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(n->loop, &c->h.tcp);
    if (uv_accept(&l->h.stream, &c->h.stream) != 0) {
        uv_close(&c->h.handle, conn_free_cb);
        return;
    }
    if (!l->is_pipe)
        uv_tcp_nodelay(&c->h.tcp, 1);
    c->state = c->proto->open(c->proto->ctx, &c->out, conn_wake, c);
    if (!c->state) {
        uv_close(&c->h.handle, conn_free_cb);
        return;
    }
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    log_debug("%s connection opened (%u open)", c->proto->name, n->nconns);
    conn_read_start(c);
}

void net_conn_close(net_conn_t *c) {
    if (c->closing)
        return;
    net_t *n = c->net;
    c->closing = true;
    conn_read_stop(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    net_unmark_dirty(c);
    held_list_remove(c);
    n->nconns--;
    conn_end_protocol(c);
    log_debug("%s connection closed (%u open)", c->proto->name, n->nconns);
    uv_close(&c->h.handle, conn_free_cb);
}
