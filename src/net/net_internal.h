/* net_internal.h - structures shared by the files of the network layer. */
#ifndef DEFER_NET_INTERNAL_H
#define DEFER_NET_INTERNAL_H

#include "net/net.h"

typedef struct net_conn net_conn_t;

/* A TCP or unix stream handle. */
typedef union net_stream {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
} net_stream_t;

typedef struct net_hold {
    uint64_t pos;
    size_t bytes;
} net_hold_t;

typedef struct net_listener {
    net_stream_t h;
    bool is_pipe;
    char *unix_path; /* removed on close */
    const net_proto_t *proto;
    net_t *net;
    struct net_listener *next;
} net_listener_t;

struct net_conn {
    net_stream_t h;
    net_t *net;
    const net_proto_t *proto;
    void *state;     /* the protocol's connection */
    buf_t in;        /* received, not yet consumed */
    buf_t out;       /* written by the protocol, not yet sent */
    buf_t wbuf;      /* being sent by an uv_write */
    uv_write_t wreq;
    bool writing;
    bool reading;
    bool eof;
    bool closing;
    bool dirty;
    net_conn_t *prev, *next;             /* all connections */
    net_conn_t *dirty_prev, *dirty_next; /* work queued for the end of the turn */
    /* Output not yet durable: the last `held` bytes of out, in runs that
     * each wait for one log position. */
    size_t held;
    size_t out_marked; /* out.len when output was last assigned a run */
    net_hold_t *holds;
    uint32_t nholds, capholds;
    net_conn_t *held_prev, *held_next; /* connections with held output */
    bool in_held_list;
};

struct net {
    uv_loop_t *loop;
    net_hooks_t hooks;
    uint32_t max_conns;
    uint32_t nconns;
    net_listener_t *listeners;
    net_conn_t *conns;
    net_conn_t *dirty_head, *dirty_tail;
    net_conn_t *held_head;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle; /* keeps the loop from sleeping while work is queued */
    uv_timer_t timer;
    int64_t timer_at; /* deadline the timer is armed for, INT64_MAX if none */
    int64_t last_refusal_log;
};

void net_conn_accept(net_listener_t *l);
void net_conn_close(net_conn_t *c);
void net_conn_turn(net_conn_t *c);
void net_mark_dirty(net_conn_t *c);
void net_unmark_dirty(net_conn_t *c);

#endif
