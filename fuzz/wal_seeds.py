#!/usr/bin/env python3
"""Write the seed corpora of fuzz_wal_decode and fuzz_wal_replay from log
files a real deferd writes.

Usage: fuzz/wal_seeds.py [DEFERD]   (default: build/deferd; build it with
`make` first). Runs the server on 127.0.0.1 (beanstalk and HTTP on free
ports) in temporary data directories, drives it with beanstalk commands and
HTTP/JSON API requests, stops it with SIGTERM, and turns what it wrote into
seeds:

  corpus/fuzz_wal_replay/seed-*.bin  a mode byte (see the top of
      fuzz_wal_replay.c), then a segment or snapshot file, its preallocated
      zero tail cut off (or kept short), long files cut after a whole batch
  corpus/fuzz_wal_decode/seed-*.bin  a mode byte (0), then one record (or
      one whole batch), cut out of those files

The scenarios: one run with every kind of change (puts of several
priorities, delays and tubes, reserve, release with and without delay,
bury, kick, kick-job, touch, delete, pause-tube); a restart that changes
jobs of the first run (its segment alone holds updates and deletes of
jobs it never put); HTTP API tasks with keys (one replaced), attempt
limits, JSON and raw payloads, an attempt released and one timed out, one
done, one cancelled, a failed one kicked (EXT and HISTORY records), and
queues' push settings set, changed and cleared (SETTINGS records); and a
churn of 20,000 put/delete pairs beside a few long-lived jobs, keyed and
failed tasks, a paused tube and a pushed queue, so that compaction writes a
snapshot.
From those, a torn tail, a damaged byte (alone, and followed by a torn
tail), and a file with its header removed and its checksums zeroed (the
harness's own header and checksum fix-up then) are derived too. One seed is
written by hand (keys passed between jobs by EXT records), since a server
seldom writes that.

Only the seed-*.bin files named here are written, so reproducers of found
bugs kept in the same directories are left alone. Times and ids in the
files depend on when the script runs, so regenerated seeds differ from
the committed ones in those bytes.
"""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAX_SEED = 16 * 1024

# Mode bits of fuzz_wal_replay.
HEADER, LAST, REPAIR, SNAPSHOT, FIX_CRC, FIX_FRAMES, SEQ_FROM_FILE = 1, 2, 4, 8, 16, 32, 64


# ---- a beanstalk client, just enough ----

class Client:
    def __init__(self, port):
        for _ in range(200):
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("deferd did not start")
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _reply(self):
        line = self._line()
        word = line.split(" ")[0]
        if word in ("OK", "RESERVED", "FOUND"):
            n = int(line.split(" ")[-1])
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            self.buf = self.buf[n + 2:]
        return line

    def send(self, *cmds):
        """Send commands (str, or (str, body)) at once; return the replies."""
        out = b""
        for c in cmds:
            if isinstance(c, tuple):
                out += c[0].encode() + b"\r\n" + c[1] + b"\r\n"
            else:
                out += c.encode() + b"\r\n"
        self.s.sendall(out)
        return [self._reply() for _ in cmds]

    def cmd(self, c):
        return self.send(c)[0]

    def put(self, body, pri=0, delay=0, ttr=60):
        if isinstance(body, str):
            body = body.encode()
        r = self.send((f"put {pri} {delay} {ttr} {len(body)}", body))[0]
        assert r.startswith("INSERTED"), r
        return int(r.split()[1])

    def close(self):
        self.s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, deferd, datadir, args=()):
        self.port, self.http_port = free_port(), free_port()
        self.p = subprocess.Popen([deferd, "-l", "127.0.0.1", "-p", str(self.port), "-b", datadir,
                                   "--http", f"127.0.0.1:{self.http_port}", *args],
                                  stderr=subprocess.PIPE)
        self.c = Client(self.port)

    def http(self, method, path, body=None):
        """One HTTP/JSON API request; returns (status, decoded body)."""
        h = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        h.request(method, path, body=None if body is None else json.dumps(body))
        r = h.getresponse()
        data = r.read()
        h.close()
        return r.status, (json.loads(data) if data else None)

    def stop(self):
        self.c.close()
        self.p.send_signal(signal.SIGTERM)
        _, err = self.p.communicate(timeout=30)
        if self.p.returncode != 0:
            raise RuntimeError(f"deferd exited {self.p.returncode}: {err.decode()}")


# ---- the log format, to cut files at record boundaries ----

def records(data, start=0):
    """(offset, length, type) of each record from start, while lengths hold."""
    off = start
    out = []
    while off + 12 <= len(data):
        n = struct.unpack_from("<I", data, off)[0]
        if n < 12 or off + n > len(data):
            break
        out.append((off, n, data[off + 8]))
        off += n
    return out


