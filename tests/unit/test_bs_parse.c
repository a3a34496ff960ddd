/* test_bs_parse.c - table-driven tests of the beanstalk command-line parser
 * (proto/bs_parse.c) against beanstalkd 1.12's acceptance rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/bs_parse.h"

/* One parser case. Fields after `bad` are compared only when `check` is
 * set: then every parsed field must equal the expectation (unmentioned
 * ones are 0 / NULL). */
typedef struct pcase {
    const char *line;
    size_t len; /* 0: strlen(line) */
    bs_op_t op;
    bool counted;
    bool bad;
    bool check;
    uint64_t id;
    uint32_t pri, delay, ttr, size, bound;
    int32_t timeout;
    const char *name; /* expected tube name, NUL-terminated */
} pcase_t;

/* A well-formed, counted command with its parsed fields. */
#define GOOD(l, o, ...) {.line = (l), .op = (o), .counted = true, .check = true, __VA_ARGS__}
/* A command recognised but malformed, not counted. */
#define BAD(l, o) {.line = (l), .op = (o), .bad = true}
/* A command counted in stats but answered BAD_FORMAT. */
#define COUNTED_BAD(l, o) {.line = (l), .op = (o), .counted = true, .bad = true}
/* Unknown command (UNKNOWN_COMMAND, not BAD_FORMAT). */
#define UNKNOWN(l) {.line = (l), .op = BS_OP_UNKNOWN}

static void run_case(const pcase_t *c) {
    size_t len = c->len ? c->len : strlen(c->line);
    bs_cmd_t cmd;
    memset(&cmd, 0xa5, sizeof cmd); /* the parser must set every field */
    bs_parse(c->line, len, &cmd);
    if (cmd.op != c->op || cmd.counted != c->counted || cmd.bad_format != c->bad) {
        fail_msg("line \"%.*s\" (len %zu): got op=%s counted=%d bad=%d, want op=%s counted=%d "
                 "bad=%d",
                 (int)len, c->line, len, bs_op_name(cmd.op), cmd.counted, cmd.bad_format,
                 bs_op_name(c->op), c->counted, c->bad);
    }
    if (!c->check)
        return;
    if (cmd.id != c->id || cmd.pri != c->pri || cmd.delay != c->delay || cmd.ttr != c->ttr ||
        cmd.size != c->size || cmd.bound != c->bound || cmd.timeout != c->timeout) {
        fail_msg("line \"%s\": fields id=%llu pri=%u delay=%u ttr=%u size=%u bound=%u "
                 "timeout=%d; want id=%llu pri=%u delay=%u ttr=%u size=%u bound=%u timeout=%d",
                 c->line, (unsigned long long)cmd.id, cmd.pri, cmd.delay, cmd.ttr, cmd.size,
                 cmd.bound, cmd.timeout, (unsigned long long)c->id, c->pri, c->delay, c->ttr,
                 c->size, c->bound, c->timeout);
    }
    if (c->name) {
        size_t nl = strlen(c->name);
        assert_non_null(cmd.name);
        if (cmd.name_len != nl || memcmp(cmd.name, c->name, nl) != 0)
            fail_msg("line \"%s\": name \"%.*s\", want \"%s\"", c->line, (int)cmd.name_len,
                     cmd.name, c->name);
        /* The name points into the caller's line, not a copy. */
        assert_true(cmd.name >= c->line && cmd.name + cmd.name_len <= c->line + len);
    } else {
        assert_null(cmd.name);
        assert_int_equal(cmd.name_len, 0);
    }
}

static void run_table(const pcase_t *cases, size_t n) {
    for (size_t i = 0; i < n; i++)
        run_case(&cases[i]);
}

#define RUN(t) run_table((t), sizeof(t) / sizeof((t)[0]))

static void test_unknown_and_framing(void **state) {
    (void)state;
    static const pcase_t t[] = {
        UNKNOWN(""),
        UNKNOWN("foo"),
        UNKNOWN("PUT 0 0 10 5"), /* case-sensitive */
        UNKNOWN("Stats"),
        UNKNOWN(" stats"), /* no leading spaces before the verb */
        UNKNOWN("put"),
        UNKNOWN("peek"),
        UNKNOWN("delete"), /* verb that needs arguments, given none */
        UNKNOWN("release"),
        UNKNOWN("bury"),
        UNKNOWN("kick"),
        UNKNOWN("kick-job"),
        UNKNOWN("touch"),
        UNKNOWN("use"),
        UNKNOWN("watch"),
        UNKNOWN("ignore"),
        UNKNOWN("list-tube"),
        UNKNOWN("list"),
        UNKNOWN("qui"),
        UNKNOWN("pause"),
        UNKNOWN("pause-tub"),
        UNKNOWN("putx 0 0 10 5"),
        UNKNOWN("stat"),
    };
    RUN(t);
}

