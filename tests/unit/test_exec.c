/* test_exec.c - unit tests for dispatch/exec.c (the exec push target).
 *
 * Real processes through a real libuv loop: what a command receives
 * (payload, environment), what comes back (status, reason, output tails),
 * and the process-management promises - abort reaches the whole process
 * group, SIGKILL follows an ignored SIGTERM, every child is reaped, every
 * handle closed (each test ends with uv_loop_close succeeding and no child
 * of ours left, dead or alive). Nothing asserts on timing; children sleep
 * briefly only where a test needs them to wait for something. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch/exec.h"

/* ------------------------------------------------------------------ */
/* Fixture: a loop and a scratch directory per test                    */

typedef struct fx {
    uv_loop_t loop;
    char dir[64];
} fx_t;

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    strcpy(f->dir, "/tmp/test_exec.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    alarm(120); /* a hung test fails instead of blocking the suite */
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* No child of ours exists, running or zombie: libuv reaped every one. */
static void assert_no_children(void) {
    int st;
    errno = 0;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t n = fread(line, 1, sizeof line - 1, fp);
        fclose(fp);
        line[n] = '\0';
        char *rp = strrchr(line, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid())
            fail_msg("process %s (state %c) is still our child", e->d_name, state);
    }
    closedir(d);
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&f->loop);
    assert_no_children();
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    alarm(0);
    free(f);
    return r == 0 ? 0 : -1; /* EBUSY: a handle was left open */
}

/* ------------------------------------------------------------------ */
/* Running attempts                                                    */

typedef struct run {
    push_attempt_t *a;
    int ndone;
    int order; /* when done() came, among all runs */
    push_result_t res;
    char out[EXEC_TAIL_MAX];
    size_t out_len;
    uint64_t out_total;
    char err[EXEC_TAIL_MAX];
    size_t err_len;
    uint64_t err_total;
    push_target_t *free_target; /* freed from inside done() */
} run_t;

static int done_seq;

static void on_done(void *ctx, const push_result_t *res) {
    run_t *r = ctx;
    r->ndone++;
    r->order = ++done_seq;
    r->res = *res;
    if (r->a) {
        exec_output_t o;
        exec_attempt_output(r->a, &o);
        memcpy(r->out, o.out, o.out_len);
        r->out_len = o.out_len;
        r->out_total = o.out_total;
        memcpy(r->err, o.err, o.err_len);
        r->err_len = o.err_len;
        r->err_total = o.err_total;
    }
    if (r->free_target)
        exec_target_ops.free(r->free_target);
}

static push_target_t *mk(fx_t *f, const char *cmd, const char *workdir, uint32_t grace) {
    char err[256] = "";
    push_target_t *t = exec_target_new(&f->loop, cmd, workdir, grace, err, sizeof err);
    if (!t)
        fail_msg("exec_target_new(%s): %s", cmd, err);
    return t;
}

/* Start an attempt; done() must not have run yet, whatever happened. */
static push_attempt_t *go_req(push_target_t *t, run_t *r, const push_request_t *req) {
    memset(r, 0, sizeof *r);
    r->a = exec_target_ops.start(t, req, on_done, r);
    assert_int_equal(r->ndone, 0);
    return r->a;
}

static push_attempt_t *go(push_target_t *t, run_t *r, const char *body, size_t len) {
    push_request_t req = {.task_id = 42,
                          .queue = "default",
                          .attempt = 1,
                          .body = body,
                          .body_len = len,
                          .body_is_json = false};
    return go_req(t, r, &req);
}

static void wait_done(fx_t *f, run_t *r) {
    while (!r->ndone)
        uv_run(&f->loop, UV_RUN_ONCE);
}

/* Run the loop until nothing is left in it: done() came exactly once. */
static void settle(fx_t *f, run_t *r) {
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->ndone, 1);
}

/* Run one attempt to its end. */
static void run_cmd(fx_t *f, const char *cmd, run_t *r, const char *body, size_t len) {
    push_target_t *t = mk(f, cmd, NULL, 5000);
    go(t, r, body, len);
    assert_non_null(r->a);
    wait_done(f, r);
    settle(f, r);
    exec_target_ops.free(t);
}

