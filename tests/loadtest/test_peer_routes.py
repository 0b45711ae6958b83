#!/usr/bin/python3
"""test_peer_routes: the asyncio peer (loadtest/peers/asyncio_server.py) on
asyncio's loop and on uvloop answers every teaching route as the lesson says:
/block stalls the heartbeat and shows in /lag, /slow and sliced /cpu do not
stall it (a heartbeat stream read while they run), /cpu counts its slices, bad input is a 400. Exit 77 (skipped) when
Debian's python3-aiohttp is missing; uvloop alone is skipped when missing."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

SRC = os.environ.get("LOOPD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PEER = os.path.join(SRC, "loadtest", "peers", "asyncio_server.py")
PY = "/usr/bin/python3"
HB_MS = 20


def have(mod):
    return subprocess.run([PY, "-c", "import " + mod], capture_output=True).returncode == 0


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start(kind):
    args = [PY, PEER, "--port", "0", "--heartbeat-ms", str(HB_MS), "--sample-ms", "5", "--threads", "4"]
    if kind == "uvloop":
        args.append("--uvloop")
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # the listen line comes first, or the process ends
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        fail(f"{kind}: no listen line: {line!r}")
    return proc, int(m.group(1))


def get(port, path, timeout=10):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(port, path):
    status, _, body = get(port, path)
    if status != 200:
        fail(f"{path}: status {status}")
    return json.loads(body)


def check_monitor(kind, port):
    """/, /heartbeat, /lag, and /block stalling both."""
    status, hdr, body = get(port, "/")
    if status != 200 or body != b"Hello, World!":
        fail(f"{kind} /: {status} {body!r}")
    time.sleep(0.3)  # some beats and lag samples
    hb = get_json(port, "/heartbeat")
    for k in ("interval_ms", "beats", "last_beat_ms_ago", "max_gap_ms", "late_beats"):
        if k not in hb:
            fail(f"{kind} /heartbeat lacks {k}: {hb}")
    if hb["interval_ms"] != HB_MS or hb["beats"] < 3:
        fail(f"{kind} /heartbeat: {hb}")
    lag = get_json(port, "/lag")
    for k in ("now", "p50", "p90", "p99", "max", "window_s"):
        if k not in lag["lag_ms"]:
            fail(f"{kind} /lag lacks lag_ms.{k}: {lag}")
    if lag["mode"] != kind or lag["loops"][0]["samples"] < 10:
        fail(f"{kind} /lag: {lag}")

    # /block: 300 ms on the loop stalls the heartbeat and shows in /lag
    late0 = get_json(port, "/heartbeat")["late_beats"]
    b = get_json(port, "/block?ms=300")
    if not 290 <= b["blocked_ms"] < 3000:
        fail(f"{kind} /block: {b}")
    time.sleep(0.1)
    hb = get_json(port, "/heartbeat")
    if hb["late_beats"] <= late0 or hb["max_gap_ms"] < 280:
        fail(f"{kind}: /block did not stall the heartbeat: {hb}")
    lag = get_json(port, "/lag")
    if lag["lag_ms"]["max"] < 250:
        fail(f"{kind}: /block not in /lag: {lag}")


def max_gap_during(port, path):
    """The largest heartbeat gap (ms) streamed while GET path runs."""
    got = {}

    def listen():
        got["body"] = get(port, "/heartbeat?stream=1&count=30")[2]

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.1)  # the stream is open and beating
    status = get(port, path)[0]
    t.join(timeout=30)
    if status != 200 or "body" not in got:
        fail(f"{path}: status {status}, stream {'ok' if 'body' in got else 'missing'}")
    return max(float(m) for m in re.findall(r"gap=([\d.]+)ms", got["body"].decode()))


def check_work(kind, port):
    """/slow off the loop, /cpu in slices, the heartbeat stream."""
    # /slow: 300 ms on the pool; a heartbeat stream meanwhile sees no stall
    t0 = time.monotonic()
    s = get_json(port, "/slow?ms=300")
    if not 290 <= s["ran_ms"] < 3000 or s["queued_ms"] < 0:
        fail(f"{kind} /slow: {s}")
    if time.monotonic() - t0 < 0.29:
        fail(f"{kind} /slow answered before its job ran")

    # /cpu: 100 ms in 10 ms slices; 10 slices (CPU time: exact count)
    c = get_json(port, "/cpu?ms=100&slice_ms=10")
    if c["slices"] != 10 or c["elapsed_ms"] < 95:
        fail(f"{kind} /cpu sliced: {c}")
    c = get_json(port, "/cpu?ms=50&slice_ms=0")
    if c["slices"] != 1:
        fail(f"{kind} /cpu unsliced: {c}")

    # the loop stays free while they run: a 400 ms job would show as a
    # >= 390 ms gap; 250 ms leaves room for a loaded machine
    for path in ("/slow?ms=400", "/cpu?ms=400&slice_ms=5"):
        gap = max_gap_during(port, path)
        if gap >= 250:
            fail(f"{kind}: heartbeat gap {gap} ms during {path}: the loop was held")

    # the stream: three beats, one line each, in loopd's format
    status, _, body = get(port, "/heartbeat?stream=1&count=3")
    lines = body.decode().splitlines()
    if status != 200 or len(lines) != 3 or not all(re.match(r"beat \d+ t=[\d.]+s gap=[\d.]+ms( LATE)?$", x) for x in lines):
        fail(f"{kind} heartbeat stream: {body!r}")


def check_misc(kind, port):
    """/echo, /metrics, 400 for bad input, 404."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/echo", data=b"x" * 1024, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.read() != b"x" * 1024:
            fail(f"{kind} /echo")
    _, _, m = get(port, "/metrics")
    if not re.search(rb'^peer_http_requests_total\{route="/"\} 1$', m, re.M):
        fail(f"{kind} /metrics: {m!r}")
    for bad in ("/slow?ms=-1", "/block?ms=abc", "/cpu?ms=10&slice_ms=x", "/slow?ms=999999"):
        if get(port, bad)[0] != 400:
            fail(f"{kind} {bad} is not a 400")
    if get(port, "/nope")[0] != 404:
        fail(f"{kind} /nope is not a 404")


def check(kind):
    proc, port = start(kind)
    try:
        check_monitor(kind, port)
        check_work(kind, port)
        check_misc(kind, port)
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail(f"{kind}: did not stop on SIGTERM")
    if rc != 0:
        fail(f"{kind}: exit status {rc} after SIGTERM")
    print(f"ok: {kind} peer: every route")


def main():
    if not have("aiohttp"):
        print("python3-aiohttp not installed for /usr/bin/python3: skipped")
        sys.exit(77)
    check("asyncio")
    if have("uvloop"):
        check("uvloop")
    else:
        print("python3-uvloop not installed: uvloop skipped")


if __name__ == "__main__":
    main()
