/* test_bs_conn.c - the beanstalk connection state machine (proto/bs_conn.c)
 * driven with byte strings against a real engine, checking the exact bytes
 * it answers. Every scripted exchange is replayed whole, split in two at
 * every byte boundary, and one byte at a time: the answer must not depend
 * on how the input was cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/engine.h"
#include "proto/bs_conn.h"
#include "proto/bs_parse.h"
#include "util/buf.h"

#define T0 (INT64_C(1700000000) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
#define MS(x) ((int64_t)(x) * 1000000)

/* ------------------------------------------------------------------ */
/* A tiny host: a server, clients with output buffers, and an input
 * buffer per client holding what the connection did not consume yet
 * (as the network layer does). */

#define MAX_CLIENTS 4

typedef struct client {
    bs_conn_t *c;
    buf_t out;
    buf_t pending;
    int wakes;
    bool open;
} client_t;

typedef struct world {
    engine_t *e;
    bs_server_t srv;
    client_t cl[MAX_CLIENTS];
    int64_t now;
} world_t;

static void on_wake(void *ctx) {
    client_t *cl = ctx;
    cl->wakes++;
}

static void client_open(world_t *w, int i) {
    client_t *cl = &w->cl[i];
    memset(cl, 0, sizeof *cl);
    buf_init(&cl->out);
    buf_init(&cl->pending);
    cl->c = bs_conn_new(&w->srv, &cl->out, on_wake, cl);
    assert_non_null(cl->c);
    cl->open = true;
}

static void client_close(world_t *w, int i) {
    client_t *cl = &w->cl[i];
    if (!cl->open)
        return;
    bs_conn_free(cl->c, w->now);
    buf_free(&cl->out);
    buf_free(&cl->pending);
    cl->open = false;
}

static world_t *world_new(void) {
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->e = engine_new();
    assert_non_null(w->e);
    bs_server_init(&w->srv, w->e);
    w->now = T0;
    w->srv.started_at = T0;
    client_open(w, 0);
    return w;
}

static void world_free(world_t *w) {
    for (int i = 0; i < MAX_CLIENTS; i++)
        client_close(w, i);
    bs_server_free(&w->srv);
    engine_free(w->e);
    free(w);
}

static int w_setup(void **state) {
    *state = world_new();
    return 0;
}

static int w_teardown(void **state) {
    world_free(*state);
    return 0;
}

/* Feed what is pending for as long as the connection takes it. */
static void pump(world_t *w, client_t *cl) {
    while (cl->pending.len && !bs_conn_closed(cl->c) && !bs_conn_waiting(cl->c)) {
        size_t used = bs_conn_feed(cl->c, buf_head(&cl->pending), cl->pending.len, w->now);
        assert_true(used <= cl->pending.len);
        if (used == 0)
            break; /* back-pressure */
        buf_consume(&cl->pending, used);
    }
}

/* Deliver bytes from the network. */
static void deliver(world_t *w, int i, const char *data, size_t len) {
    client_t *cl = &w->cl[i];
    assert_true(buf_append(&cl->pending, data, len));
    pump(w, cl);
}

static void send_str(world_t *w, int i, const char *s) {
    deliver(w, i, s, strlen(s));
}

/* The client's output so far, as a NUL-terminated copy; output is then
 * cleared (as if sent). */
static char *take(world_t *w, int i, size_t *len) {
    client_t *cl = &w->cl[i];
    size_t n = cl->out.len;
    char *s = malloc(n + 1);
    assert_non_null(s);
    if (n)
        memcpy(s, buf_head(&cl->out), n);
    s[n] = '\0';
    buf_consume(&cl->out, n);
    if (len)
        *len = n;
    return s;
}

static void expect_bytes(world_t *w, int i, const char *exp, size_t elen) {
    size_t n;
    char *got = take(w, i, &n);
    if (n != elen || memcmp(got, exp, n) != 0) {
        fail_msg("client %d output mismatch:\n  got  (%zu) \"%.*s\"\n  want (%zu) \"%.*s\"", i, n,
                 (int)n, got, elen, (int)elen, exp);
    }
    free(got);
}

static void expect(world_t *w, int i, const char *exp) {
    expect_bytes(w, i, exp, strlen(exp));
}

/* Send a command and expect exactly this answer. */
static void exchange(world_t *w, int i, const char *in, const char *out) {
    send_str(w, i, in);
    expect(w, i, out);
}

/* ------------------------------------------------------------------ */
/* Scripts replayed with every way of cutting the input                 */

typedef void (*world_prep_fn)(world_t *w);

/* Feed `in` to a fresh world's client 0 as the given chunks, return the
 * output (malloc'd) and whether the connection closed. */
static char *run_cut(const char *in, size_t inlen, const size_t *cuts, size_t ncuts,
                     world_prep_fn prep, size_t *outlen, bool *closed) {
    world_t *w = world_new();
    if (prep)
        prep(w);
    size_t at = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : inlen;
        deliver(w, 0, in + at, end - at);
        at = end;
    }
    char *out = take(w, 0, outlen);
    *closed = bs_conn_closed(w->cl[0].c);
    /* Nothing may be left unconsumed unless the connection closed. */
    if (!*closed)
        assert_int_equal(w->cl[0].pending.len, 0);
    world_free(w);
    return out;
}