static void test_nul_bytes(void **state) {
    (void)state;
    /* A NUL anywhere in the line is BAD_FORMAT, whatever the verb. */
    static const pcase_t t[] = {
        {.line = "stats\0", .len = 6, .bad = true},
        {.line = "use a\0b", .len = 7, .bad = true},
        {.line = "\0", .len = 1, .bad = true},
        {.line = "\0foo", .len = 4, .bad = true},
        {.line = "put 0 0 10 5\0", .len = 13, .bad = true},
        {.line = "delete 1\0", .len = 9, .bad = true},
        {.line = "quit\0", .len = 5, .bad = true},
    };
    RUN(t);
}

static void test_put(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("put 0 0 10 5", BS_OP_PUT, .ttr = 10, .size = 5),
        GOOD("put 1 2 3 4", BS_OP_PUT, .pri = 1, .delay = 2, .ttr = 3, .size = 4),
        GOOD("put 4294967295 4294967295 4294967295 4294967295", BS_OP_PUT, .pri = UINT32_MAX,
             .delay = UINT32_MAX, .ttr = UINT32_MAX, .size = UINT32_MAX),
        GOOD("put 0 0 0 0", BS_OP_PUT), /* ttr 0 is raised later, not here */
        GOOD("put 00010 0 10 5", BS_OP_PUT, .pri = 10, .ttr = 10, .size = 5),
        /* Extra leading spaces before numbers are tolerated. */
        GOOD("put  0 0 10 5", BS_OP_PUT, .ttr = 10, .size = 5),
        GOOD("put 0  0 10 5", BS_OP_PUT, .ttr = 10, .size = 5),
        GOOD("put 7   8   9   10", BS_OP_PUT, .pri = 7, .delay = 8, .ttr = 9, .size = 10),
        GOOD("put 0 0 10 70000", BS_OP_PUT, .ttr = 10, .size = 70000),
        /* Numbers that do not parse: BAD_FORMAT and not counted. */
        BAD("put ", BS_OP_PUT),
        BAD("put 0", BS_OP_PUT),
        BAD("put 0 0 10", BS_OP_PUT),
        BAD("put 0 0 10 ", BS_OP_PUT),
        BAD("put 4294967296 0 10 5", BS_OP_PUT),
        BAD("put 0 4294967296 10 5", BS_OP_PUT),
        BAD("put 0 0 4294967296 5", BS_OP_PUT),
        BAD("put 0 0 10 4294967296", BS_OP_PUT),
        BAD("put 99999999999999999999999 0 10 5", BS_OP_PUT),
        BAD("put -1 0 10 5", BS_OP_PUT),
        BAD("put 0 -1 10 5", BS_OP_PUT),
        BAD("put 0 0 10 -5", BS_OP_PUT),
        BAD("put +1 0 10 5", BS_OP_PUT),
        BAD("put a 0 10 5", BS_OP_PUT),
        BAD("put 0 0 10 abc", BS_OP_PUT),
        BAD("put 0x1 0 10 5", BS_OP_PUT),
        BAD("put 0\t0 10 5", BS_OP_PUT),
        /* Trailing garbage after the four numbers: counted, BAD_FORMAT
         * (after the size check, which the connection does). */
        COUNTED_BAD("put 0 0 10 5 ", BS_OP_PUT),
        COUNTED_BAD("put 0 0 10 5x", BS_OP_PUT),
        COUNTED_BAD("put 0 0 10 5 6", BS_OP_PUT),
        COUNTED_BAD("put 0 0 10 5\r", BS_OP_PUT),
    };
    RUN(t);

    /* With trailing garbage the size is still parsed: the connection
     * needs it to answer JOB_TOO_BIG first. */
    bs_cmd_t cmd;
    bs_parse("put 1 2 3 99999 x", 17, &cmd);
    assert_int_equal(cmd.op, BS_OP_PUT);
    assert_true(cmd.counted);
    assert_true(cmd.bad_format);
    assert_int_equal(cmd.size, 99999);
}

