#!/usr/bin/env python3
"""sizes.py: files over 600 lines and functions over 60 lines in the given C
files (a function runs from a line opening at column 0 with '{' or ending in
') {' to its closing '}' at column 0). Exit 1 when any is found.

    sizes.py [--max-fn N] [--max-file N] [--allow NAME]... FILE.c...
"""
import re
import sys


def functions(lines):
    start = name = None
    for i, line in enumerate(lines):
        if start is None:
            m = re.match(r'^[A-Za-z_].*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\([^;]*$', line)
            if m and not line.startswith(('typedef', 'struct', 'enum', 'union', '#')):
                name, start = m.group(1), i
                if line.rstrip().endswith(';'):
                    start = None
        if start is not None and line.startswith('}'):
            yield name, start + 1, i - start + 1
            start = None
        elif start is not None and line.rstrip().endswith(';') and '{' not in ''.join(lines[start:i + 1]):
            start = None


def main(argv):
    max_fn, max_file, allow, paths = 60, 600, set(), []
    it = iter(argv)
    for a in it:
        if a == '--max-fn':
            max_fn = int(next(it))
        elif a == '--max-file':
            max_file = int(next(it))
        elif a == '--allow':
            allow.add(next(it))
        else:
            paths.append(a)
    bad = 0
    for p in paths:
        lines = open(p, encoding='utf-8', errors='replace').read().split('\n')
        if len(lines) > max_file:
            print(f"{p}: {len(lines)} lines (max {max_file})")
            bad += 1
        for name, line, n in functions(lines):
            if n > max_fn and name not in allow:
                print(f"{p}:{line}: {name}: {n} lines (max {max_fn})")
                bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