static void check_script_prep(const char *in, size_t inlen, const char *exp, size_t explen,
                              bool exp_closed, world_prep_fn prep) {
    size_t outlen;
    bool closed;
    char *out = run_cut(in, inlen, NULL, 0, prep, &outlen, &closed);
    if (outlen != explen || memcmp(out, exp, outlen) != 0)
        fail_msg("whole input: got (%zu) \"%.*s\"\n  want (%zu) \"%.*s\"", outlen, (int)outlen,
                 out, explen, (int)explen, exp);
    assert_int_equal(closed, exp_closed);
    free(out);
    /* Split in two at every position. */
    for (size_t cut = 1; cut < inlen; cut++) {
        out = run_cut(in, inlen, &cut, 1, prep, &outlen, &closed);
        if (outlen != explen || memcmp(out, exp, outlen) != 0)
            fail_msg("input cut at %zu: got (%zu) \"%.*s\"\n  want (%zu) \"%.*s\"", cut, outlen,
                     (int)outlen, out, explen, (int)explen, exp);
        assert_int_equal(closed, exp_closed);
        free(out);
    }
    /* One byte at a time. */
    size_t *cuts = malloc((inlen + 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t k = 0; k + 1 < inlen; k++)
        cuts[k] = k + 1;
    out = run_cut(in, inlen, cuts, inlen ? inlen - 1 : 0, prep, &outlen, &closed);
    if (outlen != explen || memcmp(out, exp, outlen) != 0)
        fail_msg("byte by byte: got (%zu) \"%.*s\"\n  want (%zu) \"%.*s\"", outlen, (int)outlen,
                 out, explen, (int)explen, exp);
    assert_int_equal(closed, exp_closed);
    free(out);
    free(cuts);
}

static void check_script(const char *in, const char *exp) {
    check_script_prep(in, strlen(in), exp, strlen(exp), false, NULL);
}

/* ------------------------------------------------------------------ */
/* Framing                                                              */

static void test_put_reserve_delete(void **state) {
    (void)state;
    check_script("put 0 0 10 5\r\nhello\r\nreserve\r\ndelete 1\r\n",
                 "INSERTED 1\r\nRESERVED 1 5\r\nhello\r\nDELETED\r\n");
    check_script("put 5 0 10 0\r\n\r\npeek 1\r\nreserve-with-timeout 0\r\n",
                 "INSERTED 1\r\nFOUND 1 0\r\n\r\nRESERVED 1 0\r\n\r\n");
    check_script("put 1 0 10 2\r\nab\r\nput 0 0 10 2\r\ncd\r\nreserve\r\nreserve\r\n",
                 "INSERTED 1\r\nINSERTED 2\r\nRESERVED 2 2\r\ncd\r\nRESERVED 1 2\r\nab\r\n");
}

static void test_binary_body(void **state) {
    (void)state;
    /* A body holding CR, LF, CRLF, NUL and high bytes is returned as is. */
    /* 10 body bytes: CR LF NUL 'x' CR 0xff LF 'p' 'u' 't'. */
    static const char in[] = "put 0 0 10 10\r\n\r\n\0x\r\xff\nput\r\n"
                             "peek 1\r\nreserve\r\n";
    static const char out[] = "INSERTED 1\r\n"
                              "FOUND 1 10\r\n\r\n\0x\r\xff\nput\r\n"
                              "RESERVED 1 10\r\n\r\n\0x\r\xff\nput\r\n";
    check_script_prep(in, sizeof in - 1, out, sizeof out - 1, false, NULL);
}

static void prep_small_max(world_t *w) {
    w->srv.max_job_size = 10;
}

static void test_job_too_big(void **state) {
    (void)state;
    /* The body (even if it looks like commands) is read and dropped
     * before the answer; the connection stays in step. */
    static const char in[] = "put 0 0 10 11\r\nstats\r\nquit\r\nlist-tube-used\r\n"
                             "put 0 0 10 10\r\n0123456789\r\n";
    static const char out[] = "JOB_TOO_BIG\r\nUSING default\r\nINSERTED 1\r\n";
    check_script_prep(in, sizeof in - 1, out, sizeof out - 1, false, prep_small_max);
    /* The size check comes before the trailing-garbage check. */
    static const char in2[] = "put 0 0 10 11 x\r\n01234567890\r\nlist-tube-used\r\n";
    static const char out2[] = "JOB_TOO_BIG\r\nUSING default\r\n";
    check_script_prep(in2, sizeof in2 - 1, out2, sizeof out2 - 1, false, prep_small_max);
}

static void test_job_too_big_default_limit(void **state) {
    world_t *w = *state;
    /* 65535 is accepted, 65536 is not. */
    size_t n = 65536 + 2;
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, 'b', n);
    body[65535] = '\r';
    body[65536] = '\n';
    send_str(w, 0, "put 0 0 10 65535\r\n");
    deliver(w, 0, body, 65537);
    expect(w, 0, "INSERTED 1\r\n");
    body[65535] = 'b';
    body[65536] = '\r';
    body[65537] = '\n';
    send_str(w, 0, "put 0 0 10 65536\r\n");
    deliver(w, 0, body, n);
    expect(w, 0, "JOB_TOO_BIG\r\n");
    exchange(w, 0, "list-tube-used\r\n", "USING default\r\n");
    /* And a huge size is discarded without allocating it. */
    send_str(w, 0, "put 0 0 10 4294967295\r\n");
    expect(w, 0, "");
    deliver(w, 0, body, n); /* still discarding */
    expect(w, 0, "");
    assert_int_equal(w->srv.cmd_count[BS_OP_PUT], 3);
    free(body);
}

static void test_bad_format_put_keeps_body(void **state) {
    (void)state;
    /* A put line that does not parse does not consume a body: the body
     * line is read as a command. */
    check_script("put 0 0 10\r\nhello\r\nlist-tube-used\r\n",
                 "BAD_FORMAT\r\nUNKNOWN_COMMAND\r\nUSING default\r\n");
    check_script("put 0 0 10 5 x\r\nhello\r\n", "BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n");
    check_script("put -1 0 10 5\r\nhello\r\n", "BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n");
    check_script("put 4294967296 0 10 5\r\nhello\r\n", "BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n");
    /* The body of a bad put may itself be a command. */
    check_script("put 0 0 10 abc\r\nlist-tube-used\r\n", "BAD_FORMAT\r\nUSING default\r\n");
}

static void test_expected_crlf(void **state) {
    (void)state;
    check_script("put 0 0 10 5\r\nhelloXYput 0 0 10 1\r\na\r\npeek 1\r\n",
                 "EXPECTED_CRLF\r\nINSERTED 2\r\nNOT_FOUND\r\n");
    /* Only one of the two bytes wrong. */
    check_script("put 0 0 10 1\r\na\rXlist-tube-used\r\n", "EXPECTED_CRLF\r\nUSING default\r\n");
    check_script("put 0 0 10 1\r\naX\nlist-tube-used\r\n", "EXPECTED_CRLF\r\nUSING default\r\n");
}

static char *make_put_line(size_t total_with_crlf) {
    /* "put " + spaces + "0 0 10 1" + CRLF, exactly total_with_crlf bytes. */
    const char *tail = "0 0 10 1\r\n";
    size_t tl = strlen(tail);
    char *s = malloc(total_with_crlf + 1);
    assert_non_null(s);
    memcpy(s, "put ", 4);
    memset(s + 4, ' ', total_with_crlf - 4 - tl);
    memcpy(s + total_with_crlf - tl, tail, tl);
    s[total_with_crlf] = '\0';
    return s;
}

