/* exec.c - the exec push target (see exec.h for what a command sees).
 *
 * One attempt owns five libuv handles: the process, the pipes to its
 * stdin, stdout and stderr, and the grace timer of an abort. They are all
 * closed once the process has exited, and the attempt reports and frees
 * itself from the last close callback. That one rule gives the guarantees
 * the dispatcher relies on: done() is called exactly once, never from
 * inside start() (close callbacks run on a later loop turn), only after
 * the process was reaped (libuv reaps it before the exit callback, and the
 * process handle is closed only after that), and nothing of the attempt is
 * left in the loop when it is freed.
 *
 * The pipes are made here (uv_pipe) rather than by uv_spawn, which would
 * give the child socketpairs: a real pipe is what programs expect, and
 * `cat /dev/stdin` or PHP's php://stdin then work as in a shell. */
#include "dispatch/exec.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "util/log.h"
#include "util/panic.h"

extern char **environ;

/* Reads land here; the loop is single-threaded, and one target's attempts
 * all run on its loop. */
#define EXEC_READ_CHUNK (64 * 1024)
/* At exit, at most this much is drained from each pipe: what the command
 * itself wrote is at most a pipe's capacity, and a background process
 * still writing must not keep us reading forever. */
#define EXEC_DRAIN_MAX (1024 * 1024)
/* One uv_write carries at most this much (its length is an unsigned). */
#define EXEC_WRITE_MAX ((size_t)1 << 30)

struct push_target {
    uv_loop_t *loop;
    char **argv;
    char *file;    /* what is executed: argv[0], or its PATH lookup */
    char *workdir; /* NULL: the server's */
    uint32_t kill_grace_ms;
    unsigned inflight; /* attempts started whose done() has not run */
    char chunk[EXEC_READ_CHUNK];
};

typedef struct exec_tail {
    char data[EXEC_TAIL_MAX];
    size_t len;
    uint64_t total;
} exec_tail_t;

struct push_attempt {
    push_target_t *t;
    push_done_fn done;
    void *ctx;
    uint64_t task_id;

    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t grace;
    unsigned open; /* handles initialised and not yet closed */
    bool proc_init; /* uv_spawn was called (it initialises the handle) */
    bool running;   /* spawned and not yet exited */

    const char *body; /* the payload, valid until done() */
    size_t body_len, body_off, writing;
    uv_write_t wreq;

    bool aborted;  /* abort() was called */
    bool signaled; /* ... while the process was running: SIGTERM was sent */
    bool killed;   /* ... and the grace ran out: SIGKILL was sent */
    int64_t exit_status;
    int term_signal;

