/* webhook.c - the "http" push target (see webhook.h): one POST per attempt,
 * through libcurl's multi interface on the server's libuv loop.
 *
 * libcurl tells us which sockets to watch (webhook_on_socket: one uv_poll_t
 * per socket) and when to call it back regardless (webhook_on_curl_timer:
 * one uv_timer_t). When either fires we hand the event to
 * curl_multi_socket_action() and then collect finished transfers with
 * curl_multi_info_read(). libcurl must not be called back from inside its
 * own callbacks, so those only adjust libuv handles; done() is called only
 * from our libuv callbacks, after libcurl has returned.
 *
 * done() that cannot come from a transfer finishing - an attempt that failed
 * before it started, or one that was aborted - goes through a "ready" queue
 * that a zero-delay timer empties on the next loop turn, so it never runs
 * inside start() or abort(). */
#include "dispatch/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/panic.h"

/* Bytes of URL, and of an answer's body, shown in a failure reason. */
#define WEBHOOK_DISPLAY_MAX 200
#define WEBHOOK_SNIPPET_MAX 300

struct push_target {
    char *url;     /* as libcurl gets it, credentials and all */
    char *display; /* as reasons show it */
    long connect_ms;
    long total_ms;
    char **headers; /* configured "Name: value" lines, as libcurl takes them */
    size_t nheaders;
    bool own_type;     /* one of them is a Content-Type */
    unsigned inflight; /* attempts whose done() has not been called */
};

struct push_attempt {
    push_target_t *target;
    push_done_fn done;
    void *ctx;
    CURL *easy; /* NULL once released */
    struct curl_slist *headers;
    uint64_t started_ms;         /* uv_now() at start, for "aborted after" */
    bool in_multi;               /* added to the multi handle, on the running list */
    bool stopped;                /* abort() or shutdown took it; done() is queued */
    push_attempt_t *prev, *next; /* running list; next also links the ready queue */
    push_result_t result;        /* filled in before done() */
    size_t body_len;             /* bytes of the answer's body kept */
    size_t body_seen;            /* bytes of it that arrived */
    char errbuf[CURL_ERROR_SIZE];
    char body[WEBHOOK_BODY_KEEP];
};

/* One watched socket. Freed by the poll handle's close callback, so it
 * stays valid for the rest of a callback that closed it. */
typedef struct webhook_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* UV_READABLE / UV_WRITABLE libcurl asked for */
    struct webhook_sock *prev, *next;
} webhook_sock_t;

/* The shared state (webhook.h explains why there is one per process). */
static struct {
    uv_loop_t *loop; /* NULL when not initialised */
    CURLM *multi;
    CURLSH *share;           /* TLS sessions, for new connections */
    uv_timer_t *curl_timer;  /* libcurl's timeout */
    uv_timer_t *ready_timer; /* delivers the ready queue next turn */
    push_attempt_t *running; /* in the multi handle */
    push_attempt_t *ready_head, *ready_tail;
    webhook_sock_t *socks;
    bool closing; /* inside webhook_shutdown() */
} W;

/* ---- failure reasons ---------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes there
 * are not one (bad lead byte, bad or missing continuation, overlong,
 * surrogate, beyond U+10FFFF). Reasons are shown as JSON and on terminals,
 * so only valid text may go in. */
static size_t webhook_utf8_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Append text[0..n) to out (holding *len bytes), without letting *len pass
 * limit: control characters and runs of white space become one space (none
 * at the start), bytes that are not UTF-8 become '?', and a character is
 * never cut in half. Returns false when not everything fit. */
static bool webhook_clean_append(char *out, size_t *len, size_t limit, const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    bool space = *len == 0 || out[*len - 1] == ' ';
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c <= 0x20 || c == 0x7F) {
            i++;
            if (space)
                continue;
            if (*len + 1 > limit)
                return false;
            out[(*len)++] = ' ';
            space = true;
            continue;
        }
        size_t k = webhook_utf8_len(s + i, n - i);
        const char *src = (const char *)s + i;
        size_t take = k;
        if (k == 0) {
            src = "?";
            take = k = 1;
        }
        if (*len + take > limit)
            return false;
        memcpy(out + *len, src, take);
        *len += take;
        i += k;
        space = false;
    }
    return true;
}