static void test_line_length_limit(void **state) {
    (void)state;
    char buf[2048];
    /* 224 bytes with CRLF: accepted. */
    char *line = make_put_line(224);
    snprintf(buf, sizeof buf, "%sa\r\nlist-tube-used\r\n", line);
    check_script(buf, "INSERTED 1\r\nUSING default\r\n");
    free(line);
    /* 225 bytes: BAD_FORMAT; its body line is then a command. */
    line = make_put_line(225);
    snprintf(buf, sizeof buf, "%sa\r\nlist-tube-used\r\n", line);
    check_script(buf, "BAD_FORMAT\r\nUNKNOWN_COMMAND\r\nUSING default\r\n");
    free(line);
    /* Far too long: one BAD_FORMAT once its CRLF comes, then in sync. */
    char big[1500];
    memset(big, 'x', 1000);
    /* Bare CRs and LFs inside do not end it. */
    big[100] = '\r';
    big[223] = '\r';
    big[224] = 'x';
    big[500] = '\n';
    big[700] = '\r';
    memcpy(big + 1000, "\r\nlist-tube-used\r\n", 19);
    check_script(big, "BAD_FORMAT\r\nUSING default\r\n");
}

static void test_crlf_around_the_limit(void **state) {
    (void)state;
    char buf[600];
    /* CR at index 222, LF at 223: a 224-byte line, accepted. */
    char *line = make_put_line(224);
    assert_int_equal(line[222], '\r');
    snprintf(buf, sizeof buf, "%sa\r\n", line);
    check_script(buf, "INSERTED 1\r\n");
    free(line);
    /* CR at index 223, LF at 224: the CRLF straddles the 224-byte
     * boundary. The line is too long, and its end must still be found
     * there (not at some later CRLF). */
    line = make_put_line(225);
    assert_int_equal(line[223], '\r');
    assert_int_equal(line[224], '\n');
    snprintf(buf, sizeof buf, "%slist-tube-used\r\n", line);
    check_script(buf, "BAD_FORMAT\r\nUSING default\r\n");
    free(line);
    /* 226..230 bytes: also BAD_FORMAT, and in sync afterwards. */
    for (size_t n = 226; n <= 230; n++) {
        line = make_put_line(n);
        snprintf(buf, sizeof buf, "%slist-tube-used\r\n", line);
        check_script(buf, "BAD_FORMAT\r\nUSING default\r\n");
        free(line);
    }
    /* A 223-byte garbage line ending in CR, then LF: length 224 with the
     * CRLF, read as one (unknown) command. */
    char g[300];
    memset(g, 'z', 222);
    memcpy(g + 222, "\r\nlist-tube-used\r\n", 19);
    check_script(g, "UNKNOWN_COMMAND\r\nUSING default\r\n");
}

static void test_framing_odd_lines(void **state) {
    (void)state;
    /* A bare LF does not end a line. */
    check_script("list-tube-used\nlist-tube-used\r\n", "BAD_FORMAT\r\n");
    /* Empty line. */
    check_script("\r\n", "UNKNOWN_COMMAND\r\n");
    check_script("\r\n\r\nlist-tube-used\r\n",
                 "UNKNOWN_COMMAND\r\nUNKNOWN_COMMAND\r\nUSING default\r\n");
    /* A lone CR inside a line. */
    check_script("stats\rx\r\n", "BAD_FORMAT\r\n");
    /* CR CR LF: the line is "stats\r". */
    check_script("list-tube-used\r\r\n", "BAD_FORMAT\r\n");
    /* NUL inside a line. */
    static const char nul_in[] = "list-tube-used\0\r\nlist-tube-used\r\n";
    static const char nul_out[] = "BAD_FORMAT\r\nUSING default\r\n";
    check_script_prep(nul_in, sizeof nul_in - 1, nul_out, sizeof nul_out - 1, false, NULL);
    /* Case matters; trailing spaces are garbage. */
    check_script("PUT 0 0 10 1\r\n", "UNKNOWN_COMMAND\r\n");
    check_script("stats \r\nuse a \r\nlist-tubes x\r\npeek-ready x\r\nreservefoo\r\n",
                 "BAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\n");
    check_script("delete\r\ndelete \r\ndelete abc\r\ndelete -1\r\nfoo\r\n",
                 "UNKNOWN_COMMAND\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nUNKNOWN_COMMAND\r\n");
    check_script("stats-job\r\nstats-job \r\n", "BAD_FORMAT\r\nBAD_FORMAT\r\n");
}

static void test_quit(void **state) {
    (void)state;
    static const char in[] = "use foo\r\nquit\r\nlist-tube-used\r\n";
    static const char out[] = "USING foo\r\n";
    check_script_prep(in, sizeof in - 1, out, sizeof out - 1, true, NULL);
    static const char in2[] = "quitfoo\r\nstats\r\n";
    check_script_prep(in2, sizeof in2 - 1, "", 0, true, NULL);
}

static void test_quit_stops_consuming(void **state) {
    world_t *w = *state;
    const char *in = "quit\r\nstats\r\n";
    size_t used = bs_conn_feed(w->cl[0].c, in, strlen(in), w->now);
    assert_int_equal(used, 6);
    assert_true(bs_conn_closed(w->cl[0].c));
    assert_int_equal(bs_conn_feed(w->cl[0].c, "stats\r\n", 7, w->now), 0);
    expect(w, 0, "");
}

