/* fuzz_opts.c - libFuzzer harness for opts_parse().
 *
 * Input: the first byte picks the size of the error buffer (1..64 bytes,
 * to exercise truncation); the rest is split at NUL bytes into arguments
 * that follow argv[0] = "deferd" (at most MAX_ARGS). Each argument is its
 * own exact-size allocation so reading past one is caught.
 *
 * Checks: the result is 0 or -1; an error comes with a NUL-terminated
 * message in the buffer, and a message about a flag names a flag (not the
 * program); on success every option holds an allowed value and every string
 * option points at the default or inside an argument. And, since opts.h
 * promises a pure function of argv, a second call on the same argv - with
 * nothing reset in between, as a program or test calling it twice would do
 * - gives the same result. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "proto/bs_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_opts: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* p is NULL, the default, or points inside one of the arguments. */
static bool from_argv(const char *p, const char *dflt, char **argv, int argc) {
    if (p == NULL)
        return true;
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (p >= argv[i] && p <= argv[i] + n)
            return true;
    }
    /* The default is a literal in opts.c, not necessarily this one. */
    return dflt && strcmp(p, dflt) == 0;
}

/* glibc's getopt keeps hidden state (the position inside a cluster of
 * short options such as "-Fz") that only optind = 0 resets. Start each
 * input the way a fresh process starts, with the same "+" ordering. */
static bool same_str(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_opts(const opts_t *a, const opts_t *b) {
    if (!same_str(a->listen_addr, b->listen_addr) || !same_str(a->port, b->port) ||
        a->listen_given != b->listen_given || !same_str(a->data_dir, b->data_dir) ||
        a->fsync != b->fsync || a->fsync_ms != b->fsync_ms ||
        a->segment_size != b->segment_size || a->max_job_size != b->max_job_size ||
        a->max_conns != b->max_conns || !same_str(a->user, b->user) ||
        a->verbosity != b->verbosity || a->show_version != b->show_version ||
        a->show_help != b->show_help || a->nnotes != b->nnotes)
        return false;
    for (int i = 0; i < a->nnotes; i++)
        if (!same_str(a->notes[i], b->notes[i]))
            return false;
    return true;
}

static void reset_getopt(void) {
    static char arg0[] = "deferd";
    char *argv[] = {arg0, NULL};
    optind = 0;
    opterr = 0;
    while (getopt(1, argv, "+") != -1) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t errlen = (size_t)(data[0] % 64) + 1;
    data++;
    size--;

    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = strdup("deferd");
    CHECK(argv[0] != NULL);
    size_t start = 0;
    for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
        if (i == size || data[i] == '\0') {
            size_t n = i - start;
            char *a = malloc(n + 1);
            CHECK(a != NULL);
            memcpy(a, data + start, n);
            a[n] = '\0';
            argv[argc++] = a;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    /* getopt_long may permute argv; remember what to free. */
    char *owned[MAX_ARGS + 2];
    memcpy(owned, argv, sizeof(char *) * (size_t)argc);

    char *err = malloc(errlen);
    CHECK(err != NULL);
    memset(err, 'X', errlen);
    err[errlen - 1] = '\0';

    opts_t o;
    opts_defaults(&o);
    reset_getopt();
    int rc = opts_parse(&o, argc, argv, err, errlen);
    CHECK(rc == 0 || rc == -1);
    CHECK(memchr(err, '\0', errlen) != NULL);
    if (rc == -1) {
        CHECK(errlen == 1 || err[0] != '\0');
    } else {
        CHECK(o.listen_addr && from_argv(o.listen_addr, OPTS_DEFAULT_ADDR, argv, argc));
        CHECK(o.port && from_argv(o.port, OPTS_DEFAULT_PORT, argv, argc));
        CHECK(from_argv(o.data_dir, NULL, argv, argc));
        CHECK(from_argv(o.user, NULL, argv, argc));
        CHECK(o.fsync == WAL_SYNC_ALWAYS || o.fsync == WAL_SYNC_INTERVAL || o.fsync == WAL_SYNC_NEVER);
        CHECK(o.fsync != WAL_SYNC_INTERVAL || o.fsync_ms > 0);
        CHECK(o.segment_size > 0);
        CHECK(o.max_job_size <= BS_MAX_JOB_SIZE_LIMIT);
        CHECK(o.max_conns > 0);
        CHECK(o.verbosity >= 0 && (size_t)o.verbosity <= size);
        CHECK(o.nnotes >= 0 && o.nnotes <= (int)(sizeof o.notes / sizeof o.notes[0]));
        for (int i = 0; i < o.nnotes; i++)
            CHECK(o.notes[i] != NULL && o.notes[i][0] != '\0');
        CHECK(!o.listen_given || argc > 1);
    }

    /* The same argv again, into a buffer large enough for any message,
     * without resetting anything. */
    char big[512];
    opts_t o2;
    opts_defaults(&o2);
    int rc2 = opts_parse(&o2, argc, argv, big, sizeof big);
    if (rc2 != rc || (rc == 0 && !same_opts(&o, &o2)) ||
        (rc == -1 && errlen > 1 && strncmp(err, big, errlen - 1) != 0)) {
        fprintf(stderr,
                "fuzz_opts: a second opts_parse of the same argv answered %d '%s', the first "
                "%d '%s'\n",
                rc2, rc2 ? big : "", rc, rc ? err : "");
        CHECK(!"opts_parse is a pure function of argv");
    }
    /* "unknown flag: X" and "flag requires an argument: X" name a flag. */
    static const char *const flag_msgs[] = {"unknown flag: ", "flag requires an argument: "};
    for (size_t k = 0; rc2 == -1 && k < 2; k++) {
        size_t n = strlen(flag_msgs[k]);
        if (strncmp(big, flag_msgs[k], n) == 0 && big[n] != '-') {
            fprintf(stderr, "fuzz_opts: error message names no flag: %s\n", big);
            CHECK(!"an error about a flag names the flag");
        }
    }

    free(err);
    for (int i = 0; i < argc; i++)
        free(owned[i]);
    return 0;
}
