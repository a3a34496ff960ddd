/* fuzz_fcgi_proto.c - libFuzzer harness for the FastCGI decoder and the
 * CGI response head parser (dispatch/fcgi_proto.c).
 *
 * The input is what a FastCGI application (php-fpm) sends back on one
 * connection, as deferd reads it. The seeds are real php-fpm 8.2
 * responses, captured byte for byte from a unix socket: success, 500, an
 * uncaught exception, a fatal error after flushed output, a missing
 * script, a redirect, output in many flushed records, many log messages,
 * display_errors on, and a worker killed mid-response. Checks, besides the
 * sanitizers (the input is exactly `size` bytes, so any overread is
 * caught):
 *   - the decoder gives the same STDOUT, STDERR, END_REQUEST and error
 *     however the input is cut: whole, byte by byte, and in pieces whose
 *     sizes come from the input itself;
 *   - it never consumes more than it is given, always makes progress until
 *     END or an error, and hands out stream data from inside the piece;
 *   - once an error is reported it stays failed;
 *   - what it decoded, encoded again with the encoders, decodes to the
 *     same streams and END_REQUEST (a round trip through both halves);
 *   - the head parser, on the decoded STDOUT and on the raw input: a head
 *     ends inside the input, its status is 100-999, bytes after the head
 *     do not change it, a cut inside the head is PARTIAL, BAD says why;
 *   - the pair decoder stays inside the input, and a pair it decoded,
 *     encoded again, decodes to the same name and value.
 *
 * Built by fuzz/run.sh with libFuzzer, or with fuzz/replay_main.c to
 * replay the corpus without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/fcgi_proto.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_fcgi_proto: invariant failed at %s:%d: %s\n", __FILE__,         \
                    __LINE__, #cond);                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct result {
    buf_t out, err;
    int end; /* 0 none, 1 END_REQUEST, 2 error */
    uint32_t app_status;
    uint8_t protocol_status;
    size_t consumed;
    char error[sizeof ((fcgi_decoder_t *)0)->error];
} result_t;

static void result_init(result_t *r) {
    memset(r, 0, sizeof *r);
    buf_init(&r->out);
    buf_init(&r->err);
}

static void result_free(result_t *r) {
    buf_free(&r->out);
    buf_free(&r->err);
}

/* Feed p[0..n) as one read; stops at END or an error, as the target does. */
static void feed(fcgi_decoder_t *d, result_t *r, const uint8_t *p, size_t n) {
    while (!r->end) {
        fcgi_event_t ev;
        size_t used = fcgi_decode(d, p, n, &ev);
        CHECK(used <= n);
        if (ev.type == FCGI_EV_STDOUT || ev.type == FCGI_EV_STDERR) {
            CHECK(ev.len > 0 && ev.data >= p && ev.data + ev.len == p + used);
            CHECK(buf_append(ev.type == FCGI_EV_STDOUT ? &r->out : &r->err, ev.data, ev.len));
        }
        r->consumed += used;
        p += used;
        n -= used;
        switch (ev.type) {
        case FCGI_EV_NONE:
            CHECK(n == 0); /* nothing to say means the read is used up */
            return;
        case FCGI_EV_STDOUT:
        case FCGI_EV_STDERR:
            break;
        case FCGI_EV_END:
            CHECK(fcgi_decoder_ended(d));
            r->end = 1;
            r->app_status = ev.app_status;
            r->protocol_status = ev.protocol_status;
            break;
        case FCGI_EV_ERROR:
            CHECK(ev.error && ev.error[0]);
            CHECK(strlen(ev.error) < sizeof r->error);
            memcpy(r->error, ev.error, strlen(ev.error) + 1);
            r->end = 2;
            /* Failed for good. */
            fcgi_event_t again;
            CHECK(fcgi_decode(d, p, n, &again) == 0 && again.type == FCGI_EV_ERROR);
            break;
        default:
            CHECK(!"an event type that does not exist");
        }
        if (!n)
            return;
    }
}