static void test_pipelined(void **state) {
    (void)state;
    check_script("use t1\r\nput 3 0 10 1\r\nA\r\nput 2 0 10 1\r\nB\r\nwatch t1\r\nignore default\r\n"
                 "reserve\r\nrelease 2 9 0\r\nreserve\r\nbury 1 0\r\nkick 5\r\n"
                 "list-tube-used\r\n",
                 "USING t1\r\nINSERTED 1\r\nINSERTED 2\r\nWATCHING 2\r\nWATCHING 1\r\n"
                 "RESERVED 2 1\r\nB\r\nRELEASED\r\nRESERVED 1 1\r\nA\r\nBURIED\r\nKICKED 1\r\n"
                 "USING t1\r\n");
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

static void test_tube_commands(void **state) {
    (void)state;
    check_script("list-tubes\r\n", "OK 14\r\n---\n- default\n\r\n");
    check_script("list-tube-used\r\nuse foo\r\nlist-tube-used\r\nlist-tubes\r\n",
                 "USING default\r\nUSING foo\r\nUSING foo\r\nOK 20\r\n---\n- default\n- foo\n\r\n");
    /* An unreferenced tube disappears. */
    check_script("use g\r\nuse default\r\nlist-tubes\r\n",
                 "USING g\r\nUSING default\r\nOK 14\r\n---\n- default\n\r\n");
    check_script("watch a\r\nwatch a\r\nwatch b\r\nlist-tubes-watched\r\n",
                 "WATCHING 2\r\nWATCHING 2\r\nWATCHING 3\r\nOK 22\r\n---\n- default\n- a\n- b\n\r\n");
    check_script("ignore nothere\r\nignore default\r\nwatch x\r\nignore default\r\n"
                 "list-tubes-watched\r\nignore x\r\n",
                 "WATCHING 1\r\nNOT_IGNORED\r\nWATCHING 2\r\nWATCHING 1\r\nOK 8\r\n---\n- x\n\r\n"
                 "NOT_IGNORED\r\n");
    /* Name rules. */
    check_script("use \r\nuse a b\r\nuse -a\r\nuse a*\r\nwatch \r\nignore \r\n",
                 "BAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nBAD_FORMAT\r\n"
                 "BAD_FORMAT\r\n");
    char name[202], line[520], exp[520];
    memset(name, 'n', 200);
    name[200] = '\0';
    snprintf(line, sizeof line, "use %s\r\nuse %sm\r\n", name, name);
    snprintf(exp, sizeof exp, "USING %s\r\nBAD_FORMAT\r\n", name);
    check_script(line, exp);
}

static void test_peek_commands(void **state) {
    (void)state;
    check_script("peek-ready\r\npeek-delayed\r\npeek-buried\r\npeek 1\r\npeek 0\r\n",
                 "NOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
    check_script("put 5 0 10 1\r\na\r\nput 1 0 10 1\r\nb\r\nput 0 20 10 1\r\nc\r\n"
                 "put 0 10 10 1\r\nd\r\npeek-ready\r\npeek-delayed\r\nreserve\r\nbury 2 0\r\n"
                 "peek-buried\r\npeek 3\r\n",
                 "INSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\nINSERTED 4\r\n"
                 "FOUND 2 1\r\nb\r\nFOUND 4 1\r\nd\r\nRESERVED 2 1\r\nb\r\nBURIED\r\n"
                 "FOUND 2 1\r\nb\r\nFOUND 3 1\r\nc\r\n");
    /* peek-* look at the used tube only; peek <id> at any. */
    check_script("put 0 0 10 1\r\na\r\nuse other\r\npeek-ready\r\npeek 1\r\n",
                 "INSERTED 1\r\nUSING other\r\nNOT_FOUND\r\nFOUND 1 1\r\na\r\n");
}

static void test_worker_commands(void **state) {
    (void)state;
    check_script("reserve-with-timeout 0\r\nreserve-with-timeout abc\r\n",
                 "TIMED_OUT\r\nTIMED_OUT\r\n");
    check_script("put 0 0 10 1\r\na\r\nreserve-job 1\r\nreserve-job 1\r\nreserve-job 9\r\n"
                 "touch 1\r\ntouch 9\r\nrelease 1 5 0\r\nrelease 1 5 0\r\n"
                 "reserve-job 1\r\nbury 1 7\r\nbury 1 7\r\nkick-job 1\r\nkick-job 1\r\n"
                 "delete 1\r\ndelete 1\r\n",
                 "INSERTED 1\r\nRESERVED 1 1\r\na\r\nNOT_FOUND\r\nNOT_FOUND\r\n"
                 "TOUCHED\r\nNOT_FOUND\r\nRELEASED\r\nNOT_FOUND\r\n"
                 "RESERVED 1 1\r\na\r\nBURIED\r\nNOT_FOUND\r\nKICKED\r\nNOT_FOUND\r\n"
                 "DELETED\r\nNOT_FOUND\r\n");
    check_script("kick 0\r\nkick 10\r\nkick -1\r\nkick x\r\n",
                 "KICKED 0\r\nKICKED 0\r\nKICKED 0\r\nBAD_FORMAT\r\n");
    check_script("put 0 5 10 1\r\na\r\nput 0 5 10 1\r\nb\r\nkick 1\r\nkick -1\r\n",
                 "INSERTED 1\r\nINSERTED 2\r\nKICKED 1\r\nKICKED 1\r\n");
    check_script("pause-tube nothere 5\r\npause-tube default 5\r\npause-tube default x\r\n"
                 "pause-tube -x 1\r\nreserve-with-timeout 0\r\n",
                 "NOT_FOUND\r\nPAUSED\r\nBAD_FORMAT\r\nBAD_FORMAT\r\nTIMED_OUT\r\n");
    /* DEADLINE_SOON at once: with ttr 1 the margin starts immediately. */
    check_script("put 0 0 1 1\r\na\r\nreserve\r\nreserve\r\nreserve-with-timeout 5\r\n",
                 "INSERTED 1\r\nRESERVED 1 1\r\na\r\nDEADLINE_SOON\r\nDEADLINE_SOON\r\n");
}

static void test_draining(void **state) {
    world_t *w = *state;
    w->srv.draining = true;
    exchange(w, 0, "put 0 0 10 1\r\na\r\n", "DRAINING\r\n");
    exchange(w, 0, "peek 1\r\n", "NOT_FOUND\r\n");
    w->srv.draining = false;
    exchange(w, 0, "put 0 0 10 1\r\na\r\n", "INSERTED 2\r\n"); /* id 1 was used up */
}

/* ------------------------------------------------------------------ */
/* Waiting reserves                                                     */

static void test_waiting_reserve_woken_by_put(void **state) {
    world_t *w = *state;
    client_open(w, 1);
    client_t *a = &w->cl[0];
    const char *in = "reserve\r\nlist-tube-used\r\n";
    size_t used = bs_conn_feed(a->c, in, strlen(in), w->now);
    /* Only the reserve is consumed: the rest waits its turn. */
    assert_int_equal(used, 9);
    assert_true(bs_conn_waiting(a->c));
    assert_int_equal(bs_conn_feed(a->c, in + used, strlen(in) - used, w->now), 0);
    expect(w, 0, "");
    assert_int_equal(a->wakes, 0);
    assert_int_equal(w->e->count.waiting, 1);
    /* Another connection puts a job. */
    exchange(w, 1, "put 0 0 10 2\r\nhi\r\n", "INSERTED 1\r\n");
    assert_int_equal(a->wakes, 1);
    assert_false(bs_conn_waiting(a->c));
    expect(w, 0, "RESERVED 1 2\r\nhi\r\n");
    assert_int_equal(w->cl[1].wakes, 0);
    /* Resuming the rest of its input. */
    used += bs_conn_feed(a->c, in + used, strlen(in) - used, w->now);
    assert_int_equal(used, strlen(in));
    expect(w, 0, "USING default\r\n");
}

static void test_waiting_reserve_pipelined_through_host(void **state) {
    world_t *w = *state;
    client_open(w, 1);
    send_str(w, 0, "reserve\r\nreserve\r\nlist-tube-used\r\n");
    expect(w, 0, "");
    assert_int_equal(w->cl[0].pending.len, strlen("reserve\r\nlist-tube-used\r\n"));
    exchange(w, 1, "put 0 0 10 1\r\nx\r\n", "INSERTED 1\r\n");
    expect(w, 0, "RESERVED 1 1\r\nx\r\n");
    pump(w, &w->cl[0]); /* after wake the host resumes feeding */
    assert_true(bs_conn_waiting(w->cl[0].c));
    exchange(w, 1, "put 0 0 10 1\r\ny\r\n", "INSERTED 2\r\n");
    assert_int_equal(w->cl[0].wakes, 2);
    pump(w, &w->cl[0]);
    expect(w, 0, "RESERVED 2 1\r\ny\r\nUSING default\r\n");
}

static void test_waiting_reserve_timeout_and_eof(void **state) {
    world_t *w = *state;
    client_t *a = &w->cl[0];
    send_str(w, 0, "reserve-with-timeout 2\r\n");
    assert_true(bs_conn_waiting(a->c));
    assert_int_equal(engine_next_deadline(w->e), w->now + SEC(2));
    engine_tick(w->e, w->now + SEC(2) - 1);
    expect(w, 0, "");
    engine_tick(w->e, w->now + SEC(2));
    assert_int_equal(a->wakes, 1);
    expect(w, 0, "TIMED_OUT\r\n");
    assert_false(bs_conn_waiting(a->c));

    /* EOF while waiting: TIMED_OUT at once. */
    send_str(w, 0, "reserve\r\n");
    assert_true(bs_conn_waiting(a->c));
    bs_conn_eof(a->c);
    expect(w, 0, "TIMED_OUT\r\n");
    assert_false(bs_conn_waiting(a->c));
    assert_int_equal(w->e->count.waiting, 0);
    assert_int_equal(w->e->default_tube->waiting, 0);
    /* A later put does not reach it. */
    client_open(w, 1);
    exchange(w, 1, "put 0 0 10 1\r\nz\r\n", "INSERTED 1\r\n");
    expect(w, 0, "");
    /* EOF when not waiting: nothing. */
    bs_conn_eof(a->c);
    expect(w, 0, "");
    /* reserve-with-timeout -1 waits like reserve. */
    exchange(w, 0, "reserve-with-timeout -1\r\n", "RESERVED 1 1\r\nz\r\n");
    send_str(w, 0, "reserve-with-timeout -1\r\n");
    assert_true(bs_conn_waiting(a->c));
    assert_int_equal(engine_next_deadline(w->e), w->now + SEC(10) - SEC(1));
}

static void test_waiting_deadline_soon(void **state) {
    world_t *w = *state;
    exchange(w, 0, "put 0 0 5 1\r\nq\r\nreserve\r\n", "INSERTED 1\r\nRESERVED 1 1\r\nq\r\n");
    send_str(w, 0, "reserve\r\n");
    assert_true(bs_conn_waiting(w->cl[0].c));
    engine_tick(w->e, w->now + SEC(4));
    expect(w, 0, "DEADLINE_SOON\r\n");
    assert_int_equal(w->cl[0].wakes, 1);
    assert_false(bs_conn_waiting(w->cl[0].c));
}

static void test_conn_free_returns_jobs(void **state) {
    world_t *w = *state;
    client_open(w, 1);
    exchange(w, 0, "put 0 0 10 1\r\na\r\nreserve\r\n", "INSERTED 1\r\nRESERVED 1 1\r\na\r\n");
    send_str(w, 1, "reserve\r\n");
    assert_true(bs_conn_waiting(w->cl[1].c));
    client_close(w, 0);
    assert_int_equal(w->cl[1].wakes, 1);
    expect(w, 1, "RESERVED 1 1\r\na\r\n");
    assert_int_equal(w->srv.cur_conns, 1);
    assert_int_equal(w->srv.total_conns, 2);
    /* Closing a waiting connection. */
    send_str(w, 1, "reserve\r\n");
    client_close(w, 1);
    assert_int_equal(w->e->count.waiting, 0);
    assert_int_equal(w->srv.cur_conns, 0);
}

static void test_conn_free_mid_put(void **state) {
    world_t *w = *state;
    send_str(w, 0, "use mid\r\nput 0 0 10 100\r\nonly part of the body");
    expect(w, 0, "USING mid\r\n");
    assert_non_null(engine_tube_find(w->e, "mid", 3));
    client_close(w, 0);
    /* The half-read job is dropped with its tube reference. */
    assert_null(engine_tube_find(w->e, "mid", 3));
    assert_int_equal(w->e->count.total_jobs, 0);
}

/* ------------------------------------------------------------------ */
/* Back-pressure                                                        */

static void test_out_limit_stops_execution(void **state) {
    world_t *w = *state;
    client_t *a = &w->cl[0];
    w->srv.out_limit = 10;
    const char *in = "list-tube-used\r\nlist-tube-used\r\nlist-tube-used\r\n";
    size_t used = bs_conn_feed(a->c, in, strlen(in), w->now);
    /* One reply (15 bytes >= 10) and execution stops. */
    assert_int_equal(used, 16);
    expect(w, 0, "USING default\r\n");
    used += bs_conn_feed(a->c, in + used, strlen(in) - used, w->now);
    assert_int_equal(used, 32);
    /* Unsent output blocks even a fresh call. */
    assert_int_equal(bs_conn_feed(a->c, in + used, strlen(in) - used, w->now), 0);
    expect(w, 0, "USING default\r\n");
    used += bs_conn_feed(a->c, in + used, strlen(in) - used, w->now);
    assert_int_equal(used, strlen(in));
    expect(w, 0, "USING default\r\n");
    /* A put body in progress is still read under back-pressure: only new
     * command lines wait. */
    w->srv.out_limit = 1;
    const char *put = "put 0 0 10 1\r\n";
    assert_int_equal(bs_conn_feed(a->c, put, strlen(put), w->now), strlen(put));
    assert_true(buf_append(&a->out, "x", 1));
    assert_int_equal(bs_conn_feed(a->c, "a\r\nstats\r\n", 10, w->now), 3);
    expect(w, 0, "xINSERTED 1\r\n");
}

/* ------------------------------------------------------------------ */
/* Stats                                                                */

static const char *const stats_keys[] = {
    "current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved",
    "current-jobs-delayed", "current-jobs-buried", "cmd-put", "cmd-peek", "cmd-peek-ready",
    "cmd-peek-delayed", "cmd-peek-buried", "cmd-reserve", "cmd-reserve-with-timeout",
    "cmd-delete", "cmd-release", "cmd-use", "cmd-watch", "cmd-ignore", "cmd-bury", "cmd-kick",
    "cmd-touch", "cmd-stats", "cmd-stats-job", "cmd-stats-tube", "cmd-list-tubes",
    "cmd-list-tube-used", "cmd-list-tubes-watched", "cmd-pause-tube", "job-timeouts",
    "total-jobs", "max-job-size", "current-tubes", "current-connections", "current-producers",
    "current-workers", "current-waiting", "total-connections", "pid", "version",
    "rusage-utime", "rusage-stime", "uptime", "binlog-oldest-index", "binlog-current-index",
    "binlog-records-migrated", "binlog-records-written", "binlog-max-size", "draining", "id",
    "hostname", "os", "platform",
};
#define NKEYS (sizeof stats_keys / sizeof stats_keys[0])

/* Split an "OK <n>\r\n<yaml>\r\n" reply; checks the framing and returns
 * the YAML body (malloc'd). */
static char *yaml_of(const char *reply, size_t len) {
    unsigned long n = 0;
    int hdr = 0;
    if (sscanf(reply, "OK %lu\r\n%n", &n, &hdr) != 1 || hdr == 0)
        fail_msg("not an OK reply: \"%.40s\"", reply);
    assert_int_equal((size_t)hdr + n + 2, len);
    assert_memory_equal(reply + hdr + n, "\r\n", 2);
    char *y = malloc(n + 1);
    assert_non_null(y);
    memcpy(y, reply + hdr, n);
    y[n] = '\0';
    assert_true(strncmp(y, "---\n", 4) == 0);
    return y;
}

/* The value of key in a YAML dict, or NULL. */
static const char *yaml_get(const char *y, const char *key, char *val, size_t cap) {
    size_t kl = strlen(key);
    for (const char *p = y + 4; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if ((size_t)(nl - p) > kl + 1 && memcmp(p, key, kl) == 0 && p[kl] == ':' &&
            p[kl + 1] == ' ') {
            size_t vl = (size_t)(nl - p) - kl - 2;
            assert_true(vl < cap);
            memcpy(val, p + kl + 2, vl);
            val[vl] = '\0';
            return val;
        }
        p = nl + 1;
    }
    return NULL;
}

static void expect_key(const char *y, const char *key, const char *want) {
    char v[128];
    const char *got = yaml_get(y, key, v, sizeof v);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", key, got ? got : "(absent)", want);
}

static char *stats_yaml(world_t *w, int i) {
    send_str(w, i, "stats\r\n");
    size_t len;
    char *r = take(w, i, &len);
    char *y = yaml_of(r, len);
    free(r);
    return y;
}

static void fake_host_stats(void *ctx, bs_host_stats_t *h) {
    (void)ctx;
    h->utime_sec = 1;
    h->utime_usec = 2;
    h->stime_sec = 30;
    h->stime_usec = 400000;
    h->binlog_oldest_index = 5;
    h->binlog_current_index = 6;
    h->binlog_records_migrated = 7;
    h->binlog_records_written = 8;
    h->binlog_max_size = 10485760;
}

static void test_stats_fresh(void **state) {
    world_t *w = *state;
    w->srv.version = "1.12";
    w->srv.pid = 4242;
    w->srv.hostname = "host";
    w->srv.os = "os";
    w->srv.platform = "plat";
    char *y = stats_yaml(w, 0);
    /* Every key, in beanstalkd's order, each once, and nothing else. */
    const char *p = y + 4;
    for (size_t k = 0; k < NKEYS; k++) {
        size_t kl = strlen(stats_keys[k]);
        if (strncmp(p, stats_keys[k], kl) != 0 || p[kl] != ':' || p[kl + 1] != ' ')
            fail_msg("key %zu: expected \"%s\" at \"%.30s\"", k, stats_keys[k], p);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_string_equal(p, "");
    for (size_t k = 0; k < NKEYS; k++) {
        if (strncmp(stats_keys[k], "cmd-", 4) == 0)
            expect_key(y, stats_keys[k], strcmp(stats_keys[k], "cmd-stats") ? "0" : "1");
    }
    expect_key(y, "current-tubes", "1");
    expect_key(y, "current-connections", "1");
    expect_key(y, "total-connections", "1");
    expect_key(y, "current-producers", "0");
    expect_key(y, "current-workers", "0");
    expect_key(y, "current-waiting", "0");
    expect_key(y, "uptime", "0");
    expect_key(y, "draining", "false");
    expect_key(y, "max-job-size", "65535");
    expect_key(y, "total-jobs", "0");
    expect_key(y, "job-timeouts", "0");
    expect_key(y, "version", "\"1.12\"");
    expect_key(y, "pid", "4242");
    expect_key(y, "rusage-utime", "0.000000");
    expect_key(y, "binlog-oldest-index", "0");
    expect_key(y, "binlog-records-written", "0");
    expect_key(y, "hostname", "host");
    expect_key(y, "id", "0000000000000000");
    free(y);
}

static void test_stats_counts(void **state) {
    world_t *w = *state;
    client_open(w, 1);
    client_open(w, 2);
    w->srv.host_stats = fake_host_stats;
    w->srv.draining = false;
    /* Producers: connections that put; workers: that reserved. */
    exchange(w, 1, "put 1000 0 10 1\r\na\r\nput 2000 0 10 1\r\nb\r\nput 0 9 10 1\r\nc\r\n",
             "INSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\n");
    exchange(w, 2, "reserve\r\n", "RESERVED 1 1\r\na\r\n");
    send_str(w, 0, "put 0 0 10\r\n");                /* not counted */
    send_str(w, 0, "put 0 0 10 1 x\r\n");            /* counted */
    send_str(w, 0, "put 0 0 10 70000\r\n");          /* counted, discarding */
    expect(w, 0, "BAD_FORMAT\r\nBAD_FORMAT\r\n");
    char *junk = calloc(1, 70002);
    assert_non_null(junk);
    deliver(w, 0, junk, 70002);
    free(junk);
    expect(w, 0, "JOB_TOO_BIG\r\n");
    w->now += MS(1);
    static const char job1[] = "---\nid: 1\ntube: default\nstate: reserved\npri: 1000\nage: 0\n"
                               "delay: 0\nttr: 10\ntime-left: 9\nfile: 0\nreserves: 1\n"
                               "timeouts: 0\nreleases: 0\nburies: 0\nkicks: 0\n";
    char want[400];
    snprintf(want, sizeof want, "BAD_FORMAT\r\nOK %zu\r\n%s\r\n", strlen(job1), job1);
    exchange(w, 0, "stats-job x\r\nstats-job 1\r\n", want);
    send_str(w, 0, "peek 1\r\npeek-ready\r\npeek-delayed\r\npeek-buried\r\nuse a\r\nwatch a\r\n"
                   "ignore a\r\nlist-tubes\r\nlist-tube-used\r\nlist-tubes-watched\r\n"
                   "pause-tube a 1\r\nstats-tube a\r\nkick 1\r\ntouch 1\r\ndelete 99\r\n"
                   "release 99 0 0\r\nbury 99 0\r\nreserve-with-timeout 0\r\n");
    free(take(w, 0, NULL));
    w->now += SEC(3);
    char *y = stats_yaml(w, 0);
    expect_key(y, "cmd-put", "5");
    expect_key(y, "cmd-peek", "1");
    expect_key(y, "cmd-peek-ready", "1");
    expect_key(y, "cmd-peek-delayed", "1");
    expect_key(y, "cmd-peek-buried", "1");
    expect_key(y, "cmd-reserve", "1");
    expect_key(y, "cmd-reserve-with-timeout", "1");
    expect_key(y, "cmd-delete", "1");
    expect_key(y, "cmd-release", "1");
    expect_key(y, "cmd-use", "1");
    expect_key(y, "cmd-watch", "1");
    expect_key(y, "cmd-ignore", "1");
    expect_key(y, "cmd-bury", "1");
    expect_key(y, "cmd-kick", "1");
    expect_key(y, "cmd-touch", "1");
    expect_key(y, "cmd-stats", "1");
    expect_key(y, "cmd-stats-job", "1");
    expect_key(y, "cmd-stats-tube", "1");
    expect_key(y, "cmd-list-tubes", "1");
    expect_key(y, "cmd-list-tube-used", "1");
    expect_key(y, "cmd-list-tubes-watched", "1");
    expect_key(y, "cmd-pause-tube", "1");
    /* Client 0's reserve-with-timeout 0 took job 2. */
    expect_key(y, "current-jobs-urgent", "0");
    expect_key(y, "current-jobs-ready", "0");
    expect_key(y, "current-jobs-reserved", "2");
    expect_key(y, "current-jobs-delayed", "1");
    expect_key(y, "current-jobs-buried", "0");
    expect_key(y, "total-jobs", "3");
    expect_key(y, "current-tubes", "2");
    expect_key(y, "current-connections", "3");
    expect_key(y, "total-connections", "3");
    expect_key(y, "current-producers", "1"); /* bad puts do not count */
    expect_key(y, "current-workers", "2");   /* reserve-with-timeout counts */
    expect_key(y, "uptime", "3");
    expect_key(y, "rusage-utime", "1.000002");
    expect_key(y, "rusage-stime", "30.400000");
    expect_key(y, "binlog-oldest-index", "5");
    expect_key(y, "binlog-current-index", "6");
    expect_key(y, "binlog-records-migrated", "7");
    expect_key(y, "binlog-records-written", "8");
    expect_key(y, "binlog-max-size", "10485760");
    free(y);
    /* Timeouts and waiting. Jobs 1 and 2 (TTR 10 from T0) time out, job
     * 3 comes out of its delay. */
    w->now += SEC(20);
    engine_tick(w->e, w->now);
    exchange(w, 1, "watch w\r\nignore default\r\nreserve\r\n", "WATCHING 2\r\nWATCHING 1\r\n");
    assert_true(bs_conn_waiting(w->cl[1].c));
    y = stats_yaml(w, 0);
    expect_key(y, "job-timeouts", "2");
    expect_key(y, "current-jobs-ready", "3");
    expect_key(y, "current-jobs-urgent", "2");
    expect_key(y, "current-jobs-reserved", "0");
    expect_key(y, "current-waiting", "1");
    expect_key(y, "current-producers", "1");
    expect_key(y, "current-workers", "3");
    free(y);
    client_close(w, 1);
    client_close(w, 2);
    y = stats_yaml(w, 0);
    expect_key(y, "current-connections", "1");
    expect_key(y, "total-connections", "3");
    expect_key(y, "current-producers", "0");
    expect_key(y, "current-workers", "1");
    expect_key(y, "current-waiting", "0");
    free(y);
    w->srv.draining = true;
    y = stats_yaml(w, 0);
    expect_key(y, "draining", "true");
    free(y);
}

static void test_stats_job(void **state) {
    world_t *w = *state;
    char want[512], body[400];
    exchange(w, 0, "put 3 7 0 2\r\nhi\r\n", "INSERTED 1\r\n");
    w->now += MS(2500);
    snprintf(body, sizeof body,
             "---\nid: 1\ntube: default\nstate: delayed\npri: 3\nage: 2\ndelay: 7\nttr: 1\n"
             "time-left: 4\nfile: 0\nreserves: 0\ntimeouts: 0\nreleases: 0\nburies: 0\n"
             "kicks: 0\n");
    snprintf(want, sizeof want, "OK %zu\r\n%s\r\n", strlen(body), body);
    exchange(w, 0, "stats-job 1\r\n", want);
    /* Kicked: ready, and the delay is kept. */
    exchange(w, 0, "kick 1\r\n", "KICKED 1\r\n");
    snprintf(body, sizeof body,
             "---\nid: 1\ntube: default\nstate: ready\npri: 3\nage: 2\ndelay: 7\nttr: 1\n"
             "time-left: 0\nfile: 0\nreserves: 0\ntimeouts: 0\nreleases: 0\nburies: 0\n"
             "kicks: 1\n");
    snprintf(want, sizeof want, "OK %zu\r\n%s\r\n", strlen(body), body);
    exchange(w, 0, "stats-job 1\r\n", want);
    exchange(w, 0, "reserve\r\nbury 1 9\r\n", "RESERVED 1 2\r\nhi\r\nBURIED\r\n");
    snprintf(body, sizeof body,
             "---\nid: 1\ntube: default\nstate: buried\npri: 9\nage: 2\ndelay: 7\nttr: 1\n"
             "time-left: 0\nfile: 0\nreserves: 1\ntimeouts: 0\nreleases: 0\nburies: 1\n"
             "kicks: 1\n");
    snprintf(want, sizeof want, "OK %zu\r\n%s\r\n", strlen(body), body);
    exchange(w, 0, "stats-job 1\r\n", want);
    exchange(w, 0, "stats-job 2\r\n", "NOT_FOUND\r\n");
}

static void test_stats_tube(void **state) {
    world_t *w = *state;
    char want[600], body[500];
    exchange(w, 0, "stats-tube nothere\r\nstats-tube \r\n", "NOT_FOUND\r\nBAD_FORMAT\r\n");
    exchange(w, 0, "put 1023 0 10 1\r\na\r\nput 1024 0 10 1\r\nb\r\nput 0 5 10 1\r\nc\r\n",
             "INSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\n");
    exchange(w, 0, "delete 2\r\npause-tube default 10\r\n", "DELETED\r\nPAUSED\r\n");
    w->now += MS(3500);
    snprintf(body, sizeof body,
             "---\nname: default\ncurrent-jobs-urgent: 1\ncurrent-jobs-ready: 1\n"
             "current-jobs-reserved: 0\ncurrent-jobs-delayed: 1\ncurrent-jobs-buried: 0\n"
             "total-jobs: 3\ncurrent-using: 1\ncurrent-watching: 1\ncurrent-waiting: 0\n"
             "cmd-delete: 1\ncmd-pause-tube: 1\npause: 10\npause-time-left: 6\n");
    snprintf(want, sizeof want, "OK %zu\r\n%s\r\n", strlen(body), body);
    exchange(w, 0, "stats-tube default\r\n", want);
    /* After the pause ends: pause 0, pause-time-left 0. */
    w->now += SEC(7);
    engine_tick(w->e, w->now);
    snprintf(body, sizeof body,
             "---\nname: default\ncurrent-jobs-urgent: 2\ncurrent-jobs-ready: 2\n"
             "current-jobs-reserved: 0\ncurrent-jobs-delayed: 0\ncurrent-jobs-buried: 0\n"
             "total-jobs: 3\ncurrent-using: 1\ncurrent-watching: 1\ncurrent-waiting: 0\n"
             "cmd-delete: 1\ncmd-pause-tube: 1\npause: 0\npause-time-left: 0\n");
    snprintf(want, sizeof want, "OK %zu\r\n%s\r\n", strlen(body), body);
    exchange(w, 0, "stats-tube default\r\n", want);
}

/* checklist: touch -> "time-left back to ttr - 1 when read within the same
 * second". beanstalkd 1.12 reads its clock afresh for every reply, so a
 * stats-job (or stats-tube) read right after a reserve, touch, delayed
 * put or pause-tube always shows one second less than the full length:
 * ttr 10 -> time-left 9. Here the commands arrive in one read and so
 * share one `now`, as they do in deferd when pipelined. */
/* The value of key in the YAML body of the reply to cmd (malloc'd). */
static char *query_key(world_t *w, const char *cmd, const char *key) {
    send_str(w, 0, cmd);
    size_t len;
    char *r = take(w, 0, &len);
    char *y = yaml_of(r, len);
    free(r);
    char v[64];
    const char *got = yaml_get(y, key, v, sizeof v);
    free(y);
    assert_non_null(got);
    return strdup(got);
}

static void test_time_left_read_in_the_same_instant(void **state) {
    world_t *w = *state;
    char msg[600];
    size_t n = 0;
    msg[0] = '\0';
    exchange(w, 0, "put 0 0 10 1\r\na\r\nreserve\r\n", "INSERTED 1\r\nRESERVED 1 1\r\na\r\n");
    char *v = query_key(w, "stats-job 1\r\n", "time-left");
    if (strcmp(v, "9") != 0)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "\n  right after reserve (ttr 10): time-left %s, want 9", v);
    free(v);
    w->now += MS(1500);
    exchange(w, 0, "touch 1\r\n", "TOUCHED\r\n");
    v = query_key(w, "stats-job 1\r\n", "time-left");
    if (strcmp(v, "9") != 0)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "\n  right after touch (ttr 10): time-left %s, want 9", v);
    free(v);
    exchange(w, 0, "put 0 5 10 1\r\nb\r\n", "INSERTED 2\r\n");
    v = query_key(w, "stats-job 2\r\n", "time-left");
    if (strcmp(v, "4") != 0)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "\n  right after put with delay 5: time-left %s, want 4", v);
    free(v);
    exchange(w, 0, "pause-tube default 5\r\n", "PAUSED\r\n");
    v = query_key(w, "stats-tube default\r\n", "pause-time-left");
    if (strcmp(v, "4") != 0)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "\n  right after pause-tube 5: pause-time-left %s, want 4", v);
    free(v);
    /* A moment later both agree. */
    w->now += MS(1);
    v = query_key(w, "stats-job 1\r\n", "time-left");
    assert_string_equal(v, "9");
    free(v);
    if (n)
        fail_msg("beanstalkd 1.12 reports one second less than deferd:%s", msg);
}

