/* net.c - the network layer's turn of the loop: work queued by
 * connections (output to send, input to resume) is done in uv_check, after
 * the turn's I/O callbacks, and in uv_prepare, before the loop sleeps; the
 * host's timers run from one uv_timer armed for the earliest deadline. */
#include "net/net_internal.h"

#include <stdlib.h>

#include "util/clock.h"

static void net_arm_timer(net_t *n);

static void net_run_turn(net_t *n) {
    net_conn_t *c;
    while ((c = n->dirty_head)) {
        net_unmark_dirty(c);
        net_conn_turn(c);
    }
    if (n->hooks.end_turn)
        n->hooks.end_turn(n->hooks.ctx);
    net_arm_timer(n);
}

void net_mark_dirty(net_conn_t *c) {
    if (c->dirty || c->closing)
        return;
    net_t *n = c->net;
    c->dirty = true;
    c->dirty_next = NULL;
    c->dirty_prev = n->dirty_tail;
    if (n->dirty_tail)
        n->dirty_tail->dirty_next = c;
    else
        n->dirty_head = c;
    n->dirty_tail = c;
}

void net_unmark_dirty(net_conn_t *c) {
    if (!c->dirty)
        return;
    net_t *n = c->net;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        n->dirty_head = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    else
        n->dirty_tail = c->dirty_prev;
    c->dirty = false;
    c->dirty_prev = c->dirty_next = NULL;
}

static void on_prepare(uv_prepare_t *h) {
    net_run_turn(h->data);
}

static void on_check(uv_check_t *h) {
    net_run_turn(h->data);
}

static void on_timer(uv_timer_t *h) {
    net_t *n = h->data;
    n->timer_at = INT64_MAX;
    n->hooks.tick(n->hooks.ctx, clock_now_ns());
}

static void net_arm_timer(net_t *n) {
    int64_t at = n->hooks.next_deadline(n->hooks.ctx);
    if (at == n->timer_at)
        return;
    n->timer_at = at;
    if (at == INT64_MAX) {
        uv_timer_stop(&n->timer);
        return;
    }
    int64_t now = clock_now_ns();
    uint64_t ms = at <= now ? 0 : (uint64_t)((at - now + 999999) / 1000000);
    uv_update_time(n->loop);
    uv_timer_start(&n->timer, on_timer, ms, 0);
}

void net_durable(net_t *n) {
    for (net_conn_t *c = n->held_head; c; c = c->held_next)
        net_mark_dirty(c);
}

void net_poke(net_t *n) {
    n->timer_at = INT64_MIN; /* forces a re-arm at the end of the turn */
}

net_t *net_new(uv_loop_t *loop, const net_hooks_t *hooks, uint32_t max_conns) {
    net_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->loop = loop;
    n->hooks = *hooks;
    n->max_conns = max_conns;
    n->timer_at = INT64_MAX;
    uv_prepare_init(loop, &n->prepare);
    uv_check_init(loop, &n->check);
    uv_timer_init(loop, &n->timer);
    n->prepare.data = n->check.data = n->timer.data = n;
    uv_prepare_start(&n->prepare, on_prepare);
    uv_check_start(&n->check, on_check);
    /* These handles alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&n->prepare);
    uv_unref((uv_handle_t *)&n->check);
    return n;
}

uint32_t net_conn_count(const net_t *n) {
    return n->nconns;
}

void net_close_all(net_t *n) {
    net_stop_listening(n);
    while (n->conns)
        net_conn_close(n->conns);
    uv_close((uv_handle_t *)&n->prepare, NULL);
    uv_close((uv_handle_t *)&n->check, NULL);
    uv_close((uv_handle_t *)&n->timer, NULL);
}

void net_free(net_t *n) {
    free(n);
}
