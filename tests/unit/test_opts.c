/* test_opts.c - unit tests for command-line parsing (opts.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opts.h"
#include "proto/bs_conn.h"

#define MAX_ARGS 16

/* getopt keeps pointers into argv between calls, so every parse gets its
 * own copy of the arguments in fresh memory that is never reused or freed:
 * a later parse can then only be disturbed by state that opts_parse itself
 * fails to reset, not by this harness overwriting old strings. */
static char arena[1 << 20];
static size_t arena_used;

static char *arena_dup(const char *s) {
    size_t n = strlen(s) + 1;
    assert_true(arena_used + n <= sizeof arena);
    char *p = arena + arena_used;
    memcpy(p, s, n);
    arena_used += n;
    return p;
}

static int parse_v(opts_t *o, char *err, size_t errlen, const char *const *args) {
    char **argv = (char **)(void *)(arena + ((arena_used + 15) & ~(size_t)15));
    arena_used = (size_t)((char *)argv - arena) + (MAX_ARGS + 1) * sizeof(char *);
    assert_true(arena_used <= sizeof arena);
    int argc = 0;
    argv[argc++] = arena_dup("deferd");
    for (; args[argc - 1]; argc++) {
        assert_true(argc < MAX_ARGS);
        argv[argc] = arena_dup(args[argc - 1]);
    }
    argv[argc] = NULL;
    opts_defaults(o);
    err[0] = '\0';
    return opts_parse(o, argc, argv, err, errlen);
}