/* Does the tag name at p (just after '<') equal name, case aside? */
static bool webhook_tag_is(const char *p, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n < k || strncasecmp(p, name, k) != 0)
        return false;
    return n == k || p[k] == '>' || p[k] == '/' || p[k] == ' ' || p[k] == '\t' || p[k] == '\r' ||
           p[k] == '\n';
}

/* Where needle (ASCII, case aside) first occurs in p[0..n), or n. */
static size_t webhook_find(const char *p, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(p + i, needle, k) == 0)
            return i;
    return n;
}

/* The text of an HTML page: frameworks and proxies answer errors with one,
 * and its first 300 bytes are markup and CSS, not the message. Tags become
 * spaces; comments, scripts and style sheets disappear. out has room for
 * n bytes, which is always enough. */
static size_t webhook_html_text(const char *in, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        if (in[i] != '<') {
            out[o++] = in[i++];
            continue;
        }
        const char *rest = in + i + 1;
        size_t left = n - i - 1;
        if (left >= 3 && memcmp(rest, "!--", 3) == 0) {
            size_t end = webhook_find(rest + 3, left - 3, "-->");
            i += 1 + 3 + end + (end < left - 3 ? 3 : 0);
        } else {
            if (webhook_tag_is(rest, left, "script"))
                i += 1 + webhook_find(rest, left, "</script");
            else if (webhook_tag_is(rest, left, "style"))
                i += 1 + webhook_find(rest, left, "</style");
            while (i < n && in[i] != '>')
                i++;
            if (i < n)
                i++;
        }
        out[o++] = ' ';
    }
    return o;
}

/* Part of a parsed URL, copied ("" when it has none; NULL when memory is
 * short). */
static char *webhook_url_part(CURLU *u, CURLUPart what) {
    char *part = NULL;
    if (curl_url_get(u, what, &part, 0) != CURLUE_OK || !part)
        return strdup("");
    char *copy = strdup(part);
    curl_free(part);
    return copy;
}

/* The form of a parsed URL that reasons show, into out (room for
 * WEBHOOK_DISPLAY_MAX + 8 bytes): without user, password, query or fragment
 * - often secrets, and reasons are shown through the API - with "?..." for
 * a query, cut with "..." past WEBHOOK_DISPLAY_MAX bytes. Changes u. False
 * when memory is short. */
static bool webhook_display_form(CURLU *u, char *out) {
    char *query = webhook_url_part(u, CURLUPART_QUERY);
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    char *shown = webhook_url_part(u, CURLUPART_URL);
    if (!query || !shown) {
        free(query);
        free(shown);
        return false;
    }
    size_t len = 0;
    bool all = webhook_clean_append(out, &len, WEBHOOK_DISPLAY_MAX, shown, strlen(shown));
    if (!all || *query) {
        memcpy(out + len, all ? "?..." : "...", 4);
        len += all ? 4 : 3;
    }
    out[len] = '\0';
    free(query);
    free(shown);
    return true;
}

/* Start a reason: "POST <url>: " and the formatted rest. */
static void webhook_reasonf(push_result_t *r, const push_target_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void webhook_reasonf(push_result_t *r, const push_target_t *t, const char *fmt, ...) {
    int n = snprintf(r->reason, sizeof r->reason, "POST %s: ", t->display);
    if (n < 0 || (size_t)n >= sizeof r->reason)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason + n, sizeof r->reason - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Append cleaned-up text to a reason, at most max bytes of it, with "..."
 * when it was cut. */
static void webhook_reason_append(push_result_t *r, const char *text, size_t n, size_t max) {
    size_t len = strlen(r->reason);
    size_t room = sizeof r->reason - 1 - 3; /* keep space for "..." */
    if (len >= room)
        return;
    size_t limit = len + max < room ? len + max : room;
    bool all = webhook_clean_append(r->reason, &len, limit, text, n);
    while (len > 0 && r->reason[len - 1] == ' ')
        len--;
    if (!all) {
        memcpy(r->reason + len, "...", 3);
        len += 3;
    }
    r->reason[len] = '\0';
}

/* The last pass over a finished reason: what snprintf put in from libcurl
 * or the OS is not promised to be clean, and a cut may have split a
 * character. Same length or shorter. */
static void webhook_reason_finish(push_result_t *r) {
    unsigned char *s = (unsigned char *)r->reason;
    size_t n = strlen(r->reason);
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x20 || s[i] == 0x7F) {
            s[i++] = ' ';
            continue;
        }
        size_t k = webhook_utf8_len(s + i, n - i);
        if (k == 0) {
            /* A sequence cut off by the end of the buffer goes; any other
             * bad byte becomes '?'. */
            if (s[i] >= 0xC2 && s[i] <= 0xF4 && n - i < 4) {
                bool tail = true;
                for (size_t j = i + 1; j < n; j++)
                    tail = tail && (s[j] & 0xC0) == 0x80;
                if (tail) {
                    s[i] = '\0';
                    break;
                }
            }
            s[i] = '?';
            k = 1;
        }
        i += k;
    }
}

