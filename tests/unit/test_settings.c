/* test_settings.c - push settings (dispatch/settings.c) and the config file
 * (dispatch/config.c): every name and its limits, durations and rates,
 * JSON in and out, the backoff schedule, and config errors with their line
 * numbers. All pure functions: no server, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dispatch/config.h"
#include "dispatch/settings.h"

#define SEC(x) ((int64_t)((x) * 1e9))

/* b's text as a C string (a NUL after it, not counted). */
static const char *text_of(buf_t *b) {
    assert_true(buf_append(b, "", 1));
    b->len--;
    return buf_head(b);
}

static int64_t duration(const char *text) {
    int64_t ns = -1;
    assert_true(settings_parse_duration(text, &ns));
    return ns;
}

static void test_durations(void **state) {
    (void)state;
    assert_int_equal(duration("30s"), SEC(30));
    assert_int_equal(duration("500ms"), SEC(0.5));
    assert_int_equal(duration("5m"), SEC(300));
    assert_int_equal(duration("1h"), SEC(3600));
    assert_int_equal(duration("2d"), SEC(2 * 86400));
    assert_int_equal(duration("1.5"), SEC(1.5));
    assert_int_equal(duration("0"), 0);
    assert_int_equal(duration("30d"), SETTINGS_DURATION_MAX);
    static const char *const bad[] = {"", "s", "ms", "1x", "-1s", "1e3", "31d", "1.2.3s",
                                      " 1s", "1s ", ".", "1 s", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = 42;
        assert_false(settings_parse_duration(bad[i], &ns));
        assert_int_equal(ns, 42);
    }
}

/* Set one pair on fresh settings; returns whether it was accepted. */
static bool set1(push_settings_t *s, const char *name, const char *value, char *err) {
    settings_free(s);
    return settings_set(s, name, value, err, 256);
}

static void test_each_name(void **state) {
    (void)state;
    push_settings_t s;
    settings_init(&s);
    char err[256];
    assert_int_equal(s.concurrency, SETTINGS_DEFAULT_CONCURRENCY);
    assert_int_equal(s.max_attempts, SETTINGS_DEFAULT_MAX_ATTEMPTS);
    assert_int_equal(s.backoff_min_ns, SETTINGS_DEFAULT_BACKOFF_MIN);

    assert_true(set1(&s, "target", "fastcgi", err));
    assert_int_equal(s.kind, PUSH_FASTCGI);
    assert_false(set1(&s, "target", "smtp", err));
    assert_non_null(strstr(err, "target"));
    assert_true(set1(&s, "concurrency", "8", err));
    assert_int_equal(s.concurrency, 8);
    assert_false(set1(&s, "concurrency", "0", err));
    assert_non_null(strstr(err, "concurrency"));
    assert_false(set1(&s, "concurrency", "10001", err));
    assert_false(set1(&s, "concurrency", "8.5", err));
    assert_false(set1(&s, "concurrency", "99999999999999999999999", err));
    assert_true(set1(&s, "rate", "10/s", err));
    assert_true(s.rate == 10);
    assert_true(set1(&s, "rate", "600/m", err));
    assert_true(s.rate == 10);
    assert_true(set1(&s, "rate", "3600/h", err));
    assert_true(s.rate == 1);
    assert_true(set1(&s, "rate", "0.5", err));
    assert_true(s.rate == 0.5);
    assert_false(set1(&s, "rate", "10/x", err));
    assert_false(set1(&s, "rate", "/s", err));
    assert_false(set1(&s, "rate", "1000001", err));
    assert_true(set1(&s, "burst", "20", err));
    assert_int_equal(s.burst, 20);
    assert_false(set1(&s, "burst", "0", err));
    assert_true(set1(&s, "max_attempts", "0", err));
    assert_int_equal(s.max_attempts, 0);
    assert_true(set1(&s, "deadline", "2m", err));
    assert_int_equal(s.deadline_ns, SEC(120));
    assert_false(set1(&s, "deadline", "forever", err));
    assert_non_null(strstr(err, "deadline"));
    assert_true(set1(&s, "script", "/srv/a.php", err));
    assert_false(set1(&s, "script", "a.php", err));
    assert_non_null(strstr(err, "absolute"));
    assert_true(set1(&s, "url", "https://x/hook", err));
    assert_false(set1(&s, "url", "ftp://x/", err));
    assert_true(set1(&s, "header", "X-Token: abc", err));
    assert_int_equal(s.nheaders, 1);
    assert_false(set1(&s, "header", "no colon", err));
    assert_false(set1(&s, "header", ": empty name", err));
    assert_false(set1(&s, "header", "Bad Name: x", err));
    assert_true(set1(&s, "header", "X-Token: abc", err));
    assert_false(settings_set(&s, "header", "x-token: def", err, sizeof err)); /* any case */
    assert_non_null(strstr(err, "twice"));
    assert_false(set1(&s, "address", "a\nb", err)); /* control characters */
    assert_false(set1(&s, "workdir", "relative", err));
    assert_false(set1(&s, "colour", "blue", err));
    assert_non_null(strstr(err, "unknown setting"));
    settings_free(&s);

    /* At most SETTINGS_HEADERS_MAX headers. */
    for (int i = 0; i < SETTINGS_HEADERS_MAX; i++) {
        char h[16];
        snprintf(h, sizeof h, "A%d: b", i);
        assert_true(settings_set(&s, "header", h, err, sizeof err));
    }
    assert_false(settings_set(&s, "header", "B: b", err, sizeof err));
    settings_free(&s);
}