/* Let the running command's stdout tail contain needle. */
static void wait_stdout(fx_t *f, run_t *r, const char *needle) {
    for (;;) {
        exec_output_t o;
        exec_attempt_output(r->a, &o);
        if (memmem(o.out, o.out_len, needle, strlen(needle)))
            return;
        assert_int_equal(r->ndone, 0);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return p;
}

/* ------------------------------------------------------------------ */
/* The command splitter                                                */

static void test_split_table(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *words[10]; /* NULL-terminated */
        const char *err;      /* NULL: must split */
    } cases[] = {
        {"php artisan queue:work", {"php", "artisan", "queue:work"}, NULL},
        {"  a \t b\nc\r\n ", {"a", "b", "c"}, NULL},
        {"'a b' c", {"a b", "c"}, NULL},
        {"\"a b\" c", {"a b", "c"}, NULL},
        {"a\"b c\"d", {"ab cd"}, NULL},
        {"x'y'\"z\"w", {"xyzw"}, NULL},
        {"'' x \"\"", {"", "x", ""}, NULL},
        {"\"say \\\"hi\\\"\"", {"say \"hi\""}, NULL},
        {"\"back\\\\slash\"", {"back\\slash"}, NULL},
        {"\"C:\\d\\n\"", {"C:\\d\\n"}, NULL},
        {"'a\\\\b' 'c\\'", {"a\\\\b", "c\\"}, NULL},
        {"a\\ b", {"a\\", "b"}, NULL},
        {"\"it's\" 'say \"hi\"'", {"it's", "say \"hi\""}, NULL},
        {"echo $HOME *.php; rm -rf / | cat > x",
         {"echo", "$HOME", "*.php;", "rm", "-rf", "/", "|", "cat", ">", "x"},
         NULL},
        {"", {NULL}, "empty command"},
        {" \t\n ", {NULL}, "empty command"},
        {"echo 'oops", {NULL}, "unterminated single quote in the command at column 6"},
        {"echo \"oops\\\"", {NULL}, "unterminated double quote in the command at column 6"},
        {"x\"", {NULL}, "unterminated double quote in the command at column 2"},
        {"'it\\'s'", {NULL}, "unterminated single quote in the command at column 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[128] = "";
        char **argv = (char **)1;
        int n = exec_split_command(cases[i].in, &argv, err, sizeof err);
        if (cases[i].err) {
            if (n != -1)
                fail_msg("case %zu (%s): split, expected %s", i, cases[i].in, cases[i].err);
            assert_null(argv);
            assert_string_equal(err, cases[i].err);
            continue;
        }
        int want = 0;
        while (want < 10 && cases[i].words[want])
            want++;
        if (n != want)
            fail_msg("case %zu (%s): %d words, expected %d (%s)", i, cases[i].in, n, want, err);
        for (int k = 0; k < n; k++)
            assert_string_equal(argv[k], cases[i].words[k]);
        assert_null(argv[n]);
        exec_argv_free(argv);
    }
}

/* What the program receives is exactly what the splitter made. */
static void test_split_reaches_argv(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f, "/bin/sh -c 'printf \"[%s]\" \"$@\"' sh 'a b' \"c\\\"d\" '' $x", &r, NULL, 0);
    assert_true(r.res.ok);
    assert_int_equal(r.out_len, strlen("[a b][c\"d][][$x]"));
    assert_memory_equal(r.out, "[a b][c\"d][][$x]", r.out_len);
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */

static void expect_new_error(fx_t *f, const char *cmd, const char *workdir, const char *want) {
    char err[256] = "";
    push_target_t *t = exec_target_new(&f->loop, cmd, workdir, 1000, err, sizeof err);
    if (t)
        fail_msg("%s: created, expected error %s", cmd, want);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s: error \"%s\", expected \"%s...\"", cmd, err, want);
}

