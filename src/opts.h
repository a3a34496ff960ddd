/* opts.h - command-line options.
 *
 * beanstalkd's flags keep their meaning (-l -p -b -f -F -z -s -u -c -n -v
 * -V -h), so a beanstalkd service file works with only the binary name
 * changed; long options of our own say the same things in words and add
 * what beanstalkd has no flag for. Parsing is a pure function of argv. */
#ifndef DEFER_OPTS_H
#define DEFER_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/wal.h"

typedef struct opts {
    const char *listen_addr; /* address, or "unix:PATH" */
    const char *port;
    bool listen_given; /* -l or -p was on the command line */
    const char *data_dir;
    wal_sync_t fsync;
    uint32_t fsync_ms;
    bool repair_log;
    bool check_log;
    uint64_t segment_size;
    uint32_t max_job_size;
    uint32_t max_conns;
    /* The HTTP API. */
    bool http_off;
    bool http_given; /* --http on the command line: failing to listen is fatal */
    char http_addr[256];
    char http_port[16];
    const char *http_token_file;
    uint64_t http_max_body;
    uint64_t history_max;
    uint64_t history_age; /* seconds */
    /* Push dispatch. */
    const char *config_file;
    uint64_t shutdown_grace; /* seconds */
    const char *user;
    int verbosity;
    bool show_version;
    bool show_help;
    /* Warnings to print once logging is up (e.g. "-c was removed"). */
    const char *notes[8];
    int nnotes;
} opts_t;

#define OPTS_DEFAULT_ADDR "127.0.0.1"
#define OPTS_DEFAULT_PORT "11300"
#define OPTS_DEFAULT_MAX_CONNS 10000u
#define OPTS_DEFAULT_SEGMENT_SIZE (10u << 20)
#define OPTS_DEFAULT_HTTP_ADDR "127.0.0.1"
#define OPTS_DEFAULT_HTTP_PORT "11380"
#define OPTS_DEFAULT_HISTORY_MAX 10000u
#define OPTS_DEFAULT_HISTORY_AGE 86400u
#define OPTS_DEFAULT_SHUTDOWN_GRACE 30u

void opts_defaults(opts_t *o);
/* Returns 0, or -1 with a sentence in err. */
int opts_parse(opts_t *o, int argc, char **argv, char *err, size_t errlen);
/* The --help text. */
const char *opts_usage(void);

#endif
