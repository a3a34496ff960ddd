/* table.c - aligned output for people: tables with a header row, and
 * "field: value" lists.
 *
 * Rows are collected first so every column can be as wide as its widest
 * cell. Widths count characters (UTF-8 lead bytes), not bytes, so a key in
 * another script does not push its column out of line. Every cell is
 * cleaned of control characters: names, keys and error messages come from
 * whoever enqueued the task, and must not drive the terminal. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define COLUMN_GAP 2

char *cli_clean(const char *s, bool keep_newlines) {
    char *out = strdup(s ? s : "-");
    if (!out)
        return NULL;
    for (unsigned char *p = (unsigned char *)out; *p; p++)
        if ((*p < 0x20 && !(keep_newlines && *p == '\n')) || *p == 0x7f)
            *p = '?';
    return out;
}

/* Characters on screen of one line of s (up to a newline). */
static size_t width(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && *p != '\n'; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

static void pad(FILE *out, size_t n) {
    while (n--)
        fputc(' ', out);
}

void table_init(table_t *t, size_t ncols, const char *const *head, const char *align) {
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = head;
    t->align = align;
}

static bool add_row(table_t *t, const char *const *row, bool keep_newlines) {
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
        if (!cells)
            return false;
        t->cells = cells;
        t->cap = cap;
    }
    char **dst = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        dst[i] = cli_clean(row[i], keep_newlines);
        if (!dst[i]) {
            while (i--)
                free(dst[i]);
            return false;
        }
    }
    t->nrows++;
    return true;
}

bool table_add(table_t *t, const char *const *row) {
    return add_row(t, row, false);
}

static void print_row(const table_t *t, const size_t *w, const char *const *cells, FILE *out) {
    for (size_t i = 0; i < t->ncols; i++) {
        bool last = i + 1 == t->ncols;
        size_t gap = w[i] - width(cells[i]);
        if (t->align[i] == 'r')
            pad(out, gap);
        fputs(cells[i], out);
        if (!last)
            pad(out, (t->align[i] == 'r' ? 0 : gap) + COLUMN_GAP);
    }
    fputc('\n', out);
}

void table_print(const table_t *t, FILE *out) {
    size_t *w = calloc(t->ncols, sizeof *w);
    if (!w)
        return;
    for (size_t i = 0; i < t->ncols; i++) {
        if (t->head && width(t->head[i]) > w[i])
            w[i] = width(t->head[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = width(t->cells[r * t->ncols + i]);
            if (cw > w[i])
                w[i] = cw;
        }
    }
    if (t->head)
        print_row(t, w, t->head, out);
    for (size_t r = 0; r < t->nrows; r++)
        print_row(t, w, (const char *const *)(t->cells + r * t->ncols), out);
    free(w);
}

void table_free(table_t *t) {
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ---- field lists ---- */

void fields_init(fields_t *f) {
    table_init(&f->t, 2, NULL, "ll");
}

bool fields_add(fields_t *f, const char *name, const char *value) {
    const char *row[2] = {name, value};
    return add_row(&f->t, row, true);
}

bool fields_addf(fields_t *f, const char *name, const char *fmt, ...) {
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    bool ok = fields_add(f, name, s);
    free(s);
    return ok;
}

void fields_print(const fields_t *f, FILE *out) {
    size_t w = 0;
    for (size_t r = 0; r < f->t.nrows; r++)
        if (width(f->t.cells[r * 2]) > w)
            w = width(f->t.cells[r * 2]);
    for (size_t r = 0; r < f->t.nrows; r++) {
        const char *name = f->t.cells[r * 2], *value = f->t.cells[r * 2 + 1];
        fprintf(out, "%s:", name);
        pad(out, w - width(name) + 1);
        /* Continuation lines start under the value's first character. */
        for (const char *nl; (nl = strchr(value, '\n')); value = nl + 1) {
            fwrite(value, 1, (size_t)(nl - value), out);
            fputc('\n', out);
            pad(out, w + 2);
        }
        fprintf(out, "%s\n", value);
    }
}

void fields_free(fields_t *f) {
    table_free(&f->t);
}