/* PARSE(o, err, "-p", "1") parses deferd -p 1. */
#define PARSE(o, err, ...)                                                                     \
    parse_v((o), (err), sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

static void assert_ok(int rc, const char *err) {
    if (rc != 0)
        fail_msg("expected success, got error \"%s\"", err);
}

static void assert_err(int rc, const char *err, const char *needle) {
    if (rc != -1)
        fail_msg("expected an error mentioning \"%s\", got success", needle);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static bool has_note(const opts_t *o, const char *needle) {
    for (int i = 0; i < o->nnotes; i++)
        if (strstr(o->notes[i], needle))
            return true;
    return false;
}

static void test_defaults(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    int argc = 1;
    char prog[] = "deferd";
    char *argv[] = {prog, NULL};
    opts_defaults(&o);
    assert_ok(opts_parse(&o, argc, argv, err, sizeof err), err);
    assert_string_equal(o.listen_addr, "127.0.0.1");
    assert_string_equal(o.port, "11300");
    assert_false(o.listen_given);
    assert_null(o.data_dir);
    assert_int_equal(o.fsync, WAL_SYNC_ALWAYS);
    assert_int_equal(o.segment_size, 10u << 20);
    assert_int_equal(o.max_job_size, 65535);
    assert_int_equal(o.max_job_size, BS_DEFAULT_MAX_JOB_SIZE);
    assert_int_equal(o.max_conns, 10000);
    assert_null(o.user);
    assert_int_equal(o.verbosity, 0);
    assert_false(o.show_version);
    assert_false(o.show_help);
    assert_int_equal(o.nnotes, 0);
}

static void test_listen_and_port(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-l", "0.0.0.0", "-p", "11301"), err);
    assert_string_equal(o.listen_addr, "0.0.0.0");
    assert_string_equal(o.port, "11301");
    assert_true(o.listen_given);

    assert_ok(PARSE(&o, err, "-p11302"), err); /* attached argument */
    assert_string_equal(o.port, "11302");
    assert_string_equal(o.listen_addr, "127.0.0.1");
    assert_true(o.listen_given);

    assert_ok(PARSE(&o, err, "-lunix:/tmp/x.sock"), err);
    assert_string_equal(o.listen_addr, "unix:/tmp/x.sock");
    assert_true(o.listen_given);

    assert_ok(PARSE(&o, err, "--listen", "::1", "--port=4000"), err);
    assert_string_equal(o.listen_addr, "::1");
    assert_string_equal(o.port, "4000");

    assert_ok(PARSE(&o, err, "--listen=10.0.0.1", "--port", "5"), err);
    assert_string_equal(o.listen_addr, "10.0.0.1");
    assert_string_equal(o.port, "5");

    /* The last occurrence wins. */
    assert_ok(PARSE(&o, err, "-p", "1", "-p", "2"), err);
    assert_string_equal(o.port, "2");
}

static void test_data_dir_and_user(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-b", "/var/lib/defer", "-u", "nobody"), err);
    assert_string_equal(o.data_dir, "/var/lib/defer");
    assert_string_equal(o.user, "nobody");
    assert_ok(PARSE(&o, err, "--data-dir=/d", "--user=u"), err);
    assert_string_equal(o.data_dir, "/d");
    assert_string_equal(o.user, "u");
    assert_ok(PARSE(&o, err, "-b/x"), err);
    assert_string_equal(o.data_dir, "/x");
}

static void test_push_options(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-p", "1"), err);
    assert_null(o.config_file);
    assert_int_equal(o.shutdown_grace, OPTS_DEFAULT_SHUTDOWN_GRACE);
    assert_ok(PARSE(&o, err, "--config", "/etc/deferd.ini", "--shutdown-grace=0"), err);
    assert_string_equal(o.config_file, "/etc/deferd.ini");
    assert_int_equal(o.shutdown_grace, 0);
    assert_ok(PARSE(&o, err, "--shutdown-grace", "86400"), err);
    assert_int_equal(o.shutdown_grace, 86400);
    assert_err(PARSE(&o, err, "--shutdown-grace", "86401"), err, "--shutdown-grace");
    assert_err(PARSE(&o, err, "--shutdown-grace", "-1"), err, "--shutdown-grace");
    assert_err(PARSE(&o, err, "--shutdown-grace", "1.5"), err, "seconds");
    assert_err(PARSE(&o, err, "--config"), err, "--config");
}

static void test_fsync_flags(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-f", "50"), err);
    assert_int_equal(o.fsync, WAL_SYNC_INTERVAL);
    assert_int_equal(o.fsync_ms, 50);
    assert_ok(PARSE(&o, err, "-f0"), err);
    assert_int_equal(o.fsync, WAL_SYNC_ALWAYS);
    assert_ok(PARSE(&o, err, "-f", "4294967295"), err);
    assert_int_equal(o.fsync, WAL_SYNC_INTERVAL);
    assert_int_equal(o.fsync_ms, UINT32_MAX);
    assert_ok(PARSE(&o, err, "-F"), err);
    assert_int_equal(o.fsync, WAL_SYNC_NEVER);
    /* Order matters: the last one wins. */
    assert_ok(PARSE(&o, err, "-F", "-f", "10"), err);
    assert_int_equal(o.fsync, WAL_SYNC_INTERVAL);
    assert_ok(PARSE(&o, err, "-f", "10", "-F"), err);
    assert_int_equal(o.fsync, WAL_SYNC_NEVER);

    assert_ok(PARSE(&o, err, "--fsync", "always"), err);
    assert_int_equal(o.fsync, WAL_SYNC_ALWAYS);
    assert_ok(PARSE(&o, err, "--fsync=never"), err);
    assert_int_equal(o.fsync, WAL_SYNC_NEVER);
    assert_ok(PARSE(&o, err, "--fsync=interval=20"), err);
    assert_int_equal(o.fsync, WAL_SYNC_INTERVAL);
    assert_int_equal(o.fsync_ms, 20);

    assert_err(PARSE(&o, err, "-f", "abc"), err, "-f");
    assert_err(PARSE(&o, err, "-f", "-1"), err, "-f");
    assert_err(PARSE(&o, err, "-f", "4294967296"), err, "4294967296");
    assert_err(PARSE(&o, err, "-f", ""), err, "-f");
    assert_err(PARSE(&o, err, "-f", "5ms"), err, "5ms");
    assert_err(PARSE(&o, err, "--fsync", "sometimes"), err, "sometimes");
    assert_err(PARSE(&o, err, "--fsync=interval=0"), err, "interval=0");
    assert_err(PARSE(&o, err, "--fsync=interval="), err, "--fsync");
    assert_err(PARSE(&o, err, "--fsync=interval=x"), err, "--fsync");
    assert_err(PARSE(&o, err, "--fsync=interval=4294967296"), err, "--fsync");
}

static void test_segment_size(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-s", "1048576"), err);
    assert_int_equal(o.segment_size, 1048576);
    assert_ok(PARSE(&o, err, "-s99999999999"), err);
    assert_int_equal(o.segment_size, UINT64_C(99999999999));
    assert_err(PARSE(&o, err, "-s", "0"), err, "-s");
    assert_err(PARSE(&o, err, "-s", "1k"), err, "1k");
    assert_err(PARSE(&o, err, "-s", " 5"), err, "-s");
    assert_err(PARSE(&o, err, "-s", "99999999999999999999999"), err, "-s");
}

static void test_max_job_size(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-z", "100"), err);
    assert_int_equal(o.max_job_size, 100);
    assert_int_equal(o.nnotes, 0);
    assert_ok(PARSE(&o, err, "-z0"), err);
    assert_int_equal(o.max_job_size, 0);
    assert_ok(PARSE(&o, err, "--max-job-size=1073741824"), err);
    assert_int_equal(o.max_job_size, 1073741824);
    assert_int_equal(o.nnotes, 0);
    /* Beyond the limit: clamped, with a note saying so. */
    assert_ok(PARSE(&o, err, "-z", "1073741825"), err);
    assert_int_equal(o.max_job_size, BS_MAX_JOB_SIZE_LIMIT);
    assert_int_equal(o.nnotes, 1);
    assert_true(has_note(&o, "1073741824"));
    assert_ok(PARSE(&o, err, "-z", "99999999999"), err);
    assert_int_equal(o.max_job_size, BS_MAX_JOB_SIZE_LIMIT);
    assert_true(has_note(&o, "1073741824"));
    assert_err(PARSE(&o, err, "-z", "big"), err, "-z");
    assert_err(PARSE(&o, err, "-z", "-5"), err, "-z");
    assert_err(PARSE(&o, err, "-z", "99999999999999999999999"), err, "-z");
}

static void test_max_connections(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "--max-connections", "5"), err);
    assert_int_equal(o.max_conns, 5);
    assert_ok(PARSE(&o, err, "--max-connections=4294967295"), err);
    assert_int_equal(o.max_conns, UINT32_MAX);
    assert_err(PARSE(&o, err, "--max-connections=0"), err, "--max-connections");
    assert_err(PARSE(&o, err, "--max-connections=4294967296"), err, "--max-connections");
    assert_err(PARSE(&o, err, "--max-connections=x"), err, "--max-connections");
}

