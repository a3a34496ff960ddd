/* fuzz_bs_parse.c - libFuzzer harness for bs_parse().
 *
 * The input is one command line, CRLF already removed, exactly as
 * bs_conn hands it to the parser. Besides the sanitizers (the input
 * buffer is exactly `size` bytes, so reading past the line is caught),
 * it checks what the rest of the server relies on:
 *   - op is in range, and a recognised op's name is a prefix of the line;
 *   - overlong lines (over BS_LINE_MAX with the CRLF) and lines with a NUL
 *     are BAD_FORMAT and nothing else;
 *   - counted/bad_format are consistent for each kind of command;
 *   - a tube name points inside the line and is valid when accepted;
 *   - an accepted command, written back in canonical form, parses to the
 *     same command (so no value is silently altered or misread).
 *
 * Built by fuzz/run.sh with libFuzzer, or with fuzz/replay_main.c to
 * replay a corpus without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "proto/bs_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_bs_parse: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool is_name_op(bs_op_t op) {
    return op == BS_OP_STATS_TUBE || op == BS_OP_USE || op == BS_OP_WATCH ||
           op == BS_OP_IGNORE || op == BS_OP_PAUSE_TUBE;
}

static bool same_cmd(const bs_cmd_t *a, const bs_cmd_t *b) {
    if (a->op != b->op || a->counted != b->counted || a->bad_format != b->bad_format ||
        a->id != b->id || a->pri != b->pri || a->delay != b->delay || a->ttr != b->ttr ||
        a->size != b->size || a->bound != b->bound || a->timeout != b->timeout ||
        a->name_len != b->name_len)
        return false;
    if ((a->name == NULL) != (b->name == NULL))
        return false;
    return !a->name || memcmp(a->name, b->name, a->name_len) == 0;
}

/* Write an accepted command back in its canonical form; 0 when the op has
 * no canonical form to check. */
static int canonical(const bs_cmd_t *c, char *buf, size_t cap) {
    const char *op = bs_op_name(c->op);
    unsigned long long id = (unsigned long long)c->id;
    int n = (int)c->name_len;
    switch (c->op) {
    case BS_OP_PUT:
        return snprintf(buf, cap, "put %u %u %u %u", (unsigned)c->pri, (unsigned)c->delay,
                        (unsigned)c->ttr, (unsigned)c->size);
    case BS_OP_PEEK:
    case BS_OP_RESERVE_JOB:
    case BS_OP_DELETE:
    case BS_OP_TOUCH:
    case BS_OP_STATS_JOB:
    case BS_OP_KICK_JOB:
        return snprintf(buf, cap, "%s %llu", op, id);
    case BS_OP_RELEASE:
        return snprintf(buf, cap, "release %llu %u %u", id, (unsigned)c->pri,
                        (unsigned)c->delay);
    case BS_OP_BURY:
        return snprintf(buf, cap, "bury %llu %u", id, (unsigned)c->pri);
    case BS_OP_KICK:
        return snprintf(buf, cap, "kick %u", (unsigned)c->bound);
    case BS_OP_RESERVE_TIMEOUT:
        return snprintf(buf, cap, "reserve-with-timeout %d", (int)c->timeout);
    case BS_OP_STATS_TUBE:
    case BS_OP_USE:
    case BS_OP_WATCH:
    case BS_OP_IGNORE:
        return snprintf(buf, cap, "%s %.*s", op, n, c->name);
    case BS_OP_PAUSE_TUBE:
        return snprintf(buf, cap, "pause-tube %.*s %u", n, c->name, (unsigned)c->delay);
    case BS_OP_PEEK_READY:
    case BS_OP_PEEK_DELAYED:
    case BS_OP_PEEK_BURIED:
    case BS_OP_RESERVE:
    case BS_OP_STATS:
    case BS_OP_LIST_TUBES:
    case BS_OP_LIST_TUBE_USED:
    case BS_OP_LIST_TUBES_WATCHED:
    case BS_OP_QUIT:
        return snprintf(buf, cap, "%s", op);
    case BS_OP_UNKNOWN:
    case BS_OP_COUNT:
        break;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *line = (const char *)data;
    bs_cmd_t cmd;
    bs_parse(line, size, &cmd);

    CHECK(cmd.op >= BS_OP_UNKNOWN && cmd.op < BS_OP_COUNT);
    CHECK(bs_op_name(cmd.op) != NULL);

    /* BS_LINE_MAX counts the CRLF, which the parser does not see. */
    bool refused = size + 2 > BS_LINE_MAX || (size && memchr(line, '\0', size));
    if (refused) {
        CHECK(cmd.op == BS_OP_UNKNOWN && cmd.bad_format && !cmd.counted && !cmd.name);
        return 0;
    }

    if (cmd.op == BS_OP_UNKNOWN) {
        CHECK(!cmd.counted && !cmd.bad_format && !cmd.name);
    } else {
        /* Prefix matching: the command's name starts the line. */
        const char *op = bs_op_name(cmd.op);
        CHECK(size >= strlen(op) && memcmp(line, op, strlen(op)) == 0);
    }

    switch (cmd.op) {
    case BS_OP_PUT:
    case BS_OP_PAUSE_TUBE:
        /* Counted with a late BAD_FORMAT (trailing garbage, bad name) is
         * possible; not counted always means BAD_FORMAT. */
        CHECK(cmd.counted || cmd.bad_format);
        break;
    case BS_OP_UNKNOWN:
        break;
    default:
        CHECK(cmd.counted == !cmd.bad_format);
        break;
    }

    if (cmd.name) {
        CHECK(is_name_op(cmd.op));
        CHECK(cmd.name >= line && cmd.name_len <= size &&
              (size_t)(cmd.name - line) <= size - cmd.name_len);
    }
    if (is_name_op(cmd.op) && !cmd.bad_format) {
        CHECK(cmd.name != NULL);
        CHECK(cmd.name_len <= TUBE_NAME_MAX);
        CHECK(engine_tube_name_valid(cmd.name, cmd.name_len));
    }
    if (!is_name_op(cmd.op))
        CHECK(cmd.name == NULL && cmd.name_len == 0);

    if (cmd.op == BS_OP_RESERVE_TIMEOUT)
        CHECK(cmd.bad_format || cmd.counted);

    /* Round trip through the canonical form. */
    if (!cmd.bad_format && cmd.op != BS_OP_UNKNOWN) {
        char buf[BS_LINE_MAX + 64];
        int n = canonical(&cmd, buf, sizeof buf);
        CHECK(n > 0 && (size_t)n < sizeof buf);
        if ((size_t)n + 2 <= BS_LINE_MAX) {
            /* Exact-size copy so an overread of the canonical line is
             * caught too. */
            char *copy = malloc((size_t)n);
            CHECK(copy != NULL);
            memcpy(copy, buf, (size_t)n);
            bs_cmd_t again;
            bs_parse(copy, (size_t)n, &again);
            if (!same_cmd(&cmd, &again)) {
                fprintf(stderr, "fuzz_bs_parse: '%.*s' and its canonical form '%.*s' differ\n",
                        (int)size, line, n, buf);
                abort();
            }
            free(copy);
        }
    }
    return 0;
}
