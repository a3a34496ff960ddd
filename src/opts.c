/* opts.c - command-line parsing (see opts.h). */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/bs_conn.h"

static const char usage_text[] =
    "Usage: deferd [OPTIONS]\n"
    "\n"
    "deferd keeps tasks for web applications and runs them when they are due.\n"
    "It speaks the beanstalkd protocol: beanstalkd's flags below mean what they\n"
    "mean there.\n"
    "\n"
    "Options:\n"
    "  -l, --listen ADDR        listen on ADDR, or on a unix socket with unix:PATH\n"
    "                           (default 127.0.0.1; beanstalkd's is 0.0.0.0)\n"
    "  -p, --port PORT          listen on PORT (default 11300)\n"
    "  -b, --data-dir DIR       keep tasks in DIR (write-ahead log); without it\n"
    "                           tasks live in memory only, as in beanstalkd\n"
    "      --fsync POLICY       always (default: a reply means on disk),\n"
    "                           interval=MS, or never\n"
    "  -f MS                    same as --fsync interval=MS; -f0 is always\n"
    "  -F                       same as --fsync never\n"
    "  -s BYTES                 size of each log file (default 10485760)\n"
    "      --repair-log         start even if the log is damaged, dropping the\n"
    "                           damaged batches (copy the directory first)\n"
    "      --check-log          read the data directory, say what it holds and\n"
    "                           whether it is intact, change nothing, exit\n"
    "  -z, --max-job-size BYTES largest task body (default 65535, at most\n"
    "                           1073741824)\n"
    "      --max-connections N  refuse connections beyond N (default 10000)\n"
    "      --http ADDR:PORT     the HTTP/JSON API (default 127.0.0.1:11380; if that\n"
    "                           port is taken, deferd runs without it), or off\n"
    "      --http-token-file F  require 'Authorization: Bearer <first line of F>';\n"
    "                           needed to serve HTTP on a non-loopback address\n"
    "      --http-max-body N    largest HTTP request body (default 16777216)\n"
    "      --history-max N      finished tasks to keep answerable (default 10000)\n"
    "      --history-age SECS   ... for at most this long (default 86400)\n"
    "      --config FILE        push settings per queue (docs/push.md)\n"
    "      --shutdown-grace SECS  on SIGTERM, let running push attempts finish\n"
    "                           for this long (default 30)\n"
    "  -u, --user USER          become USER after opening the listening socket\n"
    "  -V, --verbose            log more (connections opened and closed)\n"
    "  -v, --version            print the version and exit\n"
    "  -h, --help               print this help and exit\n"
    "  -c, -n                   accepted and ignored, as in beanstalkd 1.12\n"
    "\n"
    "Signals: SIGUSR1 enters drain mode (new tasks are refused with DRAINING),\n"
    "SIGTERM and SIGINT shut down cleanly.\n";

const char *opts_usage(void) {
    return usage_text;
}

void opts_defaults(opts_t *o) {
    memset(o, 0, sizeof *o);
    o->listen_addr = OPTS_DEFAULT_ADDR;
    o->port = OPTS_DEFAULT_PORT;
    o->fsync = WAL_SYNC_ALWAYS;
    o->segment_size = OPTS_DEFAULT_SEGMENT_SIZE;
    o->max_job_size = BS_DEFAULT_MAX_JOB_SIZE;
    o->max_conns = OPTS_DEFAULT_MAX_CONNS;
    snprintf(o->http_addr, sizeof o->http_addr, "%s", OPTS_DEFAULT_HTTP_ADDR);
    snprintf(o->http_port, sizeof o->http_port, "%s", OPTS_DEFAULT_HTTP_PORT);
    o->http_max_body = 16u << 20;
    o->history_max = OPTS_DEFAULT_HISTORY_MAX;
    o->history_age = OPTS_DEFAULT_HISTORY_AGE;
    o->shutdown_grace = OPTS_DEFAULT_SHUTDOWN_GRACE;
}