    exec_tail_t tail_out, tail_err;
    char start_error[PUSH_REASON_MAX]; /* set when it could not start */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* errno in the words of our messages ("no such file", as a person would
 * say it, rather than strerror's "No such file or directory"). */
static const char *exec_errno_words(int e) {
    switch (e) {
    case ENOENT:
        return "no such file";
    case EACCES:
        return "permission denied";
    case ENOTDIR:
        return "a part of the path is not a directory";
    case ENOEXEC:
        return "not an executable format";
    case ENOMEM:
        return "out of memory";
    case EMFILE:
    case ENFILE:
        return "too many open files";
    case EAGAIN:
        return "too many processes";
    default:
        return strerror(e);
    }
}

static bool exec_is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ------------------------------------------------------------------ */
/* Splitting the command line                                          */

void exec_argv_free(char **argv) {
    free(argv); /* the words live in the same block */
}

/* The words and the pointers to them go in one block: words never take
 * more bytes than the command plus one NUL each, and there are at most
 * len/2 + 1 of them, so the block's size is known before parsing. */
int exec_split_command(const char *cmd, char ***argv_out, char *err, size_t errlen) {
    *argv_out = NULL;
    if (!cmd)
        cmd = "";
    size_t len = strlen(cmd);
    size_t maxwords = len / 2 + 2;
    if (len > SIZE_MAX / 4 - maxwords * sizeof(char *)) {
        errmsg(err, errlen, "command too long");
        return -1;
    }
    char **argv = malloc(maxwords * sizeof(char *) + 2 * len + 2);
    if (!argv) {
        errmsg(err, errlen, "out of memory splitting the command");
        return -1;
    }
    char *w = (char *)(argv + maxwords);
    int n = 0;
    size_t i = 0;
    for (;;) {
        while (exec_is_space(cmd[i]))
            i++;
        if (!cmd[i])
            break;
        argv[n++] = w;
        while (cmd[i] && !exec_is_space(cmd[i])) {
            char q = cmd[i];
            if (q != '\'' && q != '"') {
                *w++ = cmd[i++];
                continue;
            }
            size_t open_at = i++;
            while (cmd[i] != q) {
                if (!cmd[i]) {
                    errmsg(err, errlen, "unterminated %s quote in the command at column %zu",
                              q == '"' ? "double" : "single", open_at + 1);
                    free(argv);
                    return -1;
                }
                if (q == '"' && cmd[i] == '\\' && (cmd[i + 1] == '"' || cmd[i + 1] == '\\'))
                    i++;
                *w++ = cmd[i++];
            }
            i++; /* the closing quote */
        }
        *w++ = '\0';
    }
    argv[n] = NULL;
    if (n == 0) {
        errmsg(err, errlen, "empty command");
        free(argv);
        return -1;
    }
    *argv_out = argv;
    return n;
}

/* ------------------------------------------------------------------ */
/* Finding the program                                                 */

/* Whether path is a file we may execute; why not in why. */
static bool exec_check_file(const char *path, const char **why) {
    struct stat st;
    if (stat(path, &st) != 0) {
        *why = exec_errno_words(errno);
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        *why = "is a directory";
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return false;
    }
    if (access(path, X_OK) != 0) {
        *why = errno == EACCES ? "not executable" : exec_errno_words(errno);
        return false;
    }
    return true;
}

/* Why dir cannot be a working directory, or NULL when it can. */
static const char *exec_dir_problem(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return exec_errno_words(errno);
    return S_ISDIR(st.st_mode) ? NULL : "not a directory";
}

static char *exec_join(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

/* The file to execute for `prog`, or NULL with why in err. A name with a
 * '/' is checked where the child will look for it (its cwd is workdir);
 * it is executed as written. A bare name is looked up on PATH now, as
 * execvp would, and the absolute path found is what runs: failures then
 * name the real file, and the lookup does not depend on workdir. */
static char *exec_resolve(const char *prog, const char *workdir, char *err, size_t errlen) {
    const char *why;
    if (strchr(prog, '/')) {
        char *where = prog[0] != '/' && workdir ? exec_join(workdir, prog) : strdup(prog);
        if (!where) {
            errmsg(err, errlen, "out of memory");
            return NULL;
        }
        bool ok = exec_check_file(where, &why);
        if (!ok)
            errmsg(err, errlen, "program %s: %s", where, why);
        free(where);
        return ok ? strdup(prog) : NULL;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    for (;;) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char dir[PATH_MAX];
        if (dl < sizeof dir) {
            memcpy(dir, p, dl);
            dir[dl] = '\0';
            char *cand = exec_join(dl ? dir : ".", prog);
            if (!cand) {
                errmsg(err, errlen, "out of memory");
                return NULL;
            }
            if (exec_check_file(cand, &why)) {
                if (cand[0] == '/')
                    return cand;
                char *abs = realpath(cand, NULL); /* a relative PATH entry */
                free(cand);
                if (abs)
                    return abs;
            } else {
                free(cand);
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
    errmsg(err, errlen, "program %s: not found on PATH (%s)", prog, path);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The target                                                          */

static void exec_target_free(push_target_t *t) {
    if (!t)
        return;
    if (t->inflight)
        defer_panic("exec target freed with attempts in flight");
    exec_argv_free(t->argv);
    free(t->file);
    free(t->workdir);
    free(t);
}

push_target_t *exec_target_new(uv_loop_t *loop, const char *command, const char *workdir,
                               uint32_t kill_grace_ms, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    char **argv;
    if (exec_split_command(command, &argv, err, errlen) < 0)
        return NULL;
    const char *why = workdir ? exec_dir_problem(workdir) : NULL;
    if (why) {
        errmsg(err, errlen, "working directory %s: %s", workdir, why);
        exec_argv_free(argv);
        return NULL;
    }
    char *file = exec_resolve(argv[0], workdir, err, errlen);
    if (!file) {
        exec_argv_free(argv);
        return NULL;
    }
    push_target_t *t = calloc(1, sizeof *t);
    char *wd = workdir ? strdup(workdir) : NULL;
    if (!t || (workdir && !wd)) {
        errmsg(err, errlen, "out of memory");
        free(t);
        free(wd);
        free(file);
        exec_argv_free(argv);
        return NULL;
    }
    t->loop = loop;
    t->argv = argv;
    t->file = file;
    t->workdir = wd;
    t->kill_grace_ms = kill_grace_ms;
    return t;
}

/* ------------------------------------------------------------------ */
/* Output tails                                                        */

/* Keep the last EXEC_TAIL_MAX bytes: the end of a program's output is
 * where its error usually is. */
static void exec_tail_add(exec_tail_t *tl, const char *p, size_t n) {
    tl->total += n;
    if (n >= EXEC_TAIL_MAX) {
        memcpy(tl->data, p + n - EXEC_TAIL_MAX, EXEC_TAIL_MAX);
        tl->len = EXEC_TAIL_MAX;
        return;
    }
    if (tl->len + n > EXEC_TAIL_MAX) {
        size_t keep = EXEC_TAIL_MAX - n;
        memmove(tl->data, tl->data + tl->len - keep, keep);
        tl->len = keep;
    }
    memcpy(tl->data + tl->len, p, n);
    tl->len += n;
}

void exec_attempt_output(const push_attempt_t *a, exec_output_t *o) {
    o->out = a->tail_out.data;
    o->out_len = a->tail_out.len;
    o->out_total = a->tail_out.total;
    o->err = a->tail_err.data;
    o->err_len = a->tail_err.len;
    o->err_total = a->tail_err.total;
}

/* Append "; <label>: <tail>" to the reason, as much of the tail's end as
 * fits, on one line: a tail ending in a newline loses it, other control
 * characters become a space (\t \r \n) or '?'. A cut shows as "...", and
 * never starts inside a UTF-8 sequence. */
static bool exec_reason_tail(char *reason, const char *label, const exec_tail_t *tl) {
    size_t n = tl->len;
    while (n && exec_is_space(tl->data[n - 1]))
        n--;
    if (!n)
        return false;
    size_t used = strlen(reason);
    int w = snprintf(reason + used, PUSH_REASON_MAX - used, "; %s: ", label);
    if (w < 0 || used + (size_t)w + 4 >= PUSH_REASON_MAX) {
        reason[used] = '\0';
        return false;
    }
    used += (size_t)w;
    size_t room = PUSH_REASON_MAX - 1 - used;
    size_t from = 0;
    bool cut = tl->total > tl->len || n > room;
    if (cut) {
        room -= 3;
        memcpy(reason + used, "...", 3);
        used += 3;
        from = n > room ? n - room : 0;
        while (from < n && ((unsigned char)tl->data[from] & 0xc0) == 0x80)
            from++;
    }
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)tl->data[i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        else if (c < 0x20 || c == 0x7f)
            c = '?';
        reason[used++] = (char)c;
    }
    reason[used] = '\0';
    return true;
}

/* ------------------------------------------------------------------ */
/* The end of an attempt                                               */

/* The outcome in the dispatcher's terms. After an abort the reason says
 * how the process really ended, not which signals were sent: under load
 * the grace timer can fire before the loop has seen an exit that SIGTERM
 * already caused. An abort that found the process already gone changes
 * nothing: the command did finish, and saying it failed would have a
 * finished task run again. */
static void exec_result(const push_attempt_t *a, push_result_t *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (a->start_error[0]) {
        memcpy(r->reason, a->start_error, sizeof r->reason);
        return;
    }
    if (!a->term_signal)
        r->status = (int)a->exit_status;
    if (a->signaled) {
        if (a->killed && a->term_signal == SIGKILL)
            snprintf(r->reason, sizeof r->reason,
                     "killed after not stopping within %u ms of SIGTERM", a->t->kill_grace_ms);
        else if (a->term_signal == SIGTERM)
            snprintf(r->reason, sizeof r->reason, "terminated by SIGTERM");
        else if (a->term_signal)
            snprintf(r->reason, sizeof r->reason, "stopped after SIGTERM, killed by signal %d",
                     a->term_signal);
        else
            snprintf(r->reason, sizeof r->reason, "stopped after SIGTERM with exit status %d",
                     (int)a->exit_status);
    } else if (a->term_signal) {
        snprintf(r->reason, sizeof r->reason, "killed by signal %d", a->term_signal);
    } else if (a->exit_status != 0) {
        snprintf(r->reason, sizeof r->reason, "exit status %d", (int)a->exit_status);
    } else {
        r->ok = true;
        return;
    }
    if (!exec_reason_tail(r->reason, "stderr", &a->tail_err))
        exec_reason_tail(r->reason, "stdout", &a->tail_out);
}

/* The last handle closed: the process is reaped and nothing of the
 * attempt is left in the loop. The target may be freed from inside done()
 * (it no longer counts this attempt); the attempt is freed after. */
static void exec_on_close(uv_handle_t *h) {
    push_attempt_t *a = h->data;
    if (--a->open)
        return;
    push_result_t r;
    exec_result(a, &r);
    a->t->inflight--;
    a->done(a->ctx, &r);
    free(a);
}

static void exec_close(uv_handle_t *h) {
    if (!uv_is_closing(h))
        uv_close(h, exec_on_close);
}

static void exec_close_all(push_attempt_t *a) {
    if (a->proc_init)
        exec_close((uv_handle_t *)&a->proc);
    exec_close((uv_handle_t *)&a->in);
    exec_close((uv_handle_t *)&a->out);
    exec_close((uv_handle_t *)&a->err);
    exec_close((uv_handle_t *)&a->grace);
}

/* Read what is left in a pipe without waiting: those bytes, the command's
 * last words, are often its error message. libuv runs exit callbacks after
 * the other events of one poll, but a poll returns at most 1024 events, so
 * on a busy server the pipe's last bytes can come a batch after the exit. */
static void exec_drain(push_attempt_t *a, uv_pipe_t *p, exec_tail_t *tl) {
    uv_os_fd_t fd;
    if (uv_is_closing((uv_handle_t *)p) || uv_fileno((uv_handle_t *)p, &fd) != 0)
        return;
    size_t got = 0;
    while (got < EXEC_DRAIN_MAX) {
        ssize_t n = read(fd, a->t->chunk, sizeof a->t->chunk);
        if (n > 0) {
            exec_tail_add(tl, a->t->chunk, (size_t)n);
            got += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break; /* EOF, or nothing more now (EAGAIN) */
        }
    }
}

/* The process exited (libuv has reaped it). After an abort, whatever is
 * left of its group is killed now: a child that ignored SIGTERM must not
 * outlive the attempt, and the group's id cannot have been reused while a
 * member remains. Then everything closes, whatever is still pending: a
 * background process holding the pipes open does not delay the result. */
static void exec_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal) {
    push_attempt_t *a = proc->data;
    a->running = false;
    a->exit_status = exit_status;
    a->term_signal = term_signal;
    if (a->signaled)
        kill(-proc->pid, SIGKILL);
    exec_drain(a, &a->out, &a->tail_out);
    exec_drain(a, &a->err, &a->tail_err);
    log_debug("exec: task %llu: pid %d ended (status %lld, signal %d)",
              (unsigned long long)a->task_id, proc->pid, (long long)exit_status, term_signal);
    exec_close_all(a);
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

static void exec_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    push_attempt_t *a = h->data;
    (void)suggested;
    *b = uv_buf_init(a->t->chunk, sizeof a->t->chunk);
}

static void exec_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    push_attempt_t *a = s->data;
    if (nread > 0)
        exec_tail_add(s == (uv_stream_t *)&a->out ? &a->tail_out : &a->tail_err, b->base,
                      (size_t)nread);
    else if (nread < 0)
        exec_close((uv_handle_t *)s); /* EOF: nothing more will come */
}

static void exec_write_next(push_attempt_t *a);

/* A failed write is no failure of the attempt: a command may exit without
 * reading its input (EPIPE), and its exit status says how it went. */
static void exec_on_written(uv_write_t *req, int status) {
    push_attempt_t *a = req->data;
    if (status < 0) {
        exec_close((uv_handle_t *)&a->in);
        return;
    }
    a->body_off += a->writing;
    exec_write_next(a);
}

/* The payload goes out in writes libuv queues, never blocking the loop;
 * stdin is closed after the last, so the command sees its end. */
static void exec_write_next(push_attempt_t *a) {
    if (uv_is_closing((uv_handle_t *)&a->in))
        return;
    size_t left = a->body_len - a->body_off;
    if (!left) {
        exec_close((uv_handle_t *)&a->in);
        return;
    }
    a->writing = left < EXEC_WRITE_MAX ? left : EXEC_WRITE_MAX;
    uv_buf_t b = uv_buf_init((char *)a->body + a->body_off, (unsigned)a->writing);
    a->wreq.data = a;
    if (uv_write(&a->wreq, (uv_stream_t *)&a->in, &b, 1, exec_on_written) != 0)
        exec_close((uv_handle_t *)&a->in);
}

/* The server's environment less our four names, then ours: one block,
 * needed only while uv_spawn copies it into the child. */
static char **exec_build_env(const push_request_t *req) {
    static const char *const ours[] = {"DEFER_TASK_ID=", "DEFER_QUEUE=", "DEFER_ATTEMPT=",
                                       "DEFER_PAYLOAD_TYPE="};
    const char *queue = req->queue ? req->queue : "";
    size_t n = 0;
    while (environ && environ[n])
        n++;
    size_t text = 128 + strlen(queue);
    char **env = malloc((n + 5) * sizeof *env + text);
    if (!env)
        return NULL;
    char *s = (char *)(env + n + 5), *end = s + text;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        for (size_t j = 0; j < sizeof ours / sizeof *ours && !skip; j++)
            skip = strncmp(environ[i], ours[j], strlen(ours[j])) == 0;
        if (!skip)
            env[k++] = environ[i];
    }
    env[k++] = s;
    s += snprintf(s, (size_t)(end - s), "DEFER_TASK_ID=%llu", (unsigned long long)req->task_id) + 1;
    env[k++] = s;
    s += snprintf(s, (size_t)(end - s), "DEFER_QUEUE=%s", queue) + 1;
    env[k++] = s;
    s += snprintf(s, (size_t)(end - s), "DEFER_ATTEMPT=%u", (unsigned)req->attempt) + 1;
    env[k++] = s;
    snprintf(s, (size_t)(end - s), "DEFER_PAYLOAD_TYPE=%s", req->body_is_json ? "json" : "bytes");
    env[k] = NULL;
    return env;
}

/* Why uv_spawn failed, for the reason. libuv reports a failed chdir and a
 * failed exec alike, so a missing working directory is told apart here. */
static void exec_start_failed(push_attempt_t *a, int uverr) {
    push_target_t *t = a->t;
    int e = -uverr;
    const char *why = t->workdir ? exec_dir_problem(t->workdir) : NULL;
    if (why)
        snprintf(a->start_error, sizeof a->start_error, "cannot start %s: working directory %s: %s",
                 t->file, t->workdir, why);
    else
        snprintf(a->start_error, sizeof a->start_error, "cannot start %s: %s", t->file,
                 e > 0 ? exec_errno_words(e) : uv_strerror(uverr));
}

/* Make a pipe for the child's stdio slot: the child's end goes in
 * *child_fd, ours is opened on p. */
static int exec_pipe(uv_pipe_t *p, bool child_reads, int *child_fd) {
    uv_file fds[2];
    int r = uv_pipe(fds, 0, 0);
    if (r)
        return r;
    int mine = child_reads ? fds[1] : fds[0];
    *child_fd = child_reads ? fds[0] : fds[1];
    r = uv_pipe_open(p, mine);
    if (r)
        close(mine);
    return r;
}

/* The attempt is allocated first and every later failure goes through its
 * handles' close callbacks, which is what defers done() to the next loop
 * turn. A failed allocation of the attempt itself would leave no way to
 * report anything: memory is then exhausted, and the server stops. */
static push_attempt_t *exec_start(push_target_t *t, const push_request_t *req, push_done_fn done,
                                  void *ctx) {
    push_attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        defer_panic("out of memory starting a command");
    a->t = t;
    a->done = done;
    a->ctx = ctx;
    a->task_id = req->task_id;
    a->body = req->body;
    a->body_len = req->body ? req->body_len : 0;
    t->inflight++;

    uv_pipe_init(t->loop, &a->in, 0);
    uv_pipe_init(t->loop, &a->out, 0);
    uv_pipe_init(t->loop, &a->err, 0);
    uv_timer_init(t->loop, &a->grace);
    a->in.data = a->out.data = a->err.data = a->grace.data = a->proc.data = a;
    a->open = 4;

    int child[3] = {-1, -1, -1};
    int r = exec_pipe(&a->in, true, &child[0]);
    if (!r)
        r = exec_pipe(&a->out, false, &child[1]);
    if (!r)
        r = exec_pipe(&a->err, false, &child[2]);
    char **env = NULL;
    if (!r && !(env = exec_build_env(req)))
        r = UV_ENOMEM;
    if (!r) {
        uv_stdio_container_t stdio[3];
        for (int i = 0; i < 3; i++) {
            stdio[i].flags = UV_INHERIT_FD;
            stdio[i].data.fd = child[i];
        }
        uv_process_options_t opt = {
            .exit_cb = exec_on_exit,
            .file = t->file,
            .args = t->argv,
            .env = env,
            .cwd = t->workdir,
            /* setsid(): its own session and process group */
            .flags = UV_PROCESS_DETACHED,
            .stdio_count = 3,
            .stdio = stdio,
        };
        a->proc_init = true;
        a->open++;
        r = uv_spawn(t->loop, &a->proc, &opt);
        a->proc.data = a;
    }
    free(env);
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0)
            close(child[i]);
    if (r) {
        exec_start_failed(a, r);
        log_debug("exec: task %llu: %s", (unsigned long long)req->task_id, a->start_error);
        exec_close_all(a);
        return NULL;
    }
    a->running = true;
    log_debug("exec: task %llu attempt %u: %s started as pid %d", (unsigned long long)req->task_id,
              (unsigned)req->attempt, t->file, a->proc.pid);
    uv_read_start((uv_stream_t *)&a->out, exec_on_alloc, exec_on_read);
    uv_read_start((uv_stream_t *)&a->err, exec_on_alloc, exec_on_read);
    exec_write_next(a);
    return a;
}

static void exec_on_grace(uv_timer_t *h) {
    push_attempt_t *a = h->data;
    if (!a->running)
        return;
    a->killed = true;
    if (kill(-a->proc.pid, SIGKILL) != 0)
        uv_process_kill(&a->proc, SIGKILL);
}

/* SIGTERM to the whole group (SIGCONT too, so a stopped process sees it),
 * SIGKILL after the grace. done() follows from the exit. A second abort,
 * or one after the process exited by itself, does nothing. */
static void exec_abort(push_attempt_t *a) {
    if (a->aborted)
        return;
    a->aborted = true;
    if (!a->running)
        return;
    a->signaled = true;
    pid_t pid = a->proc.pid;
    if (kill(-pid, SIGTERM) != 0)
        uv_process_kill(&a->proc, SIGTERM);
    kill(-pid, SIGCONT);
    uv_timer_start(&a->grace, exec_on_grace, a->t->kill_grace_ms, 0);
}

const push_target_ops_t exec_target_ops = {
    .name = "exec",
    .start = exec_start,
    .abort = exec_abort,
    .free = exec_target_free,
};
