/* exec.h - the exec push target: one attempt of a task is one run of a
 * command from the server's configuration, the payload on its stdin.
 *
 * Why a command at all: a web app whose work lives in scripts (a PHP
 * `artisan` command, a Python tool) can have deferd run them directly,
 * without a web server or php-fpm pool in between. The dispatcher bounds
 * how many run at once; this module runs exactly one process per attempt
 * and guarantees that it, and everything it started, is gone when the
 * attempt is aborted.
 *
 * The command line. It comes from the config file, never from the network,
 * and is split into words here - no shell is involved, so nothing in a
 * payload, queue name or environment value is ever interpreted:
 *   - unquoted spaces, tabs and newlines separate words;
 *   - '...' groups its characters literally (a backslash is just a
 *     backslash inside single quotes);
 *   - "..." groups too; inside it \" stands for " and \\ for \, and a
 *     backslash before anything else stays as it is ("C:\d" is C:\d);
 *   - outside quotes a backslash is an ordinary character;
 *   - quoted and unquoted parts that touch form one word (a"b c"d is
 *     `ab cd`), and '' or "" alone is an empty word;
 *   - $, *, ~, |, >, ; and the like mean nothing: write
 *     `sh -c '...'` when a shell is really wanted.
 * The first word is the program: with a '/' it is a path (relative to
 * `workdir` when one is given), else it is looked up on PATH once, at
 * creation, and that file is what every attempt runs.
 *
 * An attempt's process:
 *   - stdin is a pipe carrying the payload, then closed (EOF); a process
 *     that does not read it does not hold anything up;
 *   - its environment is the server's plus DEFER_TASK_ID, DEFER_QUEUE,
 *     DEFER_ATTEMPT (1 for the first) and DEFER_PAYLOAD_TYPE (json or
 *     bytes), which replace any variables of those names;
 *   - it leads its own session and process group, so an abort reaches
 *     whatever it started too;
 *   - of stdout and stderr only the last EXEC_TAIL_MAX bytes of each are
 *     kept, however much it writes;
 *   - exit status 0 is success. Otherwise the reason reads
 *     "exit status 3; stderr: <tail>" (stdout's tail when stderr was
 *     empty), "killed by signal 9", or "cannot start /usr/bin/x: no such
 *     file"; control characters in a tail become spaces or '?'.
 *
 * Not covered: a process that leaves the group on purpose (setsid,
 * setpgid) escapes abort; and when the command exits by itself, anything
 * it left running in the background is left alone (only an abort sweeps
 * the group). */
#ifndef DEFER_EXEC_H
#define DEFER_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dispatch/target.h"

/* How much of the end of stdout and of stderr an attempt keeps. */
#define EXEC_TAIL_MAX 4096

extern const push_target_ops_t exec_target_ops;

/* A target running `command` (split as above) in `workdir` (NULL: the
 * server's own). An abort sends SIGTERM to the process group and, if the
 * command is still running kill_grace_ms later, SIGKILL. The program must
 * exist and be executable, the directory must exist; else NULL, with why
 * in err (errlen bytes, may be 0). Strings are copied. */
push_target_t *exec_target_new(uv_loop_t *loop, const char *command, const char *workdir,
                               uint32_t kill_grace_ms, char *err, size_t errlen);

/* The kept tails of an attempt's output. */
typedef struct exec_output {
    const char *out; /* the last out_len bytes the command wrote to stdout */
    size_t out_len;
    uint64_t out_total; /* everything it wrote there */
    const char *err;
    size_t err_len;
    uint64_t err_total;
} exec_output_t;

/* The output so far of an attempt that start() returned, for the task's
 * record. Valid until its done() returns (the attempt is freed then); the
 * pointers only until the loop runs again. */
void exec_attempt_output(const push_attempt_t *a, exec_output_t *o);

/* Split a command line into words by the rules above. Returns the number
 * of words and sets *argv to a NULL-terminated array (free it with
 * exec_argv_free), or returns -1 with why in err (errlen bytes). No words
 * at all is an error. */
int exec_split_command(const char *cmd, char ***argv, char *err, size_t errlen);
void exec_argv_free(char **argv);

#endif
