/* targets.h - opening the target that a queue's settings name. */
#ifndef DEFER_TARGETS_H
#define DEFER_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "dispatch/settings.h"
#include "dispatch/target.h"

/* Set up the target of s (checked settings) on loop. False with err filled
 * when it cannot be (a command that cannot be split into words, ...). */
bool targets_open(uv_loop_t *loop, const push_settings_t *s, push_target_ref_t *out, char *err,
                  size_t errlen);
/* Close what targets share (the http target's libcurl state) once every
 * target is freed; the loop then runs the handles' close callbacks. */
void targets_shutdown(void);

#endif
