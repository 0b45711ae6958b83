#!/usr/bin/env python3
"""test_docs.py: the README is a guide and its links hold.

README.md opens with its title and the two commands (./dev run, ./dev test)
and is at most 250 lines; every relative link in README.md, doc/*.md and
loadtest/README.md points at a file of the tree, and a link to a heading
(FILE.md#anchor or #anchor) at a heading that file has (GitHub's anchors).
Usage: test_docs.py [SOURCE_DIR]"""
import os
import re
import sys

MAX_README = 250
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def prose(path):
    """The lines outside fenced and indented code blocks."""
    out, fence = [], False
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if line.startswith('```'):
                fence = not fence
                continue
            if not fence and not line.startswith('    '):
                out.append((n, line))
    return out


def anchors(path, cache={}):
    if path not in cache:
        seen, found = {}, set()
        for _, line in prose(path):
            m = re.match(r'#{1,6} (.*)', line)
            if m:
                a = slug(m.group(1))
                k = seen.get(a, 0)
                found.add(a if k == 0 else f'{a}-{k}')
                seen[a] = k + 1
        cache[path] = found
    return cache[path]


def check_links(root, rel):
    path = os.path.join(root, rel)
    errors = []
    for n, line in prose(path):
        for target in LINK.findall(line):
            if re.match(r'[a-z]+:', target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.realpath(dest).startswith(os.path.realpath(root)):
                errors.append(f'{rel}:{n}: {target}: outside the repository')
            elif not os.path.exists(dest):
                errors.append(f'{rel}:{n}: {target}: no such file')
            elif anchor and dest.endswith('.md') and anchor not in anchors(dest):
                errors.append(f'{rel}:{n}: {target}: no heading "#{anchor}" there')
    return errors


def check_readme(root):
    with open(os.path.join(root, 'README.md'), encoding='utf-8') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    errors = []
    if len(lines) > MAX_README:
        errors.append(f'README.md: {len(lines)} lines, at most {MAX_README} (move reports to doc/)')
    if not lines or lines[0] != '# loopd':
        errors.append('README.md: the first line must be the title "# loopd"')
    head = '\n'.join(lines[:10])
    for cmd in ('./dev run', './dev test'):
        if cmd not in head:
            errors.append(f'README.md: "{cmd}" must be in the first 10 lines')
    return errors


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), '..', '..'))
    docs = ['README.md', 'loadtest/README.md'] + sorted(
        'doc/' + f for f in os.listdir(os.path.join(root, 'doc')) if f.endswith('.md'))
    errors = check_readme(root)
    for rel in docs:
        errors += check_links(root, rel)
    for e in errors:
        print('FAIL: ' + e)
    if errors:
        return 1
    print(f'ok: README.md is a guide; the links of {len(docs)} documents resolve')
    return 0


if __name__ == '__main__':
    sys.exit(main())
