#!/usr/bin/env python3
"""test_dashboard: a real browser (headless Chromium) opens /dashboard.

It drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
NUL-separated JSON on fds 3 and 4, no websocket, no extra package) and checks
what a person would see (event mode with --loops 2):
  - snapshots arrive from /events and the tab title turns into "X ms lag";
  - Pause freezes the charts while snapshots still come, the window selector
    zooms, and the auto window starts at one minute;
  - a click on "Block the loop" shows a stall naming GET /block within two
    seconds of the block ending, the diagnosis names /block, and the stall
    is marked on every chart;
  - a mouse over a chart shows the values there;
  - the burst button's one request fills the pool: the queue shown reaches
    N minus the pool size, and the in-flight table lists the burst;
  - a reload replays recent snapshots (the charts and the stall come back);
  - SIGTERM to the server: the page says "disconnected", greys its figures
    and retries;
  - the page asks for nothing but loopd's own URLs, gets no error answer,
    throws no JS errors and logs none (a CSP violation is one);
  - with routes.block=off the /block and /cpu buttons are absent, and one
    loop's legend is labelled;
  - in thread mode the page says what its lag means and what /block blocks.
Skips (exit 77) with a message where Chromium is missing.
Env: LOOPD_BIN (the server), LOOPD_SCREENSHOT (where the PNG goes), CHROMIUM.
`test_dashboard.py --demo OUT.png` plays a scripted minute instead and saves
the README's screenshot (doc/dashboard.png).
"""
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
START_TIMEOUT_S = 10
STEP_TIMEOUT_S = 20
# A first start on a fresh machine builds Chromium's profile and font caches
# and can take far longer than a step (seen: over 20 s while the sanitizer
# suite runs beside it); a start that still does not answer is retried once.
BROWSER_START_TIMEOUT_S = 60
BROWSER_START_TRIES = 2


