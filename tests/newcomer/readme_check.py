#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks of README.md that a newcomer would otherwise find by hand.

    python3 tests/newcomer/readme_check.py [--tool DYNVRAM] [REPO_ROOT]
                                            (default root: this tree)

1. The C example (the ```c block that starts with "/* quickstart.c") is
   byte for byte examples/quickstart.c, which CTest builds and runs.
2. Every relative link and every file path in backticks names a file the
   repository has (tracked by git when this is a git checkout), so the
   README never points at a file a clone lacks.
3. Every table is one table: a row after a blank line must be a header
   (followed by a `| --- |` line), else the row renders as loose text.
4. With --tool: `DYNVRAM demo --backend host` prints the README's sample
   output, times aside (every decimal fraction is masked, runs of spaces
   are one space), so the sample cannot go stale.

Exit status 0 when all hold, 1 with one line per problem otherwise.
"""
import difflib
import os
import re
import subprocess
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A path in backticks: at least one directory, a file name with a known
# extension, no wildcard.
TICKED_PATH = re.compile(
    r"`((?:[\w.-]+/)+[\w.-]+\.(?:md|c|h|sh|py|cmake|bat|txt|json|toml|in))`")
SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def tracked_files(root):
    """The files git tracks under root, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"],
                             capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(p for p in out.stdout.decode().split("\0") if p)


def exists(root, tracked, rel):
    rel = os.path.normpath(rel).replace(os.sep, "/")
    if tracked is None:
        return os.path.exists(os.path.join(root, rel))
    return rel in tracked or any(p.startswith(rel + "/") for p in tracked)


def check_example(root, text, problems):
    m = re.search(r"^```c\n(/\* quickstart\.c.*?)^```$", text, re.S | re.M)
    if not m:
        problems.append("README.md: no ```c block starting with "
                        "'/* quickstart.c' (the C example)")
        return
    path = os.path.join(root, "examples", "quickstart.c")
    try:
        with open(path, encoding="utf-8") as f:
            want = f.read()
    except OSError as e:
        problems.append("examples/quickstart.c: %s" % e)
        return
    if m.group(1) != want:
        diff = difflib.unified_diff(want.splitlines(), m.group(1).splitlines(),
                                    "examples/quickstart.c", "README.md",
                                    lineterm="", n=1)
        problems.append("README.md's C example differs from "
                        "examples/quickstart.c:\n" + "\n".join(diff))


def check_paths(root, lines, problems):
    tracked = tracked_files(root)
    in_code = False
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        targets = [t for t in LINK.findall(line)
                   if not re.match(r"^(https?:|mailto:|#)", t)]
        targets = [t.split("#", 1)[0] for t in targets]
        targets += TICKED_PATH.findall(line)
        for t in targets:
            if t and not exists(root, tracked, t):
                problems.append("README.md:%d: '%s' is not in the repository"
                                % (no, t))


def check_tables(lines, problems):
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        prev = lines[i - 1] if i else ""
        if prev.startswith("|"):
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not SEPARATOR.match(nxt):
            problems.append("README.md:%d: table row outside a table (a "
                            "blank line splits the table above?)" % (i + 1))


def mask_times(text):
    text = re.sub(r"[0-9]+\.[0-9]+", "#", text)
    return [re.sub(r" +", " ", line).rstrip() for line in text.splitlines()]


def check_demo(tool, text, problems):
    m = re.search(r"prints this on the host backend.*?^```\n(.*?)^```$", text,
                  re.S | re.M)
    if not m:
        problems.append("README.md: no sample output of the demo")
        return
    env = dict(os.environ)
    for k in ("DYNVRAM_HOST_DEVICES", "DYNVRAM_HOST_CAPACITY"):
        env.pop(k, None)
    run = subprocess.run([tool, "demo", "--backend", "host"], env=env,
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        problems.append("%s demo --backend host: exit %d\n%s"
                        % (tool, run.returncode, run.stdout + run.stderr))
        return
    want, got = mask_times(m.group(1)), mask_times(run.stdout)
    if want != got:
        diff = difflib.unified_diff(want, got, "README.md (sample)",
                                    "dynvram demo --backend host",
                                    lineterm="", n=1)
        problems.append("README.md's demo sample is stale (times masked):\n"
                        + "\n".join(diff))


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    args = argv[1:]
    tool = None
    if len(args) >= 2 and args[0] == "--tool":
        tool, args = args[1], args[2:]
    root = os.path.abspath(args[0] if args else os.path.join(here, "..", ".."))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    problems = []
    check_example(root, text, problems)
    check_paths(root, lines, problems)
    check_tables(lines, problems)
    if tool:
        check_demo(tool, text, problems)
    for p in problems:
        print(p)
    if not problems:
        print("README.md: C example equals examples/quickstart.c; every "
              "linked path is in the repository; tables are whole" +
              ("; the demo prints the sample" if tool else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