def batches(data):
    """(offset, end) of each batch frame after the header."""
    out = []
    for off, n, typ in records(data, 36):
        if typ == 2:
            nbytes = struct.unpack_from("<I", data, off + 28)[0]
            out.append((off, off + n + nbytes))
    return out


def trim(data, limit=MAX_SEED):
    """The file without its zero tail, cut after the last whole batch that
    fits in limit bytes."""
    end = 36
    for _, bend in batches(data):
        if bend > limit:
            break
        end = bend
    return data[:end]


def first_of_type(data, typ, pred=lambda rec: True):
    for off, n, t in records(data):
        if t == typ and pred(data[off:off + n]):
            return data[off:off + n]
    raise RuntimeError(f"no record of type {typ}")


def zero_crcs(data):
    out = bytearray(data)
    for off, _, _ in records(data):
        out[off + 4:off + 8] = b"\0\0\0\0"
    return bytes(out)


# ---- records by hand (docs/log-format.md), for what a server does not write ----

def rec(typ, payload):
    head = struct.pack("<I", 12 + len(payload))
    rest = bytes([typ, 1, 0, 0]) + payload
    return head + struct.pack("<I", zlib.crc32(head + rest) & 0xffffffff) + rest


def h_segment(seq):
    return rec(1, b"DEFERLOG" + struct.pack("<IIQ", 1, 0, seq))


def h_fields(id, state=0, deadline=0):
    return struct.pack("<QqIIB5I", id, deadline, 0, 0, state, 0, 0, 0, 0, 0)


def h_put(id, tube, body, state=0, deadline=0):
    return rec(3, h_fields(id, state, deadline) + struct.pack("<qIH", 1, 60, len(tube)) + tube
               + struct.pack("<I", len(body)) + body)


def h_update(id, state, deadline=0):
    return rec(4, h_fields(id, state, deadline))


def h_ext(id, max_attempts=0, flags=0, key=b"", error=b"", failed_at=0):
    return rec(9, struct.pack("<QIIBq", id, max_attempts, 0, flags, failed_at)
               + struct.pack("<H", len(key)) + key + struct.pack("<H", len(error)) + error)


def h_batch(seq, *records):
    body = b"".join(records)
    return rec(2, struct.pack("<QQII", seq, seq - 1, len(body), len(records))) + body


def keys_contended():
    """Two jobs of one tube whose EXT records pass a key between them, and a
    failed task that stops being failed: paths a server rarely writes."""
    return h_segment(1) + h_batch(
        1, h_put(1, b"T", b"a"), h_put(2, b"T", b"b", state=3, deadline=5),
        h_ext(1, key=b"k"), h_ext(2, max_attempts=1, flags=1, error=b"attempt 1 released",
                                  failed_at=1700000000 * 10**9)
    ) + h_batch(
        2, h_ext(2, key=b"k", flags=3), h_ext(1, max_attempts=2), h_update(2, 0),
        h_ext(2, flags=1), h_update(2, 3, 7), h_ext(2, flags=0), h_ext(1, key=b"k")
    )


# ---- scenarios ----

def scenario_tasks(s):
    """The HTTP API's tasks: keys, attempt limits, errors, JSON payloads,
    cancel, and tasks that end (EXT and HISTORY records)."""
    c = s.c

    def enqueue(queue, **fields):
        st, t = s.http("POST", f"/v1/queues/{queue}/tasks", fields)
        assert st in (200, 201), (st, t)
        return t["id"]

    keyed = enqueue("network", payload={"room": 301, "action": "restore"}, key="room-301",
                    delay=3600, max_attempts=3)
    enqueue("network", payload={"room": 301, "action": "off"}, key="room-301",
            on_conflict="replace", delay=1800)
    enqueue("network", payload_base64="AAEC/w==", key="raw", priority=7)
    once = enqueue("mail", payload={"to": "ana@example.org"}, max_attempts=1)
    twice = enqueue("mail", payload=["x", 1, None], max_attempts=2, ttr=1)
    done = enqueue("mail", payload="done soon")
    c.cmd("watch mail")
    # An attempt released by its worker: the last one, so the task fails.
    c.cmd(f"reserve-job {once}")
    c.cmd(f"release {once} 0 0")
    # An attempt that times out (ttr 1 s): the reason is kept.
    c.cmd(f"reserve-job {twice}")
    time.sleep(1.5)
    c.cmd(f"reserve-job {done}")
    c.cmd(f"delete {done}")  # done: a HISTORY record, then the DELETE
    st, _ = s.http("DELETE", "/v1/queues/network/keys/raw")  # cancelled
    assert st == 200, st
    c.cmd(f"kick-job {once}")  # a failed task kicked: fresh attempts
    s.http("POST", "/v1/queues/network/pause", {"seconds": 600})
    # Push settings (SETTINGS records): set, changed, and set then cleared.
    # Nothing is enqueued in these queues, so no attempt runs.
    for queue, settings in (("hooks", {"target": "http", "url": "http://127.0.0.1:9/hook",
                                       "headers": {"X-Token": "t"}, "concurrency": 2}),
                            ("hooks", {"target": "http", "url": "http://127.0.0.1:9/v2",
                                       "rate": "10/m", "deadline": "30s"}),
                            ("gone", {"target": "http", "url": "http://127.0.0.1:9/"}),
                            ("gone", {"target": "none"})):
        st, q = s.http("PUT", f"/v1/queues/{queue}", settings)
        assert st == 200, (st, q)
    return keyed