class NoAnswer(Exception):
    pass


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Loopd:
    """loopd on 127.0.0.1:0; the port is read from its start line."""

    def __init__(self, *args):
        cmd = [os.environ["LOOPD_BIN"], "--listen", "127.0.0.1:0", *args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.log = b""
        end = time.monotonic() + START_TIMEOUT_S
        while b"listening on http://" not in self.log:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.proc.stderr], [], [], left)[0]:
                self.stop()
                fail("loopd did not start: %r" % self.log)
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                fail("loopd exited: %r" % self.log)
            self.log += chunk
        m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", self.log)
        self.base = "http://127.0.0.1:%s" % m.group(1).decode()
        # Keep reading stderr so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                return
            self.log += chunk

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Browser:
    """Headless Chromium with the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, exe):
        for attempt in range(1, BROWSER_START_TRIES + 1):
            try:
                self._start(exe)
                return
            except NoAnswer:
                err = self._stderr_tail()
                self.kill()
                print("Chromium start %d of %d: no answer in %d s; its stderr ends with:\n%s"
                      % (attempt, BROWSER_START_TRIES, BROWSER_START_TIMEOUT_S, err), flush=True)
        fail("Chromium did not start (see above)")

    def _stderr_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return "(no stderr)"

    def _start(self, exe):
        self.profile = tempfile.mkdtemp(prefix="loopd-chromium-")
        self.stderr_path = os.path.join(self.profile, "stderr.log")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():  # in the child: the pipes become fds 3 and 4, kept across exec
            a, b = os.dup(to_child_r), os.dup(from_child_w)  # above 4, whatever the pipes were
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--disable-default-apps", "--mute-audio",
                 "--disable-dev-shm-usage",
                 "--remote-debugging-pipe", "--user-data-dir=" + self.profile, "about:blank"]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([exe, *flags], preexec_fn=fds, close_fds=False,
                                         stdout=subprocess.DEVNULL, stderr=err)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        # The first answer proves the browser is up; it gets the start budget.
        target = self.call("Target.createTarget", timeout_s=BROWSER_START_TIMEOUT_S,
                           on_timeout=NoAnswer, url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=1200,
                  deviceScaleFactor=1, mobile=False)

    def _read_message(self, deadline, on_timeout=None):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                if on_timeout:
                    raise on_timeout()
                fail("Chromium did not answer in time:\n" + self._stderr_tail())
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                fail("Chromium exited")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, timeout_s=STEP_TIMEOUT_S, on_timeout=None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            m = self._read_message(deadline, on_timeout)
            if m.get("id") == self.next_id:
                if "error" in m:
                    fail("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            fail("evaluating %s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout_s, what):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.05)
        fail("timed out waiting for " + what)

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for("window.loopd !== undefined && document.readyState === 'complete'", STEP_TIMEOUT_S,
                      "the page to load")

    def check_clean(self, base):
        """No JS errors, no error in the console (a Content-Security-Policy
        violation is one), no error answer to the page's own requests (a
        parameter a route does not know is a 400), and every request went
        to loopd itself. Network errors are not counted: a stopped server's
        stream fails to reconnect, and that is the page's business."""
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                fail("the page threw: %s" % params["exceptionDetails"])
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                fail("the page logged an error: %s" % params["args"])
            if method == "Log.entryAdded" and params["entry"]["level"] == "error" \
                    and params["entry"]["source"] != "network":
                fail("the browser logged an error: %s" % params["entry"])
            # The browser's own /favicon.ico is no request of the page's
            # (the page declares no icon: loopd's test_events wants no <link>),
            # also when a page of an earlier test's server asks it.
            if method == "Network.responseReceived" and params["response"]["status"] >= 400 \
                    and not params["response"]["url"].endswith("/favicon.ico"):
                fail("the page's request was refused: %s %s" % (params["response"]["status"], params["response"]["url"]))
            if e.get("method") == "Network.requestWillBeSent":
                url = e["params"]["request"]["url"]
                # A page of an earlier test (its server stopped) may still
                # retry its EventSource: any loopd on loopback is "itself".
                if not (url.startswith(base + "/") or url.startswith("data:")
                        or re.match(r"http://127\.0\.0\.1:\d+/events\?", url)):
                    fail("the page loaded something else: %s (loopd is %s)" % (url, base))
        self.events.clear()

    def fit_page(self):
        """The viewport made as tall as the page, so a screenshot holds all of it."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=max(1200, int(size["height"]) + 1),
                  deviceScaleFactor=1, mobile=False)

    def screenshot(self, path):
        self.fit_page()
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def close(self):
        try:
            self.call("Browser.close")
            self.proc.wait(10)
        except SystemExit:
            raise
        except Exception:
            pass
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


SNAPSHOTS = "window.loopd.snapshots"
CHARTS = ("lag", "beat", "util", "work", "conns", "rps", "rss", "cpu")


def set_value(b, el, v):
    b.eval("document.getElementById(%s).value = %s" % (json.dumps(el), json.dumps(str(v))))


def click(b, el):
    b.eval("document.getElementById(%s).click()" % json.dumps(el))


def check_block_stall(b):
    """A click on the block button: the stall row names the request, soon."""
    set_value(b, "in-block", 500)
    t0 = time.monotonic()
    click(b, "btn-block")
    seen = b.wait_for("[...document.querySelectorAll('#stalls tr.stall')].map(r => r.textContent)"
                      ".find(t => t.includes('GET /block?ms=500')) || ''", 10, "the /block stall")
    took = time.monotonic() - t0
    print("stall row after %.2f s (block 0.5 s): %s" % (took, seen), flush=True)
    if took > 0.5 + 2.0:
        fail("the stall showed %.2f s after the click: not within two seconds of the block" % took)
    n = b.eval(SNAPSHOTS)
    b.wait_for(SNAPSHOTS + " >= %d" % (n + 2), STEP_TIMEOUT_S, "snapshots after the stall")
    b.wait_for("!document.querySelector('#stalls tr.ongoing')", 5, "the stall to end")


def check_stall_bands(b):
    """The stall is marked on every chart: the column at its band's edge is
    mostly red (a line may cross it)."""
    b.wait_for("window.loopd.stalls.length > 0 && window.loopd.charts.size === %d" % len(CHARTS), 5, "charts drawn")
    time.sleep(0.3)  # the next frame, with the stall in every chart
    red = b.eval("""(() => {
      const st = window.loopd.stalls.find(s => !s.ongoing && s.ms >= 400) || window.loopd.stalls[0];
      return %s.map(id => {
        const m = window.loopd.charts.get(id), cv = document.getElementById('c-' + id), d = devicePixelRatio;
        const x = Math.round((Math.max(m.L, m.tx(st.t0)) + 1) * d), y0 = Math.round(m.T * d), h = Math.round((m.H - m.T - m.B) * d);
        const p = cv.getContext('2d').getImageData(x, y0, 1, h).data;
        let n = 0;
        for (let i = 0; i < p.length; i += 4) if (p[i] > 150 && p[i + 1] < 110 && p[i + 2] < 110 && p[i + 3] > 200) n++;  /* opaque red */
        return [id, n / h];
      });
    })()""" % json.dumps(list(CHARTS)))
    if any(f < 0.7 for _, f in red):
        fail("the stall is not marked on every chart (share of red at its edge): %s" % red)


def check_hover(b):
    """Moving the mouse over a chart shows a crosshair and the values there."""
    r = b.eval("(() => { const c = document.getElementById('c-lag'); c.scrollIntoView({block: 'center'});"
               " const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
    x, y = r[0] + r[2] * 0.8, r[1] + r[3] / 2
    b.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    tip = b.wait_for("(() => { const t = document.getElementById('t-lag');"
                     " return !t.hidden && t.getBoundingClientRect().height > 0 ? t.textContent : ''; })()",
                     5, "the lag chart's tooltip")
    if not re.search(r"p99: [0-9.]+ ms", tip):
        fail("the tooltip shows no lag value: %r" % tip)
    print("tooltip: %r" % tip.replace("\n", " | "), flush=True)
    b.call("Input.dispatchMouseEvent", type="mouseMoved", x=2, y=2)
    b.wait_for("document.getElementById('t-lag').hidden", 5, "the tooltip to go")


def check_pause_and_window(b):
    """Pause freezes the charts and numbers while snapshots still come; the
    window selector zooms; auto starts at one minute."""
    if b.eval("window.loopd.windowS") != 60:
        fail("the auto window does not start at one minute: %r" % b.eval("window.loopd.windowS"))
    click(b, "btn-pause")
    # a render already under way when the click landed may still finish (a
    # slow sanitizer build): the frozen picture is the one that stops changing
    lag_png = "document.getElementById('c-lag').toDataURL()"
    deadline = time.monotonic() + STEP_TIMEOUT_S
    before = b.eval(lag_png)
    while True:
        time.sleep(0.3)
        now = b.eval(lag_png)
        if now == before or time.monotonic() > deadline:
            break
        before = now
    frozen = b.eval("[document.getElementById('c-lag').toDataURL(), document.getElementById('n-rps').textContent]")
    # a stall while paused (a lag far above the frozen picture's scale, and a
    # band) must not show until the resume
    set_value(b, "in-block", 300)
    click(b, "btn-block")
    b.wait_for("window.loopd.stalls.some(s => s.ms >= 250 && !s.ongoing)", STEP_TIMEOUT_S,
               "the stall made while paused")
    n = b.eval(SNAPSHOTS)
    b.wait_for(SNAPSHOTS + " >= %d" % (n + 3), STEP_TIMEOUT_S, "snapshots while paused")
    if b.eval("document.getElementById('c-lag').toDataURL()") != frozen[0]:
        fail("the lag chart moved while paused")
    if "paused" not in b.eval("document.getElementById('status').textContent"):
        fail("the status does not say paused")
    set_value(b, "window", 300)
    b.eval("document.getElementById('window').dispatchEvent(new Event('change'))")
    b.wait_for("window.loopd.windowS === 300", 5, "the 5 min window")
    click(b, "btn-pause")
    set_value(b, "window", "auto")
    b.eval("document.getElementById('window').dispatchEvent(new Event('change'))")
    b.wait_for("window.loopd.windowS === 60 && document.getElementById('c-lag').toDataURL() !== %s"
               % json.dumps(frozen[0]), 5, "the charts to move again after Resume")


def check_diagnosis(b):
    """After the block: the diagnosis sentence names it, with loop time by route."""
    text = b.wait_for("(() => { const d = document.getElementById('diagnosis');"
                      " return !d.hidden && /blocked .*GET \\/block/.test(d.textContent) ? d.textContent : ''; })()",
                      5, "a diagnosis naming /block")
    print("diagnosis: %s" % text, flush=True)


def check_burst(b, jobs=30, ms=600):
    """One click starts N pool jobs: the queue reaches N - pool size, and the
    in-flight table shows the burst's request with its jobs."""
    threads = b.eval("window.loopd.last.work.threads")
    set_value(b, "in-slow-n", jobs)
    set_value(b, "in-slow", ms)
    click(b, "btn-slow")
    want = "%d / %d" % (threads, jobs - threads)
    b.wait_for("document.getElementById('n-work').textContent === %s" % json.dumps(want), 10,
               "the pool queue to reach %d jobs - %d threads (%s shown)" % (jobs, threads, want))
    row = b.wait_for("[...document.querySelectorAll('#requests tr.inflight')].map(r => r.textContent)"
                     ".find(t => t.includes('/slow?ms=%d&jobs=%d') && t.includes('of %d jobs started')) || ''"
                     % (ms, jobs, jobs), 6, "the burst in the in-flight table")
    print("burst: work %s; in flight: %s" % (want, row), flush=True)
    b.wait_for("document.getElementById('results').textContent.includes('GET /slow?ms=%d&jobs=%d → 200')"
               % (ms, jobs), jobs * ms / 1000 / threads + 10, "the burst to end")


