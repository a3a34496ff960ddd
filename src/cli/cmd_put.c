/* cmd_put.c - deferctl put: enqueue one task.
 *
 * The payload is checked as JSON here (with jansson, the parser the server
 * uses), so a broken payload is a usage error and not a round trip; it is
 * then sent as the very text given, spliced into the request, rather than
 * re-encoded. --raw sends bytes instead, base64-encoded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/base64.h"
#include "util/json_out.h"

#define U32_MAX_VALUE 4294967295ULL
#define KEY_MAX 200
/* Unix seconds the server accepts for run_at (below 10^12). */
#define RUN_AT_MAX_SECONDS 999999999999.0

enum {
    O_RAW = OPT_CMD_FIRST,
    O_PRIORITY,
    O_DELAY,
    O_RUN_AT,
    O_TTR,
    O_MAX_ATTEMPTS,
    O_KEY,
    O_REPLACE
};

typedef struct put_args {
    const char *queue;
    const char *payload_arg; /* NULL or "-": stdin */
    bool raw;
    const char *key;
    bool replace;
    const char *delay, *run_at;
    json_t *fields; /* everything but the payload, checked */
} put_args_t;

/* An integer option within [min, max] into the request. */
static int set_uint(cli_t *cli, json_t *fields, const char *name, const char *opt, const char *arg,
                    uint64_t min, uint64_t max, const char *hint) {
    uint64_t v;
    if (!cli_parse_u64(arg, min, max, &v))
        return cli_usage_error(cli, "%s must be an integer from %llu to %llu%s, not '%s'", opt,
                               (unsigned long long)min, (unsigned long long)max, hint, arg);
    json_object_set_new(fields, name, json_integer((json_int_t)v));
    return CLI_OK;
}

/* A number of seconds as JSON: an integer when it was written as one. */
static json_t *seconds_json(const char *arg, double v) {
    return strchr(arg, '.') ? json_real(v) : json_integer((json_int_t)v);
}

static int set_when(cli_t *cli, put_args_t *a) {
    double v;
    if (a->delay && a->run_at)
        return cli_usage_error(cli, "give --delay or --run-at, not both");
    if (a->delay) {
        if (!cli_parse_seconds(a->delay, (double)U32_MAX_VALUE, &v))
            return cli_usage_error(cli,
                                   "--delay must be a number of seconds from 0 to %llu, not '%s'",
                                   U32_MAX_VALUE, a->delay);
        json_object_set_new(a->fields, "delay", seconds_json(a->delay, v));
    } else if (a->run_at) {
        int64_t ns;
        if (cli_parse_seconds(a->run_at, RUN_AT_MAX_SECONDS, &v))
            json_object_set_new(a->fields, "run_at", seconds_json(a->run_at, v));
        else if (json_parse_time(a->run_at, strlen(a->run_at), &ns))
            json_object_set_new(a->fields, "run_at", json_string(a->run_at));
        else
            return cli_usage_error(cli,
                                   "--run-at must be an RFC 3339 time such as 2026-11-22T14:45:00Z "
                                   "(or with an offset, +01:00) or Unix seconds, not '%s'",
                                   a->run_at);
    }
    return CLI_OK;
}

static int parse_args(cli_t *cli, int argc, char **argv, put_args_t *a) {
    static const struct option opts[] = {{"raw", no_argument, NULL, O_RAW},
                                         {"priority", required_argument, NULL, O_PRIORITY},
                                         {"delay", required_argument, NULL, O_DELAY},
                                         {"run-at", required_argument, NULL, O_RUN_AT},
                                         {"ttr", required_argument, NULL, O_TTR},
                                         {"max-attempts", required_argument, NULL, O_MAX_ATTEMPTS},
                                         {"key", required_argument, NULL, O_KEY},
                                         {"replace", no_argument, NULL, O_REPLACE},
                                         CLI_GLOBAL_OPTIONS};
    cli_getopt_reset();
    int c, rc = CLI_OK;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_RAW:
            a->raw = true;
            break;
        case O_PRIORITY:
            rc = set_uint(cli, a->fields, "priority", "--priority", optarg, 0, U32_MAX_VALUE,
                          " (0 is most urgent)");
            break;
        case O_DELAY:
            a->delay = optarg;
            break;
        case O_RUN_AT:
            a->run_at = optarg;
            break;
        case O_TTR:
            rc = set_uint(cli, a->fields, "ttr", "--ttr", optarg, 1, U32_MAX_VALUE, " (seconds)");
            break;
        case O_MAX_ATTEMPTS:
            rc = set_uint(cli, a->fields, "max_attempts", "--max-attempts", optarg, 0,
                          U32_MAX_VALUE, " (0: no limit)");
            break;
        case O_KEY:
            a->key = optarg;
            break;
        case O_REPLACE:
            a->replace = true;
            break;
        default:
            rc = cli_common_option(cli, c, argv);
            break;
        }
    }
    if (rc != CLI_OK)
        return rc;
    int n = argc - optind;
    if (n < 1)
        return cli_usage_error(cli, "put needs a QUEUE");
    if (n > 2)
        return cli_usage_error(cli, "too many arguments: '%s' (quote the payload as one argument)",
                               argv[optind + 2]);
    a->queue = argv[optind];
    a->payload_arg = n == 2 ? argv[optind + 1] : NULL;
    if ((rc = cli_check_queue(cli, a->queue)) != CLI_OK || (rc = set_when(cli, a)) != CLI_OK)
        return rc;
    if (a->key) {
        size_t len = strlen(a->key);
        if (len < 1 || len > KEY_MAX)
            return cli_usage_error(cli, "--key must be 1 to %d bytes (it is %zu)", KEY_MAX, len);
        json_object_set_new(a->fields, "key", json_string(a->key));
        if (!json_object_get(a->fields, "key"))
            return cli_usage_error(cli, "--key must be UTF-8 text");
    }
    if (a->replace) {
        if (!a->key)
            return cli_usage_error(cli, "--replace needs --key (it says what to do when the key is "
                                        "held)");
        json_object_set_new(a->fields, "on_conflict", json_string("replace"));
    }
    return CLI_OK;
}

