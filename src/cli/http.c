/* http.c - talking to deferd: one request at a time with libcurl's easy
 * interface (the handle is kept, so the connection is reused between the
 * requests of one command), or following the event stream.
 *
 * Every outcome becomes one of the exit codes of cli.h here, and only
 * here: transport failures (3), the server's errors by status (1, 4, 5),
 * and answers that are not the JSON the API promises (5). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "version.h"

static bool curl_ready; /* curl_global_init done */
static char errbuf[CURL_ERROR_SIZE];

void cli_response_init(cli_response_t *r) {
    r->status = 0;
    buf_init(&r->body);
    r->json = NULL;
}

void cli_response_free(cli_response_t *r) {
    buf_free(&r->body);
    json_decref(r->json);
    r->json = NULL;
}

bool cli_url_escape(buf_t *b, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (!(plain ? buf_append(b, s + i, 1) : buf_append(b, esc, 3)))
            return false;
    }
    return true;
}

bool cli_queue_path(buf_t *b, const char *queue, const char *suffix) {
    return buf_puts(b, "/v1/queues/") && cli_url_escape(b, queue, strlen(queue)) &&
           buf_puts(b, suffix);
}

const char *cli_str(buf_t *b) {
    if (!buf_reserve(b, 1))
        return NULL;
    *buf_tail(b) = '\0';
    return buf_head(b);
}

/* Appends the URL without trailing slashes; a usage error when it is not
 * an http(s) URL. */
static int base_url(const cli_t *cli, buf_t *out) {
    const char *u = cli->url;
    size_t skip = strncasecmp(u, "http://", 7) == 0    ? 7
                  : strncasecmp(u, "https://", 8) == 0 ? 8
                                                       : 0;
    if (skip == 0 || u[skip] == '\0' || u[skip] == '/')
        return cli_usage_error(cli, "invalid URL '%s': give http://HOST:PORT (--url or $DEFER_URL)",
                               u);
    size_t len = strlen(u);
    while (len > skip && u[len - 1] == '/')
        len--;
    return buf_append(out, u, len) ? CLI_OK : cli_oom();
}

/* The token's first line: from --token-file, else $DEFER_TOKEN. */
static int load_token(cli_t *cli) {
    if (!cli->token_file) {
        const char *env = getenv("DEFER_TOKEN");
        if (env && *env) {
            cli->token = strndup(env, strcspn(env, "\r\n"));
            if (!cli->token)
                return cli_oom();
        }
        return CLI_OK;
    }
    FILE *f = fopen(cli->token_file, "r");
    if (!f)
        return cli_usage_error(cli, "cannot read --token-file %s: %s", cli->token_file,
                               strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n > 0)
        line[strcspn(line, "\r\n")] = '\0';
    if (n <= 0 || line[0] == '\0') {
        free(line);
        return cli_usage_error(cli, "--token-file %s: the first line (the token) is empty",
                               cli->token_file);
    }
    cli->token = line;
    return CLI_OK;
}

static int http_open(cli_t *cli) {
    if (cli->curl)
        return CLI_OK;
    buf_t url;
    buf_init(&url);
    int rc = base_url(cli, &url);
    buf_free(&url);
    if (rc != CLI_OK || (rc = load_token(cli)) != CLI_OK)
        return rc;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fputs("deferctl: cannot initialise libcurl\n", stderr);
            return CLI_UNREACHABLE;
        }
        curl_ready = true;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fputs("deferctl: cannot initialise libcurl\n", stderr);
        return CLI_UNREACHABLE;
    }
    cli->curl = h;
    struct curl_slist *hd = NULL, *next;
    /* "Expect:" stops curl from waiting for a 100 Continue before large
     * bodies, which deferd does not send. */
    const char *fixed[] = {"Accept: application/json", "Content-Type: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        if (!(next = curl_slist_append(hd, fixed[i])))
            goto nomem;
        hd = next;
    }
    if (cli->token) {
        buf_t auth;
        buf_init(&auth);
        bool ok = buf_appendf(&auth, "Authorization: Bearer %s", cli->token) && cli_str(&auth);
        next = ok ? curl_slist_append(hd, cli_str(&auth)) : NULL;
        buf_free(&auth);
        if (!next)
            goto nomem;
        hd = next;
    }
    cli->headers = hd;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "deferctl/" DEFER_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cli->timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    return CLI_OK;
nomem:
    curl_slist_free_all(hd);
    return cli_oom();
}

void cli_http_close(cli_t *cli) {
    if (cli->curl)
        curl_easy_cleanup(cli->curl);
    curl_slist_free_all(cli->headers);
    cli->curl = NULL;
    cli->headers = NULL;
    free(cli->token);
    cli->token = NULL;
    if (curl_ready)
        curl_global_cleanup();
    curl_ready = false;
}

/* A failure below HTTP: no answer, or one that is not HTTP. */
static int transport_error(const cli_t *cli, CURLcode cc, bool streaming) {
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked: an HTTP/0.9 answer */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        fprintf(stderr, "deferctl: %s did not answer in HTTP: %s\n", cli->url, why);
        return CLI_SERVER;
    case CURLE_URL_MALFORMAT:
        return cli_usage_error(cli, "invalid URL '%s': %s", cli->url, why);
    case CURLE_OUT_OF_MEMORY:
        return cli_oom();
    default:
        if (streaming)
            fprintf(stderr, "deferctl: lost the event stream from %s: %s\n", cli->url, why);
        else
            fprintf(stderr, "deferctl: cannot reach deferd at %s: %s\n", cli->url, why);
        return CLI_UNREACHABLE;
    }
}

/* An HTTP answer: 2xx with a JSON object is success; anything else is
 * reported with the server's message and classed by status. */
