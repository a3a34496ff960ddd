/* cmd_task.c - deferctl get, cancel and list: single tasks, and the
 * tasks of a queue.
 *
 * list without --state asks for each state in turn (the API lists one
 * state at a time) and shows them as one table; with --json it prints one
 * document holding the server's answer for each state as it came. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define KEY_MAX 200
#define LIST_LIMIT_MAX 1000

int cmd_get(cli_t *cli, int argc, char **argv) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    if (argc - first != 1)
        return cli_usage_error(cli,
                               argc - first < 1 ? "get needs a task ID" : "get takes one task ID");
    uint64_t id;
    if ((rc = cli_check_id(cli, argv[first], &id)) != CLI_OK)
        return rc;
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%" PRIu64, id);
    cli_response_t r;
    cli_response_init(&r);
    rc = cli_request(cli, "GET", path, NULL, 0, &r);
    if (rc == CLI_OK)
        rc = cli->json ? cli_print_raw(&r) : show_task(r.json);
    cli_response_free(&r);
    return rc;
}

/* ---- cancel ---- */

enum { O_KEY = OPT_CMD_FIRST, O_STATE, O_LIMIT, O_AFTER };

static void print_cancelled(const json_t *t) {
    json_int_t id = json_integer_value(json_object_get(t, "id"));
    const char *queue = json_string_value(json_object_get(t, "queue"));
    char *q = queue ? cli_clean(queue, false) : NULL;
    if (q)
        printf("cancelled task %" JSON_INTEGER_FORMAT " in %s\n", id, q);
    else
        printf("cancelled task %" JSON_INTEGER_FORMAT "\n", id);
    free(q);
}

int cmd_cancel(cli_t *cli, int argc, char **argv) {
    static const struct option opts[] = {{"key", no_argument, NULL, O_KEY}, CLI_GLOBAL_OPTIONS};
    bool by_key = false;
    cli_getopt_reset();
    int c, rc = CLI_OK;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == O_KEY)
            by_key = true;
        else
            rc = cli_common_option(cli, c, argv);
    }
    if (rc != CLI_OK)
        return rc;
    int n = argc - optind;
    buf_t path;
    buf_init(&path);
    if (by_key) {
        if (n != 2)
            return cli_usage_error(cli, "cancel --key needs a QUEUE and a KEY");
        const char *queue = argv[optind], *key = argv[optind + 1];
        if ((rc = cli_check_queue(cli, queue)) != CLI_OK)
            return rc;
        if (strlen(key) < 1 || strlen(key) > KEY_MAX)
            return cli_usage_error(cli, "a key is 1 to %d bytes", KEY_MAX);
        if (!cli_queue_path(&path, queue, "/keys/") || !cli_url_escape(&path, key, strlen(key)))
            rc = cli_oom();
    } else {
        if (n != 1)
            return cli_usage_error(cli, n < 1 ? "cancel needs a task ID (or --key QUEUE KEY)"
                                              : "cancel takes one task ID (or --key QUEUE KEY)");
        uint64_t id;
        if ((rc = cli_check_id(cli, argv[optind], &id)) != CLI_OK)
            return rc;
        if (!buf_appendf(&path, "/v1/tasks/%" PRIu64, id))
            rc = cli_oom();
    }
    cli_response_t r;
    cli_response_init(&r);
    const char *p = rc == CLI_OK ? cli_str(&path) : NULL;
    if (rc == CLI_OK && !p)
        rc = cli_oom();
    if (rc == CLI_OK)
        rc = cli_request(cli, "DELETE", p, NULL, 0, &r);
    if (rc == CLI_OK) {
        if (cli->json)
            cli_print_raw(&r);
        else
            print_cancelled(r.json);
    }
    cli_response_free(&r);
    buf_free(&path);
    return rc;
}

/* ---- list ---- */

static const char *const states[] = {"ready", "delayed", "reserved", "buried", "failed"};
#define NSTATES (sizeof states / sizeof *states)

typedef struct list_args {
    const char *queue;
    const char *state; /* NULL: every state */
    uint64_t limit;    /* 0: the server's default */
    uint64_t after;
} list_args_t;

static int list_parse(cli_t *cli, int argc, char **argv, list_args_t *a) {
    static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
                                         {"limit", required_argument, NULL, O_LIMIT},
                                         {"after", required_argument, NULL, O_AFTER},
                                         CLI_GLOBAL_OPTIONS};
    cli_getopt_reset();
    int c, rc = CLI_OK;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_STATE:
            a->state = NULL;
            for (size_t i = 0; i < NSTATES; i++)
                if (strcmp(optarg, states[i]) == 0)
                    a->state = states[i];
            if (!a->state)
                rc = cli_usage_error(
                    cli, "--state must be ready, delayed, reserved, buried or failed, not '%s'",
                    optarg);
            break;
        case O_LIMIT:
            if (!cli_parse_u64(optarg, 1, LIST_LIMIT_MAX, &a->limit))
                rc = cli_usage_error(cli, "--limit must be an integer from 1 to %d, not '%s'",
                                     LIST_LIMIT_MAX, optarg);
            break;
        case O_AFTER:
            if (!cli_parse_u64(optarg, 0, UINT64_MAX, &a->after))
                rc = cli_usage_error(cli, "--after must be a task id, not '%s'", optarg);
            break;
        default:
            rc = cli_common_option(cli, c, argv);
            break;
        }
    }
    if (rc != CLI_OK)
        return rc;
    if (argc - optind != 1)
        return cli_usage_error(cli,
                               argc - optind < 1 ? "list needs a QUEUE" : "list takes one QUEUE");
    a->queue = argv[optind];
    return cli_check_queue(cli, a->queue);
}