def scenario_basic(c):
    ids = [c.put("ready urgent", pri=5), c.put("ready", pri=2000), c.put("later", delay=3600)]
    c.cmd("use emails")
    ids += [c.put(b"\x00binary\xff body", pri=100), c.put("x" * 300, pri=1, ttr=1)]
    c.cmd("use q.$_(1)+/;-z")
    ids += [c.put(""), c.put("to bury"), c.put("to delete")]
    c.cmd("watch emails")
    c.cmd("watch q.$_(1)+/;-z")
    r = c.cmd("reserve-with-timeout 0")  # job 1 (pri 5)
    rid = int(r.split()[1])
    c.cmd(f"release {rid} 7 0")
    r = c.cmd("reserve-job %d" % ids[6])
    c.cmd(f"bury {ids[6]} 50")
    r = c.cmd("reserve-job %d" % ids[4])
    c.cmd(f"touch {ids[4]}")
    c.cmd(f"release {ids[4]} 3 120")  # delayed again
    c.cmd(f"delete {ids[7]}")
    c.cmd("use emails")
    c.cmd("kick 1")  # nothing buried in emails: kicks the delayed one
    c.cmd("use q.$_(1)+/;-z")
    c.cmd("kick 5")
    c.cmd("reserve-job %d" % ids[6])
    c.cmd(f"bury {ids[6]} 51")
    c.cmd(f"kick-job {ids[2]}")
    c.cmd("pause-tube emails 3600")
    c.cmd("pause-tube default 1")
    return ids


def scenario_restart(c, ids):
    c.cmd(f"delete {ids[0]}")
    c.cmd(f"kick-job {ids[6]}")
    c.cmd("use emails")
    c.put("after restart", pri=9, delay=60)
    r = c.cmd("reserve-job %d" % ids[3])
    c.cmd(f"bury {ids[3]} 99")
    c.cmd("pause-tube emails 60")


def scenario_churn(s):
    c = s.c
    keep = []
    # Tasks with extensions, and a few finished ones for the history.
    for i in range(3):
        st, t = s.http("POST", "/v1/queues/tasks/tasks",
                       {"payload": {"n": i}, "key": f"k{i}", "max_attempts": 1})
        assert st == 201, (st, t)
        keep.append(t["id"])
    c.cmd("watch tasks")
    c.cmd(f"reserve-job {keep[0]}")
    c.cmd(f"release {keep[0]} 0 0")  # its only attempt: failed
    s.http("DELETE", f"/v1/tasks/{keep[1]}")
    c.cmd("use keep")
    for i in range(12):
        keep.append(c.put(f"long-lived {i}", pri=i * 100, delay=(3600 if i % 3 == 1 else 0)))
    c.cmd("watch keep")
    for i in (2, 5):
        c.cmd("reserve-job %d" % keep[i])
        c.cmd(f"bury {keep[i]} 1")
    c.cmd("pause-tube keep 86400")
    st, q = s.http("PUT", "/v1/queues/pushed", {"target": "http", "url": "http://127.0.0.1:9/"})
    assert st == 200, (st, q)  # the snapshot carries its settings forward
    c.cmd("use churn")
    body = b"c" * 100
    for n in range(400):  # 20,000 put/delete pairs, 50 at a time
        rs = c.send(*[("put 0 0 60 100", body)] * 50)
        ids = [int(r.split()[1]) for r in rs]
        c.send(*[f"delete {i}" for i in ids])
    # Let the snapshot finish before the server stops.
    for _ in range(20):
        c.cmd("stats")
        time.sleep(0.1)
    return keep


def run(deferd, d, fn, *args, server=False, server_args=()):
    s = Server(deferd, d, server_args)
    try:
        return fn(s if server else s.c, *args)
    finally:
        s.stop()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(harness, name, data):
    assert len(data) < 64 * 1024, (harness, name, len(data))
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}.bin"), "wb") as f:
        f.write(data)