static void test_id_commands(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("peek 1", BS_OP_PEEK, .id = 1),
        GOOD("peek 0", BS_OP_PEEK, .id = 0),
        GOOD("peek  5", BS_OP_PEEK, .id = 5),
        GOOD("peek 18446744073709551615", BS_OP_PEEK, .id = UINT64_MAX),
        BAD("peek 18446744073709551616", BS_OP_PEEK),
        BAD("peek ", BS_OP_PEEK),
        BAD("peek x", BS_OP_PEEK),
        BAD("peek 1 ", BS_OP_PEEK),
        BAD("peek -1", BS_OP_PEEK),
        BAD("peek 1x", BS_OP_PEEK),

        GOOD("reserve-job 5", BS_OP_RESERVE_JOB, .id = 5),
        BAD("reserve-job ", BS_OP_RESERVE_JOB),
        BAD("reserve-job x", BS_OP_RESERVE_JOB),
        BAD("reserve-job", BS_OP_RESERVE), /* prefix "reserve" matched */

        GOOD("delete 1", BS_OP_DELETE, .id = 1),
        GOOD("delete 12345678901234", BS_OP_DELETE, .id = UINT64_C(12345678901234)),
        BAD("delete ", BS_OP_DELETE),
        BAD("delete abc", BS_OP_DELETE),
        BAD("delete -1", BS_OP_DELETE),
        BAD("delete 1 ", BS_OP_DELETE),
        BAD("delete 1x", BS_OP_DELETE),
        BAD("delete 1 2", BS_OP_DELETE),

        GOOD("kick-job 3", BS_OP_KICK_JOB, .id = 3),
        BAD("kick-job ", BS_OP_KICK_JOB),
        BAD("kick-job a", BS_OP_KICK_JOB),

        GOOD("touch 3", BS_OP_TOUCH, .id = 3),
        BAD("touch ", BS_OP_TOUCH),
        BAD("touch 3 4", BS_OP_TOUCH),

        GOOD("stats-job 9", BS_OP_STATS_JOB, .id = 9),
        BAD("stats-job ", BS_OP_STATS_JOB),
        BAD("stats-job x", BS_OP_STATS_JOB),
        /* Without the space, "stats" is the prefix that matches. */
        BAD("stats-job", BS_OP_STATS),
    };
    RUN(t);
}

static void test_release_bury(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("release 1 2 3", BS_OP_RELEASE, .id = 1, .pri = 2, .delay = 3),
        GOOD("release  1  2  3", BS_OP_RELEASE, .id = 1, .pri = 2, .delay = 3),
        GOOD("release 18446744073709551615 4294967295 4294967295", BS_OP_RELEASE,
             .id = UINT64_MAX, .pri = UINT32_MAX, .delay = UINT32_MAX),
        BAD("release ", BS_OP_RELEASE),
        BAD("release 1", BS_OP_RELEASE),
        BAD("release 1 2", BS_OP_RELEASE),
        BAD("release 1 2 3 ", BS_OP_RELEASE),
        BAD("release 1 2 3 4", BS_OP_RELEASE),
        BAD("release 1 4294967296 0", BS_OP_RELEASE),
        BAD("release 1 0 4294967296", BS_OP_RELEASE),
        BAD("release x 0 0", BS_OP_RELEASE),

        GOOD("bury 1 2", BS_OP_BURY, .id = 1, .pri = 2),
        GOOD("bury 1  0", BS_OP_BURY, .id = 1),
        BAD("bury ", BS_OP_BURY),
        BAD("bury 1", BS_OP_BURY),
        BAD("bury 1 2 3", BS_OP_BURY),
        BAD("bury 1 2 ", BS_OP_BURY),
        BAD("bury 1 -2", BS_OP_BURY),
    };
    RUN(t);
}