def check_reload_keeps_history(b):
    """A reload replays recent snapshots: the charts and the stall list come back."""
    before = b.eval("window.loopd.last.t")
    b.eval("window.before_reload = true")
    b.call("Page.reload")
    b.wait_for("window.before_reload === undefined && window.loopd !== undefined && window.loopd.snapshots > 0",
               STEP_TIMEOUT_S, "the page to reload")
    b.wait_for(SNAPSHOTS + " > 2 && window.loopd.hist[0].t < %f - 4" % before, 5, "the replayed history")
    if not b.eval("window.loopd.stalls.some(s => s.ms >= 400)"):
        fail("after a reload the stall is gone from the list")
    print("after reload: %d snapshots, the oldest %.1f s before the reload"
          % (b.eval(SNAPSHOTS), before - b.eval("window.loopd.hist[0].t")), flush=True)


def check_disconnected(b, srv):
    """The server stops: the page says so, greys its figures, and retries."""
    srv.stop()  # SIGTERM to the loopd this test started, by PID
    b.wait_for("document.body.classList.contains('stale') && !document.getElementById('banner').hidden"
               " && document.getElementById('status').textContent.startsWith('disconnected')", 10,
               "the disconnected state")
    banner = b.eval("(() => { const e = document.getElementById('banner'); const r = e.getBoundingClientRect();"
                    " return r.height > 0 && r.width > 0 ? e.textContent : ''; })()")
    if "Disconnected" not in banner or "Reconnecting" not in banner:
        fail("the disconnected banner is not visible: %r" % banner)
    if b.eval("document.title") != "disconnected · loopd":
        fail("the title does not say disconnected: %r" % b.eval("document.title"))
    if b.eval("getComputedStyle(document.getElementById('n-lag')).color") == "rgb(29, 35, 48)":
        fail("the numbers are not greyed when disconnected")
    print("disconnected: %s" % banner, flush=True)


