/* bs_conn.h - one beanstalk protocol connection, as a state machine.
 *
 * The network layer feeds it bytes and sends what it appends to its output
 * buffer; this file turns bytes into engine calls and engine results into
 * beanstalkd's replies. It owns no socket, so tests and the fuzzer drive it
 * with plain buffers.
 *
 * States: reading a command line, reading a put's body, discarding bytes
 * (an oversized put, an overlong line), waiting in a reserve, closing.
 * While waiting, feed() consumes nothing: commands pipelined behind a
 * reserve wait their turn, as beanstalk clients expect. */
#ifndef DEFER_BS_CONN_H
#define DEFER_BS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "proto/bs_parse.h"
#include "util/buf.h"

#define BS_DEFAULT_MAX_JOB_SIZE 65535u
/* Upper bounds of a log record's size, beyond a put's body, for checking
 * log_room before a change is made. */
#define BS_LOG_PUT_BYTES 512u
#define BS_LOG_CHANGE_BYTES 256u
#define BS_LOG_KICK_BYTES 64u
#define BS_MAX_JOB_SIZE_LIMIT 1073741824u

/* What the host process knows that the protocol layer must not find out
 * for itself (it never does I/O): filled in on demand for `stats`. */
typedef struct bs_host_stats {
    long utime_sec, utime_usec, stime_sec, stime_usec;
    int binlog_oldest_index, binlog_current_index;
    int64_t binlog_records_migrated, binlog_records_written;
    int binlog_max_size;
} bs_host_stats_t;

/* State shared by every beanstalk connection of one server. */
typedef struct bs_server {
    engine_t *engine;
    uint32_t max_job_size;
    bool draining;
    /* feed() stops executing commands while this much output is unsent;
     * 0 = no limit. */
    size_t out_limit;
    uint64_t cmd_count[BS_OP_COUNT];
    uint32_t cur_conns, cur_producers, cur_workers;
    uint32_t total_conns;
    int64_t started_at; /* ns */
    long pid;
    const char *version;
    char instance_id[17];
    const char *hostname, *os, *platform;
    void (*host_stats)(void *ctx, bs_host_stats_t *out);
    /* Bytes the log can still take (SIZE_MAX: no limit); NULL without a
     * log. When the disk is full, puts are refused before other changes. */
    size_t (*log_room)(void *ctx, bool for_put);
    void *host_ctx;
    buf_t yaml; /* scratch for YAML replies */
} bs_server_t;

typedef enum bs_state {
    BS_WANT_LINE,
    BS_WANT_BODY,
    BS_DISCARD,      /* skipping a rejected put's body, then reply */
    BS_DISCARD_LINE, /* skipping an overlong line up to its CRLF */
    BS_WAITING,      /* in reserve, until the engine answers */
    BS_CLOSED,
} bs_state_t;

typedef struct bs_conn {
    bs_server_t *srv;
    session_t *session;
    buf_t *out;
    bs_state_t state;
    bool producer, worker;
    /* A command line split across reads. */
    char line[BS_LINE_MAX];
    size_t line_len;
    bool line_cr; /* BS_DISCARD_LINE: the last byte seen was '\r' */
    /* A put being read: body bytes, then the 2-byte trailer. */
    job_t *in_job;
    uint32_t in_read;
    char trailer[2];
    /* BS_DISCARD: bytes left to skip and the reply owed after. */
    uint64_t discard_left;
    const char *discard_reply;
    /* Called when an engine event (a job for a waiting reserve, a timeout)
     * wrote a reply outside feed(): the host must flush output and resume
     * feeding buffered input - later, not from inside this call, because
     * the engine is still in the middle of an operation. */
    void (*wake)(void *ctx);
    void *ctx;
} bs_conn_t;

void bs_server_init(bs_server_t *srv, engine_t *engine);
void bs_server_free(bs_server_t *srv);

/* NULL when memory is exhausted. */
bs_conn_t *bs_conn_new(bs_server_t *srv, buf_t *out, void (*wake)(void *ctx), void *ctx);
void bs_conn_free(bs_conn_t *c, int64_t now);

/* Process input; returns how many bytes were consumed. Fewer than len only
 * when the connection is waiting in a reserve, closed, or holding
 * out_limit bytes of unsent output: feed the rest again after wake() or
 * once output has drained. */
size_t bs_conn_feed(bs_conn_t *c, const char *data, size_t len, int64_t now);

/* The client closed its sending side. A waiting reserve is answered
 * TIMED_OUT, as the protocol specifies. */
void bs_conn_eof(bs_conn_t *c);

static inline bool bs_conn_waiting(const bs_conn_t *c) { return c->state == BS_WAITING; }
static inline bool bs_conn_closed(const bs_conn_t *c) { return c->state == BS_CLOSED; }

#endif
