#!/usr/bin/env python3
"""rules.py: the layout rules of server/, one per subcommand; exit 1 when one is
broken (each finding on its own line), 0 when none is.

    rules.py cycles       [--allow A>B]... ROOT
        No include cycle between modules. A module is a file stem (x.c + x.h);
        NAME_int.h is NAME's private header and counts as module NAME. An
        allowed edge A>B is left out of the graph.
    rules.py implementers [--allow HEADER]... --root ROOT LIB.a...
        Each header is implemented by one .c: the objects that define (nm T)
        a function the header declares at column 0. Header-only modules have
        no implementer and pass; a folder's private header (NAME_int.h) is
        shared by that folder's files and is not checked.
    rules.py prefixes     --map FILE [--allow SYMBOL]... LIB.a...
        Every export carries its module's prefix. FILE has lines
        "module prefix...": a symbol passes when it starts with one of the
        prefixes or equals one without its trailing '_'. An unlisted module fails.
    rules.py errno        [--allow FILE]... ROOT
        No `return -1;` in ROOT's .c and .h: errors are 0 or a negative errno.
    rules.py refs         [--allow FILE]... DIR...
        No comment naming a document the reader of the repository lacks:
        the contract's section numbers or a tracker's numbers (see REFS).
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from symbol_graph import strongly_connected  # noqa: E402


def c_files(root, exts=('.c', '.h')):
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(exts):
                yield os.path.join(d, f)


def module_of(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem[:-4] if stem.endswith('_int') else stem


def find_cycle(graph):
    """One cycle per strongly connected component of more than one module,
    as a path a -> b -> ... -> a (the components from symbol_graph.py)."""
    comps = [set(c) for c in strongly_connected(graph)]
    cycles = []
    for comp in comps:
        start = min(comp)
        path, seen, v = [start], {start}, start
        while True:
            nxt = sorted(w for w in graph[v] if w in comp)
            back = [w for w in nxt if w == start]
            if back and len(path) > 1:
                break
            fresh = [w for w in nxt if w not in seen]
            v = fresh[0] if fresh else start
            if v == start:
                break
            path.append(v)
            seen.add(v)
        cycles.append((path + [start], sorted(comp)))
    return cycles


def rule_cycles(args, allow):
    root = args[0]
    graph = {}
    for p in c_files(root):
        a = module_of(p)
        graph.setdefault(a, set())
        for line in open(p, encoding='utf-8', errors='replace'):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            b = module_of(m.group(1))
            if b != a and f'{a}>{b}' not in allow:
                graph[a].add(b)
    for b in list(graph):
        for w in list(graph[b]):
            graph.setdefault(w, set())
    bad = 0
    for cyc, comp in find_cycle(graph):
        print('include cycle: ' + ' -> '.join(cyc) + ' (modules in the loop: '
              + ', '.join(comp) + ')')
        bad += 1
    return bad


def nm_defined(libs):
    """(object basename, symbol type, symbol) for every global definition."""
    out = subprocess.run(['nm', '-A', '--defined-only'] + libs, check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r'^(.*):([^:]+\.o):\s*[0-9a-fA-F]*\s+([A-Z])\s+(\S+)$', line)
        if m:
            yield os.path.basename(m.group(2)), m.group(3), m.group(4)


def obj_source(obj):
    """conn.c.o -> conn; meson-generated_.._dashboard_html.c.o -> dashboard_html."""
    name = obj[:-2] if obj.endswith('.o') else obj
    name = name.split('_.._')[-1].split('/')[-1]
    return os.path.splitext(name)[0]


PROTO = re.compile(r'^(?!typedef|static|extern\s+"|#|struct\s+\w+\s*\{|enum|union)'
                   r'[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\(')


def declared(header):
    names = set()
    for line in open(header, encoding='utf-8', errors='replace'):
        m = PROTO.match(line)
        if m and not line.startswith((' ', '\t')):
            names.add(m.group(1))
    return names


def rule_implementers(args, allow):
    root, libs = None, []
    it = iter(args)
    for a in it:
        if a == '--root':
            root = next(it)
        else:
            libs.append(a)
    defs = {}
    for obj, kind, sym in nm_defined(libs):
        if kind == 'T':
            defs.setdefault(sym, set()).add(obj_source(obj) + '.c')
    bad = 0
    for h in c_files(root, ('.h',)):
        rel = os.path.relpath(h, root)
        if rel in allow or os.path.basename(h) in allow or h.endswith('_int.h'):
            continue
        impl = set()
        for name in declared(h):
            impl |= defs.get(name, set())
        if len(impl) > 1:
            print(f'{rel}: implemented by {len(impl)} files: ' + ', '.join(sorted(impl)))
            bad += 1
    return bad


def rule_prefixes(args, allow):
    mapfile, libs = None, []
    it = iter(args)
    for a in it:
        if a == '--map':
            mapfile = next(it)
        else:
            libs.append(a)
    prefixes = {}
    for line in open(mapfile, encoding='utf-8'):
        line = line.split('#', 1)[0].split()
        if line:
            prefixes[line[0]] = line[1:]
    bad = 0
    for obj, kind, sym in nm_defined(libs):
        mod = obj_source(obj)
        if sym in allow or sym.startswith('__') or '.' in sym:
            continue  # the compiler's and sanitizers' own (__odr_asan.x, ...)
        if mod not in prefixes:
            print(f'{mod}: {sym}: module not listed in {os.path.basename(mapfile)}')
            bad += 1
            continue
        ok = any(sym.startswith(p) or sym == p.rstrip('_') for p in prefixes[mod])
        if not ok:
            print(f'{mod}: {sym}: export without the prefix ' + '/'.join(prefixes[mod]))
            bad += 1
    return bad


def grep_rule(paths, pattern, what, allow, exts=None):
    bad = 0
    rx = re.compile(pattern)
    for root in paths:
        for p in (c_files(root, exts) if exts else text_files(root)):
            if p in allow or os.path.basename(p) in allow:
                continue
            for n, line in enumerate(open(p, encoding='utf-8', errors='replace'), 1):
                if rx.search(line):
                    print(f'{p}:{n}: {what}: {line.strip()}')
                    bad += 1
    return bad


# Written so that this file does not match itself.
REFS = r'SPEC [s]ections?|SPEC [§]|\(SPEC\s*$|\b[Ii]ssues? [0-9]+'
SKIP_DIRS = {'corpus', 'corpus_config', 'results', '__pycache__', 'build'}


def text_files(root):
    if os.path.isfile(root):
        yield root
        return
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith('.'))
        for f in sorted(files):
            p = os.path.join(d, f)
            try:
                with open(p, 'rb') as fh:
                    if b'\0' in fh.read(4096):
                        continue
            except OSError:
                continue
            yield p


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    rule, allow, rest = argv[0], set(), []
    it = iter(argv[1:])
    for a in it:
        if a == '--allow':
            allow.add(next(it))
        else:
            rest.append(a)
    if rule == 'cycles':
        bad = rule_cycles(rest, allow)
    elif rule == 'implementers':
        bad = rule_implementers(rest, allow)
    elif rule == 'prefixes':
        bad = rule_prefixes(rest, allow)
    elif rule == 'errno':
        bad = grep_rule(rest, r'return\s+-1\s*;', 'return -1 (use a negative errno)',
                        allow, ('.c', '.h'))
    elif rule == 'refs':
        bad = grep_rule(rest, REFS, 'names a document the reader lacks', allow)
    else:
        print(f'rules.py: unknown rule {rule!r}')
        return 2
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