/* The answer's body, cleaned up (see webhook_reason_append) and, for an
 * HTML page, reduced to its text. */
static void webhook_reason_append_body(push_result_t *r, push_attempt_t *a) {
    const char *text = a->body;
    size_t n = a->body_len;
    char *ct = NULL;
    curl_easy_getinfo(a->easy, CURLINFO_CONTENT_TYPE, &ct);
    size_t lead = 0;
    while (lead < n && (a->body[lead] == ' ' || a->body[lead] == '\t' || a->body[lead] == '\r' ||
                        a->body[lead] == '\n'))
        lead++;
    bool html =
        (ct && strcasestr(ct, "html")) ||
        (n - lead >= 5 && (strncasecmp(a->body + lead, "<html", 5) == 0 ||
                           (n - lead >= 9 && strncasecmp(a->body + lead, "<!doctype", 9) == 0)));
    char plain[WEBHOOK_BODY_KEEP];
    if (html) {
        n = webhook_html_text(a->body, n, plain);
        text = plain;
    }
    size_t before = strlen(r->reason);
    webhook_reason_append(r, text, n, WEBHOOK_SNIPPET_MAX);
    size_t after = strlen(r->reason);
    /* Kept only a prefix but everything fit: the reader should still know. */
    if (a->body_seen > a->body_len && after > before && after + 3 < sizeof r->reason &&
        (after < 3 || strcmp(r->reason + after - 3, "...") != 0))
        memcpy(r->reason + after, "...", 4);
}

/* The OS error behind a failed connect, as text ("no route to host"). */
static const char *webhook_os_error(long err, char *buf, size_t len) {
    const char *s = strerror_r((int)err, buf, len);
    if (s != buf) {
        snprintf(buf, len, "%s", s);
        s = buf;
    }
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return s;
}

/* Why a transfer libcurl finished did or did not succeed, in a->result. */
static void webhook_describe(push_attempt_t *a, CURLcode rc) {
    push_result_t *r = &a->result;
    const push_target_t *t = a->target;
    long code = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code);
    r->status = code > 0 ? (int)code : -1;
    r->ok = false;
    r->reason[0] = '\0';
    const char *why = a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc);

    if (rc == CURLE_OK) {
        if (code >= 200 && code <= 299) {
            r->ok = true;
            return;
        }
        if (code >= 300 && code <= 399) {
            /* libcurl resolves a relative Location against the configured
             * URL, credentials and all: show it the way we show that. */
            char *loc = NULL;
            char shown[WEBHOOK_DISPLAY_MAX + 8];
            curl_easy_getinfo(a->easy, CURLINFO_REDIRECT_URL, &loc);
            CURLU *u = loc && *loc ? curl_url() : NULL;
            bool have =
                u && curl_url_set(u, CURLUPART_URL, loc, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
                webhook_display_form(u, shown);
            curl_url_cleanup(u);
            if (have) {
                webhook_reasonf(r, t,
                                "answered %ld, a redirect to %s (redirects are not followed: "
                                "configure the final URL)",
                                code, shown);
            } else {
                webhook_reasonf(r, t, "answered %ld, a redirect (redirects are not followed)",
                                code);
            }
        } else {
            webhook_reasonf(r, t, "answered %ld: ", code);
            size_t len = strlen(r->reason);
            webhook_reason_append_body(r, a);
            /* Nothing added, and the trailing space trimmed. */
            if (strlen(r->reason) < len) {
                webhook_reasonf(r, t, "answered %ld with an empty body", code);
            }
        }
        webhook_reason_finish(r);
        return;
    }

    long os_err = 0;
    curl_off_t total_us = 0;
    long request_size = 0;
    char ebuf[128];
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(a->easy, CURLINFO_OS_ERRNO, &os_err);
        if (os_err == ECONNREFUSED)
            webhook_reasonf(r, t, "connection refused");
        else if (os_err)
            webhook_reasonf(r, t, "cannot connect: %s",
                            webhook_os_error(os_err, ebuf, sizeof ebuf));
        else
            webhook_reasonf(r, t, "cannot connect: %s", why);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        webhook_reasonf(r, t, "cannot resolve the host name (%s)", why);
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
        webhook_reasonf(r, t, "cannot resolve the proxy's host name (%s)", why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(a->easy, CURLINFO_TOTAL_TIME_T, &total_us);
        curl_easy_getinfo(a->easy, CURLINFO_REQUEST_SIZE, &request_size);
        if (code > 0)
            webhook_reasonf(r, t, "timed out after %" PRId64 " ms reading the answer (status %ld)",
                            (int64_t)(total_us / 1000), code);
        else if (request_size > 0)
            webhook_reasonf(r, t, "timed out after %" PRId64 " ms waiting for the answer",
                            (int64_t)(total_us / 1000));
        else
            webhook_reasonf(r, t, "timed out after %" PRId64 " ms connecting",
                            (int64_t)(total_us / 1000));
        break;
    case CURLE_GOT_NOTHING:
        webhook_reasonf(r, t, "the server closed the connection without answering");
        break;
    case CURLE_SEND_ERROR:
        webhook_reasonf(r, t, "the connection broke while sending the request (%s)", why);
        break;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
        if (code > 0)
            webhook_reasonf(r, t, "answered %ld, then the connection broke mid-answer (%s)", code,
                            why);
        else
            webhook_reasonf(r, t, "the connection broke while waiting for the answer (%s)", why);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        webhook_reasonf(r, t, "TLS failed: %s", why);
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        webhook_reasonf(r, t, "the answer is not valid HTTP (%s)", why);
        break;
    case CURLE_OUT_OF_MEMORY:
        webhook_reasonf(r, t, "out of memory");
        break;
    default:
        webhook_reasonf(r, t, "%s", why);
        break;
    }
    webhook_reason_finish(r);
}

