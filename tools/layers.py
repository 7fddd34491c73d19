#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check that the library's layers point one way and its files form no cycles.

Two graphs are read from a build, not from what the code says of itself:

* the **link graph**: for every object file of the library, the symbols it
  uses (nm's U) and which object defines them. An edge a -> b means a.c calls
  (or takes the address of) something b.c defines.
* the **include graph**: every #include "..." of the library's sources and
  headers, resolved against the including file's folder, include/, base/include
  and the repository root.

Rules (LAYERS below): each file belongs to a layer by its path; a layer may
depend only on the layers listed for it. Inside a layer, the link graph between
files has no cycle: a fault walks down the files, never back up.

    python3 tools/layers.py --build build            # check, print a summary
    python3 tools/layers.py --build build --dot      # the file graph, Graphviz

Exit status 0 when every rule holds, 1 with each broken rule listed.
"""

import argparse
import os
import re
import subprocess
import sys

# layer -> layers it may use (itself implied). The public headers under
# include/ are usable by everyone.
LAYERS = {
    "base": [],
    "core": ["base"],
    "backend": ["base"],      # each hal/<name>/ folder is its own layer
    "registry": ["core", "base", "backend"],
}


def layer_of(path):
    """(layer, unit) of a repository-relative path; unit tells backends apart."""
    parts = path.split("/")
    if parts[0] == "include":
        return ("api", "api")
    if parts[0] == "base":
        return ("base", "base")
    if parts[0] == "core":
        return ("core", "core")
    if parts[0] == "hal" and len(parts) == 2:
        return ("registry", "registry")
    if parts[0] == "hal":
        return ("backend", "hal/" + parts[1])
    return (None, None)


def allowed(src, dst):
    (ls, us), (ld, ud) = layer_of(src), layer_of(dst)
    if ld == "api" or us == ud:
        return True
    if ls == "backend" and ld == "backend":
        return False  # a backend never reaches into another one
    return ld in LAYERS.get(ls, [])


# ---- the link graph ------------------------------------------------------------

def current_targets(build):
    """Target folders of the build as configured now (stale folders of
    targets that no longer exist are left out)."""
    path = os.path.join(build, "CMakeFiles", "TargetDirectories.txt")
    try:
        with open(path, encoding="utf-8") as fh:
            return {os.path.basename(l.strip()) for l in fh if l.strip()}
    except OSError:
        return None


def library_objects(build, src_root):
    """{source path: object path} for the library's objects."""
    out = {}
    targets = current_targets(build)
    for dirpath, _, files in os.walk(os.path.join(build, "CMakeFiles")):
        m = re.search(r"CMakeFiles/(dv_[a-z0-9_]*\.dir)", dirpath)
        if not m or (targets is not None and m.group(1) not in targets):
            continue
        for f in files:
            if not f.endswith(".c.o") and not f.endswith(".c.obj"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f),
                                  os.path.join(build, "CMakeFiles"))
            rel = rel.split("/", 1)[1]          # drop "<target>.dir"
            src = re.sub(r"\.o(bj)?$", "", rel)
            if layer_of(src)[0] and os.path.exists(os.path.join(src_root, src)):
                out[src] = os.path.join(dirpath, f)
    return out


def link_graph(objects):
    defined, used = {}, {}
    for src, obj in objects.items():
        text = subprocess.run(["nm", "-g", obj], capture_output=True,
                              text=True, check=True).stdout
        used[src] = set()
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "U":
                used[src].add(fields[1])
            elif len(fields) == 3 and fields[1] in "TDBRCVW":
                defined.setdefault(fields[2], src)
    edges = {s: set() for s in objects}
    for src, syms in used.items():
        for sym in syms:
            dst = defined.get(sym)
            if dst and dst != src:
                edges[src].add(dst)
    return edges


# ---- the include graph -----------------------------------------------------------

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def include_graph(src_root):
    files = []
    for top in ("base", "core", "hal", "include"):
        for dirpath, _, names in os.walk(os.path.join(src_root, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    files.append(os.path.relpath(os.path.join(dirpath, n),
                                                 src_root))
    edges = {}
    for f in files:
        with open(os.path.join(src_root, f), encoding="utf-8") as fh:
            text = fh.read()
        edges[f] = set()
        for inc in INCLUDE.findall(text):
            for base in (os.path.dirname(f), "include", "base/include", ""):
                cand = os.path.normpath(os.path.join(base, inc))
                if os.path.exists(os.path.join(src_root, cand)):
                    edges[f].add(cand)
                    break
    return edges


# ---- checks ------------------------------------------------------------------------

def cycles(edges, nodes):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in nodes:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def check(link, incl):
    problems = []
    for kind, edges in (("calls", link), ("includes", incl)):
        for src in sorted(edges):
            for dst in sorted(edges[src]):
                if not allowed(src, dst):
                    problems.append("%s %s %s (%s may not use %s)" % (
                        src, kind, dst, layer_of(src)[1], layer_of(dst)[1]))
    units = {}
    for f in link:
        units.setdefault(layer_of(f)[1], set()).add(f)
    for unit, nodes in sorted(units.items()):
        for comp in cycles(link, nodes):
            problems.append("cycle in %s: %s" % (unit, " <-> ".join(comp)))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="a configured, built tree")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap.add_argument("--dot", action="store_true", help="print the link graph")
    args = ap.parse_args()
    objects = library_objects(args.build, args.src)
    if not objects:
        sys.exit("layers.py: no library objects under %s" % args.build)
    link = link_graph(objects)
    incl = include_graph(args.src)
    if args.dot:
        print("digraph dynvram {")
        for src in sorted(link):
            for dst in sorted(link[src]):
                print('  "%s" -> "%s";' % (src, dst))
        print("}")
        return 0
    problems = check(link, incl)
    n_edges = sum(len(v) for v in link.values())
    print("layers: %d library files, %d call edges, %d include edges" % (
        len(link), n_edges, sum(len(v) for v in incl.values())))
    for p in problems:
        print("  BROKEN: " + p)
    print("layers: %s" % ("OK" if not problems else
                          "%d rule(s) broken" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
