/* fcgi_proto.c - FastCGI records, name-value pairs and the CGI response
 * head (see fcgi_proto.h).
 *
 * The decoder never buffers content: stream data is handed out as slices
 * of the caller's input, and only a record header or an END_REQUEST body
 * (8 bytes each) is gathered across calls, so its memory is constant
 * whatever the application sends. Every length read off the wire is
 * checked against what is left before it is used. */
#include "dispatch/fcgi_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Decoder states. */
enum {
    DS_HEADER,  /* gathering a record header */
    DS_CONTENT, /* STDOUT/STDERR content, handed out as it comes */
    DS_SKIP,    /* content of a record we ignore */
    DS_ENDBODY, /* gathering the 8-byte END_REQUEST body */
    DS_PADDING, /* padding after a record */
    DS_DONE,    /* END_REQUEST seen; only its padding may follow */
    DS_FAILED,
};

void fcgi_record_header(uint8_t hdr[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
                        uint16_t content_len, uint8_t padding_len) {
    hdr[0] = FCGI_VERSION_1;
    hdr[1] = type;
    hdr[2] = (uint8_t)(request_id >> 8);
    hdr[3] = (uint8_t)request_id;
    hdr[4] = (uint8_t)(content_len >> 8);
    hdr[5] = (uint8_t)content_len;
    hdr[6] = padding_len;
    hdr[7] = 0;
}

uint8_t fcgi_padding(size_t content_len) {
    return (uint8_t)((8 - content_len % 8) % 8);
}

bool fcgi_put_record(buf_t *out, uint8_t type, uint16_t request_id, const void *content,
                     size_t len) {
    static const uint8_t zeros[8];
    if (len > FCGI_MAX_CONTENT)
        return false;
    uint8_t pad = fcgi_padding(len);
    uint8_t hdr[FCGI_HEADER_LEN];
    fcgi_record_header(hdr, type, request_id, (uint16_t)len, pad);
    if (!buf_reserve(out, FCGI_HEADER_LEN + len + pad))
        return false;
    return buf_append(out, hdr, sizeof hdr) && buf_append(out, content, len) &&
           buf_append(out, zeros, pad);
}

bool fcgi_put_begin_request(buf_t *out, uint16_t request_id, uint16_t role, uint8_t flags) {
    uint8_t body[8] = {(uint8_t)(role >> 8), (uint8_t)role, flags, 0, 0, 0, 0, 0};
    return fcgi_put_record(out, FCGI_BEGIN_REQUEST, request_id, body, sizeof body);
}

bool fcgi_put_end_request(buf_t *out, uint16_t request_id, uint32_t app_status,
                          uint8_t protocol_status) {
    uint8_t body[8] = {(uint8_t)(app_status >> 24),
                       (uint8_t)(app_status >> 16),
                       (uint8_t)(app_status >> 8),
                       (uint8_t)app_status,
                       protocol_status,
                       0,
                       0,
                       0};
    return fcgi_put_record(out, FCGI_END_REQUEST, request_id, body, sizeof body);
}

/* A length in the pair encoding: one byte below 128, else four bytes with
 * the top bit set. Returns the bytes written to p. */
static size_t pair_len_encode(uint8_t *p, size_t n) {
    if (n < 128) {
        p[0] = (uint8_t)n;
        return 1;
    }
    p[0] = (uint8_t)(0x80 | (n >> 24));
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return 4;
}

bool fcgi_put_pair(buf_t *pairs, const void *name, size_t name_len, const void *value,
                   size_t value_len) {
    if (name_len > FCGI_PAIR_LEN_MAX || value_len > FCGI_PAIR_LEN_MAX)
        return false;
    uint8_t lens[8];
    size_t n = pair_len_encode(lens, name_len);
    n += pair_len_encode(lens + n, value_len);
    if (!buf_reserve(pairs, n + name_len + value_len))
        return false;
    return buf_append(pairs, lens, n) && buf_append(pairs, name, name_len) &&
           buf_append(pairs, value, value_len);
}

bool fcgi_put_pair_str(buf_t *pairs, const char *name, const char *value) {
    return fcgi_put_pair(pairs, name, strlen(name), value, strlen(value));
}

/* Reads one pair length at p (len bytes available); the bytes it took, 0
 * when cut short. */
static size_t pair_len_decode(const uint8_t *p, size_t len, size_t *n) {
    if (len < 1)
        return 0;
    if (!(p[0] & 0x80)) {
        *n = p[0];
        return 1;
    }
    if (len < 4)
        return 0;
    *n = ((size_t)(p[0] & 0x7f) << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    return 4;
}

size_t fcgi_pair_decode(const uint8_t *p, size_t len, fcgi_pair_t *pair) {
    size_t nlen, vlen;
    size_t used = pair_len_decode(p, len, &nlen);
    if (!used)
        return 0;
    size_t u2 = pair_len_decode(p + used, len - used, &vlen);
    if (!u2)
        return 0;
    used += u2;
    if (len - used < nlen || len - used - nlen < vlen)
        return 0;
    pair->name = p + used;
    pair->name_len = nlen;
    pair->value = p + used + nlen;
    pair->value_len = vlen;
    return used + nlen + vlen;
}

bool fcgi_put_params(buf_t *out, uint16_t request_id, const void *pairs, size_t len) {
    const uint8_t *p = pairs;
    size_t pos = 0, start = 0; /* the current record holds p[start..pos) */
    while (pos < len) {
        fcgi_pair_t pr;
        size_t n = fcgi_pair_decode(p + pos, len - pos, &pr);
        if (!n)
            return false; /* not a sequence of whole pairs */
        if (pos + n - start > FCGI_CHUNK) {
            /* The pair does not fit in the current record: close it, and
             * cut a pair larger than a record into full records. */
            if (pos > start && !fcgi_put_record(out, FCGI_PARAMS, request_id, p + start,
                                                pos - start))
                return false;
            start = pos;
            while (pos + n - start > FCGI_CHUNK) {
                if (!fcgi_put_record(out, FCGI_PARAMS, request_id, p + start, FCGI_CHUNK))
                    return false;
                start += FCGI_CHUNK;
            }
        }
        pos += n;
    }
    if (pos > start && !fcgi_put_record(out, FCGI_PARAMS, request_id, p + start, pos - start))
        return false;
    return fcgi_put_record(out, FCGI_PARAMS, request_id, NULL, 0);
}

bool fcgi_put_stream(buf_t *out, uint8_t type, uint16_t request_id, const void *data, size_t len,
                     bool end) {
    const uint8_t *p = data;
    if (len && !buf_reserve(out, len + (len / FCGI_CHUNK + 2) * 16))
        return false;
    while (len) {
        size_t n = len < FCGI_CHUNK ? len : FCGI_CHUNK;
        if (!fcgi_put_record(out, type, request_id, p, n))
            return false;
        p += n;
        len -= n;
    }
    return !end || fcgi_put_record(out, type, request_id, NULL, 0);
}

/* ---- decoder ---- */

void fcgi_decoder_init(fcgi_decoder_t *d, uint16_t request_id) {
    memset(d, 0, sizeof *d);
    d->request_id = request_id;
    d->state = DS_HEADER;
}

bool fcgi_decoder_ended(const fcgi_decoder_t *d) {
    return d->state == DS_DONE;
}

static const char *type_name(uint8_t type) {
    static const char *const names[] = {
        NULL,     "BEGIN_REQUEST", "ABORT_REQUEST", "END_REQUEST", "PARAMS",
        "STDIN",  "STDOUT",        "STDERR",        "DATA",        "GET_VALUES",
        "GET_VALUES_RESULT", "UNKNOWN_TYPE",
    };
    return type >= 1 && type <= FCGI_UNKNOWN_TYPE ? names[type] : "unknown";
}

/* Malformed input: the decoder keeps the message (with where it was) and
 * refuses everything from now on. */
__attribute__((format(printf, 2, 3))) static void decoder_fail(fcgi_decoder_t *d,
                                                               const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    d->state = DS_FAILED;
}

/* The state after a record's content: its padding, if any, else the next
 * header. */
static uint8_t after_content(const fcgi_decoder_t *d) {
    return d->padding ? DS_PADDING : DS_HEADER;
}

/* A complete header is in d->buf (it started at byte `at`): check it and
 * choose what to do with the record's content. */
static void decoder_header(fcgi_decoder_t *d, uint64_t at) {
    const uint8_t *h = d->buf;
    unsigned long long pos = (unsigned long long)at;
    if (h[0] != FCGI_VERSION_1) {
        decoder_fail(d, "record at byte %llu has version %u, not 1 (is this really FastCGI?)",
                     pos, h[0]);
        return;
    }
    uint8_t type = h[1];
    uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
    uint16_t clen = (uint16_t)(h[4] << 8 | h[5]);
    d->type = type;
    d->padding = h[6];
    d->left = clen;
    switch (type) {
    case FCGI_STDOUT:
    case FCGI_STDERR:
    case FCGI_END_REQUEST:
        if (id != d->request_id) {
            decoder_fail(d, "%s record at byte %llu is for request %u, not %u",
                         type_name(type), pos, id, d->request_id);
            return;
        }
        break;
    case FCGI_GET_VALUES_RESULT:
    case FCGI_UNKNOWN_TYPE:
        d->state = clen ? DS_SKIP : after_content(d);
        return;
    case FCGI_BEGIN_REQUEST:
    case FCGI_ABORT_REQUEST:
    case FCGI_PARAMS:
    case FCGI_STDIN:
    case FCGI_DATA:
    case FCGI_GET_VALUES:
        decoder_fail(d, "%s record at byte %llu: only a web server sends those",
                     type_name(type), pos);
        return;
    default: /* a type from a later version of the protocol */
        d->state = clen ? DS_SKIP : after_content(d);
        return;
    }
    if (type == FCGI_END_REQUEST) {
        if (clen != 8) {
            decoder_fail(d, "END_REQUEST record at byte %llu has %u bytes of content, not 8", pos,
                         clen);
            return;
        }
        d->state = DS_ENDBODY;
        return;
    }
    bool *ended = type == FCGI_STDOUT ? &d->stdout_ended : &d->stderr_ended;
    if (clen == 0) {
        *ended = true;
        d->state = after_content(d);
        return;
    }
    if (*ended) {
        decoder_fail(d, "%s record at byte %llu comes after the end of that stream",
                     type_name(type), pos);
        return;
    }
    d->state = DS_CONTENT;
}

/* One event per call keeps the caller's loop simple: stream data is a
 * slice of `in`, so at most one record's piece can be reported before the
 * caller has used it. */
size_t fcgi_decode(fcgi_decoder_t *d, const uint8_t *in, size_t len, fcgi_event_t *ev) {
    memset(ev, 0, sizeof *ev);
    ev->type = FCGI_EV_NONE;
    size_t used = 0;
    while (used < len || d->state == DS_FAILED) {
        size_t avail = len - used, take;
        switch (d->state) {
        case DS_FAILED:
            ev->type = FCGI_EV_ERROR;
            ev->error = d->error;
            d->offset += used;
            return used;
        case DS_HEADER: {
            take = FCGI_HEADER_LEN - d->have;
            if (take > avail)
                take = avail;
            memcpy(d->buf + d->have, in + used, take);
            d->have = (uint8_t)(d->have + take);
            used += take;
            if (d->have == FCGI_HEADER_LEN) {
                d->have = 0;
                decoder_header(d, d->offset + used - FCGI_HEADER_LEN);
            }
            break;
        }
        case DS_CONTENT:
            take = d->left < avail ? d->left : avail;
            ev->type = d->type == FCGI_STDOUT ? FCGI_EV_STDOUT : FCGI_EV_STDERR;
            ev->data = in + used;
            ev->len = take;
            d->left -= (uint32_t)take;
            if (!d->left)
                d->state = after_content(d);
            used += take;
            d->offset += used;
            return used;
        case DS_SKIP:
            take = d->left < avail ? d->left : avail;
            d->left -= (uint32_t)take;
            used += take;
            if (!d->left)
                d->state = after_content(d);
            break;
        case DS_ENDBODY:
            take = 8 - d->have;
            if (take > avail)
                take = avail;
            memcpy(d->buf + d->have, in + used, take);
            d->have = (uint8_t)(d->have + take);
            used += take;
            if (d->have == 8) {
                const uint8_t *b = d->buf;
                d->have = 0;
                ev->type = FCGI_EV_END;
                ev->app_status = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                 (uint32_t)b[2] << 8 | b[3];
                ev->protocol_status = b[4];
                d->state = DS_DONE;
                d->offset += used;
                return used;
            }
            break;
        case DS_PADDING:
            take = d->padding < avail ? d->padding : avail;
            d->padding = (uint16_t)(d->padding - take);
            used += take;
            if (!d->padding)
                d->state = DS_HEADER;
            break;
        case DS_DONE:
            /* Only the END_REQUEST record's own padding may follow. */
            if (!d->padding) {
                decoder_fail(d, "data after END_REQUEST at byte %llu",
                             (unsigned long long)(d->offset + used));
                break;
            }
            take = d->padding < avail ? d->padding : avail;
            d->padding = (uint16_t)(d->padding - take);
            used += take;
            break;
        default:
            decoder_fail(d, "decoder in an impossible state %u", d->state);
            break;
        }
    }
    d->offset += used;
    return used;
}

/* ---- the response head ---- */

/* A header name is an HTTP token (RFC 9110): anything else - a space, a
 * status line, HTML - means STDOUT does not start with CGI headers. */
static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool name_is(const char *p, size_t n, const char *name) {
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* "503", "503 Service Unavailable": the code, or -1. */
static int parse_status(const char *v, size_t n) {
    if (n < 3)
        return -1;
    for (int i = 0; i < 3; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    if (v[0] == '0')
        return -1;
    if (n > 3 && v[3] != ' ' && v[3] != '\t')
        return -1;
    return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

fcgi_head_result_t fcgi_parse_head(const char *p, size_t len, fcgi_head_t *h) {
    memset(h, 0, sizeof *h);
    h->status = 200;
    int status = -1;
    size_t pos = 0;
    for (;;) {
        if (pos >= len)
            return FCGI_HEAD_PARTIAL;
        const char *nl = memchr(p + pos, '\n', len - pos);
        if (!nl)
            return FCGI_HEAD_PARTIAL;
        size_t next = (size_t)(nl - p) + 1;
        size_t end = next - 1;
        if (end > pos && p[end - 1] == '\r')
            end--;
        if (end == pos) {
            h->head_len = next;
            if (status > 0)
                h->status = status;
            else if (h->has_location)
                h->status = 302;
            return FCGI_HEAD_OK;
        }
        size_t colon = pos;
        while (colon < end && is_tchar((unsigned char)p[colon]))
            colon++;
        if (colon == pos || colon == end || p[colon] != ':') {
            h->error = colon == pos ? "a header line does not start with a header name"
                                    : "a header line has no colon after its name";
            return FCGI_HEAD_BAD;
        }
        size_t v = colon + 1, vend = end;
        while (v < vend && (p[v] == ' ' || p[v] == '\t'))
            v++;
        while (vend > v && (p[vend - 1] == ' ' || p[vend - 1] == '\t'))
            vend--;
        for (size_t i = v; i < vend; i++) {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                h->error = "a header value holds a control character";
                return FCGI_HEAD_BAD;
            }
        }
        if (name_is(p + pos, colon - pos, "Status")) {
            if (!h->has_status) {
                status = parse_status(p + v, vend - v);
                if (status < 100) {
                    h->error = "the Status header is not a three-digit code";
                    return FCGI_HEAD_BAD;
                }
                h->has_status = true;
            }
        } else if (name_is(p + pos, colon - pos, "Location")) {
            h->has_location = true;
        }
        pos = next;
    }
}

const char *fcgi_protocol_status_name(uint8_t protocol_status) {
    switch (protocol_status) {
    case FCGI_REQUEST_COMPLETE:
        return "request complete";
    case FCGI_CANT_MPX_CONN:
        return "cannot multiplex connections";
    case FCGI_OVERLOADED:
        return "overloaded";
    case FCGI_UNKNOWN_ROLE:
        return "unknown role";
    default:
        return "unknown protocol status";
    }
}