static void test_reserve_family(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("reserve", BS_OP_RESERVE),
        BAD("reserve ", BS_OP_RESERVE),
        BAD("reservefoo", BS_OP_RESERVE),
        BAD("reserve 5", BS_OP_RESERVE),
        /* No trailing space: plain "reserve" with garbage. */
        BAD("reserve-with-timeout", BS_OP_RESERVE),
        GOOD("reserve-with-timeout 5", BS_OP_RESERVE_TIMEOUT, .timeout = 5),
        GOOD("reserve-with-timeout 0", BS_OP_RESERVE_TIMEOUT, .timeout = 0),
        GOOD("reserve-with-timeout  7", BS_OP_RESERVE_TIMEOUT, .timeout = 7),
        GOOD("reserve-with-timeout 2147483647", BS_OP_RESERVE_TIMEOUT, .timeout = INT32_MAX),
        /* Loose strtol parsing, as in 1.12. */
        GOOD("reserve-with-timeout abc", BS_OP_RESERVE_TIMEOUT, .timeout = 0),
        GOOD("reserve-with-timeout ", BS_OP_RESERVE_TIMEOUT, .timeout = 0),
        GOOD("reserve-with-timeout -1", BS_OP_RESERVE_TIMEOUT, .timeout = -1),
        GOOD("reserve-with-timeout -100", BS_OP_RESERVE_TIMEOUT, .timeout = -100),
        GOOD("reserve-with-timeout 5abc", BS_OP_RESERVE_TIMEOUT, .timeout = 5),
        GOOD("reserve-with-timeout 3 4", BS_OP_RESERVE_TIMEOUT, .timeout = 3),
        /* Only a value beyond long's range is refused. */
        BAD("reserve-with-timeout 99999999999999999999", BS_OP_RESERVE_TIMEOUT),
        BAD("reserve-with-timeout -99999999999999999999", BS_OP_RESERVE_TIMEOUT),
    };
    RUN(t);
}

static void test_kick(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("kick 5", BS_OP_KICK, .bound = 5),
        GOOD("kick 0", BS_OP_KICK, .bound = 0),
        GOOD("kick  3", BS_OP_KICK, .bound = 3),
        GOOD("kick 4294967295", BS_OP_KICK, .bound = UINT32_MAX),
        /* strtoul accepts a sign: -1 means "everything". */
        GOOD("kick -1", BS_OP_KICK, .bound = UINT32_MAX),
        /* Trailing bytes are ignored. */
        GOOD("kick 5abc", BS_OP_KICK, .bound = 5),
        BAD("kick ", BS_OP_KICK),
        BAD("kick abc", BS_OP_KICK),
        BAD("kick 99999999999999999999999", BS_OP_KICK),
    };
    RUN(t);
}

static void test_no_arg_commands(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("stats", BS_OP_STATS),
        BAD("stats ", BS_OP_STATS),
        BAD("statsx", BS_OP_STATS),
        BAD("stats-tube", BS_OP_STATS),
        GOOD("peek-ready", BS_OP_PEEK_READY),
        BAD("peek-ready ", BS_OP_PEEK_READY),
        BAD("peek-ready x", BS_OP_PEEK_READY),
        BAD("peek-readyx", BS_OP_PEEK_READY),
        GOOD("peek-delayed", BS_OP_PEEK_DELAYED),
        BAD("peek-delayed 1", BS_OP_PEEK_DELAYED),
        GOOD("peek-buried", BS_OP_PEEK_BURIED),
        BAD("peek-buried ", BS_OP_PEEK_BURIED),
        GOOD("list-tubes", BS_OP_LIST_TUBES),
        BAD("list-tubes x", BS_OP_LIST_TUBES),
        BAD("list-tubesx", BS_OP_LIST_TUBES),
        BAD("list-tubes ", BS_OP_LIST_TUBES),
        GOOD("list-tube-used", BS_OP_LIST_TUBE_USED),
        BAD("list-tube-used ", BS_OP_LIST_TUBE_USED),
        BAD("list-tube-usedx", BS_OP_LIST_TUBE_USED),
        GOOD("list-tubes-watched", BS_OP_LIST_TUBES_WATCHED),
        BAD("list-tubes-watched ", BS_OP_LIST_TUBES_WATCHED),
        BAD("list-tubes-watchedx", BS_OP_LIST_TUBES_WATCHED),
        /* quit matches by prefix and closes. */
        {.line = "quit", .op = BS_OP_QUIT, .counted = true},
        {.line = "quitfoo", .op = BS_OP_QUIT, .counted = true},
        {.line = "quit ", .op = BS_OP_QUIT, .counted = true},
    };
    RUN(t);
}

