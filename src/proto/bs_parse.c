/* bs_parse.c - beanstalk command-line parser (see bs_parse.h). */
#include "proto/bs_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"

/* Command names are matched as prefixes, in this order - beanstalkd's
 * order, which decides for example that "stats-job" without an argument
 * is a malformed "stats" (BAD_FORMAT) rather than an unknown command. */
static const struct {
    const char *prefix;
    bs_op_t op;
} bs_commands[] = {
    {"put ", BS_OP_PUT},
    {"peek ", BS_OP_PEEK},
    {"peek-ready", BS_OP_PEEK_READY},
    {"peek-delayed", BS_OP_PEEK_DELAYED},
    {"peek-buried", BS_OP_PEEK_BURIED},
    {"reserve-with-timeout ", BS_OP_RESERVE_TIMEOUT},
    {"reserve-job ", BS_OP_RESERVE_JOB},
    {"reserve", BS_OP_RESERVE},
    {"delete ", BS_OP_DELETE},
    {"release ", BS_OP_RELEASE},
    {"bury ", BS_OP_BURY},
    {"kick ", BS_OP_KICK},
    {"kick-job ", BS_OP_KICK_JOB},
    {"touch ", BS_OP_TOUCH},
    {"stats-job ", BS_OP_STATS_JOB},
    {"stats-tube ", BS_OP_STATS_TUBE},
    {"stats", BS_OP_STATS},
    {"use ", BS_OP_USE},
    {"watch ", BS_OP_WATCH},
    {"ignore ", BS_OP_IGNORE},
    {"list-tubes-watched", BS_OP_LIST_TUBES_WATCHED},
    {"list-tube-used", BS_OP_LIST_TUBE_USED},
    {"list-tubes", BS_OP_LIST_TUBES},
    {"quit", BS_OP_QUIT},
    {"pause-tube", BS_OP_PAUSE_TUBE},
};

static const char *const bs_op_names[BS_OP_COUNT] = {
    [BS_OP_UNKNOWN] = "unknown",
    [BS_OP_PUT] = "put",
    [BS_OP_PEEK] = "peek",
    [BS_OP_PEEK_READY] = "peek-ready",
    [BS_OP_PEEK_DELAYED] = "peek-delayed",
    [BS_OP_PEEK_BURIED] = "peek-buried",
    [BS_OP_RESERVE] = "reserve",
    [BS_OP_RESERVE_TIMEOUT] = "reserve-with-timeout",
    [BS_OP_RESERVE_JOB] = "reserve-job",
    [BS_OP_DELETE] = "delete",
    [BS_OP_RELEASE] = "release",
    [BS_OP_BURY] = "bury",
    [BS_OP_KICK] = "kick",
    [BS_OP_KICK_JOB] = "kick-job",
    [BS_OP_TOUCH] = "touch",
    [BS_OP_STATS] = "stats",
    [BS_OP_STATS_JOB] = "stats-job",
    [BS_OP_STATS_TUBE] = "stats-tube",
    [BS_OP_USE] = "use",
    [BS_OP_WATCH] = "watch",
    [BS_OP_IGNORE] = "ignore",
    [BS_OP_LIST_TUBES] = "list-tubes",
    [BS_OP_LIST_TUBE_USED] = "list-tube-used",
    [BS_OP_LIST_TUBES_WATCHED] = "list-tubes-watched",
    [BS_OP_PAUSE_TUBE] = "pause-tube",
    [BS_OP_QUIT] = "quit",
};

const char *bs_op_name(bs_op_t op) {
    return (op > BS_OP_UNKNOWN && op < BS_OP_COUNT) ? bs_op_names[op] : "unknown";
}

/* An unsigned decimal: optional leading spaces, then at least one digit.
 * With end == NULL the number must run to the end of the string. Returns
 * false on any other shape or when the value exceeds max. */
static bool read_uint(const char *s, uint64_t max, uint64_t *out, const char **end) {
    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if ((!end && *s != '\0') || v > max)
        return false;
    *out = v;
    if (end)
        *end = s;
    return true;
}