static void test_check(void **state) {
    (void)state;
    push_settings_t s;
    settings_init(&s);
    char err[256];
    assert_true(settings_check(&s, err, sizeof err)); /* no target: no push */
    assert_true(settings_set(&s, "target", "fastcgi", err, sizeof err));
    assert_false(settings_check(&s, err, sizeof err));
    assert_non_null(strstr(err, "address"));
    assert_true(settings_set(&s, "address", "unix:/run/fpm.sock", err, sizeof err));
    assert_true(settings_set(&s, "script", "/srv/t.php", err, sizeof err));
    assert_true(settings_check(&s, err, sizeof err));
    assert_true(settings_set(&s, "url", "http://x/", err, sizeof err));
    assert_false(settings_check(&s, err, sizeof err)); /* another target's setting */
    assert_non_null(strstr(err, "url"));
    settings_free(&s);

    assert_true(settings_set(&s, "target", "fastcgi", err, sizeof err));
    assert_true(settings_set(&s, "address", "localhost", err, sizeof err));
    assert_true(settings_set(&s, "script", "/t.php", err, sizeof err));
    assert_false(settings_check(&s, err, sizeof err)); /* no port */
    settings_free(&s);

    assert_true(settings_set(&s, "target", "exec", err, sizeof err));
    assert_false(settings_check(&s, err, sizeof err));
    assert_true(settings_set(&s, "command", "php t.php", err, sizeof err));
    assert_true(settings_check(&s, err, sizeof err));
    assert_true(settings_set(&s, "backoff_min", "10s", err, sizeof err));
    assert_true(settings_set(&s, "backoff_max", "5s", err, sizeof err));
    assert_false(settings_check(&s, err, sizeof err));
    assert_non_null(strstr(err, "backoff_min"));
    settings_free(&s);
}

