/* bs_parse.h - the beanstalk command-line parser.
 *
 * A pure function from one command line (without its CRLF) to a command:
 * no state, no allocation, no I/O, so a fuzzer can drive it directly. It
 * reproduces beanstalkd 1.12's acceptance rules exactly, including their
 * odd corners (documented in docs/beanstalk-compat.md): prefix matching of
 * command names, leading spaces allowed before numbers, loose parsing of
 * reserve-with-timeout and kick. */
#ifndef DEFER_BS_PARSE_H
#define DEFER_BS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest command line, CRLF included: beanstalkd's LINE_BUF_SIZE. */
#define BS_LINE_MAX 224

typedef enum bs_op {
    BS_OP_UNKNOWN = 0,
    BS_OP_PUT,
    BS_OP_PEEK,
    BS_OP_PEEK_READY,
    BS_OP_PEEK_DELAYED,
    BS_OP_PEEK_BURIED,
    BS_OP_RESERVE,
    BS_OP_RESERVE_TIMEOUT,
    BS_OP_RESERVE_JOB,
    BS_OP_DELETE,
    BS_OP_RELEASE,
    BS_OP_BURY,
    BS_OP_KICK,
    BS_OP_KICK_JOB,
    BS_OP_TOUCH,
    BS_OP_STATS,
    BS_OP_STATS_JOB,
    BS_OP_STATS_TUBE,
    BS_OP_USE,
    BS_OP_WATCH,
    BS_OP_IGNORE,
    BS_OP_LIST_TUBES,
    BS_OP_LIST_TUBE_USED,
    BS_OP_LIST_TUBES_WATCHED,
    BS_OP_PAUSE_TUBE,
    BS_OP_QUIT,
    BS_OP_COUNT
} bs_op_t;

typedef struct bs_cmd {
    bs_op_t op;
    /* The command's arguments parsed far enough to count in cmd-<op>. */
    bool counted;
    /* Answer BAD_FORMAT. For a counted put this comes after the size check
     * (JOB_TOO_BIG wins over trailing garbage, as in beanstalkd). */
    bool bad_format;
    uint64_t id;
    uint32_t pri;
    uint32_t delay; /* seconds */
    uint32_t ttr;   /* seconds */
    uint32_t size;  /* put body bytes */
    uint32_t bound; /* kick */
    int32_t timeout; /* reserve-with-timeout seconds; negative = no timeout */
    const char *name; /* tube name, pointing into the line */
    size_t name_len;
} bs_cmd_t;

/* Parse line[0..len) (the CRLF already removed). Never fails: unknown or
 * malformed input comes back as op/bad_format. */
void bs_parse(const char *line, size_t len, bs_cmd_t *cmd);

/* The command name as it appears in stats (cmd-put, ...). */
const char *bs_op_name(bs_op_t op);

#endif