/* Why a stopped attempt failed: how long it ran and how far it got. */
static void webhook_describe_stop(push_attempt_t *a, const char *what) {
    push_result_t *r = &a->result;
    long code = 0, request_size = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(a->easy, CURLINFO_REQUEST_SIZE, &request_size);
    uint64_t ms = W.loop ? uv_now(W.loop) - a->started_ms : 0;
    r->ok = false;
    r->status = code > 0 ? (int)code : -1;
    if (code > 0)
        webhook_reasonf(r, a->target,
                        "%s after %" PRIu64 " ms, while reading the answer (status %ld)", what, ms,
                        code);
    else if (request_size > 0)
        webhook_reasonf(r, a->target, "%s after %" PRIu64 " ms, waiting for the answer", what, ms);
    else
        webhook_reasonf(r, a->target, "%s after %" PRIu64 " ms, before the request was sent", what,
                        ms);
    webhook_reason_finish(r);
}

/* ---- attempts ----------------------------------------------------------- */

/* Keep a prefix of the answer's body for the reason and drop the rest:
 * returning less than was given would fail the transfer, and the body must
 * be read to the end for the connection to be reused. */
static size_t webhook_on_body(char *p, size_t size, size_t nmemb, void *ud) {
    push_attempt_t *a = ud;
    size_t n = size * nmemb;
    if (a->body_len < sizeof a->body) {
        size_t k = sizeof a->body - a->body_len;
        if (k > n)
            k = n;
        memcpy(a->body + a->body_len, p, k);
        a->body_len += k;
    }
    a->body_seen += n;
    return n;
}

/* Give back everything libcurl holds for the attempt; it leaves the running
 * list. Must not run inside a libcurl callback. */
static void webhook_release(push_attempt_t *a) {
    if (a->in_multi) {
        curl_multi_remove_handle(W.multi, a->easy);
        a->in_multi = false;
        if (a->prev)
            a->prev->next = a->next;
        else
            W.running = a->next;
        if (a->next)
            a->next->prev = a->prev;
        a->prev = a->next = NULL;
    }
    if (a->easy)
        curl_easy_cleanup(a->easy);
    a->easy = NULL;
    curl_slist_free_all(a->headers);
    a->headers = NULL;
}

/* Call done() and forget the attempt. Everything is freed first: done()
 * may start attempts, abort others, free the target or shut us down. */