/* current-workers counts connections that reserved. A reserve-job that
 * finds nothing reserved nothing: beanstalkd 1.12 marks the connection a
 * worker only once the job is found (prot.c, OP_RESERVE_JOB calls
 * connsetworker after its NOT_FOUND checks). */
static void test_reserve_job_not_found_is_not_a_worker(void **state) {
    world_t *w = *state;
    exchange(w, 0, "reserve-job 99\r\n", "NOT_FOUND\r\n");
    char *y = stats_yaml(w, 0);
    char v[32];
    const char *got = yaml_get(y, "current-workers", v, sizeof v);
    free(y);
    assert_non_null(got);
    if (strcmp(got, "0") != 0)
        fail_msg("current-workers is %s after a reserve-job answered NOT_FOUND; beanstalkd "
                 "1.12 counts a connection as a worker only when reserve-job found the job",
                 got);
    exchange(w, 0, "put 0 0 10 1\r\na\r\nreserve-job 1\r\n", "INSERTED 1\r\nRESERVED 1 1\r\na\r\n");
    y = stats_yaml(w, 0);
    expect_key(y, "current-workers", "1");
    free(y);
}

static void test_ttr_zero_becomes_one(void **state) {
    world_t *w = *state;
    exchange(w, 0, "put 0 0 0 1\r\na\r\n", "INSERTED 1\r\n");
    send_str(w, 0, "stats-job 1\r\n");
    size_t len;
    char *r = take(w, 0, &len);
    char *y = yaml_of(r, len);
    expect_key(y, "ttr", "1");
    free(y);
    free(r);
}

