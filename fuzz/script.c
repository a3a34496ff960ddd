/* script.c - see script.h. */
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    const script_ops_t *ops;
    void *ctx;
    uint64_t counter; /* for ~# */
    uint8_t *last;    /* the last chunk, unexpanded */
    size_t last_len;
} run_t;

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "script: out of memory\n");
        abort();
    }
    return p;
}

/* A chunk is kept as the script wrote it, with "~~" for '~' and "~#" for
 * the counter; this makes the bytes to send. */
static bool deliver(run_t *r, const uint8_t *t, size_t n) {
    size_t cap = n * 10 + 1, len = 0;
    uint8_t *out = must(malloc(cap));
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '~' && i + 1 < n && t[i + 1] == '#') {
            len += (size_t)snprintf((char *)out + len, cap - len, "%llu",
                                    (unsigned long long)r->counter++);
            i++;
        } else if (t[i] == '~') {
            out[len++] = '~';
            i++;
        } else {
            out[len++] = t[i];
        }
    }
    bool more = r->ops->deliver(r->ctx, out, len);
    free(out);
    return more;
}

static void flush(run_t *r, const uint8_t *chunk, size_t *len) {
    if (!*len)
        return;
    deliver(r, chunk, *len);
    r->last = must(realloc(r->last, *len));
    memcpy(r->last, chunk, *len);
    r->last_len = *len;
    *len = 0;
}

void script_run(const uint8_t *data, size_t size, const char *arg_ops, const script_ops_t *ops,
                void *ctx, size_t *step) {
    run_t r = {.ops = ops, .ctx = ctx, .counter = 1};
    uint8_t *chunk = must(malloc(size + 1));
    size_t clen = 0, i = 0;
    while (i < size) {
        uint8_t b = data[i++];
        if (b != '~') {
            chunk[clen++] = b;
            continue;
        }
        if (i >= size)
            break;
        uint8_t op = data[i++];
        if (op == '~' || op == '#') {
            chunk[clen++] = '~';
            chunk[clen++] = op;
            continue;
        }
        uint8_t arg = 0;
        if (op && strchr(arg_ops, op) && i < size)
            arg = data[i++];
        flush(&r, chunk, &clen);
        (*step)++;
        ops->control(ctx, op, arg);
        if (op == 'c')
            r.counter = arg;
        else if (op == 'R')
            for (unsigned k = 0; k <= arg && r.last_len && deliver(&r, r.last, r.last_len); k++)
                ;
    }
    flush(&r, chunk, &clen);
    free(r.last);
    free(chunk);
}

void script_digest_engine(script_digest_t *d, const engine_t *e) {
    d->next_id = e->next_id;
    d->ready = e->count.ready;
    d->delayed = e->count.delayed;
    d->buried = e->count.buried;
    d->reserved = e->count.reserved;
    d->total_jobs = e->count.total_jobs;
}

void script_run_twice(const char *who, const uint8_t *data, size_t size, int nconns,
                      script_run_fn run, bool trace) {
    script_digest_t split = {0}, whole = {0};
    run(data, size, false, &split);
    if (!split.split_used || split.truncated)
        return;
    if (trace)
        fprintf(stderr, "== the same script with whole reads\n");
    run(data, size, true, &whole);
    if (whole.truncated)
        return;
    for (int k = 0; k < nconns && k < SCRIPT_MAX_CONNS; k++) {
        if (split.out_hash[k] != whole.out_hash[k] || split.out_total[k] != whole.out_total[k]) {
            fprintf(stderr,
                    "%s: connection %d answered differently when its input came in pieces (%llu "
                    "bytes of output) than in whole reads (%llu bytes); run with FUZZ_TRACE=1 to "
                    "compare\n",
                    who, k, (unsigned long long)split.out_total[k],
                    (unsigned long long)whole.out_total[k]);
            abort();
        }
    }
    if (split.next_id != whole.next_id || split.ready != whole.ready ||
        split.delayed != whole.delayed || split.buried != whole.buried ||
        split.reserved != whole.reserved || split.total_jobs != whole.total_jobs) {
        fprintf(stderr,
                "%s: the engine ended differently when the input came in pieces than in whole "
                "reads (next id %llu/%llu, ready %llu/%llu, total %llu/%llu)\n",
                who, (unsigned long long)split.next_id, (unsigned long long)whole.next_id,
                (unsigned long long)split.ready, (unsigned long long)whole.ready,
                (unsigned long long)split.total_jobs, (unsigned long long)whole.total_jobs);
        abort();
    }
}