/* Names made of n copies of c. */
static char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_tube_name_commands(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("use foo", BS_OP_USE, .name = "foo"),
        GOOD("use default", BS_OP_USE, .name = "default"),
        GOOD("use a-", BS_OP_USE, .name = "a-"),
        GOOD("use Az09+/;.$_()-", BS_OP_USE, .name = "Az09+/;.$_()-"),
        GOOD("use 0", BS_OP_USE, .name = "0"),
        BAD("use ", BS_OP_USE),
        BAD("use  foo", BS_OP_USE), /* a space is not a name byte */
        BAD("use a b", BS_OP_USE),
        BAD("use a ", BS_OP_USE),
        BAD("use -a", BS_OP_USE),
        BAD("use *", BS_OP_USE),
        BAD("use a*b", BS_OP_USE),
        BAD("use a:b", BS_OP_USE),
        BAD("use a\tb", BS_OP_USE),
        BAD("use \xc3\xa9", BS_OP_USE),
        GOOD("watch foo", BS_OP_WATCH, .name = "foo"),
        BAD("watch ", BS_OP_WATCH),
        BAD("watch -x", BS_OP_WATCH),
        BAD("watch x y", BS_OP_WATCH),
        GOOD("ignore foo", BS_OP_IGNORE, .name = "foo"),
        BAD("ignore ", BS_OP_IGNORE),
        BAD("ignore f!", BS_OP_IGNORE),
        GOOD("stats-tube default", BS_OP_STATS_TUBE, .name = "default"),
        BAD("stats-tube ", BS_OP_STATS_TUBE),
        BAD("stats-tube a b", BS_OP_STATS_TUBE),
    };
    RUN(t);

    /* 200-byte names are accepted, 201 bytes are not. */
    static const struct {
        const char *verb;
        bs_op_t op;
    } verbs[] = {
        {"use ", BS_OP_USE},
        {"watch ", BS_OP_WATCH},
        {"ignore ", BS_OP_IGNORE},
        {"stats-tube ", BS_OP_STATS_TUBE},
    };
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
        for (size_t n = 199; n <= 202; n++) {
            char *name = repeat('n', n);
            char line[300];
            int len = snprintf(line, sizeof line, "%s%s", verbs[v].verb, name);
            pcase_t c = {.line = line, .len = (size_t)len, .op = verbs[v].op};
            if (n <= 200) {
                c.counted = true;
                c.check = true;
                c.name = name;
            } else {
                c.bad = true;
            }
            run_case(&c);
            free(name);
        }
    }
}

static void test_pause_tube(void **state) {
    (void)state;
    static const pcase_t t[] = {
        GOOD("pause-tube foo 5", BS_OP_PAUSE_TUBE, .name = "foo", .delay = 5),
        GOOD("pause-tube foo 0", BS_OP_PAUSE_TUBE, .name = "foo"),
        GOOD("pause-tube  foo  5", BS_OP_PAUSE_TUBE, .name = "foo", .delay = 5),
        GOOD("pause-tube foo 4294967295", BS_OP_PAUSE_TUBE, .name = "foo", .delay = UINT32_MAX),
        GOOD("pause-tube a()$;/+ 1", BS_OP_PAUSE_TUBE, .name = "a()$;/+", .delay = 1),
        /* The prefix has no space: the name begins right after it. */
        GOOD("pause-tubefoo 5", BS_OP_PAUSE_TUBE, .name = "foo", .delay = 5),
        BAD("pause-tube", BS_OP_PAUSE_TUBE),
        BAD("pause-tube ", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo ", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo x", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo 5 ", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo 5x", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo -1", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo 4294967296", BS_OP_PAUSE_TUBE),
        BAD("pause-tube foo*bar 5", BS_OP_PAUSE_TUBE),
        BAD("pause-tube * 5", BS_OP_PAUSE_TUBE),
        /* Parsed far enough to count, then refused by the name rules. */
        COUNTED_BAD("pause-tube -foo 5", BS_OP_PAUSE_TUBE),
    };
    RUN(t);

    for (size_t n = 199; n <= 202; n++) {
        char *name = repeat('p', n);
        char line[300];
        int len = snprintf(line, sizeof line, "pause-tube %s 7", name);
        pcase_t c = {.line = line, .len = (size_t)len, .op = BS_OP_PAUSE_TUBE, .counted = true};
        if (n <= 200) {
            c.check = true;
            c.name = name;
            c.delay = 7;
        } else {
            c.bad = true;
        }
        run_case(&c);
        free(name);
    }
}