/* The payload's bytes: the argument, or all of stdin. */
static int read_payload(cli_t *cli, const put_args_t *a, buf_t *out) {
    if (a->payload_arg && strcmp(a->payload_arg, "-") != 0)
        return buf_puts(out, a->payload_arg) ? CLI_OK : cli_oom();
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (!buf_append(out, chunk, n))
            return cli_oom();
    if (ferror(stdin))
        return cli_usage_error(cli, "cannot read the payload from stdin: %s", strerror(errno));
    return CLI_OK;
}

/* The request body: {"payload": <the text as given>, ...fields} or
 * {"payload_base64": "...", ...fields}. */
static int build_body(cli_t *cli, put_args_t *a, const buf_t *payload, buf_t *body) {
    if (a->raw) {
        buf_t b64;
        buf_init(&b64);
        bool ok = base64_encode(&b64, buf_head(payload), payload->len);
        json_t *s = ok ? json_stringn(buf_head(&b64), b64.len) : NULL;
        buf_free(&b64);
        if (!s)
            return cli_oom();
        json_object_set_new(a->fields, "payload_base64", s);
        char *text = json_dumps(a->fields, JSON_COMPACT);
        ok = text && buf_puts(body, text);
        free(text);
        return ok ? CLI_OK : cli_oom();
    }
    if (payload->len == 0)
        return cli_usage_error(cli, "the payload is empty: give PAYLOAD (JSON text), or pipe it on "
                                    "stdin");
    json_error_t err;
    json_t *v =
        json_loadb(buf_head(payload), payload->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!v)
        return cli_usage_error(cli,
                               "the payload is not valid JSON: %s (line %d, column %d); to send "
                               "bytes as they are, use --raw",
                               err.text, err.line, err.column);
    json_decref(v);
    char *rest = json_dumps(a->fields, JSON_COMPACT);
    bool ok = rest && buf_puts(body, "{\"payload\":") &&
              buf_append(body, buf_head(payload), payload->len) &&
              (strcmp(rest, "{}") == 0 ? buf_puts(body, "}")
                                       : buf_puts(body, ",") && buf_puts(body, rest + 1));
    free(rest);
    return ok ? CLI_OK : cli_oom();
}

/* "ready" or "delayed, runs at ... (in 5m)". */
static char *state_text(const json_t *task) {
    const char *state = json_string_value(json_object_get(task, "state"));
    const json_t *run_at = json_object_get(task, "run_at");
    char *out = NULL;
    if (json_is_string(run_at)) {
        char *t = show_time(run_at);
        if (t && asprintf(&out, "%s, runs at %s", state ? state : "?", t) < 0)
            out = NULL;
        free(t);
    } else {
        out = strdup(state ? state : "?");
    }
    return out;
}

static void print_outcome(const cli_response_t *r) {
    const json_t *t = r->json;
    json_int_t id = json_integer_value(json_object_get(t, "id"));
    char *queue = cli_clean(json_string_value(json_object_get(t, "queue")), false);
    char *key = cli_clean(json_string_value(json_object_get(t, "key")), false);
    char *state = state_text(t);
    const json_t *superseded = json_object_get(t, "superseded");
    if (json_is_true(json_object_get(t, "deduplicated")))
        printf("task %" JSON_INTEGER_FORMAT " in %s already holds key '%s', nothing created: %s\n",
               id, queue, key, state);
    else if (json_is_true(json_object_get(t, "replaced")))
        printf("replaced task %" JSON_INTEGER_FORMAT " in %s: %s\n", id, queue, state);
    else if (json_is_integer(superseded))
        printf("created task %" JSON_INTEGER_FORMAT
               " in %s: %s; it took key '%s' from task %" JSON_INTEGER_FORMAT
               ", which a worker is running\n",
               id, queue, state, key, json_integer_value(superseded));
    else
        printf("created task %" JSON_INTEGER_FORMAT " in %s: %s\n", id, queue, state);
    free(queue);
    free(key);
    free(state);
}

int cmd_put(cli_t *cli, int argc, char **argv) {
    put_args_t a = {.fields = json_object()};
    buf_t payload, body, path;
    buf_init(&payload);
    buf_init(&body);
    buf_init(&path);
    cli_response_t r;
    cli_response_init(&r);
    int rc = a.fields ? parse_args(cli, argc, argv, &a) : cli_oom();
    if (rc == CLI_OK)
        rc = read_payload(cli, &a, &payload);
    if (rc == CLI_OK)
        rc = build_body(cli, &a, &payload, &body);
    if (rc == CLI_OK && !cli_queue_path(&path, a.queue, "/tasks"))
        rc = cli_oom();
    if (rc == CLI_OK)
        rc = cli_request(cli, "POST", cli_str(&path), buf_head(&body), body.len, &r);
    if (rc == CLI_OK) {
        if (cli->json)
            cli_print_raw(&r);
        else
            print_outcome(&r);
    }
    cli_response_free(&r);
    buf_free(&payload);
    buf_free(&body);
    buf_free(&path);
    json_decref(a.fields);
    return rc;
}
