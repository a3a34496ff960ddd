/* cmd_stats.c - deferctl stats: the server's counters.
 *
 * The answer is nested JSON ("tasks": {"ready": ...}); for people it is
 * flattened into "tasks.ready: 4" lines in the server's order, so counters
 * the server adds later show up without a change here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static bool flatten(fields_t *f, const char *prefix, const json_t *obj) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        char *name = NULL;
        if (asprintf(&name, "%s%s%s", prefix, prefix[0] ? "." : "", k) < 0)
            return false;
        char tmp[64];
        bool ok = json_is_object(v) ? flatten(f, name, v)
                                    : fields_add(f, name, show_scalar(v, tmp, sizeof tmp));
        free(name);
        if (!ok)
            return false;
    }
    return true;
}

int cmd_stats(cli_t *cli, int argc, char **argv) {
    int first, rc = cli_plain_args(cli, argc, argv, &first);
    if (rc != CLI_OK)
        return rc;
    if (first < argc)
        return cli_usage_error(cli, "stats takes no arguments ('%s')", argv[first]);
    cli_response_t r;
    cli_response_init(&r);
    rc = cli_request(cli, "GET", "/v1/stats", NULL, 0, &r);
    if (rc == CLI_OK && cli->json) {
        cli_print_raw(&r);
    } else if (rc == CLI_OK) {
        fields_t f;
        fields_init(&f);
        if (flatten(&f, "", r.json))
            fields_print(&f, stdout);
        else
            rc = cli_oom();
        fields_free(&f);
    }
    cli_response_free(&r);
    return rc;
}
