/* cmd_queue.c - deferctl queues, kick, pause and resume: the queue-wide
 * commands. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define U32_MAX_VALUE 4294967295ULL

static bool add_queue_row(table_t *t, const json_t *q) {
    static const char *const counts[] = {"ready",  "delayed", "reserved",
                                         "buried", "failed",  "workers_waiting"};
    char num[6][32], enq[32], done[32], paused[48];
    const char *row[10];
    row[0] = json_string_value(json_object_get(q, "name"));
    for (size_t i = 0; i < 6; i++)
        row[1 + i] = show_scalar(json_object_get(q, counts[i]), num[i], sizeof num[i]);
    snprintf(enq, sizeof enq, "%.1f", json_number_value(json_object_get(q, "enqueued_per_second")));
    snprintf(done, sizeof done, "%.1f", json_number_value(json_object_get(q, "done_per_second")));
    show_pause(paused, sizeof paused, q);
    row[7] = enq;
    row[8] = done;
    row[9] = paused;
    return table_add(t, row);
}

int cmd_queues(cli_t *cli, int argc, char **argv) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    if (first < argc)
        return cli_usage_error(cli, "queues takes no arguments ('%s')", argv[first]);
    cli_response_t r;
    cli_response_init(&r);
    rc = cli_request(cli, "GET", "/v1/queues", NULL, 0, &r);
    if (rc == CLI_OK && cli->json) {
        cli_print_raw(&r);
    } else if (rc == CLI_OK) {
        static const char *const head[] = {"QUEUE",  "READY",   "DELAYED", "RESERVED", "BURIED",
                                           "FAILED", "WAITING", "ENQ/S",   "DONE/S",   "PAUSED"};
        table_t t;
        table_init(&t, 10, head, "lrrrrrrrrl");
        const json_t *queues = json_object_get(r.json, "queues");
        bool ok = true;
        for (size_t i = 0; ok && i < json_array_size(queues); i++)
            ok = add_queue_row(&t, json_array_get(queues, i));
        if (ok)
            table_print(&t, stdout);
        else
            rc = cli_oom();
        table_free(&t);
    }
    cli_response_free(&r);
    return rc;
}

/* QUEUE [N]: the queue, and the number if given (within [min, max]). */
static int queue_and_number(cli_t *cli, int argc, char **argv, const char *what, uint64_t min,
                            const char **queue, bool *given, uint64_t *n) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    int count = argc - first;
    if (count < 1)
        return cli_usage_error(cli, "%s needs a QUEUE", cli->cmd->name);
    if (count > 2)
        return cli_usage_error(cli, "too many arguments ('%s')", argv[first + 2]);
    *queue = argv[first];
    if ((rc = cli_check_queue(cli, *queue)) != CLI_OK)
        return rc;
    *given = count == 2;
    if (*given && !cli_parse_u64(argv[first + 1], min, U32_MAX_VALUE, n))
        return cli_usage_error(cli, "%s must be an integer from %" PRIu64 " to %llu, not '%s'",
                               what, min, U32_MAX_VALUE, argv[first + 1]);
    return CLI_OK;
}

/* POST /v1/queues/QUEUE/<action> with body (NULL: none). */
static int queue_post(cli_t *cli, const char *queue, const char *action, const char *body,
                      cli_response_t *r) {
    buf_t path;
    buf_init(&path);
    const char *p = cli_queue_path(&path, queue, action) ? cli_str(&path) : NULL;
    int rc = p ? cli_request(cli, "POST", p, body, body ? strlen(body) : 0, r) : cli_oom();
    buf_free(&path);
    return rc;
}

int cmd_kick(cli_t *cli, int argc, char **argv) {
    const char *queue;
    bool given;
    uint64_t n = 0;
    int rc = queue_and_number(cli, argc, argv, "N (how many to kick)", 1, &queue, &given, &n);
    if (rc != CLI_OK)
        return rc;
    char body[64];
    snprintf(body, sizeof body, "{\"bound\":%" PRIu64 "}", n);
    cli_response_t r;
    cli_response_init(&r);
    rc = queue_post(cli, queue, "/kick", given ? body : NULL, &r);
    if (rc == CLI_OK && cli->json) {
        cli_print_raw(&r);
    } else if (rc == CLI_OK) {
        json_int_t k = json_integer_value(json_object_get(r.json, "kicked"));
        printf("kicked %" JSON_INTEGER_FORMAT " task%s in %s\n", k, k == 1 ? "" : "s", queue);
    }
    cli_response_free(&r);
    return rc;
}

int cmd_pause(cli_t *cli, int argc, char **argv) {
    const char *queue;
    bool given;
    uint64_t secs = 0;
    int rc = queue_and_number(cli, argc, argv, "SECS", 1, &queue, &given, &secs);
    if (rc != CLI_OK)
        return rc;
    char body[64];
    snprintf(body, sizeof body, "{\"seconds\":%" PRIu64 "}", secs);
    cli_response_t r;
    cli_response_init(&r);
    rc = queue_post(cli, queue, "/pause", given ? body : NULL, &r);
    if (rc == CLI_OK && cli->json) {
        cli_print_raw(&r);
    } else if (rc == CLI_OK) {
        char how[48];
        show_pause(how, sizeof how, r.json);
        if (strcmp(how, "no") == 0)
            printf("%s is not paused (a pause of 0 seconds ends at once)\n", queue);
        else if (strcmp(how, "until resumed") == 0)
            printf("paused %s until resumed (deferctl resume %s)\n", queue, queue);
        else
            printf("paused %s for %s\n", queue, how);
    }
    cli_response_free(&r);
    return rc;
}

int cmd_resume(cli_t *cli, int argc, char **argv) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    if (argc - first != 1)
        return cli_usage_error(cli, argc - first < 1 ? "resume needs a QUEUE"
                                                     : "resume takes one QUEUE");
    const char *queue = argv[first];
    if ((rc = cli_check_queue(cli, queue)) != CLI_OK)
        return rc;
    cli_response_t r;
    cli_response_init(&r);
    rc = queue_post(cli, queue, "/resume", NULL, &r);
    if (rc == CLI_OK && cli->json)
        cli_print_raw(&r);
    else if (rc == CLI_OK)
        printf("resumed %s\n", queue);
    cli_response_free(&r);
    return rc;
}