def main():
    deferd = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "deferd")
    tmp = tempfile.mkdtemp(prefix="wal_seeds.")
    try:
        d1 = os.path.join(tmp, "basic")
        ids = run(deferd, d1, scenario_basic)
        seg1 = trim(read(os.path.join(d1, "seg-0000000001.log")))
        run(deferd, d1, scenario_restart, ids)
        seg2 = trim(read(os.path.join(d1, "seg-0000000002.log")))

        d3 = os.path.join(tmp, "tasks")
        run(deferd, d3, scenario_tasks, server=True)
        seg_tasks = trim(read(os.path.join(d3, "seg-0000000001.log")))

        d2 = os.path.join(tmp, "churn")
        # A short history, or the snapshot would hold 10,000 finished tasks.
        run(deferd, d2, scenario_churn, server=True, server_args=("--history-max", "4"))
        snaps = sorted(glob.glob(os.path.join(d2, "snap-*.log")))
        if not snaps:
            raise RuntimeError("the churn did not make deferd write a snapshot")
        snap = trim(read(snaps[-1]), 60 * 1024)
        covers = int(os.path.basename(snaps[-1])[5:15])
        after = os.path.join(d2, f"seg-{covers + 1:010d}.log")
        seg_after = trim(read(after), 16 * 1024)

        R = "fuzz_wal_replay"
        write(R, "segment", bytes([SEQ_FROM_FILE | LAST]) + seg1)
        write(R, "segment-not-last-zero-tail", bytes([SEQ_FROM_FILE]) + seg1 + bytes(300))
        write(R, "restart-segment", bytes([SEQ_FROM_FILE | LAST]) + seg2)
        write(R, "tasks-segment", bytes([SEQ_FROM_FILE | LAST]) + seg_tasks)
        write(R, "snapshot", bytes([SEQ_FROM_FILE | SNAPSHOT]) + snap)
        write(R, "segment-after-snapshot", bytes([SEQ_FROM_FILE | LAST]) + seg_after)
        bs = batches(seg1)
        mid = (bs[-1][0] + bs[-1][1]) // 2
        write(R, "torn-tail", bytes([SEQ_FROM_FILE | LAST]) + seg1[:mid])
        dmg = bytearray(seg1)
        dmg[bs[1][0] + 40] ^= 0x20  # a record inside the second batch
        write(R, "damaged", bytes([SEQ_FROM_FILE | LAST]) + bytes(dmg))
        write(R, "damaged-repair", bytes([SEQ_FROM_FILE | REPAIR]) + bytes(dmg))
        # Damage, then a torn tail: repair skips the first, cuts the second.
        torn = seg1[bs[-1][0]:bs[-1][0] + 50]
        write(R, "damaged-then-torn-repair", bytes([SEQ_FROM_FILE | LAST | REPAIR]) + bytes(dmg) + torn)
        write(R, "zeroed-crcs", bytes([HEADER | LAST | FIX_CRC]) + zero_crcs(seg1[36:]))
        write(R, "empty-last", bytes([LAST]) + bytes(64))
        write(R, "keys-contended-by-hand", bytes([LAST]) + keys_contended())

        D = "fuzz_wal_decode"
        write(D, "segment", b"\0" + seg1[:36])
        write(D, "snapshot-header", b"\0" + snap[:36])
        write(D, "batch", b"\0" + first_of_type(seg1, 2))
        write(D, "put", b"\0" + first_of_type(seg1, 3))
        write(D, "put-delayed", b"\0" + first_of_type(seg1, 3, lambda r: r[36] == 1))
        write(D, "update-buried", b"\0" + first_of_type(seg1, 4, lambda r: r[36] == 3))
        write(D, "delete", b"\0" + first_of_type(seg1, 5))
        write(D, "pause", b"\0" + first_of_type(seg1, 6))
        write(D, "next-id", b"\0" + first_of_type(snap, 7))
        write(D, "snapshot-end", b"\0" + first_of_type(snap, 8))
        write(D, "ext-key", b"\0" + first_of_type(seg_tasks, 9, lambda r: r[37] or r[38]))
        write(D, "ext-failed-error", b"\0" + first_of_type(seg_tasks, 9, lambda r: r[28] & 1))
        write(D, "history", b"\0" + first_of_type(seg_tasks, 10))
        write(D, "settings", b"\0" + first_of_type(seg_tasks, 11, lambda r: len(r) > 30))
        write(D, "settings-cleared", b"\0" + first_of_type(seg_tasks, 11, lambda r: len(r) < 30))
        b0, b1 = bs[0]
        write(D, "whole-batch", b"\0" + seg1[b0:b1])
        write(D, "zeroed-crcs", b"\1" + zero_crcs(seg1[b0:b1]))
        write(D, "zero-tail", b"\0" + seg1[b0:b1] + bytes(8))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
