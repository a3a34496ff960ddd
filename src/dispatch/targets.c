/* targets.c - from settings to a target: the one place that knows every
 * target module. */
#include "dispatch/targets.h"

#include <stdio.h>

#include "dispatch/exec.h"
#include "dispatch/fcgi.h"
#include "dispatch/webhook.h"

/* How long an aborted command gets between SIGTERM and SIGKILL. */
#define TARGETS_KILL_GRACE_MS 5000u

/* The http targets' shared libcurl state is set up with the first one. */
static bool webhook_up;

bool targets_open(uv_loop_t *loop, const push_settings_t *s, push_target_ref_t *out, char *err,
                  size_t errlen) {
    switch (s->kind) {
    case PUSH_FASTCGI:
        out->ops = &fcgi_target_ops;
        out->target = fcgi_target_new(loop, s->address, s->script, err, errlen);
        break;
    case PUSH_HTTP:
        out->ops = &webhook_target_ops;
        out->target = NULL;
        if (!webhook_up && webhook_init(loop, err, errlen) != 0)
            break;
        webhook_up = true;
        out->target = webhook_target_new(s->url, err, errlen);
        for (uint32_t i = 0; out->target && i < s->nheaders; i++)
            if (webhook_target_add_header(out->target, s->headers[i], err, errlen) != 0) {
                webhook_target_ops.free(out->target);
                out->target = NULL;
            }
        break;
    case PUSH_EXEC:
        out->ops = &exec_target_ops;
        out->target = exec_target_new(loop, s->command, s->workdir, TARGETS_KILL_GRACE_MS, err,
                                      errlen);
        break;
    default:
        snprintf(err, errlen, "no target");
        out->target = NULL;
        break;
    }
    return out->target != NULL;
}

void targets_shutdown(void) {
    if (webhook_up)
        webhook_shutdown();
    webhook_up = false;
}
