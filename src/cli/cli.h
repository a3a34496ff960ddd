/* cli.h - deferctl, the command-line client of deferd's HTTP API
 * (docs/deferctl.md for users, docs/http-api.md for the wire).
 *
 * What the pieces share: the settings every command reads (URL, token,
 * --json, --timeout), the exit codes, and the entry points of each file.
 *
 * Files: main.c (global options, command table, help), args.c (checking
 * arguments before anything is sent), http.c (libcurl: one request, or the
 * event stream), table.c (aligned tables and field lists), show.c (tasks,
 * queues and times for people), cmd_put.c, cmd_task.c (get, cancel, list),
 * cmd_queue.c (queues, kick, pause, resume), cmd_stats.c, cmd_tail.c. */
#ifndef DEFER_CLI_H
#define DEFER_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"

/* Exit codes: what a script can branch on (docs/deferctl.md). */
enum {
    CLI_OK = 0,
    CLI_NOT_FOUND = 1,   /* 404: no such task, queue or key */
    CLI_USAGE = 2,       /* bad arguments; nothing was sent */
    CLI_UNREACHABLE = 3, /* connection refused, timeout, DNS, stream dropped */
    CLI_REFUSED = 4,     /* any other 4xx */
    CLI_SERVER = 5,      /* 5xx, or an answer that cannot be read */
    CLI_HELP = -1,       /* internal: --help was printed, exit 0 */
};

#define CLI_DEFAULT_URL "http://127.0.0.1:11380"
#define CLI_DEFAULT_TIMEOUT_MS 30000L

typedef struct cli_command cli_command_t;

typedef struct cli {
    const char *url;        /* as given; trailing '/' ignored */
    const char *token_file; /* --token-file, or NULL */
    bool json;              /* --json: the server's JSON as it is */
    long timeout_ms;
    const cli_command_t *cmd; /* the command being run, for usage messages */
    void *curl;               /* CURL *, opened on the first request */
    void *headers;            /* struct curl_slist * */
    char *token;              /* loaded on the first request; NULL: none */
} cli_t;

struct cli_command {
    const char *name;
    int (*run)(cli_t *cli, int argc, char **argv);
    const char *usage;   /* arguments, after the command's name */
    const char *brief;   /* the main arguments, for the list of commands */
    const char *summary; /* one line for `deferctl help` */
    const char *details; /* more for `deferctl help COMMAND`, or NULL */
};

/* ---- main.c ---- */
void cli_print_usage(FILE *out);
void cli_print_command_help(const cli_command_t *cmd, FILE *out);

/* ---- args.c ---- */

/* The options every command also accepts after its name. */
enum {
    OPT_URL = 1000,
    OPT_TOKEN_FILE,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_HELP,
    OPT_CMD_FIRST /* commands number their own options from here */
};
/* Ends every command's option table: the global options again, so they
 * may follow the command too ("deferctl get 5 --json"). */
/* clang-format off */
#define CLI_GLOBAL_OPTIONS                                    \
    {"url", required_argument, NULL, OPT_URL},                \
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},  \
    {"json", no_argument, NULL, OPT_JSON},                    \
    {"timeout", required_argument, NULL, OPT_TIMEOUT},        \
    {"help", no_argument, NULL, OPT_HELP},                    \
    {NULL, 0, NULL, 0}
/* clang-format on */

/* Print "deferctl: <message>" and the command's usage; returns CLI_USAGE. */
int cli_usage_error(const cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resets getopt for a command's own argv (argv[0] is the command's name). */
void cli_getopt_reset(void);
/* Handles one getopt_long result that is not a command option: a global
 * option, --help, or an error. CLI_OK when handled, CLI_HELP after printing
 * the command's help, CLI_USAGE after an error. */
int cli_common_option(cli_t *cli, int c, char **argv);
/* Parses the argv of a command without options of its own; the
 * positional arguments are argv[*first..argc). */
int cli_plain_args(cli_t *cli, int argc, char **argv, int *first);
/* The value of a global option (also used by main.c before the command). */
int cli_set_global(cli_t *cli, int c, const char *arg);

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A decimal number of seconds, fractions allowed ("1.5"); no exponent,
 * sign, hex, inf or nan. */
bool cli_parse_seconds(const char *s, double max, double *out);
/* The beanstalk tube rules: 1-200 of A-Z a-z 0-9 - + / ; . $ _ ( ),
 * not starting with '-'. */
bool cli_queue_name_ok(const char *s);
/* Checks a QUEUE argument; CLI_OK or a usage error. */
int cli_check_queue(const cli_t *cli, const char *s);
/* A task id: a positive decimal integer. */
int cli_check_id(const cli_t *cli, const char *s, uint64_t *id);
/* Says so on stderr; returns CLI_SERVER. */
int cli_oom(void);