#define WT(t) cmocka_unit_test_setup_teardown(t, w_setup, w_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_reserve_delete),
        cmocka_unit_test(test_binary_body),
        cmocka_unit_test(test_job_too_big),
        WT(test_job_too_big_default_limit),
        cmocka_unit_test(test_bad_format_put_keeps_body),
        cmocka_unit_test(test_expected_crlf),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_crlf_around_the_limit),
        cmocka_unit_test(test_framing_odd_lines),
        cmocka_unit_test(test_quit),
        WT(test_quit_stops_consuming),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_tube_commands),
        cmocka_unit_test(test_peek_commands),
        cmocka_unit_test(test_worker_commands),
        WT(test_draining),
        WT(test_waiting_reserve_woken_by_put),
        WT(test_waiting_reserve_pipelined_through_host),
        WT(test_waiting_reserve_timeout_and_eof),
        WT(test_waiting_deadline_soon),
        WT(test_conn_free_returns_jobs),
        WT(test_conn_free_mid_put),
        WT(test_out_limit_stops_execution),
        WT(test_stats_fresh),
        WT(test_stats_counts),
        WT(test_stats_job),
        WT(test_stats_tube),
        WT(test_ttr_zero_becomes_one),
        WT(test_reserve_job_not_found_is_not_a_worker),
        WT(test_time_left_read_in_the_same_instant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
