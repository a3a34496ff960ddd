/* net.h - listeners, connections and the turn of the event loop.
 *
 * The network layer knows bytes, not tasks. A protocol plugs in through
 * net_proto_t (open / feed / eof / close); the host (main.c) plugs in its
 * timers and its end-of-turn work through net_hooks_t. Everything runs on
 * the one loop thread.
 *
 * Output written by a protocol is sent at the end of the loop turn (uv_check)
 * or before the loop sleeps (uv_prepare), so each connection costs at most
 * one write system call per turn however many commands it pipelined. */
#ifndef DEFER_NET_H
#define DEFER_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"

/* Stop executing a connection's commands, and stop reading from it, while
 * this much of its output is unsent; resume below NET_OUT_LOW. */
#define NET_OUT_HIGH (1u << 20)
#define NET_OUT_LOW (256u << 10)
/* Stop reading while this much unprocessed input is buffered (commands
 * pipelined behind a blocking reserve). */
#define NET_IN_HIGH (1u << 20)
/* A drained input buffer larger than this is released. */
#define NET_IN_KEEP 4096u

typedef struct net_proto {
    const char *name;
    /* Sent to a connection refused because the limit is reached. */
    const char *refusal;
    /* Start a connection; output goes to out; call wake(conn) when an
     * event outside feed() produced output or unblocked the connection. */
    void *(*open)(void *ctx, buf_t *out, void (*wake)(void *conn), void *conn);
    size_t (*feed)(void *state, const char *data, size_t len, int64_t now);
    void (*eof)(void *state);
    bool (*waiting)(void *state);
    bool (*closed)(void *state);
    void (*close)(void *state, int64_t now);
    void *ctx;
} net_proto_t;

typedef struct net_hooks {
    /* Fire due timers; next_deadline says when (wall-clock ns, INT64_MAX
     * for never). */
    void (*tick)(void *ctx, int64_t now);
    int64_t (*next_deadline)(void *ctx);
    /* Durability; all three NULL when nothing is logged. Output produced
     * while log_position() > log_durable() is held back until log_durable()
     * reaches that position: a reply never runs ahead of its log record. */
    uint64_t (*log_position)(void *ctx);
    uint64_t (*log_durable)(void *ctx);
    /* After the turn's connections were served: the log seals its batch. */
    void (*end_turn)(void *ctx);
    void *ctx;
} net_hooks_t;

typedef struct net net_t;

net_t *net_new(uv_loop_t *loop, const net_hooks_t *hooks, uint32_t max_conns);
/* Listen on addr:port, or on a unix socket when addr is "unix:PATH".
 * Returns 0, or a negative libuv error code (UV_EADDRINUSE: the port is
 * taken) with err filled with a sentence saying what failed. */
int net_listen(net_t *n, const char *addr, const char *port, const net_proto_t *proto,
               char *err, size_t errlen);
/* Adopt a listening socket inherited from systemd (socket activation). */
int net_listen_fd(net_t *n, int fd, const net_proto_t *proto, char *err, size_t errlen);
/* Stop accepting; existing connections go on. */
void net_stop_listening(net_t *n);
/* Close every connection (their protocols' close runs) and the handles;
 * the loop then has nothing left of ours. */
void net_close_all(net_t *n);
void net_free(net_t *n);
uint32_t net_conn_count(const net_t *n);
/* Ask for hooks->next_deadline() to be consulted again (after something
 * outside a connection changed the engine). */
void net_poke(net_t *n);
/* log_durable() advanced: send the replies that were waiting for it. */
void net_durable(net_t *n);

#endif