/* Decode in pieces: sizes[k] bytes each, cycling; nsizes 0 means whole. */
static void decode(const uint8_t *data, size_t size, const uint8_t *sizes, size_t nsizes,
                   result_t *r) {
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, 1);
    result_init(r);
    if (!nsizes) {
        feed(&d, r, data, size);
        return;
    }
    size_t off = 0, k = 0;
    while (off < size && !r->end) {
        size_t n = sizes[k++ % nsizes];
        if (n > size - off)
            n = size - off;
        feed(&d, r, data + off, n);
        off += n;
    }
}

static void same(const result_t *a, const result_t *b) {
    CHECK(a->end == b->end);
    CHECK(a->out.len == b->out.len);
    CHECK(memcmp(buf_head(&a->out), buf_head(&b->out), a->out.len) == 0);
    CHECK(a->err.len == b->err.len);
    CHECK(memcmp(buf_head(&a->err), buf_head(&b->err), a->err.len) == 0);
    CHECK(a->app_status == b->app_status && a->protocol_status == b->protocol_status);
    CHECK(strcmp(a->error, b->error) == 0);
    CHECK(a->consumed == b->consumed);
}

static void check_head(const char *p, size_t n) {
    /* An exact-size copy, so that reading past n is caught. */
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    fcgi_head_t h;
    fcgi_head_result_t r = fcgi_parse_head(copy, n, &h);
    CHECK(r == FCGI_HEAD_OK || r == FCGI_HEAD_PARTIAL || r == FCGI_HEAD_BAD);
    if (r == FCGI_HEAD_OK) {
        CHECK(h.head_len >= 1 && h.head_len <= n);
        CHECK(copy[h.head_len - 1] == '\n');
        CHECK(h.status >= 100 && h.status <= 999);
        if (!h.has_status)
            CHECK(h.status == (h.has_location ? 302 : 200));
        /* The bytes after the head change nothing. */
        fcgi_head_t h2;
        CHECK(fcgi_parse_head(copy, h.head_len, &h2) == FCGI_HEAD_OK);
        CHECK(h2.status == h.status && h2.head_len == h.head_len);
        /* A cut inside the head is only partial. */
        CHECK(fcgi_parse_head(copy, h.head_len - 1, &h2) == FCGI_HEAD_PARTIAL);
        CHECK(fcgi_parse_head(copy, h.head_len / 2, &h2) == FCGI_HEAD_PARTIAL);
    } else if (r == FCGI_HEAD_BAD) {
        CHECK(h.error && h.error[0]);
    }
    free(copy);
}

/* Encode what was decoded and decode it again. */
static void round_trip(const result_t *r) {
    buf_t b;
    buf_init(&b);
    CHECK(fcgi_put_stream(&b, FCGI_STDERR, 1, buf_head(&r->err), r->err.len, false));
    CHECK(fcgi_put_stream(&b, FCGI_STDOUT, 1, buf_head(&r->out), r->out.len, true));
    CHECK(fcgi_put_end_request(&b, 1, r->app_status, r->protocol_status));
    result_t again;
    decode((const uint8_t *)buf_head(&b), b.len, NULL, 0, &again);
    CHECK(again.end == 1 && again.consumed == b.len);
    CHECK(again.out.len == r->out.len &&
          memcmp(buf_head(&again.out), buf_head(&r->out), r->out.len) == 0);
    CHECK(again.err.len == r->err.len &&
          memcmp(buf_head(&again.err), buf_head(&r->err), r->err.len) == 0);
    CHECK(again.app_status == r->app_status && again.protocol_status == r->protocol_status);
    result_free(&again);
    buf_free(&b);
}

/* The PARAMS stream of the pairs p[0..n): records of at most FCGI_CHUNK
 * bytes padded to 8, each holding whole pairs (none is larger than a
 * record here), ending with an empty record, carrying exactly p. */
