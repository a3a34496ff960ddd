/* webhook.h - the "http" push target: runs an attempt by POSTing the task's
 * payload to a URL (see dispatch/target.h for the contract).
 *
 * Requests go through libcurl's multi interface driven by the server's
 * libuv loop - no thread per request, nothing blocks the loop. All webhook
 * targets of the process share one multi handle, so keep-alive connections
 * (and DNS answers and TLS sessions) are reused across targets that talk to
 * the same host. That shared state lives in this module, set up by
 * webhook_init() and torn down by webhook_shutdown(); there is one per
 * process, tied to one loop, used from the loop thread only.
 *
 * Lifecycle, in the order the server goes through it:
 *
 *   webhook_target_new(url)       per configured target (any time: it
 *                                 only checks and keeps the URL)
 *   webhook_init(loop)            once, after the loop exists
 *   ... webhook_target_ops.start / abort; done() comes from the loop ...
 *   abort what is in flight and let the loop deliver the done() calls
 *   webhook_target_ops.free(t)    per target, no attempt in flight
 *   webhook_shutdown()            closes the module's handles; the loop
 *                                 then ends once it has run their close
 *                                 callbacks
 *
 * An attempt succeeds on a 2xx answer. Anything else fails with a reason
 * such as "POST http://10.0.0.5/hook: connection refused" or
 * "POST https://app/jobs: answered 503: Service Unavailable ...". Redirects
 * are not followed (a 3xx fails and says where it pointed). The URL in a
 * reason never shows a user name, password or query string: those often
 * carry secrets, and reasons are shown through the API. */
#ifndef DEFER_WEBHOOK_H
#define DEFER_WEBHOOK_H

#include <stddef.h>
#include <uv.h>

#include "dispatch/target.h"

/* How long to wait for the TCP (and TLS) connection, unless a target says
 * otherwise. */
#define WEBHOOK_CONNECT_TIMEOUT_MS 10000L

/* Bytes of an answer's body kept for the failure reason (which shows about
 * 300: the rest lets the text of an HTML error page be found past its
 * head); what follows is read and dropped, so a huge answer costs no
 * memory. */
#define WEBHOOK_BODY_KEEP 4096

/* The shared state: the multi handle and its libuv handles on `loop`, and
 * libcurl's global setup. Returns 0, or -1 with a message in err (when
 * already initialised, or libcurl or libuv cannot be set up). */
int webhook_init(uv_loop_t *loop, char *err, size_t errlen);

/* Tears the shared state down. Attempts still in flight are stopped and
 * their done() called - from inside this call, with ok false and a reason
 * saying deferd is shutting down - so abort them first if you want them to
 * end the usual way. An attempt started from such a done() fails the same
 * way, also before this returns. The libuv handles are closed, not freed
 * at once: run the loop afterwards so their close callbacks run, and it
 * ends. Safe to call when not initialised, and twice; webhook_init() may
 * be called again after. */
void webhook_shutdown(void);

/* A target POSTing to `url`: http or https, with a host. A user and
 * password in the URL are sent as Basic authentication. Returns NULL with a
 * message in err (which never repeats the URL: it may hold a password) when
 * the URL is not usable or memory is short. Free it with
 * webhook_target_ops.free. */
push_target_t *webhook_target_new(const char *url, char *err, size_t errlen);

/* Send an extra header with every attempt: a "Name: value" line, as the
 * `header` setting gives it (an empty value is sent empty). A Content-Type
 * replaces the one deferd would send, and a User-Agent replaces "deferd";
 * headers that frame the exchange (Content-Length, Transfer-Encoding, Host,
 * Connection, Expect, Upgrade, TE, Trailer) and X-Defer-* are refused.
 * Values never appear in reasons. Returns 0, or -1 with a message in err. */
#define WEBHOOK_HEADERS_MAX 32
int webhook_target_add_header(push_target_t *t, const char *line, char *err, size_t errlen);

/* Limits for this target's attempts, in milliseconds: connect_ms for
 * setting up the connection (0 means WEBHOOK_CONNECT_TIMEOUT_MS), total_ms
 * for the whole attempt (0, the default, means none: the dispatcher aborts
 * at the task's deadline). Applies to attempts started afterwards. */
void webhook_target_set_timeouts(push_target_t *t, long connect_ms, long total_ms);

/* The URL as shown in reasons (no credentials or query). */
const char *webhook_target_display_url(const push_target_t *t);

/* name "http". start() copies nothing but the request's headers: the body
 * is sent from req->body, which the contract keeps valid until done().
 * start() while the module is not initialised (before webhook_init(), after
 * webhook_shutdown()) and freeing a target with attempts in flight are
 * programming errors that stop the process (defer_panic). */
extern const push_target_ops_t webhook_target_ops;

#endif
