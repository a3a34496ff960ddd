/* cmd_tail.c - deferctl tail: follow GET /v1/events, one line per event,
 * until interrupted.
 *
 * SIGINT and SIGTERM only set a flag, which the transfer checks about once
 * a second, so the connection is closed properly and the exit code is 0:
 * being stopped is how tail is meant to end. Anything else that ends the
 * stream (the server going away, an overflow, silence without heartbeats)
 * is a lost connection, exit 3. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The server sends a heartbeat every 15 s on a quiet stream; three missed
 * ones mean the connection is gone. */
#define SILENCE_MS 45000L

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int bad_line(const char *line, size_t len) {
    fprintf(stderr, "deferctl: the event stream holds a line that is not a JSON object: %.*s\n",
            (int)(len > 200 ? 200 : len), line);
    return CLI_SERVER;
}

static int on_line(void *ctx, const char *line, size_t len) {
    const cli_t *cli = ctx;
    if (len == 0)
        return CLI_OK;
    json_error_t err;
    json_t *ev = json_loadb(line, len, 0, &err);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return bad_line(line, len);
    }
    const char *name = json_string_value(json_object_get(ev, "event"));
    int rc = CLI_OK;
    if (cli->json) {
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
    } else if (name && strcmp(name, "heartbeat") != 0 && strcmp(name, "overflow") != 0) {
        char id[32];
        char *clean_time = cli_clean(json_string_value(json_object_get(ev, "time")), false);
        char *clean_name = cli_clean(name, false);
        char *clean_queue = cli_clean(json_string_value(json_object_get(ev, "queue")), false);
        if (clean_time && clean_name && clean_queue)
            printf("%s  %s  %s  #%s\n", clean_time, clean_name, clean_queue,
                   show_scalar(json_object_get(ev, "task"), id, sizeof id));
        else
            rc = cli_oom();
        free(clean_time);
        free(clean_name);
        free(clean_queue);
    }
    if (name && strcmp(name, "overflow") == 0) {
        fputs("deferctl: the server cut the event stream off: events came faster than they "
              "were read\n",
              stderr);
        rc = CLI_UNREACHABLE;
    }
    fflush(stdout);
    json_decref(ev);
    return rc;
}

int cmd_tail(cli_t *cli, int argc, char **argv) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    if (argc - first > 1)
        return cli_usage_error(cli, "tail takes at most one QUEUE");
    const char *queue = argc - first == 1 ? argv[first] : NULL;
    if (queue && (rc = cli_check_queue(cli, queue)) != CLI_OK)
        return rc;
    buf_t path;
    buf_init(&path);
    bool ok =
        buf_puts(&path, "/v1/events") &&
        (!queue || (buf_puts(&path, "?queue=") && cli_url_escape(&path, queue, strlen(queue))));
    const char *p = ok ? cli_str(&path) : NULL;
    if (!p) {
        buf_free(&path);
        return cli_oom();
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = cli_stream(cli, p, SILENCE_MS, &stop, on_line, cli);
    buf_free(&path);
    return rc;
}
