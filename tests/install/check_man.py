#!/usr/bin/python3
"""check_man.py MANPAGE LOOPD [METRICS_FILE]: the installed loopd(1) documents
what the binary says it has. From `loopd --help` and `loopd --print-config`:
every option, every config key under its [section] with its real default, every
route, every exit status; plus the signals and the files; and, given a /metrics
scrape, every metric name. Prints what is missing and exits 1, else 0."""
import re
import subprocess
import sys


def roff_sections(path):
    """{'.SH name': [plain lines]} and {'[section]': [plain lines]} from scdoc's roff."""
    sh, ss = {}, {}
    cur_sh = cur_ss = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith(".SH "):
                cur_sh, cur_ss = line[4:].strip('"'), None
                sh[cur_sh] = []
                continue
            if line.startswith(".SS "):
                cur_ss = line[4:].strip('"')
                ss[cur_ss] = []
                continue
            if line.startswith(".") or cur_sh is None:
                continue  # a macro (.PP, .RS, .nf ...), not text
            text = re.sub(r"\\f[BIRP]", "", line).replace("\\&", "").replace("\\e", "\\")
            sh[cur_sh].append(text)
            if cur_ss is not None:
                ss[cur_ss].append(text)
    return sh, ss


def run(loopd, *args):
    return subprocess.run([loopd, *args], check=True, capture_output=True, text=True).stdout


def main():
    man, loopd = sys.argv[1], sys.argv[2]
    sh, ss = roff_sections(man)
    missing = []

    def need(cond, what):
        if not cond:
            missing.append(what)

    for name in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION", "ROUTES",
                 "SIGNALS", "EXIT STATUS", "ENVIRONMENT", "FILES"]:
        need(name in sh, f"section {name}")
    usage = run(loopd, "--help")

    # Options: the synopsis's and the option list's (--help names them all).
    opts = set(re.findall(r"(?<![\w-])(--[a-z-]+|-h)\b", usage.split("Keys (default):")[0]))
    for o in sorted(opts):
        pat = re.compile(rf"^(-[a-z], )?{re.escape(o)}( |,|$)")
        need(any(pat.match(l) for l in sh.get("OPTIONS", [])), f"option {o}")

    # Keys: under [section], "key = ... (default VALUE" with the binary's default.
    section = None
    nkeys = 0
    for line in run(loopd, "--print-config").splitlines():
        if m := re.match(r"^\[(\w+)\]$", line):
            section = m.group(1)
        elif m := re.match(r"^(\w+) = (.*)$", line):
            nkeys += 1
            key, default = m.groups()
            body = ss.get(f"[{section}]", [])
            pat = re.compile(rf"^{re.escape(key)} = .*\(default {re.escape(default)}[,)]")
            need(any(pat.match(l) for l in body), f"key {section}.{key} (default {default})")
    need(nkeys > 20, f"--print-config listed only {nkeys} keys")

    # Routes: a "Routes:" block in --help, one "  /x  description" line each;
    # each route an item "GET /x" or "ANY /x" in the man page.
    routes = re.search(r"^Routes:\n((?:  /.*\n?)+)", usage, re.M)
    need(routes is not None, "a Routes: block in loopd --help")
    listed = re.findall(r"^  (/\S*)", routes.group(1), re.M) if routes else []
    need(len(listed) > 10, f"loopd --help lists only {len(listed)} routes")
    for r in listed:
        pat = re.compile(rf"^[A-Z]+ {re.escape(r)}(\[|\?|$)")
        need(any(pat.match(l) for l in sh.get("ROUTES", [])), f"route {r}")

    # Exit statuses: "Exit status: 0 ok, 1 ..., 2 ..." in --help; each an item.
    m = re.search(r"^Exit status: (.*)$", usage, re.M)
    codes = re.findall(r"\b(\d+) [a-z]", m.group(1)) if m else []
    need(len(codes) >= 3, "an Exit status: line with 0, 1 and 2 in loopd --help")
    for c in codes:
        need(any(re.match(rf"^{c}(,|$)", l) for l in sh.get("EXIT STATUS", [])), f"exit status {c}")

    for s in ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"]:
        need(any(l.startswith(s) or l.startswith(f"SIGTERM, {s}") for l in sh.get("SIGNALS", [])),
             f"signal {s}")
    files = "\n".join(sh.get("FILES", []))
    for f in ["loopd/loopd.ini", "loopd.service", "logrotate.d/loopd"]:
        need(f in files, f"file {f}")

    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            names = re.findall(r"^# TYPE (\w+) ", f.read(), re.M)
        need(len(names) > 10, f"only {len(names)} metrics in the scrape")
        text = "\n".join(sh.get("ROUTES", []))
        for n in names:
            need(re.search(rf"(?<!\w){n}(?!\w)", text) is not None, f"metric {n}")

    if missing:
        print("loopd(1) is missing:\n  " + "\n  ".join(missing))
        return 1
    print(f"loopd(1) documents {len(opts)} options, {nkeys} keys with their defaults, "
          f"{len(routes.group(1).split())} routes, exit statuses {', '.join(codes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