static void webhook_deliver(push_attempt_t *a) {
    push_done_fn done = a->done;
    void *ctx = a->ctx;
    push_result_t result = a->result;
    a->target->inflight--;
    free(a);
    done(ctx, &result);
}

static void webhook_on_ready(uv_timer_t *h);

/* Queue done() for the next loop turn (during shutdown, for the drain in
 * webhook_shutdown). */
static void webhook_enqueue(push_attempt_t *a) {
    a->prev = a->next = NULL;
    if (W.ready_tail)
        W.ready_tail->next = a;
    else
        W.ready_head = a;
    W.ready_tail = a;
    if (!W.closing && W.ready_timer)
        uv_timer_start(W.ready_timer, webhook_on_ready, 0, 0);
}

static push_attempt_t *webhook_dequeue(void) {
    push_attempt_t *a = W.ready_head;
    if (a) {
        W.ready_head = a->next;
        if (!W.ready_head)
            W.ready_tail = NULL;
        a->next = NULL;
    }
    return a;
}

/* Deliver what was queued before this turn; what done() queues meanwhile
 * waits for the next one, so a dispatcher that retries an immediate failure
 * at once cannot keep us here forever. */
static void webhook_on_ready(uv_timer_t *h) {
    (void)h;
    push_attempt_t *last = W.ready_tail;
    push_attempt_t *a;
    while ((a = webhook_dequeue())) {
        bool was_last = a == last;
        webhook_deliver(a);
        if (was_last)
            break;
    }
    if (W.ready_head && W.ready_timer && !W.closing)
        uv_timer_start(W.ready_timer, webhook_on_ready, 0, 0);
}

