#!/usr/bin/python3
"""events-cost: what /events (and so each /dashboard viewer) costs the loop.

Starts loopd (one loop, event mode unless --mode threads), then alternates
phases of --seconds each: no stream at all, and --streams readers of
/events?interval_ms=--interval-ms, for --rounds rounds. Per phase it reads
the CPU time of every server thread from /proc/PID/task/*/schedstat (ns) and
counts the snapshots the readers received. Reports, as medians over rounds,
the process CPU (ms per second) idle and with streams, the thread that paid
the most (the loop), and the CPU per snapshot (per viewer per interval).
With --requests-ms N each round adds a phase of --streams clients polling
GET /requests?limit=15 every N ms on a keep-alive connection (what an open
/dashboard does every 2 s) and reports the CPU per poll.

  loadtest/tools/events_cost.py [--streams 10] [--interval-ms 50] [--seconds 10]
                       [--rounds 3] [--mode event|threads] [--bin build/loopd]
                       [--requests-ms N]
"""
import argparse
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import threading
import time


def thread_cpu_ns(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[tid] = int(f.read().split()[0])
        except OSError:
            pass
    return out


def start(binary, mode):
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--mode", mode],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    log = b""
    end = time.monotonic() + 10
    while b"listening on http://" not in log and time.monotonic() < end:
        if select.select([p.stderr], [], [], 1)[0]:
            log += os.read(p.stderr.fileno(), 4096)
    m = re.search(rb"127\.0\.0\.1:(\d+)", log)
    if not m:
        p.kill()
        sys.exit("loopd did not start: %r" % log)
    threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(p.stderr.fileno(), 4096), b"")],
                     daemon=True).start()
    return p, int(m.group(1))


def reader(port, interval, stop, counts, sizes, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /events?interval_ms=%d HTTP/1.0\r\n\r\n" % interval)
    buf = b""
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            chunk = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if line.startswith(b"data: "):
                    counts[i] += 1
                    sizes[i] += len(line) + 1
    s.close()


def poller(port, every_ms, stop, counts, sizes, i):
    """GET /requests?limit=15 every every_ms on one keep-alive connection."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    while not stop.is_set():
        s.sendall(b"GET /requests?limit=15 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(1 << 16)
        head, body = buf.split(b"\r\n\r\n", 1)
        n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < n:
            body += s.recv(1 << 16)
        counts[i] += 1
        sizes[i] += len(head) + 4 + n
        stop.wait(every_ms / 1000)
    s.close()


def phase(pid, port, streams, interval, seconds, poll_ms=0):
    stop = threading.Event()
    counts, sizes = [0] * streams, [0] * streams
    target = poller if poll_ms else reader
    ts = [threading.Thread(target=target, args=(port, poll_ms or interval, stop, counts, sizes, i))
          for i in range(streams)]
    for t in ts:
        t.start()
    time.sleep(0.5)  # let every stream open before measuring
    c0, n0 = thread_cpu_ns(pid), sum(counts)
    time.sleep(seconds)
    c1, n1 = thread_cpu_ns(pid), sum(counts)
    stop.set()
    for t in ts:
        t.join()
    per_thread = {tid: c1[tid] - c0.get(tid, 0) for tid in c1}
    total = sum(per_thread.values())
    busiest = max(per_thread.values()) if per_thread else 0
    snaps = n1 - n0
    avg = sum(sizes) / max(1, sum(counts))
    return total, busiest, snaps, avg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--interval-ms", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", default="event")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "loopd"))
    ap.add_argument("--requests-ms", type=int, default=0)
    a = ap.parse_args()
    p, port = start(a.bin, a.mode)
    idle, busy, idle_top, busy_top, per_snap, per_snap_top, sizes = [], [], [], [], [], [], []
    per_poll, per_poll_top, poll_sizes = [], [], []
    try:
        for r in range(a.rounds):
            t0, b0, _, _ = phase(p.pid, port, 0, a.interval_ms, a.seconds)
            t1, b1, snaps, size = phase(p.pid, port, a.streams, a.interval_ms, a.seconds)
            idle.append(t0 / a.seconds / 1e6)
            busy.append(t1 / a.seconds / 1e6)
            idle_top.append(b0 / a.seconds / 1e6)
            busy_top.append(b1 / a.seconds / 1e6)
            per_snap.append((t1 - t0) / max(1, snaps) / 1e3)
            per_snap_top.append((b1 - b0) / max(1, snaps) / 1e3)
            sizes.append(size)
            print("round %d: idle %.2f ms/s, %d streams x %d ms: %.2f ms/s, %d snapshots "
                  "(%.0f B each), %.1f us CPU per snapshot (%.1f us in the busiest thread)"
                  % (r + 1, idle[-1], a.streams, a.interval_ms, busy[-1], snaps, size,
                     per_snap[-1], per_snap_top[-1]), flush=True)
            if a.requests_ms:
                t2, b2, polls, psize = phase(p.pid, port, a.streams, a.interval_ms, a.seconds, a.requests_ms)
                per_poll.append((t2 - t0) / max(1, polls) / 1e3)
                per_poll_top.append((b2 - b0) / max(1, polls) / 1e3)
                poll_sizes.append(psize)
                print("round %d: %d clients polling /requests every %d ms: %.2f ms/s, %d polls "
                      "(%.0f B each), %.1f us CPU per poll (%.1f us in the busiest thread)"
                      % (r + 1, a.streams, a.requests_ms, t2 / a.seconds / 1e6, polls, psize,
                         per_poll[-1], per_poll_top[-1]), flush=True)
    finally:
        p.terminate()
        p.wait(15)
    med = statistics.median
    print("median: process CPU %.2f ms/s idle, %.2f ms/s with %d streams every %d ms; "
          "%.1f us per snapshot per viewer (busiest thread, the loop: %.1f us); %.0f bytes each"
          % (med(idle), med(busy), a.streams, a.interval_ms, med(per_snap), med(per_snap_top),
             med(sizes)))
    print("range over %d rounds: %.1f-%.1f us per snapshot per viewer (busiest thread %.1f-%.1f us); "
          "%.2f-%.2f ms/s with streams" % (a.rounds, min(per_snap), max(per_snap), min(per_snap_top),
                                            max(per_snap_top), min(busy), max(busy)))
    if per_poll:
        print("median: %.1f us per /requests poll (busiest thread, the loop: %.1f us); %.0f bytes each"
              % (med(per_poll), med(per_poll_top), med(poll_sizes)))


if __name__ == "__main__":
    main()
