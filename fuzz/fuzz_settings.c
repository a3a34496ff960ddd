/* fuzz_settings.c - libFuzzer harness for push settings: the JSON reader
 * (settings_from_json: PUT /v1/queues bodies and logged SETTINGS records)
 * and the config file reader (config_parse, through libinih).
 *
 * Input: the first byte picks the reader (even: JSON, odd: config file);
 * the rest is the text.
 *
 * Checks: an error comes with a message; accepted settings pass
 * settings_check; printed with settings_to_json they read back to settings
 * that print the same bytes (the log relies on that: what the API accepted
 * is what a restart reads), and so do they as the API shows them (with
 * credentials hidden); the backoff of any attempt number lies between
 * the minimum and the maximum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/config.h"
#include "dispatch/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_settings: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_settings(const push_settings_t *s) {
    char err[512];
    CHECK(settings_check(s, err, sizeof err));
    CHECK(s->concurrency >= 1 && s->concurrency <= SETTINGS_CONCURRENCY_MAX);
    CHECK(s->rate >= 0 && s->rate <= SETTINGS_RATE_MAX);
    CHECK(s->backoff_min_ns <= s->backoff_max_ns);
    uint32_t ns[] = {1, 2, 3, 31, 64, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        int64_t w = settings_backoff(s, ns[i], (double)i / 7.0);
        CHECK(w >= s->backoff_min_ns && w <= s->backoff_max_ns);
    }
    /* Printed and read back, the same settings print the same. */
    buf_t a, b;
    buf_init(&a);
    buf_init(&b);
    CHECK(settings_to_json(&a, s, false));
    push_settings_t back;
    if (!settings_from_json(&back, buf_head(&a), a.len, err, sizeof err)) {
        fprintf(stderr, "fuzz_settings: printed settings refused: %s\n%.*s\n", err, (int)a.len,
                buf_head(&a));
        abort();
    }
    CHECK(settings_to_json(&b, &back, false));
    CHECK(a.len == b.len && memcmp(buf_head(&a), buf_head(&b), a.len) == 0);
    settings_free(&back);
    /* What the API shows (credentials hidden) is valid settings too. */
    buf_reset(&b);
    CHECK(settings_to_json(&b, s, true));
    CHECK(settings_from_json(&back, buf_head(&b), b.len, err, sizeof err));
    settings_free(&back);
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[512] = "";
    if (data[0] % 2 == 0) {
        push_settings_t s;
        if (settings_from_json(&s, text, size - 1, err, sizeof err)) {
            check_settings(&s);
            settings_free(&s);
        } else {
            CHECK(err[0] != '\0');
        }
    } else {
        config_t c;
        if (config_parse(text, &c, err, sizeof err)) {
            for (uint32_t i = 0; i < c.nqueues; i++) {
                CHECK(c.queues[i].settings.kind != PUSH_NONE);
                check_settings(&c.queues[i].settings);
            }
            config_free(&c);
        } else {
            CHECK(err[0] != '\0' && c.nqueues == 0);
        }
    }
    free(text);
    return 0;
}
