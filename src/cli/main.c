/* main.c - deferctl: global options, the command table, help.
 *
 * Global options may come before the command (and, parsed by each command,
 * after it). Nothing is sent before every argument has been checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "version.h"

static const cli_command_t commands[] = {
    {"put", cmd_put,
     "QUEUE [PAYLOAD] [--raw] [--priority N] [--delay SECS | --run-at TIME] [--ttr SECS] "
     "[--max-attempts N] [--key KEY [--replace]]",
     "QUEUE [PAYLOAD]", "enqueue a task",
     "PAYLOAD is JSON text; '-' or leaving it out reads it from stdin. With --raw\n"
     "the payload is bytes, not JSON (sent as payload_base64).\n"
     "  --priority N      0 (most urgent) to 4294967295; default 1024\n"
     "  --delay SECS      seconds until the task is ready (fractions allowed)\n"
     "  --run-at TIME     when it becomes ready: RFC 3339 (2026-11-22T14:45:00Z)\n"
     "                    or Unix seconds; a past time means now\n"
     "  --ttr SECS        seconds a worker may hold it, 1 to 4294967295; default 60\n"
     "  --max-attempts N  bury it as failed after N failed attempts; 0 = no limit\n"
     "  --key KEY         unique among the queue's unfinished tasks (1-200 bytes);\n"
     "                    if another task holds it, that task is kept and shown\n"
     "  --replace         with --key: replace the holder instead\n"
     "A payload starting with '-' (a negative number) goes after '--'."},
    {"get", cmd_get, "ID", "ID", "show one task, live or finished", NULL},
    {"cancel", cmd_cancel, "ID  |  deferctl cancel --key QUEUE KEY", "ID | --key QUEUE KEY",
     "cancel a task, by id or by its unique key",
     "A task a worker holds cannot be cancelled (exit 4), nor a finished one;\n"
     "cancelling a cancelled task again succeeds."},
    {"list", cmd_list,
     "QUEUE [--state ready|delayed|reserved|buried|failed] [--limit N] [--after ID]",
     "QUEUE [--state S]", "the tasks in a queue",
     "Without --state, every state is listed (--limit applies to each). --limit\n"
     "is 1 to 1000 (default 100); --after ID starts after that task (paging)."},
    {"queues", cmd_queues, "", "", "every queue, with its counts and rates", NULL},
    {"stats", cmd_stats, "", "", "the server's counters", NULL},
    {"kick", cmd_kick, "QUEUE [N]", "QUEUE [N]", "buried (else delayed) tasks back to ready",
     "At most N tasks (default: all). Buried tasks, failed ones included, get a\n"
     "fresh set of attempts; when none is buried, delayed tasks become ready."},
    {"pause", cmd_pause, "QUEUE [SECS]", "QUEUE [SECS]",
     "hand out no task for SECS seconds (default: until resumed)",
     "SECS is 1 to 4294967295. Tasks can still be enqueued while a queue is paused."},
    {"resume", cmd_resume, "QUEUE", "QUEUE", "end a pause", NULL},
    {"tail", cmd_tail, "[QUEUE]", "[QUEUE]", "follow task events until interrupted",
     "One line per event; with --json, the server's JSON line as it is\n"
     "(heartbeats included). Exits 0 on SIGINT or SIGTERM, 3 when the\n"
     "connection drops or is silent for 45 s."},
};

static const char options_text[] =
    "Options (before or after the command):\n"
    "  --url URL          the server (default $DEFER_URL, else " CLI_DEFAULT_URL ")\n"
    "  --token-file FILE  send the token on FILE's first line (default $DEFER_TOKEN)\n"
    "  --json             print the server's JSON as it is, for scripts\n"
    "  --timeout SECONDS  give up on a request after this long (default 30)\n"
    "\n"
    "Exit codes: 0 done; 1 not found (404); 2 bad arguments; 3 cannot reach the\n"
    "server; 4 the server refused the request (400, 401, 409, 413); 5 server error\n"
    "(5xx, draining, disk full, an answer that cannot be read).\n";

void cli_print_usage(FILE *out) {
    fputs("usage: deferctl [--url URL] [--token-file FILE] [--json] [--timeout SECONDS]\n"
          "                COMMAND [ARGS]\n\nCommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s%s%s", commands[i].name, commands[i].brief[0] ? " " : "",
                 commands[i].brief);
        fprintf(out, "  %-28s  %s\n", what, commands[i].summary);
    }
    fputs("  help [COMMAND]                this, or all of a command's arguments\n"
          "  --version                     deferctl's version\n\n",
          out);
    fputs(options_text, out);
}

void cli_print_command_help(const cli_command_t *cmd, FILE *out) {
    fprintf(out, "usage: deferctl %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->details)
        fprintf(out, "\n%s\n", cmd->details);
    fputc('\n', out);
    fputs(options_text, out);
}

static const cli_command_t *find_command(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* help [COMMAND] */
static int help(int argc, char **argv) {
    if (argc < 2) {
        cli_print_usage(stdout);
        return CLI_OK;
    }
    const cli_command_t *cmd = find_command(argv[1]);
    if (!cmd || argc > 2)
        return cli_usage_error(NULL, "no command '%s' (deferctl help lists them)", argv[1]);
    cli_print_command_help(cmd, stdout);
    return CLI_OK;
}

enum { OPT_VERSION = OPT_CMD_FIRST };

int main(int argc, char **argv) {
    cli_t cli = {.timeout_ms = CLI_DEFAULT_TIMEOUT_MS};
    const char *env = getenv("DEFER_URL");
    cli.url = env && *env ? env : CLI_DEFAULT_URL;

    static const struct option opts[] = {{"version", no_argument, NULL, OPT_VERSION},
                                         {"help", no_argument, NULL, 'h'},
                                         CLI_GLOBAL_OPTIONS};
    cli_getopt_reset();
    int c;
    /* '+': stop at the command; its options are its own business. */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        int rc = CLI_OK;
        switch (c) {
        case OPT_VERSION:
            printf("deferctl %s\n", DEFER_VERSION);
            return CLI_OK;
        case 'h':
        case OPT_HELP:
            cli_print_usage(stdout);
            return CLI_OK;
        case OPT_URL:
        case OPT_TOKEN_FILE:
        case OPT_JSON:
        case OPT_TIMEOUT:
            rc = cli_set_global(&cli, c, optarg);
            break;
        case ':':
            rc = cli_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            rc = optopt > 0 && optopt < 256
                     ? cli_usage_error(NULL, "unknown option '-%c'", optopt)
                     : cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
            break;
        }
        if (rc != CLI_OK)
            return rc;
    }
    if (optind == argc) {
        fputs("deferctl: which command? (deferctl --help lists them)\n", stderr);
        cli_print_usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0)
        return help(argc - optind, argv + optind);
    cli.cmd = find_command(name);
    if (!cli.cmd)
        return cli_usage_error(NULL, "no command '%s' (deferctl help lists them)", name);
    int rc = cli.cmd->run(&cli, argc - optind, argv + optind);
    cli_http_close(&cli);
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        perror("deferctl: cannot write the answer out");
        rc = CLI_SERVER;
    }
    return rc == CLI_HELP ? CLI_OK : rc;
}