static void test_json(void **state) {
    (void)state;
    push_settings_t s;
    char err[256];
    const char *doc = "{\"target\":\"http\",\"url\":\"https://crm/hook\",\"headers\":{\"X-A\":\"1\","
                      "\"Authorization\":\"Bearer t\"},\"concurrency\":4,\"rate\":\"600/m\","
                      "\"burst\":3,\"deadline\":2.5,\"max_attempts\":7,\"backoff_min\":\"200ms\","
                      "\"backoff_max\":60}";
    assert_true(settings_from_json(&s, doc, strlen(doc), err, sizeof err));
    assert_int_equal(s.kind, PUSH_HTTP);
    assert_string_equal(s.url, "https://crm/hook");
    assert_int_equal(s.nheaders, 2);
    assert_string_equal(s.headers[1], "Authorization: Bearer t");
    assert_int_equal(s.concurrency, 4);
    assert_true(s.rate == 10);
    assert_int_equal(s.burst, 3);
    assert_int_equal(s.deadline_ns, SEC(2.5));
    assert_int_equal(s.max_attempts, 7);
    assert_int_equal(s.backoff_min_ns, SEC(0.2));
    assert_int_equal(s.backoff_max_ns, SEC(60));

    /* Printed and read back: the same settings. */
    buf_t b;
    buf_init(&b);
    assert_true(settings_to_json(&b, &s, false));
    push_settings_t t;
    assert_true(settings_from_json(&t, buf_head(&b), b.len, err, sizeof err));
    assert_string_equal(t.url, s.url);
    assert_int_equal(t.nheaders, 2);
    assert_string_equal(t.headers[0], "X-A: 1");
    assert_true(t.rate == s.rate);
    assert_int_equal(t.deadline_ns, s.deadline_ns);
    assert_int_equal(t.backoff_min_ns, s.backoff_min_ns);
    assert_int_equal(t.max_attempts, s.max_attempts);
    /* ... and printed the same. */
    buf_t b2;
    buf_init(&b2);
    assert_true(settings_to_json(&b2, &t, false));
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(buf_head(&b2), buf_head(&b), b.len);
    assert_non_null(strstr(text_of(&b), "\"deadline\":2.5,"));
    buf_free(&b);
    buf_free(&b2);
    settings_free(&t);

    /* A copy is deep. */
    assert_true(settings_copy(&t, &s));
    assert_ptr_not_equal(t.url, s.url);
    assert_string_equal(t.headers[1], s.headers[1]);
    settings_free(&t);
    settings_free(&s);

    /* As the API shows it: no credentials. */
    const char *secret = "{\"target\":\"http\",\"url\":\"https://u:pw@crm:8443/h?a=b@c\","
                         "\"headers\":{\"Authorization\":\"Bearer t\"}}";
    assert_true(settings_from_json(&s, secret, strlen(secret), err, sizeof err));
    buf_init(&b);
    assert_true(settings_to_json(&b, &s, true));
    assert_non_null(strstr(text_of(&b), "\"url\":\"https://u:***@crm:8443/h?a=b@c\""));
    assert_non_null(strstr(text_of(&b), "\"Authorization\":\"***\""));
    assert_null(strstr(text_of(&b), "pw"));
    assert_null(strstr(text_of(&b), "Bearer"));
    buf_reset(&b);
    assert_true(settings_to_json(&b, &s, false)); /* the log keeps them */
    assert_non_null(strstr(text_of(&b), "u:pw@"));
    buf_free(&b);
    settings_free(&s);

    /* A rate of one per hour survives printing and reading back. */
    const char *slow = "{\"target\":\"none\",\"rate\":\"1/h\"}";
    assert_true(settings_from_json(&s, slow, strlen(slow), err, sizeof err));
    buf_init(&b);
    assert_true(settings_to_json(&b, &s, false));
    assert_true(settings_from_json(&t, buf_head(&b), b.len, err, sizeof err));
    assert_true(t.rate > 0.000277 && t.rate < 0.000278);
    buf_free(&b);
    settings_free(&t);
    settings_free(&s);
}