static void test_new_errors(void **state) {
    fx_t *f = *state;
    char cmd[256], want[512];
    expect_new_error(f, "/usr/bin/nope-defer-test --flag", NULL,
                     "program /usr/bin/nope-defer-test: no such file");
    expect_new_error(f, "nope-defer-test", NULL, "program nope-defer-test: not found on PATH (");
    expect_new_error(f, "", NULL, "empty command");
    expect_new_error(f, NULL, NULL, "empty command");
    expect_new_error(f, "php 'artisan", NULL,
                     "unterminated single quote in the command at column 5");

    snprintf(want, sizeof want, "program %s: is a directory", f->dir);
    expect_new_error(f, f->dir, NULL, want);

    snprintf(cmd, sizeof cmd, "%s/plain.txt", f->dir);
    write_file(cmd, "not a program\n", 0644);
    snprintf(want, sizeof want, "program %s: not executable", cmd);
    expect_new_error(f, cmd, NULL, want);

    expect_new_error(f, "true", "/nonexistent-defer-test-dir",
                     "working directory /nonexistent-defer-test-dir: no such file");
    snprintf(want, sizeof want, "working directory %s: not a directory", cmd);
    expect_new_error(f, "true", cmd, want);

    /* A relative path is looked for in the working directory. */
    snprintf(cmd, sizeof cmd, "%s/bin", f->dir);
    assert_int_equal(mkdir(cmd, 0755), 0);
    snprintf(cmd, sizeof cmd, "%s/bin/here.sh", f->dir);
    write_file(cmd, "#!/bin/sh\npwd\n", 0755);
    snprintf(want, sizeof want, "program %s/bin/nothere.sh: no such file", f->dir);
    expect_new_error(f, "bin/nothere.sh", f->dir, want);

    /* No room for the message is no reason to crash. */
    assert_null(exec_target_new(&f->loop, "", NULL, 0, NULL, 0));
    char tiny[4];
    assert_null(exec_target_new(&f->loop, "/usr/bin/nope-defer-test", NULL, 0, tiny, sizeof tiny));
    assert_string_equal(tiny, "pro");
}

static void test_relative_program_runs_in_workdir(void **state) {
    fx_t *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/bin", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/bin/where.sh", f->dir);
    write_file(path, "#!/bin/sh\npwd -P\n", 0755);

    push_target_t *t = mk(f, "bin/where.sh", f->dir, 1000);
    run_t r;
    go(t, &r, NULL, 0);
    wait_done(f, &r);
    settle(f, &r);
    assert_true(r.res.ok);
    char real[PATH_MAX];
    assert_non_null(realpath(f->dir, real));
    assert_int_equal(r.out_len, strlen(real) + 1);
    assert_memory_equal(r.out, real, strlen(real));
    exec_target_ops.free(t);
}

/* ------------------------------------------------------------------ */
/* Input and environment                                               */

static void check_payload(fx_t *f, const char *body, size_t len) {
    char cmd[256], path[128];
    snprintf(path, sizeof path, "%s/payload.out", f->dir);
    snprintf(cmd, sizeof cmd, "/bin/sh -c 'cat > \"$0\"' '%s'", path);
    run_t r;
    run_cmd(f, cmd, &r, body, len);
    assert_true(r.res.ok);
    assert_int_equal(r.res.status, 0);
    assert_string_equal(r.res.reason, "");
    size_t got_len;
    char *got = read_file(path, &got_len);
    assert_int_equal(got_len, len);
    if (len)
        assert_memory_equal(got, body, len);
    free(got);
}

static void test_payload_byte_exact(void **state) {
    fx_t *f = *state;
    check_payload(f, "{\"to\":\"a@example.com\"}\n", 23);
    check_payload(f, "", 0);
    check_payload(f, NULL, 0);
    static const char bin[] = {'\0', '\x01', '\xff', '\n', '\r', '\0', '\x80', 'x', '\x1a', '\0'};
    check_payload(f, bin, sizeof bin);

    /* A few MB of every byte value, NULs included. */
    size_t len = 5 * 1024 * 1024 + 17;
    char *big = malloc(len);
    assert_non_null(big);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big[i] = (char)(x >> 56);
    }
    check_payload(f, big, len);
    free(big);
}