/* One state's page of tasks. */
static int list_state(cli_t *cli, const list_args_t *a, const char *state, cli_response_t *r) {
    buf_t path;
    buf_init(&path);
    bool ok = cli_queue_path(&path, a->queue, "/tasks?state=") && buf_puts(&path, state) &&
              (!a->limit || buf_appendf(&path, "&limit=%" PRIu64, a->limit)) &&
              (!a->after || buf_appendf(&path, "&after=%" PRIu64, a->after));
    const char *p = ok ? cli_str(&path) : NULL;
    int rc = p ? cli_request(cli, "GET", p, NULL, 0, r) : cli_oom();
    buf_free(&path);
    return rc;
}

static bool add_task_row(table_t *t, const json_t *task) {
    char id[32], pri[32], ttr[32], att[32];
    const char *row[] = {
        show_scalar(json_object_get(task, "id"), id, sizeof id),
        show_scalar(json_object_get(task, "state"), NULL, 0),
        show_scalar(json_object_get(task, "priority"), pri, sizeof pri),
        show_scalar(json_object_get(task, "ttr"), ttr, sizeof ttr),
        show_scalar(json_object_get(task, "attempts"), att, sizeof att),
        show_scalar(json_object_get(task, "key"), NULL, 0),
        show_scalar(json_object_get(task, "created_at"), NULL, 0),
        show_scalar(json_object_get(task, "run_at"), NULL, 0),
        show_scalar(json_object_get(task, "last_error"), NULL, 0),
    };
    return table_add(t, row);
}

int cmd_list(cli_t *cli, int argc, char **argv) {
    list_args_t a = {0};
    int rc = list_parse(cli, argc, argv, &a);
    if (rc != CLI_OK)
        return rc;
    static const char *const head[] = {"ID",  "STATE",   "PRI",    "TTR",       "ATTEMPTS",
                                       "KEY", "CREATED", "RUN_AT", "LAST_ERROR"};
    table_t t;
    table_init(&t, sizeof head / sizeof *head, head, "rlrrrllll");
    buf_t doc, more;
    buf_init(&doc);
    buf_init(&more);
    bool ok = buf_puts(&doc, "{");
    for (size_t i = 0; ok && rc == CLI_OK && i < NSTATES; i++) {
        if (a.state && a.state != states[i])
            continue;
        cli_response_t r;
        cli_response_init(&r);
        rc = list_state(cli, &a, states[i], &r);
        if (rc == CLI_OK && cli->json && a.state) {
            cli_print_raw(&r);
        } else if (rc == CLI_OK && cli->json) {
            size_t len = r.body.len;
            while (len && (buf_head(&r.body)[len - 1] == '\n'))
                len--;
            ok = buf_appendf(&doc, "%s\"%s\":", doc.len > 1 ? "," : "", states[i]) &&
                 buf_append(&doc, buf_head(&r.body), len);
        } else if (rc == CLI_OK) {
            const json_t *tasks = json_object_get(r.json, "tasks");
            const json_t *next = json_object_get(r.json, "next");
            for (size_t k = 0; ok && k < json_array_size(tasks); k++)
                ok = add_task_row(&t, json_array_get(tasks, k));
            if (json_is_integer(next)) {
                char lim[48] = "";
                if (a.limit)
                    snprintf(lim, sizeof lim, " --limit %" PRIu64, a.limit);
                ok =
                    ok && buf_appendf(&more,
                                      "more %s tasks: deferctl list %s --state %s%s --after "
                                      "%" JSON_INTEGER_FORMAT "\n",
                                      states[i], a.queue, states[i], lim, json_integer_value(next));
            }
        }
        cli_response_free(&r);
    }
    if (rc == CLI_OK && !ok)
        rc = cli_oom();
    if (rc == CLI_OK && cli->json && !a.state) {
        if (buf_puts(&doc, "}\n"))
            fwrite(buf_head(&doc), 1, doc.len, stdout);
        else
            rc = cli_oom();
    } else if (rc == CLI_OK && !cli->json) {
        if (t.nrows)
            table_print(&t, stdout);
        else
            printf("no %s%stasks in %s\n", a.state ? a.state : "", a.state ? " " : "", a.queue);
        fwrite(buf_head(&more), 1, more.len, stdout);
    }
    table_free(&t);
    buf_free(&doc);
    buf_free(&more);
    return rc;
}