static int classify(cli_response_t *r) {
    json_error_t err;
    json_t *v = json_loadb(buf_head(&r->body), r->body.len, 0, &err);
    if (r->status >= 200 && r->status < 300) {
        if (!json_is_object(v)) {
            const char *why = v ? "" : r->body.len ? err.text : "(empty body)";
            fprintf(stderr, "deferctl: the server answered %ld but not with a JSON object%s%s\n",
                    r->status, why[0] ? ": " : "", why);
            json_decref(v);
            return CLI_SERVER;
        }
        r->json = v;
        return CLI_OK;
    }
    json_t *msg = json_object_get(json_object_get(v, "error"), "message");
    if (json_is_string(msg)) {
        char *clean = cli_clean(json_string_value(msg), false);
        fprintf(stderr, "deferctl: %s\n", clean ? clean : "?");
        free(clean);
    } else {
        fprintf(stderr, "deferctl: the server answered %ld without an error message\n", r->status);
    }
    json_decref(v);
    if (r->status == 404)
        return CLI_NOT_FOUND;
    if (r->status >= 400 && r->status < 500)
        return CLI_REFUSED;
    return CLI_SERVER;
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    return buf_append(arg, p, size * n) ? size * n : 0;
}

/* Points the handle at base + path. */
static int set_url(cli_t *cli, const char *path) {
    buf_t url;
    buf_init(&url);
    int rc = base_url(cli, &url);
    const char *s = rc == CLI_OK && buf_puts(&url, path) ? cli_str(&url) : NULL;
    if (rc == CLI_OK && !s)
        rc = cli_oom();
    if (rc == CLI_OK)
        curl_easy_setopt(cli->curl, CURLOPT_URL, s); /* curl copies it */
    buf_free(&url);
    return rc;
}

int cli_request(cli_t *cli, const char *method, const char *path, const char *body, size_t body_len,
                cli_response_t *r) {
    int rc = http_open(cli);
    if (rc != CLI_OK || (rc = set_url(cli, path)) != CLI_OK)
        return rc;
    CURL *h = cli->curl;
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cli->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK)
        return transport_error(cli, cc, false);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return classify(r);
}

/* ---- the event stream ---- */

typedef struct stream {
    CURL *h;
    long status;   /* 0 until the first bytes of the body */
    buf_t pending; /* a line not complete yet, or an error's body */
    int (*on_line)(void *ctx, const char *line, size_t len);
    void *ctx;
    int line_rc;
    volatile sig_atomic_t *stop;
    long silence_ms;
    struct timespec last; /* when bytes last came */
    bool silent;
} stream_t;

static long ms_since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static size_t stream_write(char *p, size_t size, size_t n, void *arg) {
    stream_t *s = arg;
    size_t len = size * n;
    clock_gettime(CLOCK_MONOTONIC, &s->last);
    if (*s->stop)
        return 0;
    if (!s->status)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (!buf_append(&s->pending, p, len))
        return 0;
    if (s->status != 200)
        return len; /* an error's body, read whole */
    char *nl;
    while ((nl = memchr(buf_head(&s->pending), '\n', s->pending.len))) {
        size_t l = (size_t)(nl - buf_head(&s->pending));
        s->line_rc = s->on_line(s->ctx, buf_head(&s->pending), l);
        buf_consume(&s->pending, l + 1);
        if (s->line_rc != CLI_OK)
            return 0;
    }
    return len;
}

/* Called about once a second even when nothing arrives: where a signal
 * (SIGINT, SIGTERM) or a silent connection ends the transfer. */
static int stream_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow) {
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    stream_t *s = arg;
    if (*s->stop)
        return 1;
    if (ms_since(&s->last) > s->silence_ms) {
        s->silent = true;
        return 1;
    }
    return 0;
}

int cli_stream(cli_t *cli, const char *path, long silence_ms, volatile sig_atomic_t *stop,
               int (*on_line)(void *ctx, const char *line, size_t len), void *ctx) {
    int rc = http_open(cli);
    if (rc != CLI_OK || (rc = set_url(cli, path)) != CLI_OK)
        return rc;
    stream_t s = {
        .h = cli->curl, .on_line = on_line, .ctx = ctx, .stop = stop, .silence_ms = silence_ms};
    buf_init(&s.pending);
    clock_gettime(CLOCK_MONOTONIC, &s.last);
    CURL *h = cli->curl;
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L); /* a stream has no end */
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(h);
    if (!s.status)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s.status);
    if (*stop) {
        rc = CLI_OK;
    } else if (s.line_rc != CLI_OK) {
        rc = s.line_rc;
    } else if (s.status != 0 && s.status != 200 && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)) {
        cli_response_t r = {.status = s.status, .body = s.pending};
        buf_init(&s.pending); /* r owns the bytes now */
        rc = classify(&r);
        cli_response_free(&r);
        if (rc == CLI_OK) {
            fprintf(stderr, "deferctl: the server answered %ld instead of streaming events\n",
                    s.status);
            rc = CLI_SERVER;
        }
    } else if (s.silent) {
        fprintf(stderr,
                "deferctl: nothing from %s for %ld s (not even a heartbeat): the connection is "
                "lost\n",
                cli->url, silence_ms / 1000);
        rc = CLI_UNREACHABLE;
    } else if (cc == CURLE_OK) {
        fprintf(stderr, "deferctl: the server ended the event stream\n");
        rc = CLI_UNREACHABLE;
    } else {
        rc = transport_error(cli, cc, s.status == 200);
    }
    buf_free(&s.pending);
    return rc;
}

int cli_print_raw(const cli_response_t *r) {
    fwrite(buf_head(&r->body), 1, r->body.len, stdout);
    if (r->body.len == 0 || buf_head(&r->body)[r->body.len - 1] != '\n')
        putchar('\n');
    return CLI_OK;
}
