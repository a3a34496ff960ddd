/* bs_replies.h - validation of beanstalk replies, for the harnesses that
 * drive a bs_conn (fuzz_bs_conn, fuzz_http_conn). */
#ifndef FUZZ_BS_REPLIES_H
#define FUZZ_BS_REPLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/* p[0..n) must be a sequence of whole, well-formed replies: they are
 * appended whole, so between two calls into the protocol no reply is ever
 * cut. Job ids must be below e->next_id, job bodies at most max_body
 * bytes. Memory never runs out in a harness, so OUT_OF_MEMORY is a bug
 * too, unless log_full: the log lacks room (beanstalkd's answer then).
 * Aborts with a message naming who and where (context may be NULL) when a
 * reply is wrong. */
void bs_check_replies(const char *who, const char *context, const engine_t *e, uint64_t max_body,
                      bool log_full, const char *p, size_t n);

#endif