/* The child's stdio are real pipes, so /dev/stdin works as in a shell. */
static void test_stdio_are_pipes(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f, "/bin/sh -c 'test -p /dev/stdin && test -p /dev/stdout && test -p /dev/stderr "
               "&& cat /dev/stdin'",
            &r, "via /dev/stdin", 14);
    assert_true(r.res.ok);
    assert_int_equal(r.out_len, 14);
    assert_memory_equal(r.out, "via /dev/stdin", 14);
}

static void test_environment(void **state) {
    fx_t *f = *state;
    setenv("EXEC_TEST_MARK", "inherited", 1);
    setenv("DEFER_QUEUE", "stale", 1); /* ours replaces the server's */
    push_target_t *t = mk(f,
                          "/bin/sh -c 'printf \"%s|%s|%s|%s|%s|\" \"$DEFER_TASK_ID\" "
                          "\"$DEFER_QUEUE\" \"$DEFER_ATTEMPT\" \"$DEFER_PAYLOAD_TYPE\" "
                          "\"$EXEC_TEST_MARK\"; env | grep -c ^DEFER_QUEUE='",
                          NULL, 1000);
    push_request_t req = {.task_id = UINT64_MAX,
                          .queue = "mail.high",
                          .attempt = 7,
                          .body = "{}",
                          .body_len = 2,
                          .body_is_json = true};
    run_t r;
    go_req(t, &r, &req);
    wait_done(f, &r);
    settle(f, &r);
    assert_true(r.res.ok);
    const char *want = "18446744073709551615|mail.high|7|json|inherited|1\n";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);

    req = (push_request_t){.task_id = 1, .queue = "q", .attempt = 1, .body_is_json = false};
    go_req(t, &r, &req);
    wait_done(f, &r);
    settle(f, &r);
    want = "1|q|1|bytes|inherited|1\n";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    exec_target_ops.free(t);
    unsetenv("EXEC_TEST_MARK");
    unsetenv("DEFER_QUEUE");
}

/* ------------------------------------------------------------------ */
/* Outcomes                                                            */

static void test_exit_zero_is_ok(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f, "true", &r, "ignored", 7);
    assert_true(r.res.ok);
    assert_int_equal(r.res.status, 0);
    assert_string_equal(r.res.reason, "");
}

static void test_exit_status_with_stderr_tail(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f,
            "/bin/sh -c 'echo to-stdout; echo \"PHP Fatal error: boom\" >&2; "
            "printf \"line2\\tx\\001y\\n\" >&2; exit 3'",
            &r, NULL, 0);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, 3);
    assert_string_equal(r.res.reason, "exit status 3; stderr: PHP Fatal error: boom line2 x?y");
    assert_int_equal(r.out_len, 10);
    assert_memory_equal(r.out, "to-stdout\n", 10);

    /* stdout stands in when stderr said nothing */
    run_cmd(f, "/bin/sh -c 'echo only-stdout; exit 2'", &r, NULL, 0);
    assert_int_equal(r.res.status, 2);
    assert_string_equal(r.res.reason, "exit status 2; stdout: only-stdout");

    run_cmd(f, "/bin/sh -c 'echo >&2; exit 5'", &r, NULL, 0);
    assert_string_equal(r.res.reason, "exit status 5");
}

/* A long stderr: the reason keeps its end, marked as cut, within bounds;
 * the cut never splits a UTF-8 character. */
