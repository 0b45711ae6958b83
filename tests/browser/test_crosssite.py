#!/usr/bin/env python3
"""test_crosssite: a page from another origin cannot drive or read loopd.

Headless Chromium (the DevTools-over-a-pipe driver of test_dashboard.py),
in event and thread mode:
  - a page served from another origin (127.0.0.2, another port) fires
    <img src=http://127.0.0.1:PORT/block?ms=500>, fetch() in no-cors and cors
    mode at /block and /cpu, a fetch of /lag and an EventSource on /events:
    loopd refuses each (403), the refusal counter in /metrics rises by one
    per request, and loopd's heartbeat, streamed throughout, shows no gap a
    500 ms block would make (event mode; in thread mode a /block holds only
    its own thread, so there the counter is the check);
  - a DNS-rebinding page: Chromium resolves rebind.test to 127.0.0.1
    (--host-resolver-rules), so http://rebind.test:PORT/dashboard reaches
    loopd with that Host: 421, and the page's own fetch of /block is 421 too;
  - the dashboard opened at loopd's own origin still works: snapshots
    arrive, and its "Block" button gets a 200 from /block.
Skips (exit 77) where Chromium is missing. Env: LOOPD_BIN, CHROMIUM.
"""
import http.client
import http.server
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboard import SKIP, STEP_TIMEOUT_S, Browser, Loopd, fail, find_chromium  # noqa: E402

ATTACK = """<!doctype html><meta charset=utf-8><title>another site</title>
<img id=img src="{t}/block?ms=500">
<script>
window.results = {{}};
const T = "{t}";
const done = (k, v) => {{ results[k] = String(v); }};
document.getElementById('img').onload = () => done('img', 'loaded');
document.getElementById('img').onerror = () => done('img', 'error');
fetch(T + '/block?ms=500', {{mode: 'no-cors'}}).then(r => done('nocors', r.type), e => done('nocors', e));
fetch(T + '/cpu?ms=500', {{mode: 'cors'}}).then(r => done('cors', r.status), e => done('cors', 'blocked'));
fetch(T + '/lag').then(r => r.text()).then(t => done('lag', t), e => done('lag', 'blocked'));
const es = new EventSource(T + '/events');
es.onmessage = m => done('events', 'message');
es.onerror = () => {{ done('events', 'error ' + es.readyState); es.close(); }};
</script>"""


class Heartbeat:
    """Reads /heartbeat?stream=1 (a plain client) and keeps the largest gap."""

    def __init__(self, base):
        host, port = base[len("http://"):].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.request("GET", "/heartbeat?stream=1")
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            fail("heartbeat stream: %d" % self.resp.status)
        self.gaps = []
        self.stop = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while not self.stop:
            line = self.resp.readline()
            if not line:
                return
            m = re.search(rb"gap=([0-9.]+)ms", line)
            if m:
                self.gaps.append(float(m.group(1)))

    def max_gap_since(self, n):
        return max(self.gaps[n:], default=0.0)

    def close(self):
        self.stop = True
        self.conn.close()


def metric(base, series):
    body = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    fail("no %s in /metrics" % series)


def wait_until(pred, timeout_s, what):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def serve_attack_page(target):
    """The other origin: a page on 127.0.0.2, a port of its own."""
    page = ATTACK.format(t=target).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page) if self.path == "/" else 0))
            self.end_headers()
            if self.path == "/":
                self.wfile.write(page)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.2:%d/" % srv.server_address[1]