def test_event_mode(b, shot):
    srv = Loopd("--mode", "event", "--loops", "2")
    try:
        b.open(srv.base + "/dashboard?interval_ms=250")
        b.wait_for(SNAPSHOTS + " >= 3", STEP_TIMEOUT_S, "three snapshots")
        title = b.eval("document.title")
        if not re.fullmatch(r"[0-9.]+ ms lag · loopd", title):
            fail("the title does not show the lag: %r" % title)
        if b.eval("document.querySelectorAll('#btn-block, #btn-cpu, #btn-slow, #in-slice').length") != 4:
            fail("the /block, /cpu (with slice_ms) and /slow controls are missing")
        if b.eval("document.getElementById('btn-block').textContent") != "Block the loop":
            fail("event mode: the block button does not say it blocks the loop")
        b.wait_for("document.getElementById('l-util').textContent !== ''", 5, "the legend drawn")
        legend = b.eval("document.getElementById('l-util').textContent")
        if "loop 0" not in legend or "loop 1" not in legend:
            fail("two loops, yet the utilization legend does not name them: %r" % legend)
        check_pause_and_window(b)
        check_block_stall(b)
        check_diagnosis(b)
        check_stall_bands(b)
        check_hover(b)
        check_burst(b)
        check_reload_keeps_history(b)
        size = b.screenshot(shot)
        print("screenshot: %s (%d bytes)" % (shot, size), flush=True)
        b.check_clean(srv.base)
        check_disconnected(b, srv)
        b.check_clean(srv.base)
    finally:
        srv.stop()


def test_block_off(b):
    srv = Loopd("--mode", "event", "--set", "routes.block=off")
    try:
        b.open(srv.base + "/dashboard?interval_ms=250")
        b.wait_for(SNAPSHOTS + " >= 1", STEP_TIMEOUT_S, "a snapshot (block=off)")
        if b.eval("document.querySelectorAll('#btn-block, #btn-cpu').length") != 0:
            fail("routes.block=off, yet the page shows /block or /cpu buttons")
        if b.eval("!!document.getElementById('btn-slow')") is not True:
            fail("the /slow burst button (always served) is missing")
        b.wait_for("document.getElementById('l-util').textContent !== ''", 5, "the legend drawn")
        legend = b.eval("document.getElementById('l-util').textContent")
        if not legend.startswith("utilization"):
            fail("one loop: the utilization line has no label in the legend: %r" % legend)
        b.check_clean(srv.base)
    finally:
        srv.stop()