/* Hand every finished transfer to its done(). */
static void webhook_collect(void) {
    CURLMsg *msg;
    int left;
    while (W.multi && (msg = curl_multi_info_read(W.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg does not survive curl_multi_remove_handle: copy first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        push_attempt_t *a = (push_attempt_t *)(void *)priv;
        webhook_describe(a, rc);
        webhook_release(a);
        webhook_deliver(a);
    }
}

/* The easy handle for one attempt, with its headers; NULL when it is ready,
 * else why it could not be made. */
static const char *webhook_prepare(push_attempt_t *a, const push_request_t *req) {
    const push_target_t *t = a->target;
    if (!req->body && req->body_len)
        return "the request has a length but no body";
    const char *queue = req->queue ? req->queue : "";
    size_t qlen = strlen(queue);
    if (qlen > 255)
        return "the queue name is too long for a header";
    for (size_t i = 0; i < qlen; i++)
        if ((unsigned char)queue[i] < 0x20 || queue[i] == 0x7F)
            return "the queue name holds control characters, which cannot go in a header";

    char line[320];
    const char *fixed[] = {
        "Expect:", /* no waiting for "100 Continue" before a larger body */
        req->body_is_json ? "Content-Type: application/json"
                          : "Content-Type: application/octet-stream",
    };
    /* A configured Content-Type replaces ours; configured headers follow. */
    for (size_t i = 0; i < (t->own_type ? 1u : 2u); i++) {
        struct curl_slist *l = curl_slist_append(a->headers, fixed[i]);
        if (!l)
            return "out of memory";
        a->headers = l;
    }
    for (size_t i = 0; i < t->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(a->headers, t->headers[i]);
        if (!l)
            return "out of memory";
        a->headers = l;
    }
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(line, sizeof line, "X-Defer-Task-Id: %" PRIu64, req->task_id);
        else if (i == 1)
            snprintf(line, sizeof line, "X-Defer-Queue: %s", queue);
        else
            snprintf(line, sizeof line, "X-Defer-Attempt: %" PRIu32, req->attempt);
        struct curl_slist *l = curl_slist_append(a->headers, line);
        if (!l)
            return "out of memory";
        a->headers = l;
    }

    CURL *e = curl_easy_init();
    if (!e)
        return "cannot create a libcurl handle";
    a->easy = e;
    CURLcode rc = CURLE_OK;
#define WEBHOOK_SET(opt, val)                                                                      \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    WEBHOOK_SET(CURLOPT_URL, t->url);
    WEBHOOK_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    WEBHOOK_SET(CURLOPT_FOLLOWLOCATION, 0L);
    WEBHOOK_SET(CURLOPT_NOSIGNAL, 1L);
    WEBHOOK_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    WEBHOOK_SET(CURLOPT_USERAGENT, "deferd");
    WEBHOOK_SET(CURLOPT_HTTPHEADER, a->headers);
    WEBHOOK_SET(CURLOPT_POST, 1L);
    /* The size first, so libcurl never runs strlen() over a binary body. */
    WEBHOOK_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    WEBHOOK_SET(CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
    WEBHOOK_SET(CURLOPT_WRITEFUNCTION, webhook_on_body);
    WEBHOOK_SET(CURLOPT_WRITEDATA, a);
    WEBHOOK_SET(CURLOPT_ERRORBUFFER, a->errbuf);
    WEBHOOK_SET(CURLOPT_PRIVATE, a);
    WEBHOOK_SET(CURLOPT_CONNECTTIMEOUT_MS, t->connect_ms);
    WEBHOOK_SET(CURLOPT_TIMEOUT_MS, t->total_ms);
    WEBHOOK_SET(CURLOPT_SHARE, W.share);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* Aborting an attempt (or a connect timeout) while a name is being
     * resolved would otherwise wait for the resolver thread to finish, with
     * the loop blocked; this leaves the thread to end and clean up alone. */
    WEBHOOK_SET(CURLOPT_QUICK_EXIT, 1L);
#endif
#undef WEBHOOK_SET
    if (rc != CURLE_OK)
        return curl_easy_strerror(rc);
    return NULL;
}

static push_attempt_t *webhook_start(push_target_t *t, const push_request_t *req, push_done_fn done,
                                     void *ctx) {
    if (!W.loop)
        defer_panic("webhook: attempt started while webhook dispatch is not running "
                    "(webhook_init not called, or webhook_shutdown already ran)");
    push_attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        defer_panic("webhook: out of memory starting an attempt");
    a->target = t;
    a->done = done;
    a->ctx = ctx;
    a->started_ms = uv_now(W.loop);
    t->inflight++;

    const char *why = W.closing ? "deferd is shutting down" : webhook_prepare(a, req);
    if (!why) {
        CURLMcode mc = curl_multi_add_handle(W.multi, a->easy);
        if (mc == CURLM_OK) {
            a->in_multi = true;
            a->next = W.running;
            if (W.running)
                W.running->prev = a;
            W.running = a;
            return a;
        }
        why = curl_multi_strerror(mc);
    }
    webhook_release(a);
    a->stopped = true;
    a->result.ok = false;
    a->result.status = -1;
    webhook_reasonf(&a->result, t, "not sent: %s", why);
    webhook_reason_finish(&a->result);
    webhook_enqueue(a);
    return NULL;
}

static void webhook_abort(push_attempt_t *a) {
    if (!a || a->stopped)
        return;
    a->stopped = true;
    webhook_describe_stop(a, "aborted");
    webhook_release(a);
    webhook_enqueue(a);
}

/* ---- targets ------------------------------------------------------------ */

push_target_t *webhook_target_new(const char *url, char *err, size_t errlen) {
    push_target_t *t = NULL;
    char *scheme = NULL, *host = NULL, *full = NULL;
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    CURLUcode uc = url && *url ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_MALFORMED_INPUT;
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "invalid webhook URL: %s",
                 url && *url ? curl_url_strerror(uc) : "empty");
        goto out;
    }
    scheme = webhook_url_part(u, CURLUPART_SCHEME);
    host = webhook_url_part(u, CURLUPART_HOST);
    full = webhook_url_part(u, CURLUPART_URL);
    if (!scheme || !host || !full) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(err, errlen, "invalid webhook URL: the scheme must be http or https, not %s",
                 scheme);
        goto out;
    }
    /* libcurl reads "http:/x" and "http:///x" as host x; a person who
     * wrote that meant something else. */
    size_t slen = strlen(scheme);
    if (!*host || strncmp(url + slen, "://", 3) != 0 || url[slen + 3] == '/') {
        snprintf(err, errlen, "invalid webhook URL: no host (write %s://host/path)", scheme);
        goto out;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->display = malloc(WEBHOOK_DISPLAY_MAX + 8)) ||
        !webhook_display_form(u, t->display)) {
        snprintf(err, errlen, "out of memory");
        if (t)
            free(t->display);
        free(t);
        t = NULL;
        goto out;
    }
    t->url = full;
    full = NULL;
    t->connect_ms = WEBHOOK_CONNECT_TIMEOUT_MS;
    t->total_ms = 0;
out:
    free(scheme);
    free(host);
    free(full);
    curl_url_cleanup(u);
    return t;
}