/* A whole non-negative decimal number, nothing before or after it. */
static bool parse_u64(const char *s, uint64_t *out) {
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* "ADDR:PORT", "[IPv6]:PORT" or "off". */
static bool parse_http(opts_t *o, const char *v) {
    if (strcmp(v, "off") == 0) {
        o->http_off = true;
        return true;
    }
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || !colon[1])
        return false;
    const char *addr = v;
    size_t alen = (size_t)(colon - v);
    if (addr[0] == '[') {
        if (alen < 3 || addr[alen - 1] != ']')
            return false;
        addr++;
        alen -= 2;
    }
    uint64_t port;
    if (alen >= sizeof o->http_addr || !parse_u64(colon + 1, &port) || port == 0 || port > 65535)
        return false;
    memcpy(o->http_addr, addr, alen);
    o->http_addr[alen] = '\0';
    snprintf(o->http_port, sizeof o->http_port, "%u", (unsigned)port);
    o->http_off = false;
    return true;
}

static void note(opts_t *o, const char *msg) {
    if (o->nnotes < (int)(sizeof o->notes / sizeof o->notes[0]))
        o->notes[o->nnotes++] = msg;
}

enum {
    OPT_FSYNC = 256,
    OPT_MAX_CONNS,
    OPT_REPAIR_LOG,
    OPT_CHECK_LOG,
    OPT_HTTP,
    OPT_HTTP_TOKEN,
    OPT_HTTP_MAX_BODY,
    OPT_HISTORY_MAX,
    OPT_HISTORY_AGE,
    OPT_CONFIG,
    OPT_SHUTDOWN_GRACE,
};