/* ---- http.c ---- */

typedef struct cli_response {
    long status;
    buf_t body;
    json_t *json; /* the parsed body of a successful answer */
} cli_response_t;

void cli_response_init(cli_response_t *r);
void cli_response_free(cli_response_t *r);

/* path may carry a query string. body NULL: no body (a POST without one
 * sends an empty body). On a 2xx answer holding JSON: CLI_OK, with
 * r->json set. Otherwise the error is printed to stderr and the exit
 * code returned. */
int cli_request(cli_t *cli, const char *method, const char *path, const char *body, size_t body_len,
                cli_response_t *r);

/* Follows a streamed answer (GET path), handing each complete line
 * (without its '\n') to on_line until *stop is set (CLI_OK), the stream
 * ends or drops (CLI_UNREACHABLE), on_line returns non-zero (that code),
 * or the server refuses (its code). A stream silent for silence_ms
 * counts as dropped. */
int cli_stream(cli_t *cli, const char *path, long silence_ms, volatile sig_atomic_t *stop,
               int (*on_line)(void *ctx, const char *line, size_t len), void *ctx);

/* Appends s percent-encoded as one URL path segment or query value. */
bool cli_url_escape(buf_t *b, const char *s, size_t len);
/* Appends "/v1/queues/<queue, escaped><suffix>". */
bool cli_queue_path(buf_t *b, const char *queue, const char *suffix);
/* b's bytes as a C string (a NUL is kept after them, not counted); NULL
 * when out of memory. */
const char *cli_str(buf_t *b);
void cli_http_close(cli_t *cli);

/* Writes an answer's body to stdout as it came (--json), ending it with a
 * newline. */
int cli_print_raw(const cli_response_t *r);

/* ---- table.c ---- */

/* Copy of s (NULL: "-") with control characters replaced by '?', so that
 * a name or a message cannot move the cursor or start an escape
 * sequence; newlines stay when keep_newlines. NULL when out of memory. */
char *cli_clean(const char *s, bool keep_newlines);

typedef struct table {
    size_t ncols;
    const char *const *head; /* NULL: no header row (a field list) */
    const char *align;       /* 'l' or 'r' per column */
    char **cells;
    size_t nrows, cap;
} table_t;

void table_init(table_t *t, size_t ncols, const char *const *head, const char *align);
/* Adds a row of ncols strings (copied; NULL shows as "-"). */
bool table_add(table_t *t, const char *const *row);
void table_print(const table_t *t, FILE *out);
void table_free(table_t *t);

/* "name: value" lines with the values aligned; a value holding newlines
 * continues under itself. */
typedef struct fields {
    table_t t;
} fields_t;
void fields_init(fields_t *f);
bool fields_add(fields_t *f, const char *name, const char *value);
bool fields_addf(fields_t *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fields_print(const fields_t *f, FILE *out);
void fields_free(fields_t *f);

/* ---- show.c ---- */

/* A JSON value as text for a cell: strings as they are, null or absent as
 * "-", numbers and booleans formatted into tmp (NULL where a string is
 * expected: a number then shows as "?"), arrays and objects as "..."
 * (they do not fit a cell). */
const char *show_scalar(const json_t *v, char *tmp, size_t tmplen);
/* An RFC 3339 time from the server, with how long ago or ahead it is
 * ("2026-11-22T14:45:00.000Z (in 44m 59s)"); malloc'd, NULL if out of
 * memory. */
char *show_time(const json_t *v);
/* A task object as "field: value" lines. */
int show_task(const json_t *task);
/* A whole number of seconds, short: "45s", "3m 20s", "2h 5m", "4d 1h". */
void show_duration(char *out, size_t len, int64_t secs);
/* The PAUSED column / line of a queue object. */
void show_pause(char *out, size_t len, const json_t *queue);

/* ---- the commands ---- */
int cmd_put(cli_t *cli, int argc, char **argv);
int cmd_get(cli_t *cli, int argc, char **argv);
int cmd_cancel(cli_t *cli, int argc, char **argv);
int cmd_list(cli_t *cli, int argc, char **argv);
int cmd_queues(cli_t *cli, int argc, char **argv);
int cmd_kick(cli_t *cli, int argc, char **argv);
int cmd_pause(cli_t *cli, int argc, char **argv);
int cmd_resume(cli_t *cli, int argc, char **argv);
int cmd_stats(cli_t *cli, int argc, char **argv);
int cmd_tail(cli_t *cli, int argc, char **argv);

#endif
