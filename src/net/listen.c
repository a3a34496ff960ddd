/* listen.c - listening sockets: TCP (any address getaddrinfo resolves),
 * unix sockets ("unix:PATH", as beanstalkd's -l), and sockets inherited
 * from systemd's socket activation. */
#include "net/net_internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

static void on_connection(uv_stream_t *server, int status) {
    net_listener_t *l = server->data;
    if (status < 0)
        return; /* e.g. EMFILE: libuv retries on the next readiness */
    net_conn_accept(l);
}

static net_listener_t *listener_new(net_t *n, const net_proto_t *proto) {
    net_listener_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->net = n;
    l->proto = proto;
    l->h.handle.data = l;
    return l;
}

static void listener_free_cb(uv_handle_t *h) {
    net_listener_t *l = h->data;
    free(l->unix_path);
    free(l);
}

static int listener_start(net_listener_t *l, char *err, size_t errlen, const char *what) {
    int r = uv_listen(&l->h.stream, LISTEN_BACKLOG, on_connection);
    if (r) {
        snprintf(err, errlen, "cannot listen on %s: %s", what, uv_strerror(r));
        uv_close(&l->h.handle, listener_free_cb);
        return -1;
    }
    l->next = l->net->listeners;
    l->net->listeners = l;
    return 0;
}

/* True when something accepts connections on the unix socket at path. */
static bool unix_socket_live(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return live;
}

static int listen_unix(net_t *n, const char *path, const net_proto_t *proto, char *err,
                       size_t errlen) {
    /* A socket file nobody listens on is left from an earlier run: remove
     * it. Never remove a live socket or anything that is not a socket. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "cannot listen on unix:%s: the path exists and is not a socket",
                     path);
            return -1;
        }
        if (unix_socket_live(path)) {
            snprintf(err, errlen,
                     "cannot listen on unix:%s: another server is listening there", path);
            return -1;
        }
        unlink(path);
    }
    net_listener_t *l = listener_new(n, proto);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->is_pipe = true;
    uv_pipe_init(n->loop, &l->h.pipe, 0);
    int r = uv_pipe_bind(&l->h.pipe, path);
    if (r) {
        snprintf(err, errlen, "cannot listen on unix:%s: %s", path, uv_strerror(r));
        uv_close(&l->h.handle, listener_free_cb);
        return -1;
    }
    l->unix_path = strdup(path);
    char what[512];
    snprintf(what, sizeof what, "unix:%s", path);
    return listener_start(l, err, errlen, what);
}

int net_listen(net_t *n, const char *addr, const char *port, const net_proto_t *proto,
               char *err, size_t errlen) {
    if (strncmp(addr, "unix:", 5) == 0)
        return listen_unix(n, addr + 5, proto, err, errlen);

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(addr, port, &hints, &res);
    if (g) {
        snprintf(err, errlen, "cannot listen on %s:%s: %s", addr, port, gai_strerror(g));
        return -1;
    }
    int r = UV_EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        net_listener_t *l = listener_new(n, proto);
        if (!l) {
            r = UV_ENOMEM;
            break;
        }
        uv_tcp_init(n->loop, &l->h.tcp);
        r = uv_tcp_bind(&l->h.tcp, ai->ai_addr, 0);
        if (r == 0) {
            r = uv_listen(&l->h.stream, LISTEN_BACKLOG, on_connection);
            if (r == 0) {
                l->next = n->listeners;
                n->listeners = l;
                freeaddrinfo(res);
                return 0;
            }
        }
        uv_close(&l->h.handle, listener_free_cb);
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot listen on %s:%s: %s", addr, port, uv_strerror(r));
    return r < 0 ? r : -1;
}

int net_listen_fd(net_t *n, int fd, const net_proto_t *proto, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "inherited fd %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    net_listener_t *l = listener_new(n, proto);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int r;
    if (ss.ss_family == AF_UNIX) {
        l->is_pipe = true;
        uv_pipe_init(n->loop, &l->h.pipe, 0);
        r = uv_pipe_open(&l->h.pipe, fd);
    } else {
        uv_tcp_init(n->loop, &l->h.tcp);
        r = uv_tcp_open(&l->h.tcp, fd);
    }
    if (r) {
        snprintf(err, errlen, "cannot use inherited fd %d: %s", fd, uv_strerror(r));
        uv_close(&l->h.handle, listener_free_cb);
        return -1;
    }
    char what[32];
    snprintf(what, sizeof what, "inherited fd %d", fd);
    return listener_start(l, err, errlen, what);
}

static void listener_close_cb(uv_handle_t *h) {
    net_listener_t *l = h->data;
    if (l->unix_path)
        unlink(l->unix_path);
    listener_free_cb(h);
}

void net_stop_listening(net_t *n) {
    while (n->listeners) {
        net_listener_t *l = n->listeners;
        n->listeners = l->next;
        uv_close(&l->h.handle, listener_close_cb);
    }
}