static void test_reason_is_bounded(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f,
            "/bin/sh -c 'head -c 10000 /dev/zero | tr \"\\0\" x >&2; "
            "echo \" THE END\" >&2; exit 1'",
            &r, NULL, 0);
    assert_int_equal(r.res.status, 1);
    assert_true(strlen(r.res.reason) < PUSH_REASON_MAX);
    assert_true(strlen(r.res.reason) > PUSH_REASON_MAX - 16);
    assert_int_equal(strncmp(r.res.reason, "exit status 1; stderr: ...xxx", 29), 0);
    const char *end = "xxx THE END";
    assert_string_equal(r.res.reason + strlen(r.res.reason) - strlen(end), end);
    assert_int_equal(r.err_len, EXEC_TAIL_MAX);
    assert_int_equal(r.err_total, 10009);

    /* 600 two-byte characters: whatever the cut, it lands between them. */
    run_cmd(f,
            "/bin/sh -c 'i=0; while [ $i -lt 600 ]; do printf \"\\303\\251\" >&2; i=$((i+1)); "
            "done; exit 4'",
            &r, NULL, 0);
    const char *prefix = "exit status 4; stderr: ...";
    assert_int_equal(strncmp(r.res.reason, prefix, strlen(prefix)), 0);
    const unsigned char *p = (const unsigned char *)r.res.reason + strlen(prefix);
    size_t n = strlen((const char *)p);
    assert_true(n > 400);
    assert_int_equal(n % 2, 0);
    for (size_t i = 0; i < n; i += 2) {
        assert_int_equal(p[i], 0xc3);
        assert_int_equal(p[i + 1], 0xa9);
    }
}

static void test_killed_by_signal(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f, "/bin/sh -c 'kill -9 $$'", &r, NULL, 0);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, -1);
    assert_string_equal(r.res.reason, "killed by signal 9");
}

/* 200 MB through stdout: only the tail is kept, and it is the true end. */
static void test_huge_output_keeps_tail(void **state) {
    fx_t *f = *state;
    run_t r;
    run_cmd(f,
            "/bin/sh -c 'head -c 200000000 /dev/zero; printf END; "
            "head -c 300000 /dev/zero | tr \"\\0\" e >&2'",
            &r, NULL, 0);
    assert_true(r.res.ok);
    assert_int_equal(r.out_len, EXEC_TAIL_MAX);
    assert_int_equal(r.out_total, 200000003);
    assert_memory_equal(r.out + EXEC_TAIL_MAX - 3, "END", 3);
    for (size_t i = 0; i < EXEC_TAIL_MAX - 3; i++)
        assert_int_equal(r.out[i], 0);
    assert_int_equal(r.err_len, EXEC_TAIL_MAX);
    assert_int_equal(r.err_total, 300000);
    for (size_t i = 0; i < EXEC_TAIL_MAX; i++)
        assert_int_equal(r.err[i], 'e');
}

/* Output written just before exit is all there, run after run. (A guard:
 * libuv normally delivers the bytes before the exit; the other order, which
 * exec.c drains the pipes for, needs a poll of over 1024 ready events.) */
static void test_last_words_kept(void **state) {
    fx_t *f = *state;
    push_target_t *t = mk(f, "/bin/sh -c 'echo last words >&2; printf out; exit 9'", NULL, 1000);
    for (int i = 0; i < 40; i++) {
        run_t r;
        go(t, &r, NULL, 0);
        wait_done(f, &r);
        settle(f, &r);
        assert_string_equal(r.res.reason, "exit status 9; stderr: last words");
        assert_int_equal(r.out_len, 3);
    }
    exec_target_ops.free(t);
}

/* ------------------------------------------------------------------ */
/* Starting fails                                                      */

static void test_start_failure_is_deferred(void **state) {
    fx_t *f = *state;
    char path[256], want[512];
    snprintf(path, sizeof path, "%s/gone.sh", f->dir);
    write_file(path, "#!/bin/sh\nexit 0\n", 0755);
    push_target_t *t = mk(f, path, NULL, 1000);
    assert_int_equal(unlink(path), 0);
    run_t r;
    assert_null(go(t, &r, "x", 1)); /* go() checked done() is not yet called */
    wait_done(f, &r);
    settle(f, &r);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, -1);
    snprintf(want, sizeof want, "cannot start %s: no such file", path);
    assert_string_equal(r.res.reason, want);
    exec_target_ops.free(t);

    /* A script whose interpreter is missing. */
    write_file(path, "#!/nonexistent/interpreter\n", 0755);
    t = mk(f, path, NULL, 1000);
    assert_null(go(t, &r, NULL, 0));
    wait_done(f, &r);
    settle(f, &r);
    assert_string_equal(r.res.reason, want);
    exec_target_ops.free(t);

    /* The working directory went away. */
    snprintf(path, sizeof path, "%s/wd", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    t = mk(f, "true", path, 1000);
    assert_int_equal(rmdir(path), 0);
    assert_null(go(t, &r, NULL, 0));
    wait_done(f, &r);
    settle(f, &r);
    snprintf(want, sizeof want, ": working directory %s: no such file", path);
    assert_int_equal(strncmp(r.res.reason, "cannot start /", 14), 0);
    assert_string_equal(r.res.reason + strlen(r.res.reason) - strlen(want), want);
    exec_target_ops.free(t);
}