def test_thread_mode(b):
    srv = Loopd("--mode", "threads")
    try:
        b.open(srv.base + "/dashboard?interval_ms=250")
        b.wait_for(SNAPSHOTS + " >= 2", STEP_TIMEOUT_S, "snapshots (thread mode)")
        note = b.eval("document.getElementById('mode-note').hidden ? '' : "
                      "document.getElementById('mode-note').textContent")
        if "heartbeat thread" not in note:
            fail("thread mode: the page does not say what its lag means: %r" % note)
        if not re.fullmatch(r"[0-9.]+ ms lag · loopd", b.eval("document.title")):
            fail("thread mode: the title does not show the lag")
        button = b.eval("document.getElementById('btn-block').textContent")
        if "loop" in button or "thread" not in button:
            fail("thread mode: the block button does not say what it blocks: %r" % button)
        # The burst runs its jobs one after another on the request's thread.
        set_value(b, "in-slow-n", 3)
        set_value(b, "in-slow", 100)
        click(b, "btn-slow")
        b.wait_for("document.getElementById('results').textContent.includes('GET /slow?ms=100&jobs=3 → 200')",
                   10, "the thread-mode burst to end")
        b.wait_for("window.loopd.requests !== null && document.querySelectorAll('#requests tr').length > 0", 5,
                   "the in-flight table (thread mode)")
        b.check_clean(srv.base)
    finally:
        srv.stop()


def demo(b, out):
    """The README's screenshot: a minute of /slow bursts, blocks and a /cpu job,
    with a steady trickle of GET / and, once, three blocks in one loop turn."""
    import urllib.request
    srv = Loopd("--mode", "event", "--loops", "2")
    stop = threading.Event()

    def get(path):
        try:
            urllib.request.urlopen(srv.base + path, timeout=10).read()
        except OSError:
            pass

    def traffic():  # a steady ~40 requests a second, so req/s has a baseline
        while not stop.is_set():
            get("/")
            stop.wait(0.025)

    def four_blocks():  # four at once, back to back on the loops
        for ms in (150, 200, 250, 300):
            threading.Thread(target=get, args=("/block?ms=%d" % ms,), daemon=True).start()

    def press(button, **fields):
        for k, v in fields.items():
            set_value(b, k, v)
        click(b, button)

    threading.Thread(target=traffic, daemon=True).start()
    try:
        b.open(srv.base + "/dashboard?interval_ms=250")
        def in_flight():  # something for the in-flight table to show at the end
            threading.Thread(target=get, args=("/echo?delay_ms=4000",), daemon=True).start()
            press("btn-slow", **{"in-slow-n": 24, "in-slow": 1000})

        plan = [(4, lambda: press("btn-slow", **{"in-slow-n": 40, "in-slow": 300})),
                (12, lambda: press("btn-block", **{"in-block": 500})),
                (20, lambda: press("btn-cpu", **{"in-cpu": 3000, "in-slice": 1})),
                (28, four_blocks),
                (34, lambda: press("btn-slow", **{"in-slow-n": 60, "in-slow": 300})),
                (47, lambda: press("btn-block", **{"in-block": 900})),
                (50, in_flight)]
        t0 = time.monotonic()
        for at, act in plan:
            time.sleep(max(0, t0 + at - time.monotonic()))
            act()
        time.sleep(max(0, t0 + 53 - time.monotonic()))
        b.fit_page()
        r = b.eval("(() => { const c = document.getElementById('c-lag'), m = window.loopd.charts.get('lag');"
                   " const st = window.loopd.stalls.find(s => s.ms >= 800); const r = c.getBoundingClientRect();"
                   " return [r.left + (st ? m.tx(st.t1) + 2 : r.width * 0.8), r.top + r.height / 2]; })()")
        b.call("Input.dispatchMouseEvent", type="mouseMoved", x=r[0], y=r[1])
        time.sleep(0.5)
        print("demo screenshot: %s (%d bytes)" % (out, b.screenshot(out)), flush=True)
    finally:
        stop.set()
        srv.stop()


def main():
    exe = find_chromium()
    if exe is None:
        print("SKIP: no Chromium (apt-get install chromium, or set CHROMIUM=/path)", flush=True)
        return SKIP
    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        b = Browser(exe)
        try:
            demo(b, sys.argv[2])
        finally:
            b.close()
        return 0
    shot = os.environ.get("LOOPD_SCREENSHOT", "dashboard.png")
    b = Browser(exe)
    try:
        test_event_mode(b, shot)
        test_block_off(b)
        test_thread_mode(b)
    finally:
        b.close()
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