void webhook_target_set_timeouts(push_target_t *t, long connect_ms, long total_ms) {
    t->connect_ms = connect_ms > 0 ? connect_ms : WEBHOOK_CONNECT_TIMEOUT_MS;
    t->total_ms = total_ms > 0 ? total_ms : 0;
}

/* Headers deferd sets itself, or that would break the exchange. */
static bool webhook_header_reserved(const char *name, size_t n) {
    static const char *const reserved[] = {
        "Content-Length", "Transfer-Encoding", "Host", "Connection",
        "Expect",         "Upgrade",           "TE",   "Trailer"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == n && strncasecmp(name, reserved[i], n) == 0)
            return true;
    return n >= 8 && strncasecmp(name, "X-Defer-", 8) == 0;
}

int webhook_target_add_header(push_target_t *t, const char *line, char *err, size_t errlen) {
    const char *colon = line ? strchr(line, ':') : NULL;
    if (!colon || colon == line) {
        snprintf(err, errlen, "header: not a \"Name: value\" line");
        return -1;
    }
    size_t n = (size_t)(colon - line);
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c))) {
            snprintf(err, errlen, "header: the name \"%.*s\" is not a valid HTTP header name",
                     (int)(n > 64 ? 64 : n), line);
            return -1;
        }
    }
    if (webhook_header_reserved(line, n)) {
        snprintf(err, errlen, "header: %.*s is set by deferd", (int)n, line);
        return -1;
    }
    const char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    for (const char *p = value; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7F) {
            snprintf(err, errlen, "header: the value of %.*s holds control characters", (int)n,
                     line);
            return -1;
        }
    if (t->nheaders == WEBHOOK_HEADERS_MAX) {
        snprintf(err, errlen, "header: at most %d headers", WEBHOOK_HEADERS_MAX);
        return -1;
    }
    /* libcurl reads "Name:" as "do not send Name", and "Name;" as "send it
     * empty"; a configured empty header means the latter. */
    size_t len = strlen(line);
    char *copy = malloc(len + 1);
    char **grown = realloc(t->headers, (t->nheaders + 1) * sizeof *grown);
    if (grown)
        t->headers = grown;
    if (!copy || !grown) {
        free(copy);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (*value) {
        memcpy(copy, line, len + 1);
    } else {
        memcpy(copy, line, n);
        copy[n] = ';';
        copy[n + 1] = '\0';
    }
    t->headers[t->nheaders++] = copy;
    if (n == 12 && strncasecmp(line, "Content-Type", 12) == 0)
        t->own_type = true;
    return 0;
}

const char *webhook_target_display_url(const push_target_t *t) {
    return t->display;
}

static void webhook_target_free(push_target_t *t) {
    if (!t)
        return;
    if (t->inflight)
        defer_panic("webhook: target freed while attempts are in flight");
    for (size_t i = 0; i < t->nheaders; i++)
        free(t->headers[i]);
    free(t->headers);
    free(t->url);
    free(t->display);
    free(t);
}

const push_target_ops_t webhook_target_ops = {
    .name = "http",
    .start = webhook_start,
    .abort = webhook_abort,
    .free = webhook_target_free,
};

/* ---- libcurl on the loop ------------------------------------------------ */

static void webhook_on_sock_closed(uv_handle_t *h) {
    free(h->data);
}

static void webhook_sock_close(webhook_sock_t *ws) {
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        W.socks = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->prev = ws->next = NULL;
    uv_close((uv_handle_t *)&ws->poll, webhook_on_sock_closed);
}

/* A socket is ready (or failed): let libcurl act on it. libuv stops a poll
 * handle that reports an error; libcurl does not know that, so when it
 * still wants the socket afterwards the handle is started again. */
static void webhook_on_poll(uv_poll_t *h, int status, int events) {
    webhook_sock_t *ws = h->data;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(W.multi, ws->fd, flags, &running);
    if (status < 0 && !uv_is_closing((uv_handle_t *)h) && ws->events)
        uv_poll_start(h, ws->events, webhook_on_poll);
    webhook_collect();
}

/* libcurl says what to watch on a socket (CURLMOPT_SOCKETFUNCTION). Only
 * libuv is touched here: calling libcurl back from this callback is not
 * allowed. */