def check_other_origin(b, srv, mode):
    cross = 'loopd_http_refused_total{reason="cross_site"}'
    before = metric(srv.base, cross)
    hb = Heartbeat(srv.base)
    page, url = serve_attack_page(srv.base)
    try:
        wait_until(lambda: len(hb.gaps) >= 2, STEP_TIMEOUT_S, "heartbeats")
        n0 = len(hb.gaps)
        b.call("Page.navigate", url=url)
        b.wait_for("window.results && Object.keys(window.results).length >= 5", STEP_TIMEOUT_S,
                   "the other origin's five requests to settle")
        got = b.eval("JSON.stringify(window.results)")
        print("%s mode, the other origin's page saw: %s" % (mode, got), flush=True)
        res = b.eval("window.results")
        if res["img"] != "error" or res["cors"] != "blocked" or res["lag"] != "blocked":
            fail("a cross-site request was answered: %s" % got)
        if not res["events"].startswith("error"):
            fail("the cross-site EventSource got a stream: %s" % got)
        # A 500 ms block that ran would leave a gap of 500 ms or more: five
        # more beats after the page's requests settled would show it.
        n1 = len(hb.gaps)
        wait_until(lambda: len(hb.gaps) >= n1 + 5, STEP_TIMEOUT_S, "five more heartbeats")
        gap = hb.max_gap_since(n0)
        print("%s mode: heartbeat's largest gap while the page ran: %.1f ms (%d beats)"
              % (mode, gap, len(hb.gaps) - n0), flush=True)
        if gap >= 450:
            fail("%s mode: a %.0f ms heartbeat gap: the cross-site /block ran" % (mode, gap))
        # One refusal per request the page made (a 403 EventSource is not retried).
        wait_until(lambda: metric(srv.base, cross) >= before + 5, STEP_TIMEOUT_S,
                   "five cross-site refusals in /metrics")
        # This server's first refusal is logged at once.
        wait_until(lambda: re.search(rb"loopd: refused GET /(block|cpu|lag|events)\S* from 127\.0\.0\.1:\d+: "
                                     rb"a browser request from another site", srv.log),
                   5, "the refusal's log line")
    finally:
        hb.close()
        page.shutdown()


def check_rebinding(b, srv):
    port = srv.base.rsplit(":", 1)[1]
    host = 'loopd_http_refused_total{reason="host"}'
    before = metric(srv.base, host)
    b.call("Page.navigate", url="http://rebind.test:%s/dashboard" % port)
    b.wait_for("document.readyState === 'complete' && document.body !== null", STEP_TIMEOUT_S,
               "the rebinding page to load")
    text = b.eval("document.body.innerText")
    if "does not answer for that Host" not in text:
        fail("http://rebind.test:%s/dashboard was answered: %r" % (port, text[:200]))
    # The page's own origin is now rebind.test: its "same-origin" fetch is refused too.
    b.eval("window.st = 0; fetch('/block?ms=500').then(r => window.st = r.status, e => window.st = -1)")
    b.wait_for("window.st !== 0", STEP_TIMEOUT_S, "the rebound page's fetch")
    if b.eval("window.st") != 421:
        fail("the rebound page's fetch of /block got %s" % b.eval("window.st"))
    wait_until(lambda: metric(srv.base, host) >= before + 2, STEP_TIMEOUT_S,
               "two host refusals in /metrics")


def check_own_dashboard(b, srv, mode):
    b.open(srv.base + "/dashboard?interval_ms=250")
    b.wait_for("window.loopd.snapshots >= 2", STEP_TIMEOUT_S, "snapshots (%s mode)" % mode)
    b.eval("document.getElementById('in-block').value = 200; document.getElementById('btn-block').click()")
    b.wait_for("document.getElementById('results').textContent.includes('GET /block?ms=200 \u2192 200')",
               STEP_TIMEOUT_S, "the dashboard's own Block button to get its 200")


def run(b, mode):
    srv = Loopd("--mode", mode)
    try:
        check_other_origin(b, srv, mode)
        check_rebinding(b, srv)
        check_own_dashboard(b, srv, mode)
    finally:
        srv.stop()


def main():
    exe = find_chromium()
    if exe is None:
        print("SKIP: no Chromium (apt-get install chromium, or set CHROMIUM=/path)", flush=True)
        return SKIP
    # Chromium with one name resolved to loopd: the DNS-rebinding attacker's trick.
    tmp = tempfile.mkdtemp(prefix="loopd-crosssite-")
    wrapper = os.path.join(tmp, "chromium")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec "%s" --host-resolver-rules="MAP rebind.test 127.0.0.1" "$@"\n' % exe)
    os.chmod(wrapper, 0o755)
    b = Browser(wrapper)
    try:
        for mode in ("event", "threads"):
            run(b, mode)
    finally:
        b.close()
        os.unlink(wrapper)
        os.rmdir(tmp)
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
