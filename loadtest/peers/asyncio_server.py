#!/usr/bin/python3
"""asyncio_server: loopd's teaching routes, the asyncio way, on aiohttp.

  /usr/bin/python3 loadtest/peers/asyncio_server.py --port N [--uvloop]
      [--host 127.0.0.1] [--threads 4] [--heartbeat-ms 100] [--sample-ms 10]

Routes, with loopd's JSON shapes where they apply:
  /                      Hello, World!
  POST /echo             the body back
  /slow?ms=N             time.sleep(N ms) in run_in_executor on a pool of --threads
  /block?ms=N            time.sleep(N ms) on the loop itself (the classic mistake)
  /cpu?ms=N&slice_ms=K   N ms of CPU time, `await asyncio.sleep(0)` every K ms
  /heartbeat[?stream=1&count=N]   a task beating every --heartbeat-ms
  /lag                   how late a timer due every --sample-ms ran, over 10 s
  /metrics               requests answered by route (for loadtest/lag-demo)

Lag is defined as loopd defines it: a sampling task sleeps --sample-ms and
records how much later than that it woke. With --port 0 the kernel picks the
port; the listen line says which, as loopd's does.
"""
import argparse
import asyncio
import collections
import concurrent.futures
import json
import os
import signal
import sys
import time

from aiohttp import web

WINDOW_S = 10.0  # /lag's window, as loopd's
MAX_MS = 60000  # the largest ms a route accepts (loopd's work.max_ms default)
MAX_STREAM = 1000000000


def json_reply(obj):
    """Compact JSON, as loopd writes it ({"max":1.5}, no spaces)."""
    return web.json_response(obj, dumps=lambda o: json.dumps(o, separators=(",", ":")))


def now_s():
    return time.monotonic()


class Monitor:
    """The lag sampler and the heartbeat, two tasks on the serving loop."""

    def __init__(self, sample_ms, heartbeat_ms):
        self.sample_ms = sample_ms
        self.heartbeat_ms = heartbeat_ms
        self.start = now_s()
        self.lags = collections.deque()  # (time, lag ms) over the last WINDOW_S
        self.samples = 0
        self.lag_now = 0.0
        self.beats = 0
        self.last_beat = self.start
        self.max_gap_ms = 0.0
        self.late_beats = 0
        self.beat_cond = None  # asyncio.Condition, made on the loop
        self.last_gap_ms = 0.0

    async def sample(self):
        period = self.sample_ms / 1000.0
        while True:
            due = now_s() + period
            await asyncio.sleep(period)
            t = now_s()
            self.lag_now = max(0.0, (t - due) * 1000.0)
            self.samples += 1
            self.lags.append((t, self.lag_now))
            while self.lags and self.lags[0][0] < t - WINDOW_S:
                self.lags.popleft()

    async def heartbeat(self):
        self.beat_cond = asyncio.Condition()
        period = self.heartbeat_ms / 1000.0
        while True:
            await asyncio.sleep(period)
            t = now_s()
            gap = (t - self.last_beat) * 1000.0
            self.last_beat = t
            self.beats += 1
            self.last_gap_ms = gap
            self.max_gap_ms = max(self.max_gap_ms, gap)
            if gap > 1.5 * self.heartbeat_ms:
                self.late_beats += 1
            async with self.beat_cond:
                self.beat_cond.notify_all()

    def lag_summary(self):
        t = now_s()
        vals = sorted(v for (ts, v) in self.lags if ts >= t - WINDOW_S)

        def pct(q):
            if not vals:
                return 0.0
            i = min(len(vals) - 1, max(0, int(q * len(vals) + 0.999) - 1))
            return round(vals[i], 3)

        return {"now": round(self.lag_now, 3), "p50": pct(0.50), "p90": pct(0.90),
                "p99": pct(0.99), "max": round(vals[-1], 3) if vals else 0.0,
                "window_s": int(WINDOW_S)}