/* ------------------------------------------------------------------ */
/* Abort                                                               */

static void test_abort_terminates(void **state) {
    fx_t *f = *state;
    push_target_t *t = mk(f, "sleep 1000", NULL, 60000);
    run_t r;
    go(t, &r, NULL, 0);
    exec_target_ops.abort(r.a);
    exec_target_ops.abort(r.a); /* a second abort changes nothing */
    assert_int_equal(r.ndone, 0);
    wait_done(f, &r);
    settle(f, &r);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, -1);
    assert_string_equal(r.res.reason, "terminated by SIGTERM");
    exec_target_ops.free(t);
}

static void test_abort_kills_after_grace(void **state) {
    fx_t *f = *state;
    push_target_t *t =
        mk(f, "/bin/sh -c 'trap \"\" TERM; echo ready; while :; do sleep 1; done'", NULL, 100);
    run_t r;
    go(t, &r, NULL, 0);
    wait_stdout(f, &r, "ready");
    exec_target_ops.abort(r.a);
    wait_done(f, &r);
    settle(f, &r);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, -1);
    assert_string_equal(r.res.reason,
                        "killed after not stopping within 100 ms of SIGTERM; stdout: ready");
    exec_target_ops.free(t);
}

static void test_abort_clean_exit_on_sigterm(void **state) {
    fx_t *f = *state;
    push_target_t *t = mk(
        f, "/bin/sh -c 'trap \"echo bye >&2; exit 7\" TERM; echo ready; while :; do sleep 1; done'",
        NULL, 60000);
    run_t r;
    go(t, &r, NULL, 0);
    wait_stdout(f, &r, "ready");
    exec_target_ops.abort(r.a);
    wait_done(f, &r);
    settle(f, &r);
    assert_false(r.res.ok);
    assert_int_equal(r.res.status, 7);
    /* (under load, sh may first report its killed `sleep` on stderr) */
    const char *prefix = "stopped after SIGTERM with exit status 7; stderr: ";
    assert_int_equal(strncmp(r.res.reason, prefix, strlen(prefix)), 0);
    assert_string_equal(r.res.reason + strlen(r.res.reason) - 3, "bye");
    exec_target_ops.free(t);
}

/* A script leaves a background child that even ignores SIGTERM; after the
 * abort it is gone. We become the subreaper of this test's orphans so the
 * child, once reparented, can be waited for by its pid. */
static void test_abort_reaches_background_child(void **state) {
    fx_t *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/bg.sh", f->dir);
    write_file(path,
               "#!/bin/sh\n"
               "sh -c 'trap \"\" TERM; echo \"bg $$.\"; exec sleep 1000' &\n"
               "wait\n",
               0755);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    push_target_t *t = mk(f, path, NULL, 60000);
    run_t r;
    go(t, &r, NULL, 0);
    wait_stdout(f, &r, ".");
    exec_output_t o;
    exec_attempt_output(r.a, &o);
    char line[64] = "";
    memcpy(line, o.out, o.out_len < sizeof line - 1 ? o.out_len : sizeof line - 1);
    int bg = 0;
    assert_int_equal(sscanf(line, "bg %d.", &bg), 1);
    assert_true(bg > 0);
    assert_int_equal(kill(bg, 0), 0);

    exec_target_ops.abort(r.a);
    wait_done(f, &r);
    settle(f, &r);
    char want[64];
    snprintf(want, sizeof want, "terminated by SIGTERM; stdout: bg %d.", bg);
    assert_string_equal(r.res.reason, want);
    int st;
    assert_int_equal(waitpid(bg, &st, 0), bg);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
    exec_target_ops.free(t);
}

