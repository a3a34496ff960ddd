/* bs_stats.h - the YAML bodies of beanstalk's stats and list replies.
 *
 * Field names, order and number formats are beanstalkd 1.12's, since
 * monitoring tools parse them. Each function appends to y and returns false
 * when memory ran out. */
#ifndef DEFER_BS_STATS_H
#define DEFER_BS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/engine.h"
#include "proto/bs_conn.h"
#include "util/buf.h"

bool bs_format_stats(const bs_server_t *srv, buf_t *y, int64_t now);
bool bs_format_job_stats(const engine_t *e, const job_t *j, buf_t *y, int64_t now);
bool bs_format_tube_stats(const tube_t *t, buf_t *y, int64_t now);
bool bs_format_tube_list(const engine_t *e, buf_t *y);
bool bs_format_watch_list(const session_t *s, buf_t *y);

#endif