def query_int(request, name, default, lo, hi):
    """An integer query parameter in [lo, hi], or raises a 400 saying why."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = None
    if v is None or v < lo or v > hi:
        raise web.HTTPBadRequest(text=f"{name} must be an integer {lo}..{hi}\n")
    return v


def burn_cpu(seconds):
    """Burns this much CPU time of the calling thread (not wall time)."""
    end = time.thread_time() + seconds
    x = 88172645463325252
    while time.thread_time() < end:
        for _ in range(200):
            x = (x ^ (x << 13)) & 0xFFFFFFFFFFFFFFFF
            x ^= x >> 7
            x = (x ^ (x << 17)) & 0xFFFFFFFFFFFFFFFF
    return x


class Routes:
    """The handlers; each counts what it answered (for /metrics)."""

    def __init__(self, args, mon, pool):
        self.args, self.mon, self.pool = args, mon, pool
        self.counts = collections.Counter()
        self.mode = "uvloop" if args.uvloop else "asyncio"

    def app(self):
        app = web.Application()
        app.add_routes([web.get("/", self.hello), web.post("/echo", self.echo),
                        web.get("/slow", self.slow), web.get("/block", self.block),
                        web.get("/cpu", self.cpu), web.get("/heartbeat", self.heartbeat),
                        web.get("/lag", self.lag), web.get("/metrics", self.metrics)])
        return app

    async def hello(self, request):
        self.counts["/"] += 1
        return web.Response(text="Hello, World!")

    async def echo(self, request):
        body = await request.read()  # aiohttp bounds it (client_max_size, 1 MiB)
        self.counts["/echo"] += 1
        return web.Response(body=body, content_type="application/octet-stream")

    async def slow(self, request):
        ms = query_int(request, "ms", 100, 0, MAX_MS)
        submit = now_s()
        times = {}

        def job():  # on a pool thread: the loop goes on meanwhile
            times["start"] = now_s()
            time.sleep(ms / 1000.0)
            times["end"] = now_s()

        await asyncio.get_running_loop().run_in_executor(self.pool, job)
        self.counts["/slow"] += 1
        return json_reply({"ms": ms,
                           "queued_ms": round((times["start"] - submit) * 1000, 3),
                           "ran_ms": round((times["end"] - times["start"]) * 1000, 3)})

    async def block(self, request):
        ms = query_int(request, "ms", 100, 0, MAX_MS)
        t0 = now_s()
        time.sleep(ms / 1000.0)  # on the loop, on purpose: everyone waits
        self.counts["/block"] += 1
        return json_reply({"ms": ms, "blocked_ms": round((now_s() - t0) * 1000, 3)})

    async def cpu(self, request):
        ms = query_int(request, "ms", 100, 0, MAX_MS)
        slice_ms = query_int(request, "slice_ms", 1, 0, MAX_MS)
        t0 = now_s()
        left = ms * 1000  # microseconds, integers: no float residue makes an extra slice
        step = left if slice_ms == 0 else slice_ms * 1000
        slices = 0
        if slice_ms:
            await asyncio.sleep(0)  # even the first slice waits its turn, as in loopd
        while left > 0:
            burn_cpu(min(step, left) / 1e6)
            left -= step
            slices += 1
            if slice_ms and left > 0:
                await asyncio.sleep(0)  # yield: other coroutines run between slices
        self.counts["/cpu"] += 1
        return json_reply({"ms": ms, "slices": slices,
                           "elapsed_ms": round((now_s() - t0) * 1000, 3)})

    async def heartbeat(self, request):
        stream = query_int(request, "stream", 0, 0, 1)
        count = query_int(request, "count", 0, 0, MAX_STREAM)
        self.counts["/heartbeat"] += 1
        mon = self.mon
        if not stream:
            return json_reply({
                "interval_ms": mon.heartbeat_ms, "beats": mon.beats,
                "last_beat_ms_ago": round((now_s() - mon.last_beat) * 1000, 3),
                "max_gap_ms": round(mon.max_gap_ms, 3), "late_beats": mon.late_beats,
                "loop": 0})
        return await self.beat_stream(request, count or MAX_STREAM)

    async def beat_stream(self, request, left):
        """One line per beat, in loopd's format, until left beats or the client goes."""
        mon = self.mon
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        seen = mon.beats
        while left > 0:
            async with mon.beat_cond:
                await mon.beat_cond.wait_for(lambda: mon.beats > seen)
            seen = mon.beats
            late = " LATE" if mon.last_gap_ms > 1.5 * mon.heartbeat_ms else ""
            line = "beat %d t=%.3fs gap=%.1fms%s\n" % (
                seen, mon.last_beat - mon.start, mon.last_gap_ms, late)
            await resp.write(line.encode())
            left -= 1
        await resp.write_eof()
        return resp

    async def lag(self, request):
        self.counts["/lag"] += 1
        lag_ms = self.mon.lag_summary()
        one = dict(lag_ms)
        one.pop("window_s")
        return json_reply({
            "mode": self.mode, "uptime_s": round(now_s() - self.mon.start, 3), "lag_ms": lag_ms,
            "loops": [{"loop": 0, "lag_ms": one, "samples": self.mon.samples}],
            "work": {"threads": self.args.threads}})

    async def metrics(self, request):
        self.counts["/metrics"] += 1
        lines = ["# TYPE peer_http_requests_total counter"]
        for route, n in sorted(self.counts.items()):
            lines.append('peer_http_requests_total{route="%s"} %d' % (route, n))
        return web.Response(text="\n".join(lines) + "\n")


async def serve(args):
    mon = Monitor(args.sample_ms, args.heartbeat_ms)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.threads)
    app = Routes(args, mon, pool).app()
    tasks = [asyncio.create_task(mon.sample()), asyncio.create_task(mon.heartbeat())]
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=3600)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096, reuse_address=True)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    kind = "uvloop" if args.uvloop else "asyncio"
    print(f"asyncio_server: listening on http://{args.host}:{port} ({kind}, aiohttp, "
          f"{args.threads} executor threads, pid {os.getpid()})", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await runner.cleanup()
    pool.shutdown(wait=False, cancel_futures=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--uvloop", action="store_true", help="run on uvloop (libuv) instead of asyncio's loop")
    p.add_argument("--threads", type=int, default=4, help="executor threads for /slow (work.threads)")
    p.add_argument("--heartbeat-ms", type=int, default=100)
    p.add_argument("--sample-ms", type=int, default=10)
    args = p.parse_args()
    for name in ("threads", "heartbeat_ms", "sample_ms"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit("asyncio_server: uvloop is not installed (apt-get install python3-uvloop)")
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