/* ------------------------------------------------------------------ */
/* Never blocking, never leaking                                       */

/* A command that never reads its big payload holds nothing up: start()
 * returns at once, and the loop goes on serving another attempt, whose
 * 1 MB of output (more than a pipe holds) must be read before it can
 * raise the flag the first one waits for. The first completes when it
 * exits. */
static void test_unread_stdin_does_not_block(void **state) {
    fx_t *f = *state;
    char cmd[256];
    size_t len = 8 * 1024 * 1024;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, 'p', len);

    snprintf(cmd, sizeof cmd, "/bin/sh -c 'while [ ! -e \"$0\" ]; do sleep 0.01; done' '%s/flag'",
             f->dir);
    push_target_t *ta = mk(f, cmd, NULL, 1000);
    snprintf(cmd, sizeof cmd, "/bin/sh -c 'head -c 1048576 /dev/zero && touch \"$0\"' '%s/flag'",
             f->dir);
    push_target_t *tb = mk(f, cmd, NULL, 1000);
    run_t ra, rb;
    go(ta, &ra, big, len);
    go(tb, &rb, NULL, 0);
    wait_done(f, &ra);
    settle(f, &ra);
    assert_int_equal(rb.ndone, 1);
    assert_true(ra.res.ok);
    assert_true(rb.res.ok);
    assert_int_equal(rb.out_total, 1048576);

    /* One that exits at once without reading: the write fails, not it. */
    run_t rc;
    run_cmd(f, "true", &rc, big, len);
    assert_true(rc.res.ok);
    exec_target_ops.free(ta);
    exec_target_ops.free(tb);
    free(big);
}

/* Many at once, every outcome; the teardown then finds no child left. */
static void test_many_concurrent(void **state) {
    fx_t *f = *state;
    enum { N = 24 };
    static const char *const cmds[4] = {"true", "/bin/sh -c 'exit 3'", "/bin/sh -c 'kill -9 $$'",
                                        "sleep 1000"};
    push_target_t *t[4];
    for (int k = 0; k < 4; k++)
        t[k] = mk(f, cmds[k], NULL, 60000);
    run_t r[N];
    for (int i = 0; i < N; i++)
        assert_non_null(go(t[i % 4], &r[i], "payload", 7));
    for (int i = 3; i < N; i += 4)
        exec_target_ops.abort(r[i].a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_int_equal(r[i].res.ok, i % 4 == 0);
    }
    assert_string_equal(r[1].res.reason, "exit status 3");
    assert_string_equal(r[2].res.reason, "killed by signal 9");
    assert_string_equal(r[3].res.reason, "terminated by SIGTERM");
    for (int k = 0; k < 4; k++)
        exec_target_ops.free(t[k]);
}

/* The dispatcher may free the target from inside the last done(). */
static void test_free_target_inside_done(void **state) {
    fx_t *f = *state;
    push_target_t *t = mk(f, "true", NULL, 1000);
    run_t r;
    go(t, &r, NULL, 0);
    r.free_target = t;
    wait_done(f, &r);
    settle(f, &r);
    assert_true(r.res.ok);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* as deferd does: a closed stdin is an EPIPE */
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        FX(test_split_reaches_argv),
        FX(test_new_errors),
        FX(test_relative_program_runs_in_workdir),
        FX(test_payload_byte_exact),
        FX(test_stdio_are_pipes),
        FX(test_environment),
        FX(test_exit_zero_is_ok),
        FX(test_exit_status_with_stderr_tail),
        FX(test_reason_is_bounded),
        FX(test_killed_by_signal),
        FX(test_huge_output_keeps_tail),
        FX(test_last_words_kept),
        FX(test_start_failure_is_deferred),
        FX(test_abort_terminates),
        FX(test_abort_kills_after_grace),
        FX(test_abort_clean_exit_on_sigterm),
        FX(test_abort_reaches_background_child),
        FX(test_unread_stdin_does_not_block),
        FX(test_many_concurrent),
        FX(test_free_target_inside_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