static bool read_u32(const char *s, uint32_t *out, const char **end) {
    uint64_t v;
    if (!read_uint(s, UINT32_MAX, &v, end))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool read_u64(const char *s, uint64_t *out, const char **end) {
    return read_uint(s, UINT64_MAX, out, end);
}

static bool exact(const char *line, size_t len, const char *name) {
    return len == strlen(name) && memcmp(line, name, len) == 0;
}

void bs_parse(const char *line, size_t len, bs_cmd_t *cmd) {
    memset(cmd, 0, sizeof *cmd);
    /* A NUL inside the line would let C string handling see a different
     * command than the bytes say; beanstalkd refuses such lines outright. */
    if (len + 2 > BS_LINE_MAX || memchr(line, '\0', len)) {
        cmd->bad_format = true;
        return;
    }
    char z[BS_LINE_MAX];
    memcpy(z, line, len);
    z[len] = '\0';

    size_t plen = 0;
    for (size_t i = 0; i < sizeof bs_commands / sizeof bs_commands[0]; i++) {
        plen = strlen(bs_commands[i].prefix);
        if (len >= plen && memcmp(z, bs_commands[i].prefix, plen) == 0) {
            cmd->op = bs_commands[i].op;
            break;
        }
    }

    const char *arg = z + plen; /* what follows the matched prefix */
    const char *end;
    bool ok = true;
    switch (cmd->op) {
    case BS_OP_UNKNOWN:
        return;

    case BS_OP_PUT:
        ok = read_u32(arg, &cmd->pri, &end) && read_u32(end, &cmd->delay, &end) &&
             read_u32(end, &cmd->ttr, &end) && read_u32(end, &cmd->size, &end);
        if (ok && *end != '\0') {
            cmd->counted = true;
            cmd->bad_format = true;
            return;
        }
        break;

    case BS_OP_PEEK_READY:
    case BS_OP_PEEK_DELAYED:
    case BS_OP_PEEK_BURIED:
    case BS_OP_RESERVE:
    case BS_OP_STATS:
    case BS_OP_LIST_TUBES:
    case BS_OP_LIST_TUBE_USED:
    case BS_OP_LIST_TUBES_WATCHED:
        ok = exact(line, len, bs_op_names[cmd->op]);
        break;

    case BS_OP_PEEK:
    case BS_OP_RESERVE_JOB:
    case BS_OP_DELETE:
    case BS_OP_TOUCH:
    case BS_OP_STATS_JOB:
    case BS_OP_KICK_JOB:
        ok = read_u64(arg, &cmd->id, NULL);
        break;

    case BS_OP_RESERVE_TIMEOUT: {
        /* beanstalkd reads this with strtol into an int: no digits means 0,
         * trailing bytes are ignored, a negative value waits forever, and
         * only a value beyond long's range is refused. */
        char *e;
        errno = 0;
        long v = strtol(arg, &e, 10);
        ok = errno == 0;
        cmd->timeout = (int32_t)(uint32_t)(unsigned long)v;
        break;
    }

    case BS_OP_RELEASE:
        ok = read_u64(arg, &cmd->id, &end) && read_u32(end, &cmd->pri, &end) &&
             read_u32(end, &cmd->delay, NULL);
        break;

    case BS_OP_BURY:
        ok = read_u64(arg, &cmd->id, &end) && read_u32(end, &cmd->pri, NULL);
        break;

    case BS_OP_KICK: {
        /* strtoul, as beanstalkd: a sign is accepted ("-1" kicks
         * everything), trailing bytes are ignored. */
        char *e;
        errno = 0;
        unsigned long v = strtoul(arg, &e, 10);
        ok = e != arg && errno == 0;
        cmd->bound = (uint32_t)v;
        break;
    }

    case BS_OP_STATS_TUBE:
    case BS_OP_USE:
    case BS_OP_WATCH:
    case BS_OP_IGNORE:
        cmd->name = line + (arg - z);
        cmd->name_len = len - (size_t)(arg - z);
        ok = engine_tube_name_valid(cmd->name, cmd->name_len);
        break;

    case BS_OP_PAUSE_TUBE: {
        /* "pause-tube" has no space in its prefix: the name starts after
         * any spaces and runs as far as name characters go. */
        const char *p = arg;
        while (*p == ' ')
            p++;
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789-+/;.$_()");
        if (n == 0 || !read_u32(p + n, &cmd->delay, NULL)) {
            ok = false;
            break;
        }
        cmd->counted = true;
        cmd->name = line + (p - z);
        cmd->name_len = n;
        cmd->bad_format = !engine_tube_name_valid(cmd->name, n);
        return;
    }

    case BS_OP_QUIT:
    case BS_OP_COUNT:
        break;
    }
    cmd->counted = ok;
    cmd->bad_format = !ok;
}