int opts_parse(opts_t *o, int argc, char **argv, char *err, size_t errlen) {
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'b'},
        {"fsync", required_argument, NULL, OPT_FSYNC},
        {"max-job-size", required_argument, NULL, 'z'},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
        {"repair-log", no_argument, NULL, OPT_REPAIR_LOG},
        {"check-log", no_argument, NULL, OPT_CHECK_LOG},
        {"http", required_argument, NULL, OPT_HTTP},
        {"http-token-file", required_argument, NULL, OPT_HTTP_TOKEN},
        {"http-max-body", required_argument, NULL, OPT_HTTP_MAX_BODY},
        {"history-max", required_argument, NULL, OPT_HISTORY_MAX},
        {"history-age", required_argument, NULL, OPT_HISTORY_AGE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"shutdown-grace", required_argument, NULL, OPT_SHUTDOWN_GRACE},
        {"user", required_argument, NULL, 'u'},
        {"verbose", no_argument, NULL, 'V'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;
    optind = 0; /* 0, not 1: also forgets glibc's position inside a flag group */
    opterr = 0;
    /* "+": stop at the first non-option, which is then an error, as in
     * beanstalkd. */
    while ((c = getopt_long(argc, argv, "+:l:p:b:f:Fs:z:u:cnVvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->listen_addr = optarg;
            o->listen_given = true;
            break;
        case 'p':
            o->port = optarg;
            o->listen_given = true;
            break;
        case 'b':
            o->data_dir = optarg;
            break;
        case 'f':
            if (!parse_u64(optarg, &v) || v > UINT32_MAX) {
                snprintf(err, errlen, "invalid -f value '%s': give milliseconds, e.g. -f 50",
                         optarg);
                return -1;
            }
            o->fsync = v == 0 ? WAL_SYNC_ALWAYS : WAL_SYNC_INTERVAL;
            o->fsync_ms = (uint32_t)v;
            break;
        case 'F':
            o->fsync = WAL_SYNC_NEVER;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "always") == 0) {
                o->fsync = WAL_SYNC_ALWAYS;
            } else if (strcmp(optarg, "never") == 0) {
                o->fsync = WAL_SYNC_NEVER;
            } else if (strncmp(optarg, "interval=", 9) == 0 && parse_u64(optarg + 9, &v) &&
                       v > 0 && v <= UINT32_MAX) {
                o->fsync = WAL_SYNC_INTERVAL;
                o->fsync_ms = (uint32_t)v;
            } else {
                snprintf(err, errlen,
                         "invalid --fsync value '%s': use always, never or interval=MS "
                         "(MS > 0)",
                         optarg);
                return -1;
            }
            break;
        case 's':
            if (!parse_u64(optarg, &v) || v == 0) {
                snprintf(err, errlen, "invalid -s value '%s': give a size in bytes", optarg);
                return -1;
            }
            o->segment_size = v;
            break;
        case 'z':
            if (!parse_u64(optarg, &v)) {
                snprintf(err, errlen, "invalid -z value '%s': give a size in bytes", optarg);
                return -1;
            }
            if (v > BS_MAX_JOB_SIZE_LIMIT) {
                note(o, "maximum job size was set to 1073741824");
                v = BS_MAX_JOB_SIZE_LIMIT;
            }
            o->max_job_size = (uint32_t)v;
            break;
        case OPT_MAX_CONNS:
            if (!parse_u64(optarg, &v) || v == 0 || v > UINT32_MAX) {
                snprintf(err, errlen, "invalid --max-connections value '%s': give a number > 0",
                         optarg);
                return -1;
            }
            o->max_conns = (uint32_t)v;
            break;
        case OPT_REPAIR_LOG:
            o->repair_log = true;
            break;
        case OPT_CHECK_LOG:
            o->check_log = true;
            break;
        case OPT_HTTP:
            if (!parse_http(o, optarg)) {
                snprintf(err, errlen,
                         "invalid --http value '%s': give ADDR:PORT (e.g. 127.0.0.1:11380) or off",
                         optarg);
                return -1;
            }
            o->http_given = true;
            break;
        case OPT_HTTP_TOKEN:
            o->http_token_file = optarg;
            break;
        case OPT_HTTP_MAX_BODY:
            if (!parse_u64(optarg, &v) || v < 1024 || v > (1ull << 31)) {
                snprintf(err, errlen,
                         "invalid --http-max-body value '%s': give bytes from 1024 to 2147483648",
                         optarg);
                return -1;
            }
            o->http_max_body = v;
            break;
        case OPT_HISTORY_MAX:
            if (!parse_u64(optarg, &v)) {
                snprintf(err, errlen, "invalid --history-max value '%s': give a count (0: none)",
                         optarg);
                return -1;
            }
            o->history_max = v;
            break;
        case OPT_HISTORY_AGE:
            if (!parse_u64(optarg, &v) || v > UINT32_MAX) {
                snprintf(err, errlen, "invalid --history-age value '%s': give seconds", optarg);
                return -1;
            }
            o->history_age = v;
            break;
        case OPT_CONFIG:
            o->config_file = optarg;
            break;
        case OPT_SHUTDOWN_GRACE:
            if (!parse_u64(optarg, &v) || v > 86400) {
                snprintf(err, errlen,
                         "invalid --shutdown-grace value '%s': give seconds from 0 to 86400",
                         optarg);
                return -1;
            }
            o->shutdown_grace = v;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'c':
            note(o, "-c flag was removed. binlog is always compacted.");
            break;
        case 'n':
            note(o, "-n flag was removed. binlog is always compacted.");
            break;
        case 'V':
            o->verbosity++;
            break;
        case 'v':
            o->show_version = true;
            break;
        case 'h':
            o->show_help = true;
            break;
        case ':':
            snprintf(err, errlen, "flag requires an argument: %s", argv[optind - 1]);
            return -1;
        default:
            /* A long option names itself in argv; a short one may sit in
             * the middle of a group, which only optopt pins down. */
            if (strncmp(argv[optind - 1], "--", 2) == 0)
                snprintf(err, errlen, "unknown or misused flag: %s", argv[optind - 1]);
            else
                snprintf(err, errlen, "unknown flag: -%c", optopt);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unknown argument: %s", argv[optind]);
        return -1;
    }
    if (o->check_log && !o->data_dir) {
        snprintf(err, errlen, "--check-log needs the data directory: -b DIR");
        return -1;
    }
    return 0;
}
