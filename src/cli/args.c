/* args.c - checking arguments before anything is sent.
 *
 * Every number, name and time is checked here with the server's own
 * limits, so a typo is a usage error (exit 2) that names the argument and
 * what is allowed, rather than a round trip and a 400. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define QUEUE_NAME_MAX 200
#define TIMEOUT_MAX_SECONDS 86400.0

int cli_usage_error(const cli_t *cli, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("deferctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cli && cli->cmd)
        fprintf(stderr, "usage: deferctl %s %s\n", cli->cmd->name, cli->cmd->usage);
    else
        fputs("usage: deferctl [OPTIONS] COMMAND [ARGS]   (deferctl --help lists them)\n", stderr);
    return CLI_USAGE;
}

/* GNU getopt starts over (and forgets its permutation state) at optind 0;
 * errors are reported by cli_common_option instead of getopt itself. */
void cli_getopt_reset(void) {
    optind = 0;
    opterr = 0;
}

int cli_set_global(cli_t *cli, int c, const char *arg) {
    switch (c) {
    case OPT_URL:
        cli->url = arg;
        return CLI_OK;
    case OPT_TOKEN_FILE:
        cli->token_file = arg;
        return CLI_OK;
    case OPT_JSON:
        cli->json = true;
        return CLI_OK;
    case OPT_TIMEOUT: {
        double secs;
        if (!cli_parse_seconds(arg, TIMEOUT_MAX_SECONDS, &secs) || secs <= 0)
            return cli_usage_error(
                cli, "--timeout must be a number of seconds above 0, at most %.0f, not '%s'",
                TIMEOUT_MAX_SECONDS, arg);
        /* Rounded up to whole ms without ceil() (deferctl links no -lm). */
        long ms = (long)(secs * 1000.0);
        cli->timeout_ms = ms < secs * 1000.0 ? ms + 1 : ms;
        return CLI_OK;
    }
    }
    return cli_usage_error(cli, "unknown option");
}

int cli_common_option(cli_t *cli, int c, char **argv) {
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    switch (c) {
    case OPT_URL:
    case OPT_TOKEN_FILE:
    case OPT_JSON:
    case OPT_TIMEOUT:
        return cli_set_global(cli, c, optarg);
    case OPT_HELP:
        cli_print_command_help(cli->cmd, stdout);
        return CLI_HELP;
    case ':':
        return cli_usage_error(cli, "option '%s' needs a value", arg);
    case '?':
        if (optopt > 0 && optopt < 256)
            return cli_usage_error(cli, "unknown option '-%c'", optopt);
        return cli_usage_error(cli, "'%s' is not an option of '%s'", arg, cli->cmd->name);
    }
    return cli_usage_error(cli, "unexpected option '%s'", arg);
}

int cli_plain_args(cli_t *cli, int argc, char **argv, int *first) {
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS};
    cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int rc = cli_common_option(cli, c, argv);
        if (rc != CLI_OK)
            return rc;
    }
    *first = optind;
    return CLI_OK;
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    size_t len = strlen(s);
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *s, double max, double *out) {
    size_t digits = 0, dots = 0;
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.')
            dots++;
        else
            return false;
    }
    if (digits == 0 || dots > 1 || strlen(s) > 32)
        return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_queue_name_ok(const char *s) {
    size_t len = strlen(s);
    if (len == 0 || len > QUEUE_NAME_MAX || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != 0 && strchr("-+/;.$_()", c));
        if (!ok)
            return false;
    }
    return true;
}

int cli_check_queue(const cli_t *cli, const char *s) {
    if (cli_queue_name_ok(s))
        return CLI_OK;
    return cli_usage_error(cli,
                           "invalid queue name '%s': use 1 to %d of A-Z a-z 0-9 - + / ; . $ _ ( ), "
                           "not starting with '-'",
                           s, QUEUE_NAME_MAX);
}

int cli_check_id(const cli_t *cli, const char *s, uint64_t *id) {
    if (cli_parse_u64(s, 1, UINT64_MAX, id))
        return CLI_OK;
    return cli_usage_error(cli, "invalid task id '%s': ids are positive integers", s);
}

int cli_oom(void) {
    fputs("deferctl: out of memory\n", stderr);
    return CLI_SERVER;
}