static int webhook_on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    (void)userp;
    webhook_sock_t *ws = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ws)
            webhook_sock_close(ws);
        return 0;
    }
    if (!ws) {
        if (W.closing)
            return 0;
        ws = calloc(1, sizeof *ws);
        if (!ws)
            return -1;
        int rc = uv_poll_init_socket(W.loop, &ws->poll, s);
        if (rc != 0) {
            log_debug("webhook: cannot watch socket %d: %s", (int)s, uv_strerror(rc));
            free(ws);
            return -1;
        }
        ws->fd = s;
        ws->poll.data = ws;
        ws->next = W.socks;
        if (W.socks)
            W.socks->prev = ws;
        W.socks = ws;
        curl_multi_assign(W.multi, s, ws);
    }
    ws->events = 0;
    if (what & CURL_POLL_IN)
        ws->events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ws->events |= UV_WRITABLE;
    int rc = ws->events ? uv_poll_start(&ws->poll, ws->events, webhook_on_poll)
                        : uv_poll_stop(&ws->poll);
    if (rc != 0) {
        log_debug("webhook: cannot watch socket %d: %s", (int)s, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void webhook_on_curl_timeout(uv_timer_t *h) {
    (void)h;
    int running;
    curl_multi_socket_action(W.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    webhook_collect();
}

/* libcurl wants to be called after timeout_ms (-1: never)
 * (CURLMOPT_TIMERFUNCTION). */
static int webhook_on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    (void)userp;
    if (!W.curl_timer || uv_is_closing((uv_handle_t *)W.curl_timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(W.curl_timer);
    else if (uv_timer_start(W.curl_timer, webhook_on_curl_timeout, (uint64_t)timeout_ms, 0) != 0)
        return -1;
    return 0;
}

/* ---- the shared state --------------------------------------------------- */

static void webhook_on_timer_closed(uv_handle_t *h) {
    free(h);
}

static void webhook_close_timer(uv_timer_t **t) {
    if (*t)
        uv_close((uv_handle_t *)*t, webhook_on_timer_closed);
    *t = NULL;
}

int webhook_init(uv_loop_t *loop, char *err, size_t errlen) {
    if (W.loop) {
        snprintf(err, errlen, "webhook dispatch is already initialised");
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    memset(&W, 0, sizeof W);
    W.multi = curl_multi_init();
    W.share = curl_share_init();
    W.curl_timer = malloc(sizeof *W.curl_timer);
    W.ready_timer = malloc(sizeof *W.ready_timer);
    if (!W.multi || !W.share || !W.curl_timer || !W.ready_timer) {
        snprintf(err, errlen, "cannot initialise libcurl: out of memory");
        goto fail;
    }
    if (curl_share_setopt(W.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl's TLS session cache");
        goto fail;
    }
    uv_timer_init(loop, W.curl_timer);
    uv_timer_init(loop, W.ready_timer);
    curl_multi_setopt(W.multi, CURLMOPT_SOCKETFUNCTION, webhook_on_socket);
    curl_multi_setopt(W.multi, CURLMOPT_TIMERFUNCTION, webhook_on_curl_timer);
    W.loop = loop;
    return 0;
fail:
    if (W.multi)
        curl_multi_cleanup(W.multi);
    if (W.share)
        curl_share_cleanup(W.share);
    free(W.curl_timer);
    free(W.ready_timer);
    memset(&W, 0, sizeof W);
    curl_global_cleanup();
    return -1;
}

void webhook_shutdown(void) {
    if (!W.loop || W.closing)
        return;
    W.closing = true;
    uv_timer_stop(W.ready_timer);

    /* Stop what runs; its done() goes after whatever was already queued. */
    while (W.running) {
        push_attempt_t *a = W.running;
        a->stopped = true;
        webhook_describe_stop(a, "stopped (deferd is shutting down)");
        webhook_release(a);
        webhook_enqueue(a);
    }
    /* done() may start more attempts meanwhile; those fail at once. */
    push_attempt_t *a;
    while ((a = webhook_dequeue()))
        webhook_deliver(a);

    /* Closes cached connections; libcurl may report their sockets gone. */
    curl_multi_cleanup(W.multi);
    W.multi = NULL;
    curl_share_cleanup(W.share);
    W.share = NULL;
    while (W.socks)
        webhook_sock_close(W.socks);
    webhook_close_timer(&W.curl_timer);
    webhook_close_timer(&W.ready_timer);
    memset(&W, 0, sizeof W);
    curl_global_cleanup();
}