static void test_flags_without_arguments(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-V"), err);
    assert_int_equal(o.verbosity, 1);
    assert_ok(PARSE(&o, err, "-VV"), err);
    assert_int_equal(o.verbosity, 2);
    assert_ok(PARSE(&o, err, "-V", "-V", "-V"), err);
    assert_int_equal(o.verbosity, 3);
    assert_ok(PARSE(&o, err, "--verbose", "-V"), err);
    assert_int_equal(o.verbosity, 2);
    assert_ok(PARSE(&o, err, "-v"), err);
    assert_true(o.show_version);
    assert_false(o.show_help);
    assert_ok(PARSE(&o, err, "--version"), err);
    assert_true(o.show_version);
    assert_ok(PARSE(&o, err, "-h"), err);
    assert_true(o.show_help);
    assert_ok(PARSE(&o, err, "--help"), err);
    assert_true(o.show_help);
    /* Combined short flags, ending with one that takes an argument. */
    assert_ok(PARSE(&o, err, "-VFp", "7"), err);
    assert_int_equal(o.verbosity, 1);
    assert_int_equal(o.fsync, WAL_SYNC_NEVER);
    assert_string_equal(o.port, "7");
    assert_ok(PARSE(&o, err, "-VVz10"), err);
    assert_int_equal(o.verbosity, 2);
    assert_int_equal(o.max_job_size, 10);
}

static void test_c_and_n_are_noted(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_ok(PARSE(&o, err, "-c"), err);
    assert_int_equal(o.nnotes, 1);
    assert_true(has_note(&o, "-c"));
    assert_ok(PARSE(&o, err, "-n"), err);
    assert_int_equal(o.nnotes, 1);
    assert_true(has_note(&o, "-n"));
    assert_ok(PARSE(&o, err, "-cn"), err);
    assert_int_equal(o.nnotes, 2);
    /* Notes never overflow their array. */
    assert_ok(PARSE(&o, err, "-cncncncncncncncncncn"), err);
    assert_int_equal(o.nnotes, (int)(sizeof o.notes / sizeof o.notes[0]));
}

