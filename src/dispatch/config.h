/* config.h - the --config file: push settings per queue.
 *
 * An INI file, one section per queue:
 *
 *     [mail]
 *     target = fastcgi
 *     address = unix:/run/php/php8.2-fpm.sock
 *     script = /srv/app/push/send-mail.php
 *     concurrency = 8
 *     rate = 10/s
 *
 * libinih reads the file (see docs/design.md for why INI and why inih);
 * settings_set understands the names. Queues set here are fixed while the
 * server runs: the API may not change them. config_parse is pure. */
#ifndef DEFER_CONFIG_H
#define DEFER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch/settings.h"

/* A config file larger than this is refused (it is not a data file). */
#define CONFIG_FILE_MAX (1u << 20)

typedef struct config_queue {
    char *name;
    push_settings_t settings;
} config_queue_t;

typedef struct config {
    config_queue_t *queues;
    uint32_t nqueues;
} config_t;

/* Parse the text of a config file. On failure returns false with err
 * filled ("line 7: concurrency: ...") and *out empty. */
bool config_parse(const char *text, config_t *out, char *err, size_t errlen);
/* Read and parse the file at path. */
bool config_load(const char *path, config_t *out, char *err, size_t errlen);
void config_free(config_t *c);
const config_queue_t *config_find(const config_t *c, const char *name, size_t len);

#endif