static void test_line_length_limit(void **state) {
    (void)state;
    /* 222 bytes + CRLF = 224: the longest acceptable line. A put padded
     * with spaces before its first number is one way to build it. */
    char line[400];
    const char *tail = "0 0 10 5";
    for (size_t total = 220; total <= 226; total++) {
        size_t pad = total - 4 - strlen(tail);
        memcpy(line, "put ", 4);
        memset(line + 4, ' ', pad);
        memcpy(line + 4 + pad, tail, strlen(tail));
        bs_cmd_t cmd;
        bs_parse(line, total, &cmd);
        if (total + 2 <= BS_LINE_MAX) {
            assert_int_equal(cmd.op, BS_OP_PUT);
            assert_true(cmd.counted);
            assert_false(cmd.bad_format);
            assert_int_equal(cmd.size, 5);
        } else {
            /* A line that would not fit in 224 bytes with its CRLF. */
            if (!cmd.bad_format)
                fail_msg("a %zu-byte line (%zu with CRLF) was accepted; the limit is %d "
                         "including CRLF",
                         total, total + 2, BS_LINE_MAX);
            assert_false(cmd.counted);
        }
    }
}

static void test_op_names(void **state) {
    (void)state;
    static const struct {
        bs_op_t op;
        const char *name;
    } t[] = {
        {BS_OP_PUT, "put"},
        {BS_OP_PEEK, "peek"},
        {BS_OP_PEEK_READY, "peek-ready"},
        {BS_OP_PEEK_DELAYED, "peek-delayed"},
        {BS_OP_PEEK_BURIED, "peek-buried"},
        {BS_OP_RESERVE, "reserve"},
        {BS_OP_RESERVE_TIMEOUT, "reserve-with-timeout"},
        {BS_OP_RESERVE_JOB, "reserve-job"},
        {BS_OP_DELETE, "delete"},
        {BS_OP_RELEASE, "release"},
        {BS_OP_BURY, "bury"},
        {BS_OP_KICK, "kick"},
        {BS_OP_KICK_JOB, "kick-job"},
        {BS_OP_TOUCH, "touch"},
        {BS_OP_STATS, "stats"},
        {BS_OP_STATS_JOB, "stats-job"},
        {BS_OP_STATS_TUBE, "stats-tube"},
        {BS_OP_USE, "use"},
        {BS_OP_WATCH, "watch"},
        {BS_OP_IGNORE, "ignore"},
        {BS_OP_LIST_TUBES, "list-tubes"},
        {BS_OP_LIST_TUBE_USED, "list-tube-used"},
        {BS_OP_LIST_TUBES_WATCHED, "list-tubes-watched"},
        {BS_OP_PAUSE_TUBE, "pause-tube"},
        {BS_OP_QUIT, "quit"},
        {BS_OP_UNKNOWN, "unknown"},
        {BS_OP_COUNT, "unknown"},
        {(bs_op_t)1000, "unknown"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_string_equal(bs_op_name(t[i].op), t[i].name);
}

/* Every byte value at every position of a few valid lines: the parser
 * never crashes and a NUL always means BAD_FORMAT. */
static void test_byte_mutations(void **state) {
    (void)state;
    static const char *const lines[] = {
        "put 1 2 3 4", "use foo", "release 1 2 3", "pause-tube foo 5", "stats", "kick 5",
    };
    for (size_t l = 0; l < sizeof lines / sizeof lines[0]; l++) {
        size_t len = strlen(lines[l]);
        char buf[64];
        for (size_t pos = 0; pos < len; pos++) {
            for (int b = 0; b < 256; b++) {
                memcpy(buf, lines[l], len);
                buf[pos] = (char)b;
                bs_cmd_t cmd;
                bs_parse(buf, len, &cmd);
                if (b == 0)
                    assert_true(cmd.bad_format);
                if (cmd.bad_format && cmd.op == BS_OP_UNKNOWN)
                    assert_int_equal(b, 0); /* only a NUL does that */
                if (cmd.name) {
                    assert_true(cmd.name >= buf && cmd.name + cmd.name_len <= buf + len);
                }
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_framing),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_id_commands),
        cmocka_unit_test(test_release_bury),
        cmocka_unit_test(test_reserve_family),
        cmocka_unit_test(test_kick),
        cmocka_unit_test(test_no_arg_commands),
        cmocka_unit_test(test_tube_name_commands),
        cmocka_unit_test(test_pause_tube),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_byte_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
