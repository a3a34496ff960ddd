/* test_json.c - the hand-written JSON and text helpers: locating a
 * payload's own text (util/json_scan.c), writing JSON strings and times
 * (util/json_out.c), base64 (util/base64.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"
#include "util/json_out.h"
#include "util/json_scan.h"

static void assert_span(json_span_t s, const char *want) {
    assert_non_null(s.p);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_scan_member(void **state) {
    (void)state;
    const char *doc = " { \"a\" : 1 , \"payload\" : {\"x\": [1, \"]}\", {\"y\": 0.1}]} ,\"z\":null } ";
    json_span_t s;
    assert_true(json_scan_member(doc, strlen(doc), "payload", &s));
    assert_span(s, "{\"x\": [1, \"]}\", {\"y\": 0.1}]}");
    assert_true(json_scan_member(doc, strlen(doc), "z", &s));
    assert_span(s, "null");
    assert_true(json_scan_member(doc, strlen(doc), "missing", &s));
    assert_null(s.p);
    /* Keys written with escapes still match. */
    const char *esc = "{\"pay\\u006coad\": 12345678901234567890123}";
    assert_true(json_scan_member(esc, strlen(esc), "payload", &s));
    assert_span(s, "12345678901234567890123");
    /* A string with escaped quotes and backslashes is one value. */
    const char *str = "{\"payload\": \"a\\\"b\\\\\"}";
    assert_true(json_scan_member(str, strlen(str), "payload", &s));
    assert_span(s, "\"a\\\"b\\\\\"");
    /* Not an object, or cut short: refused. */
    assert_false(json_scan_member("[1]", 3, "payload", &s));
    assert_false(json_scan_member("{\"payload\": [1,", 15, "payload", &s));
    assert_false(json_scan_member("", 0, "payload", &s));
}

static void test_scan_each(void **state) {
    (void)state;
    const char *doc = "{\"tasks\": [ {\"payload\": 1}, {\"priority\": 2, \"payload\": \"two\"},"
                      " {\"payload_base64\": \"AA==\"} ], \"other\": {}}";
    json_span_t s[3];
    assert_true(json_scan_each(doc, strlen(doc), "tasks", "payload", s, 3));
    assert_span(s[0], "1");
    assert_span(s[1], "\"two\"");
    assert_null(s[2].p);
    /* The count must match. */
    assert_false(json_scan_each(doc, strlen(doc), "tasks", "payload", s, 2));
    assert_false(json_scan_each(doc, strlen(doc), "nothing", "payload", s, 3));
}

static void test_compact(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *in = "{ \"a b\" : [ 1 ,\n\t2.50 ] , \"c\":\"x \\\" y\" }";
    assert_true(json_compact(&b, in, strlen(in)));
    const char *want = "{\"a b\":[1,2.50],\"c\":\"x \\\" y\"}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(buf_head(&b), want, b.len);
    buf_free(&b);
}

static void check_str(const char *in, size_t len, const char *want) {
    buf_t b;
    buf_init(&b);
    assert_true(json_out_str(&b, in, len));
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(buf_head(&b), want, b.len);
    buf_free(&b);
}

static void test_out_str(void **state) {
    (void)state;
    check_str("plain", 5, "\"plain\"");
    check_str("q\"b\\n\nt\t\x01", 9, "\"q\\\"b\\\\n\\nt\\t\\u0001\"");
    check_str("caf\xc3\xa9 \xe2\x82\xac", 9, "\"caf\xc3\xa9 \xe2\x82\xac\"");
    /* Invalid UTF-8 becomes U+FFFD: the output is always valid JSON. */
    check_str("a\xff" "b\xc3", 4, "\"a\\ufffdb\\ufffd\"");
    check_str("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
    check_str("", 0, "\"\"");
}

static void test_times(void **state) {
    (void)state;
    char t[48];
    json_format_time(t, sizeof t, INT64_C(1795357800) * 1000000000 + 123456789);
    assert_string_equal(t, "2026-11-22T14:30:00.123Z");
    int64_t ns;
    assert_true(json_parse_time("2026-11-22T14:30:00.123Z", 24, &ns));
    assert_int_equal(ns, INT64_C(1795357800123000000));
    assert_true(json_parse_time("2026-11-22T15:30:00+01:00", 25, &ns));
    assert_int_equal(ns, INT64_C(1795357800) * 1000000000);
    assert_true(json_parse_time("2026-11-22t14:30:00.5z", 22, &ns));
    assert_int_equal(ns, INT64_C(1795357800500000000));
    assert_false(json_parse_time("2026-11-22 14:30", 16, &ns));
    assert_false(json_parse_time("2026-13-22T14:30:00Z", 20, &ns));
    assert_false(json_parse_time("2026-11-22T14:30:00", 19, &ns));
    assert_false(json_parse_time("2026-11-22T14:30:00Zjunk", 24, &ns));
    assert_false(json_parse_time("2026-11-22T14:30:00.Z", 21, &ns));
}

static void test_base64(void **state) {
    (void)state;
    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b;
        buf_init(&b);
        assert_true(base64_encode(&b, cases[i][0], strlen(cases[i][0])));
        assert_int_equal(b.len, strlen(cases[i][1]));
        assert_memory_equal(buf_head(&b), cases[i][1], b.len);
        buf_t d;
        buf_init(&d);
        assert_true(base64_decode(&d, cases[i][1], strlen(cases[i][1])));
        assert_int_equal(d.len, strlen(cases[i][0]));
        assert_memory_equal(buf_head(&d), cases[i][0], d.len);
        buf_free(&b);
        buf_free(&d);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    buf_t b, d;
    buf_init(&b);
    buf_init(&d);
    assert_true(base64_encode(&b, all, sizeof all));
    assert_true(base64_decode(&d, buf_head(&b), b.len));
    assert_int_equal(d.len, sizeof all);
    assert_memory_equal(buf_head(&d), all, sizeof all);
    buf_free(&d);
    const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_init(&d);
        assert_false(base64_decode(&d, bad[i], strlen(bad[i])));
        buf_free(&d);
    }
    buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_member), cmocka_unit_test(test_scan_each),
        cmocka_unit_test(test_compact),     cmocka_unit_test(test_out_str),
        cmocka_unit_test(test_times),       cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
