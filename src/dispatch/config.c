/* config.c - reading the --config file with libinih. */
#include "dispatch/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"

typedef struct parse_state {
    config_t *c;
    config_queue_t *cur; /* the section being read */
    char err[512];       /* the first error */
} parse_state_t;

static config_queue_t *queue_add(config_t *c, const char *name) {
    config_queue_t *q = realloc(c->queues, (c->nqueues + 1) * sizeof *q);
    if (!q)
        return NULL;
    c->queues = q;
    q = &c->queues[c->nqueues];
    if (!(q->name = strdup(name)))
        return NULL;
    settings_init(&q->settings);
    c->nqueues++;
    return q;
}

/* Called by inih for each name = value; returning 0 marks the line as an
 * error (inih reports the first such line; we keep its message). */
static int on_pair(void *user, const char *section, const char *name, const char *value) {
    parse_state_t *ps = user;
    char msg[400];
    if (ps->err[0])
        return 0; /* only the first error matters */
    if (!section[0]) {
        snprintf(ps->err, sizeof ps->err, "%s: settings must come under a [queue] heading", name);
        return 0;
    }
    if (!ps->cur || strcmp(ps->cur->name, section) != 0) {
        size_t len = strlen(section);
        if (!engine_tube_name_valid(section, len)) {
            snprintf(ps->err, sizeof ps->err, "[%.64s]: not a valid queue name (1-200 of "
                     "A-Z a-z 0-9 - + / ; . $ _ ( ), not starting with -)", section);
            return 0;
        }
        if (config_find(ps->c, section, len)) {
            snprintf(ps->err, sizeof ps->err, "[%.64s] appears twice; put its settings under one "
                     "heading", section);
            return 0;
        }
        if (!(ps->cur = queue_add(ps->c, section))) {
            snprintf(ps->err, sizeof ps->err, "out of memory");
            return 0;
        }
    }
    if (!settings_set(&ps->cur->settings, name, value, msg, sizeof msg)) {
        snprintf(ps->err, sizeof ps->err, "[%.64s] %s", section, msg);
        return 0;
    }
    return 1;
}

bool config_parse(const char *text, config_t *out, char *err, size_t errlen) {
    /* Long lines (URLs, commands) are fine; ';' inside a value is data. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = (int)CONFIG_FILE_MAX;
    ini_allow_inline_comments = false;
    memset(out, 0, sizeof *out);
    parse_state_t ps = {.c = out};
    int line = ini_parse_string(text, on_pair, &ps);
    if (line != 0) {
        if (line < 0)
            snprintf(err, errlen, "out of memory");
        else if (ps.err[0])
            snprintf(err, errlen, "line %d: %s", line, ps.err);
        else
            snprintf(err, errlen, "line %d: not a [queue] heading, a name = value line or a "
                     "comment", line);
        config_free(out);
        return false;
    }
    for (uint32_t i = 0; i < out->nqueues; i++) {
        const config_queue_t *q = &out->queues[i];
        char msg[512];
        bool ok = q->settings.kind != PUSH_NONE ||
                  (snprintf(msg, sizeof msg, "target is missing; use fastcgi, http or exec"), false);
        if (!ok || !settings_check(&q->settings, msg, sizeof msg)) {
            snprintf(err, errlen, "[%s] %s", q->name, msg);
            config_free(out);
            return false;
        }
    }
    return true;
}

bool config_load(const char *path, config_t *out, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open the config file %s: %s", path, strerror(errno));
        return false;
    }
    char *text = malloc(CONFIG_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, CONFIG_FILE_MAX + 1, f) : 0;
    bool ok = false;
    if (!text)
        snprintf(err, errlen, "out of memory");
    else if (ferror(f))
        snprintf(err, errlen, "cannot read the config file %s: %s", path, strerror(errno));
    else if (n > CONFIG_FILE_MAX)
        snprintf(err, errlen, "the config file %s is larger than %u bytes", path, CONFIG_FILE_MAX);
    else if (memchr(text, '\0', n))
        snprintf(err, errlen, "the config file %s holds a NUL byte: is it a text file?", path);
    else {
        text[n] = '\0';
        char msg[600];
        ok = config_parse(text, out, msg, sizeof msg);
        if (!ok)
            snprintf(err, errlen, "%s: %s", path, msg);
    }
    free(text);
    fclose(f);
    return ok;
}

void config_free(config_t *c) {
    for (uint32_t i = 0; i < c->nqueues; i++) {
        free(c->queues[i].name);
        settings_free(&c->queues[i].settings);
    }
    free(c->queues);
    c->queues = NULL;
    c->nqueues = 0;
}

const config_queue_t *config_find(const config_t *c, const char *name, size_t len) {
    for (uint32_t i = 0; i < c->nqueues; i++)
        if (strlen(c->queues[i].name) == len && memcmp(c->queues[i].name, name, len) == 0)
            return &c->queues[i];
    return NULL;
}