static void test_json_errors(void **state) {
    (void)state;
    static const struct {
        const char *doc, *says;
    } cases[] = {
        {"", "not valid JSON"},
        {"[]", "object"},
        {"{\"concurrency\":2}", "target is missing"},
        {"{\"target\":\"http\"}", "url"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"concurrency\":-1}", "concurrency"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"concurrency\":true}", "concurrency"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"deadline\":[1]}", "deadline"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"colour\":\"red\"}", "unknown setting"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"headers\":[\"A: b\"]}", "headers"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"headers\":{\"A\":1}}", "headers"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"header\":\"A: b\"}", "headers"},
        {"{\"target\":\"http\",\"target\":\"exec\"}", "not valid JSON"}, /* duplicate */
        {"{\"target\":\"fastcgi\",\"address\":\"a\\u0000b:1\",\"script\":\"/x\"}", "not valid JSON"},
        {"{\"target\":\"http\",\"url\":\"http://x/\",\"rate\":1e300}", "rate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        push_settings_t s;
        char err[256] = "";
        assert_false(settings_from_json(&s, cases[i].doc, strlen(cases[i].doc), err, sizeof err));
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
    }
}

static void test_backoff(void **state) {
    (void)state;
    push_settings_t s;
    settings_init(&s);
    s.backoff_min_ns = SEC(1);
    s.backoff_max_ns = SEC(10);
    /* The first retry waits the minimum, whatever the draw. */
    assert_int_equal(settings_backoff(&s, 1, 0.0), SEC(1));
    assert_int_equal(settings_backoff(&s, 1, 0.999), SEC(1));
    /* The third: 4 s, less up to half. */
    assert_int_equal(settings_backoff(&s, 3, 0.0), SEC(4));
    int64_t w = settings_backoff(&s, 3, 0.999);
    assert_true(w > SEC(2) && w < SEC(2.01));
    /* Capped at the maximum, however many attempts. */
    assert_int_equal(settings_backoff(&s, 5, 0.0), SEC(10));
    assert_int_equal(settings_backoff(&s, 1000000, 0.0), SEC(10));
    assert_true(settings_backoff(&s, 1000000, 0.5) >= SEC(5));
    /* Never below the minimum, even when the maximum is close to it. */
    s.backoff_max_ns = SEC(1.5);
    assert_int_equal(settings_backoff(&s, 2, 0.999), SEC(1));
    settings_free(&s);
}

/* ---- the config file ---- */

static void test_config_file(void **state) {
    (void)state;
    const char *text = "; push settings\n"
                       "[mail]\n"
                       "target = fastcgi\n"
                       "address = unix:/run/php/fpm.sock\n"
                       "script = /srv/app/mail.php\n"
                       "concurrency = 8\n"
                       "rate = 10/s\n"
                       "\n"
                       "# another queue\n"
                       "[thumbs]\n"
                       "target = exec\n"
                       "command = php /srv/app/thumb.php ; --quality 80\n"
                       "deadline = 2m\n";
    config_t c;
    char err[512];
    assert_true(config_parse(text, &c, err, sizeof err));
    assert_int_equal(c.nqueues, 2);
    const config_queue_t *q = config_find(&c, "mail", 4);
    assert_non_null(q);
    assert_int_equal(q->settings.kind, PUSH_FASTCGI);
    assert_int_equal(q->settings.concurrency, 8);
    q = config_find(&c, "thumbs", 6);
    assert_non_null(q);
    /* ';' inside a value is part of it. */
    assert_string_equal(q->settings.command, "php /srv/app/thumb.php ; --quality 80");
    assert_int_equal(q->settings.deadline_ns, SEC(120));
    assert_null(config_find(&c, "nope", 4));
    config_free(&c);

    /* An empty file is no queue at all. */
    assert_true(config_parse("", &c, err, sizeof err));
    assert_int_equal(c.nqueues, 0);
    config_free(&c);

    /* A long line (a URL with a long query) is fine. */
    size_t n = 3000;
    char *big = malloc(n + 64);
    assert_non_null(big);
    int k = snprintf(big, n + 64, "[h]\ntarget = http\nurl = http://x/?q=");
    memset(big + k, 'a', n);
    big[k + n] = '\0';
    assert_true(config_parse(big, &c, err, sizeof err));
    assert_int_equal(strlen(c.queues[0].settings.url), strlen("http://x/?q=") + n);
    config_free(&c);
    free(big);
}

static void test_config_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"target = http\n", "line 1: target: settings must come under a [queue] heading"},
        {"[a]\ntarget = http\nurl = http://x/\nconcurrency = eight\n", "line 4: [a] concurrency"},
        {"[a]\ntarget = http\nurl = http://x/\n[b]\ntarget = http\nurl = http://y/\n[a]\n"
         "rate = 1\n", "line 8: [a] appears twice"},
        {"[-a]\ntarget = http\n", "line 2: [-a]: not a valid queue name"},
        {"[a]\njust words\n", "line 2: not a [queue] heading"},
        {"[a]\nurl = http://x/\n", "[a] target is missing"},
        {"[a]\ntarget = fastcgi\n", "[a] a fastcgi target needs address"},
        {"[a]\ntarget = http\nurl = http://x/\ncolour = red\n", "line 4: [a] unknown setting"},
        {"[a\ntarget = http\n", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_t c;
        char err[512] = "";
        assert_false(config_parse(cases[i].text, &c, err, sizeof err));
        assert_int_equal(c.nqueues, 0);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
    }
}

static void test_config_load(void **state) {
    (void)state;
    config_t c;
    char err[512];
    assert_false(config_load("/nonexistent/deferd.ini", &c, err, sizeof err));
    assert_non_null(strstr(err, "cannot open the config file /nonexistent/deferd.ini"));
    char path[] = "/tmp/test_settings_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "[q]\ntarget = http\nurl = http://127.0.0.1:1/\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    assert_true(config_load(path, &c, err, sizeof err));
    assert_int_equal(c.nqueues, 1);
    config_free(&c);
    /* A NUL byte: not a text file. */
    assert_int_equal(write(fd, "\0", 1), 1);
    assert_false(config_load(path, &c, err, sizeof err));
    assert_non_null(strstr(err, "NUL"));
    close(fd);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),   cmocka_unit_test(test_each_name),
        cmocka_unit_test(test_check),       cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_errors), cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_config_file), cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