static void check_params(const uint8_t *p, size_t n) {
    buf_t b;
    buf_init(&b);
    CHECK(fcgi_put_params(&b, 1, p, n));
    const uint8_t *r = (const uint8_t *)buf_head(&b);
    size_t at = 0, carried = 0;
    bool ended = false;
    while (at < b.len) {
        CHECK(!ended);
        CHECK(b.len - at >= FCGI_HEADER_LEN);
        size_t len = (size_t)r[at + 4] << 8 | r[at + 5], pad = r[at + 6];
        CHECK(r[at] == FCGI_VERSION_1 && r[at + 1] == FCGI_PARAMS && r[at + 2] == 0 &&
              r[at + 3] == 1);
        CHECK(len <= FCGI_CHUNK && (len + pad) % 8 == 0 && pad < 8);
        CHECK(b.len - at - FCGI_HEADER_LEN >= len + pad);
        const uint8_t *c = r + at + FCGI_HEADER_LEN;
        CHECK(carried + len <= n && memcmp(c, p + carried, len) == 0);
        for (size_t off = 0; off < len;) {
            fcgi_pair_t pr;
            size_t k = fcgi_pair_decode(c + off, len - off, &pr);
            CHECK(k > 0);
            off += k;
        }
        carried += len;
        ended = len == 0;
        at += FCGI_HEADER_LEN + len + pad;
    }
    CHECK(ended && carried == n);
    buf_free(&b);
}

static void check_pairs(const uint8_t *data, size_t size) {
    size_t off = 0;
    while (off < size) {
        fcgi_pair_t pr;
        size_t n = fcgi_pair_decode(data + off, size - off, &pr);
        if (!n)
            break;
        CHECK(n <= size - off);
        CHECK(pr.name >= data + off && pr.name + pr.name_len <= data + size);
        CHECK(pr.value == pr.name + pr.name_len && pr.value + pr.value_len == data + off + n);
        buf_t b;
        buf_init(&b);
        CHECK(fcgi_put_pair(&b, pr.name, pr.name_len, pr.value, pr.value_len));
        fcgi_pair_t p2;
        CHECK(fcgi_pair_decode((const uint8_t *)buf_head(&b), b.len, &p2) == b.len);
        CHECK(p2.name_len == pr.name_len && p2.value_len == pr.value_len);
        CHECK(memcmp(p2.name, pr.name, pr.name_len) == 0);
        CHECK(memcmp(p2.value, pr.value, pr.value_len) == 0);
        CHECK(b.len <= n); /* the encoder never uses more bytes */
        buf_free(&b);
        off += n;
    }
    check_params(data, off);
}

/* After END_REQUEST only its padding may follow: the decoder takes at most
 * that, then reports an error and stays failed. */
static void check_after_end(const uint8_t *data, size_t size, const result_t *r) {
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, 1);
    fcgi_event_t ev;
    size_t at = 0;
    while (at < size) {
        size_t used = fcgi_decode(&d, data + at, size - at, &ev);
        CHECK(used <= size - at);
        at += used;
        if (ev.type == FCGI_EV_END || ev.type == FCGI_EV_ERROR)
            break;
    }
    CHECK(ev.type == FCGI_EV_END && at == r->consumed);
    size_t extra = 0;
    while (at < size) {
        size_t used = fcgi_decode(&d, data + at, 1, &ev);
        at += used;
        if (ev.type == FCGI_EV_ERROR) {
            CHECK(used == 0);
            break;
        }
        CHECK(used == 1 && ev.type == FCGI_EV_NONE && ++extra <= 255);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    result_t whole, bytewise, pieces;
    decode(data, size, NULL, 0, &whole);
    static const uint8_t one[] = {1};
    decode(data, size, one, 1, &bytewise);
    same(&whole, &bytewise);
    /* Piece sizes from the input: 1-64 bytes, or a big piece. */
    uint8_t sizes[16];
    size_t ns = 0;
    for (size_t i = 0; i < size && ns < sizeof sizes; i += 1 + size / 17) {
        uint8_t s = data[i];
        sizes[ns++] = (uint8_t)(s & 0x80 ? 255 : 1 + (s & 0x3f));
    }
    if (ns) {
        decode(data, size, sizes, ns, &pieces);
        same(&whole, &pieces);
        result_free(&pieces);
    }
    CHECK(whole.consumed <= size);
    if (whole.end == 1) {
        round_trip(&whole);
        check_after_end(data, size, &whole);
    }
    check_head(buf_head(&whole.out), whole.out.len);
    check_head((const char *)data, size);
    check_pairs(data, size);
    result_free(&whole);
    result_free(&bytewise);
    return 0;
}
