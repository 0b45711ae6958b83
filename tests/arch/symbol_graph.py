#!/usr/bin/env python3
"""symbol_graph.py: the link-level graph of loopd's objects, from `nm`.

An edge A -> B means object A uses a symbol object B defines. The graph must
have no cycle (a cycle means neither side builds or tests alone), and, with
--unused, no object may export a symbol nobody else uses.

    symbol_graph.py [--unused] [--dot] OBJECT_OR_ARCHIVE... [--users PATH...]

Objects after --users (tests, fuzzers; a directory means every .o under it)
count as users of symbols but are not nodes of the graph: an export only a
test uses is not unused.

Exit status: 0 clean, 1 a cycle (or an unused export with --unused), 2 usage.
"""
import subprocess
import sys


def read_symbols(paths):
    """{object: (defined set, undefined set)} for every object in paths."""
    out = subprocess.run(["nm", "-A", "--defined-only", *paths], capture_output=True,
                         text=True, check=True).stdout
    und = subprocess.run(["nm", "-A", "--undefined-only", *paths], capture_output=True,
                         text=True, check=True).stdout
    objs = {}

    def obj_of(prefix):
        # "lib.a:member.o" or "file.o"; keep the member name
        name = prefix.rsplit(":", 1)[-1] if prefix.count(":") else prefix
        return name.rsplit("/", 1)[-1]

    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        prefix = parts[0].rsplit(":", 1)[0]
        kind, sym = parts[-2], parts[-1]
        if kind in "TDBRCGSV" and kind.isupper():
            objs.setdefault(obj_of(prefix), (set(), set()))[0].add(sym)
    for line in und.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        prefix = parts[0].rsplit(":", 1)[0]
        objs.setdefault(obj_of(prefix), (set(), set()))[1].add(parts[-1])
    return objs


def build_graph(objs):
    owner = {}
    for o, (defs, _) in objs.items():
        for s in defs:
            owner[s] = o
    edges = {o: {} for o in objs}
    for o, (_, undefs) in objs.items():
        for s in undefs:
            d = owner.get(s)
            if d is not None and d != o:
                edges[o].setdefault(d, []).append(s)
    return owner, edges


def strongly_connected(edges):
    """Tarjan's algorithm, iterative: the components with more than one node."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return comps


def main(argv):
    unused_fails = "--unused" in argv
    dot = "--dot" in argv
    if "--users" in argv:
        cut = argv.index("--users")
        argv, user_paths = argv[:cut], argv[cut + 1:]
    else:
        user_paths = []
    paths = [a for a in argv if not a.startswith("--")]
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    objs = read_symbols(paths)
    owner, edges = build_graph(objs)
    status = 0
    if dot:
        print("digraph loopd {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
    for comp in strongly_connected(edges):
        status = 1
        print("cycle: " + " <-> ".join(comp), file=sys.stderr)
        for a in comp:
            for b in comp:
                if b in edges[a]:
                    syms = ", ".join(sorted(edges[a][b])[:4])
                    print(f"  {a} -> {b}: {syms}", file=sys.stderr)
    used = set()
    for _, undefs in objs.values():
        used |= undefs
    if user_paths:
        import os
        files = []
        for p in user_paths:
            if os.path.isdir(p):
                for d, _, names in os.walk(p):
                    files += [os.path.join(d, n) for n in names if n.endswith(".o")]
            else:
                files.append(p)
        for _, undefs in read_symbols(files).values():
            used |= undefs
    # "__..." are the compiler's and sanitizers' own (ASan's __odr_asan.X)
    unused = sorted(s for s in owner if s not in used and s != "main"
                    and not s.startswith(("LLVMFuzzer", "__")))
    for s in unused:
        print(f"unused export: {s} ({owner[s]})", file=sys.stderr)
    if unused and unused_fails:
        status = 1
    n_edges = sum(len(v) for v in edges.values())
    print(f"symbol_graph: {len(objs)} objects, {n_edges} edges, "
          f"{len(strongly_connected(edges))} cycles, {len(unused)} unused exports",
          file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
