/* wal_writer.c - the log's writer thread.
 *
 * The only code that writes to the data directory once the server runs.
 * It takes operations from a FIFO queue filled by the loop thread - append
 * a batch, write a snapshot chunk, commit a snapshot - and reports back
 * through atomics and a uv_async. The loop never waits for it.
 *
 * A failed write or fdatasync of the log stops the process: the engine has
 * already applied the batch's changes, nobody has been told they are done,
 * and a restart rebuilds the engine from what is really on disk. (A full
 * disk does not get that far: space is preallocated, and the loop stops
 * accepting changes before the preallocated space runs out.) */
#include "store/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/panic.h"

static void writer_fatal(const char *what, const char *path) {
    char msg[512];
    snprintf(msg, sizeof msg,
             "%s %s: %s - stopping so that no change is acknowledged that is not on disk; "
             "restart deferd once the disk is healthy",
             what, path, strerror(errno));
    defer_panic(msg);
}

wop_t *wal_op_new(wop_kind_t kind) {
    wop_t *op = calloc(1, sizeof *op);
    if (!op)
        defer_panic("out of memory queueing a log write");
    op->kind = kind;
    buf_init(&op->data);
    return op;
}

static void op_free(wop_t *op) {
    buf_free(&op->data);
    free(op);
}

static bool write_all(int fd, const void *p, size_t n, uint64_t off) {
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

/* Reserve [off, off+len) of fd on disk, written with zeros and synced.
 *
 * fallocate alone is not enough: it leaves "unwritten" extents, and the
 * first fdatasync after a batch lands in one must also commit the extent's
 * conversion to the file system's journal - on ext4 that made every group
 * commit's sync about 1.5x slower (250 us against 150 us here). Zeros
 * written now, and synced now, once per WAL_PREALLOC, leave the batches'
 * syncs only their data to flush. fallocate first still gets a full disk
 * refused at once, before anything is written. */
static bool prealloc(int fd, uint64_t off, uint64_t len) {
    int r;
    do {
        r = fallocate(fd, 0, (off_t)off, (off_t)len);
    } while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EOPNOTSUPP)
        return false;
    static const char zeros[64 * 1024];
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < sizeof zeros ? (size_t)(len - done) : sizeof zeros;
        if (!write_all(fd, zeros, n, off + done))
            return false;
        done += n;
    }
    return fdatasync(fd) == 0;
}

static void publish_room(wal_writer_t *wr) {
    uint64_t room = wr->fd >= 0 && wr->allocated > wr->off ? wr->allocated - wr->off : 0;
    atomic_store(&wr->room, room);
}

/* Total bytes the directory's files use on disk. */
static void count_disk(wal_writer_t *wr) {
    DIR *d = opendir(wr->dir);
    if (!d)
        return;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] != '.' && fstatat(wr->dirfd, de->d_name, &st, 0) == 0)
            total += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    atomic_store(&wr->disk_bytes, total);
}

static void record_sync(wal_writer_t *wr, int64_t start) {
    int64_t us = (clock_now_ns() - start) / 1000;
    int b = 0;
    while (b < WAL_SYNC_BUCKETS - 1 && (int64_t)1 << b < us)
        b++;
    atomic_fetch_add(&wr->sync_us_buckets[b], 1);
    atomic_fetch_add(&wr->sync_us_sum, (uint64_t)us);
    atomic_fetch_add(&wr->syncs, 1);
}

static void sync_segment(wal_writer_t *wr) {
    int64_t start = clock_now_ns();
    if (fdatasync(wr->fd) != 0) {
        char path[512];
        wal_segment_path(path, sizeof path, wr->dir, "seg", wr->seg, ".log");
        writer_fatal("cannot fdatasync", path);
    }
    record_sync(wr, start);
    wr->synced_seq = wr->written_seq;
    wr->last_sync_ns = clock_now_ns();
}

/* Create segment seq with its header, durable before it is used. Returns
 * the fd, or -1 (errno set) leaving nothing behind. */