static void test_errors(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    assert_err(PARSE(&o, err, "-x"), err, "-x");
    assert_err(PARSE(&o, err, "--bogus"), err, "--bogus");
    assert_err(PARSE(&o, err, "-p"), err, "-p");
    assert_err(PARSE(&o, err, "-V", "-l"), err, "-l");
    assert_err(PARSE(&o, err, "--port"), err, "--port");
    assert_err(PARSE(&o, err, "-z"), err, "-z");
    /* A stray argument, before or after flags. */
    assert_err(PARSE(&o, err, "foo"), err, "foo");
    assert_err(PARSE(&o, err, "-V", "foo"), err, "foo");
    /* Parsing stops at the first non-option, as in beanstalkd: flags
     * after it are not read. */
    assert_err(PARSE(&o, err, "foo", "-V"), err, "foo");
    /* "--version" does not take a value. */
    assert_err(PARSE(&o, err, "--version=1"), err, "--version");
    /* err is always NUL-terminated even when small. */
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(PARSE(&o, small, "--bogus-option-with-a-long-name"), -1);
    assert_true(memchr(small, '\0', sizeof small) != NULL);
}

static void test_unknown_flag_inside_a_group(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    /* An unknown flag followed by others in the same argument: the error
     * must name the flag, not something else from argv. */
    int rc = PARSE(&o, err, "-xV");
    assert_int_equal(rc, -1);
    if (strstr(err, "deferd") || !strchr(err, 'x'))
        fail_msg("error for \"-xV\" is \"%s\": it should name the unknown flag x", err);
}

static void test_repeated_parses_are_independent(void **state) {
    (void)state;
    opts_t o;
    char err[256];
    /* opts.h: parsing is a pure function of argv. A parse that stopped in
     * the middle of a flag group must not leak into the next one. */
    assert_int_equal(PARSE(&o, err, "-xV"), -1);
    int rc = PARSE(&o, err, "-p", "1");
    if (rc != 0)
        fail_msg("parsing \"-p 1\" right after a parse of \"-xV\" (which stopped at the "
                 "unknown x) failed with \"%s\": getopt's position inside the old \"-xV\" "
                 "carried over",
                 err);
    assert_string_equal(o.port, "1");
    if (o.verbosity != 0)
        fail_msg("verbosity %d after parsing \"-p 1\": state from the previous parse of "
                 "\"-xV\" leaked into this one",
                 o.verbosity);

    assert_int_equal(PARSE(&o, err, "-Vx"), -1);
    assert_ok(PARSE(&o, err, "-F"), err);
    assert_int_equal(o.verbosity, 0);
    assert_int_equal(o.fsync, WAL_SYNC_NEVER);
}

static void test_usage_text(void **state) {
    (void)state;
    const char *u = opts_usage();
    assert_non_null(u);
    assert_true(strncmp(u, "Usage: deferd", 13) == 0);
    static const char *const flags[] = {"-l", "-p", "-b", "-f", "-F", "-s", "-z",
                                        "-u", "-V", "-v", "-h", "-c", "-n", "--fsync",
                                        "--max-connections"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(u, flags[i]))
            fail_msg("usage text does not mention %s", flags[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_listen_and_port),
        cmocka_unit_test(test_data_dir_and_user),
        cmocka_unit_test(test_push_options),
        cmocka_unit_test(test_fsync_flags),
        cmocka_unit_test(test_segment_size),
        cmocka_unit_test(test_max_job_size),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_flags_without_arguments),
        cmocka_unit_test(test_c_and_n_are_noted),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_usage_text),
        /* These two stop a parse in the middle of a flag group, which
         * (see test_repeated_parses_are_independent) can leak into later
         * parses: they run last, in this order, so that each starts from
         * a parse that ended cleanly. */
        cmocka_unit_test(test_repeated_parses_are_independent),
        cmocka_unit_test(test_unknown_flag_inside_a_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