static int create_file(wal_writer_t *wr, const char *prefix, uint64_t seq, const char *ext,
                       uint32_t flags, uint64_t prealloc_len) {
    char path[512];
    wal_segment_path(path, sizeof path, wr->dir, prefix, seq, ext);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    buf_t hdr;
    buf_init(&hdr);
    bool ok = wal_put_segment(&hdr, seq, flags) && (prealloc_len == 0 || prealloc(fd, 0, prealloc_len)) &&
              write_all(fd, buf_head(&hdr), hdr.len, 0) && fdatasync(fd) == 0 && fsync(wr->dirfd) == 0;
    int saved = errno;
    buf_free(&hdr);
    if (!ok) {
        close(fd);
        unlink(path);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Start segment seq; the previous one (if any) is synced and trimmed to
 * what was written. False (and the old segment kept) when the new file
 * cannot be created - the disk is full. */
static bool rotate(wal_writer_t *wr, uint64_t seq) {
    int fd = create_file(wr, "seg", seq, ".log", 0, WAL_PREALLOC);
    if (fd < 0) {
        atomic_store(&wr->space_low, true);
        return false;
    }
    if (wr->fd >= 0) {
        if (wr->written_seq > wr->synced_seq)
            sync_segment(wr);
        if (ftruncate(wr->fd, (off_t)wr->off) != 0) {
            /* Only preallocated zeros stay behind: harmless. */
        }
        close(wr->fd);
    }
    wr->fd = fd;
    wr->seg = seq;
    wr->off = WAL_SEGMENT_SIZE;
    wr->allocated = WAL_PREALLOC;
    atomic_store(&wr->cur_seg, seq);
    atomic_store(&wr->space_low, false);
    if (atomic_load(&wr->oldest_seg) == 0)
        atomic_store(&wr->oldest_seg, seq);
    publish_room(wr);
    return true;
}

int wal_writer_open_segment(wal_writer_t *wr, uint64_t seq, char *err, size_t errlen) {
    wr->fd = -1;
    wr->snap_fd = -1;
    if (!rotate(wr, seq)) {
        if (errno != ENOSPC && errno != EDQUOT) {
            snprintf(err, errlen, "cannot create a log file in %s: %s", wr->dir, strerror(errno));
            return -1;
        }
        wr->seg = seq - 1; /* so that the next attempt (rotate to seg + 1) creates seq */
        log_msg("%s: the disk is full; tasks cannot be kept until space is freed", wr->dir);
    }
    count_disk(wr);
    return 0;
}

/* Keep at least WAL_PREALLOC of room ahead of the write position. */
static void grow(wal_writer_t *wr, uint64_t need) {
    if (wr->fd < 0)
        return;
    uint64_t want = wr->off + need + WAL_PREALLOC;
    if (wr->allocated >= want)
        return;
    uint64_t to = (want + WAL_PREALLOC - 1) / WAL_PREALLOC * WAL_PREALLOC;
    if (prealloc(wr->fd, wr->allocated, to - wr->allocated)) {
        wr->allocated = to;
        atomic_store(&wr->space_low, false);
    } else if (errno == ENOSPC || errno == EDQUOT) {
        if (!atomic_exchange(&wr->space_low, true))
            log_msg("%s: the disk is full; new tasks are refused until space is freed",
                    wr->dir);
    } else {
        char path[512];
        wal_segment_path(path, sizeof path, wr->dir, "seg", wr->seg, ".log");
        writer_fatal("cannot preallocate", path);
    }
    publish_room(wr);
}

static void do_append(wal_writer_t *wr, wop_t *op) {
    if (op->rotate || wr->fd < 0)
        rotate(wr, wr->seg + 1);
    if (wr->fd < 0) {
        /* No segment could be created at all: the loop admits nothing
         * while room is 0, so this batch is empty of changes. */
        return;
    }
    /* The batch record says which batches were already durable when it was
     * written; recovery uses it to tell a torn tail from damage. */
    wal_patch_batch(&op->data, 0, op->seq, wr->synced_seq, (uint32_t)(op->data.len - WAL_BATCH_SIZE),
                    op->count);
    grow(wr, op->data.len);
    if (!write_all(wr->fd, buf_head(&op->data), op->data.len, wr->off)) {
        char path[512];
        wal_segment_path(path, sizeof path, wr->dir, "seg", wr->seg, ".log");
        writer_fatal("cannot write", path);
    }
    wr->off += op->data.len;
    wr->written_seq = op->seq;
    if (wr->sync == WAL_SYNC_ALWAYS ||
        (wr->sync == WAL_SYNC_INTERVAL &&
         clock_now_ns() - wr->last_sync_ns >= (int64_t)wr->sync_ms * 1000000))
        sync_segment(wr);
    publish_room(wr);
}

static void snap_fail(wal_writer_t *wr, const char *why) {
    char path[512];
    wal_segment_path(path, sizeof path, wr->dir, "snap", wr->snap_seq, ".tmp");
    if (!wr->snap_failed)
        log_msg("compaction stopped: %s %s: %s; it will be tried again later", why, path,
                strerror(errno));
    wr->snap_failed = true;
    if (wr->snap_fd >= 0) {
        close(wr->snap_fd);
        wr->snap_fd = -1;
        unlink(path);
    }
}

static void do_snap_begin(wal_writer_t *wr) {
    wr->snap_failed = false;
    wr->snap_seq = wr->seg;
    /* Everything logged from now on must land after the segments the
     * snapshot covers, or deleting them would lose it. */
    if (wr->fd < 0 || !rotate(wr, wr->seg + 1)) {
        wr->snap_failed = true;
        return;
    }
    wr->snap_fd = create_file(wr, "snap", wr->snap_seq, ".tmp", WAL_SEGMENT_SNAPSHOT, 0);
    if (wr->snap_fd < 0) {
        snap_fail(wr, "cannot create");
        return;
    }
    wr->snap_off = WAL_SEGMENT_SIZE;
}

static void do_snap_write(wal_writer_t *wr, wop_t *op) {
    if (wr->snap_failed)
        return;
    if (!write_all(wr->snap_fd, buf_head(&op->data), op->data.len, wr->snap_off)) {
        snap_fail(wr, "cannot write");
        return;
    }
    wr->snap_off += op->data.len;
}

/* Delete the segments the new snapshot covers, and older snapshots. */
static void drop_covered(wal_writer_t *wr) {
    DIR *d = opendir(wr->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long seq;
        char tail[8];
        if ((sscanf(de->d_name, "seg-%llu.%7s", &seq, tail) == 2 && seq <= wr->snap_seq &&
             strcmp(tail, "log") == 0) ||
            (sscanf(de->d_name, "snap-%llu.%7s", &seq, tail) == 2 && seq < wr->snap_seq &&
             strcmp(tail, "log") == 0))
            unlinkat(wr->dirfd, de->d_name, 0);
    }
    closedir(d);
    fsync(wr->dirfd);
    atomic_store(&wr->oldest_seg, wr->snap_seq);
}

static void do_snap_commit(wal_writer_t *wr, wop_t *op) {
    do_snap_write(wr, op);
    buf_t end;
    buf_init(&end);
    if (!wal_put_batch(&end, 2, 0, 0, 1) || !wal_put_snapshot_end(&end, wr->snap_seq, op->seq))
        defer_panic("out of memory finishing a snapshot");
    wal_patch_batch(&end, 0, 2, 0, (uint32_t)(end.len - WAL_BATCH_SIZE), 1);
    buf_free(&op->data);
    op->data = end; /* freed with the op */
    do_snap_write(wr, op);
    if (wr->snap_failed) {
        atomic_store(&wr->snap_state, SNAP_FAILED);
        return;
    }
    char tmp[512], final[512];
    wal_segment_path(tmp, sizeof tmp, wr->dir, "snap", wr->snap_seq, ".tmp");
    wal_segment_path(final, sizeof final, wr->dir, "snap", wr->snap_seq, ".log");
    if (fdatasync(wr->snap_fd) != 0) {
        snap_fail(wr, "cannot fdatasync");
        atomic_store(&wr->snap_state, SNAP_FAILED);
        return;
    }
    close(wr->snap_fd);
    wr->snap_fd = -1;
    if (rename(tmp, final) != 0 || fsync(wr->dirfd) != 0) {
        snap_fail(wr, "cannot rename");
        atomic_store(&wr->snap_state, SNAP_FAILED);
        return;
    }
    drop_covered(wr);
    count_disk(wr);
    atomic_store(&wr->snap_state, SNAP_DONE);
}

static void do_grow(wal_writer_t *wr) {
    if (wr->fd < 0)
        rotate(wr, wr->seg + 1);
    else
        grow(wr, 0);
    count_disk(wr);
}

static void *writer_main(void *arg) {
    wal_writer_t *wr = arg;
    pthread_mutex_lock(&wr->mu);
    for (;;) {
        while (!wr->head) {
            bool pending_sync = wr->sync == WAL_SYNC_INTERVAL && wr->written_seq > wr->synced_seq;
            if (!pending_sync) {
                pthread_cond_wait(&wr->cv, &wr->mu);
                continue;
            }
            int64_t due = wr->last_sync_ns + (int64_t)wr->sync_ms * 1000000;
            struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
            if (pthread_cond_timedwait(&wr->cv, &wr->mu, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&wr->mu);
                sync_segment(wr);
                pthread_mutex_lock(&wr->mu);
            }
        }
        wop_t *op = wr->head;
        wr->head = op->next;
        if (!wr->head)
            wr->tail = NULL;
        pthread_mutex_unlock(&wr->mu);

        bool stop = false;
        switch (op->kind) {
        case WOP_APPEND:
            do_append(wr, op);
            atomic_store(&wr->done_seq, op->seq);
            break;
        case WOP_SNAP_BEGIN:
            do_snap_begin(wr);
            break;
        case WOP_SNAP_WRITE:
            do_snap_write(wr, op);
            atomic_fetch_add(&wr->snap_ops_done, 1);
            break;
        case WOP_SNAP_COMMIT:
            do_snap_commit(wr, op);
            atomic_fetch_add(&wr->snap_ops_done, 1);
            break;
        case WOP_GROW:
            do_grow(wr);
            break;
        case WOP_STOP:
            if (wr->fd >= 0) {
                if (wr->written_seq > wr->synced_seq)
                    sync_segment(wr);
                if (ftruncate(wr->fd, (off_t)wr->off) != 0) {
                    /* preallocated zeros stay: harmless */
                }
                close(wr->fd);
                wr->fd = -1;
            }
            if (wr->snap_fd >= 0) {
                char path[512];
                wal_segment_path(path, sizeof path, wr->dir, "snap", wr->snap_seq, ".tmp");
                close(wr->snap_fd);
                wr->snap_fd = -1;
                unlink(path);
            }
            stop = true;
            break;
        }
        op_free(op);
        uv_async_send(&wr->async);
        pthread_mutex_lock(&wr->mu);
        if (stop)
            break;
    }
    pthread_mutex_unlock(&wr->mu);
    return NULL;
}

int wal_writer_start(wal_writer_t *wr, uv_loop_t *loop, uv_async_cb cb, void *data) {
    uv_async_init(loop, &wr->async, cb);
    wr->async.data = data;
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->cv, NULL);
    wr->last_sync_ns = clock_now_ns();
    if (pthread_create(&wr->thread, NULL, writer_main, wr) != 0)
        return -1;
    return 0;
}

void wal_writer_submit(wal_writer_t *wr, wop_t *op) {
    pthread_mutex_lock(&wr->mu);
    if (wr->tail)
        wr->tail->next = op;
    else
        wr->head = op;
    wr->tail = op;
    pthread_mutex_unlock(&wr->mu);
    /* Signalled after the unlock: woken while the loop still held the
     * mutex, the writer would block on it at once and cost two more
     * context switches per batch (both threads often share a CPU). It
     * checks the queue under the mutex, so no wake-up is lost. */
    pthread_cond_signal(&wr->cv);
}

void wal_writer_stop(wal_writer_t *wr) {
    wal_writer_submit(wr, wal_op_new(WOP_STOP));
    pthread_join(wr->thread, NULL);
    pthread_mutex_destroy(&wr->mu);
    pthread_cond_destroy(&wr->cv);
}
