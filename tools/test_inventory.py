#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print what `ctest` runs in a build directory, counted from the suites.

    python3 tools/test_inventory.py [--run] [BUILD_DIR]   (default: build)

One line per CTest entry with its number of test cases, then the totals.
The entries come from `ctest --show-only=json-v1`; the cases from the
suites themselves: a Criterion program's `--list`, pytest's
`--collect-only`, and 1 for an entry that runs a single check (a tool run,
an ABI check). Nothing is stated by hand, so the counts cannot drift from
what runs; the README points here instead of quoting numbers.

A case may skip itself at run time (no such library, no GPU). --run also
runs every entry, one after the other, and adds how many cases ran and
how many skipped (from Criterion's synthesis line, pytest's summary, or
the exit status and CTest's SKIP_RETURN_CODE).

Exit status: 0; 1 when the build has no tests or a suite lists none (a
broken suite must not be counted as an empty one); 2 on bad usage.
"""
import fnmatch
import json
import os
import re
import subprocess
import sys

CRITERION_SUITE = re.compile(r"^(\S+): (\d+) tests?$")
# "202 tests collected", or with -k "1/202 tests collected (201 deselected)"
PYTEST_TOTAL = re.compile(r"(\d+)(?:/\d+)? tests? collected")


def properties(test):
    return {p["name"]: p["value"] for p in test.get("properties", [])}


def environment(props):
    """The test's environment: ENVIRONMENT, then ENVIRONMENT_MODIFICATION
    (the operations CTest documents that our tests use)."""
    env = dict(os.environ)
    for item in props.get("ENVIRONMENT", []):
        key, _, value = item.partition("=")
        env[key] = value
    for item in props.get("ENVIRONMENT_MODIFICATION", []):
        key, _, rest = item.partition("=")
        op, _, value = rest.partition(":")
        old = env.get(key, "")
        if op == "reset":
            env.pop(key, None)
            if key in os.environ:
                env[key] = os.environ[key]
        elif op == "set":
            env[key] = value
        elif op == "unset":
            env.pop(key, None)
        elif op == "string_append":
            env[key] = old + value
        elif op == "string_prepend":
            env[key] = value + old
        elif op == "path_list_append":
            env[key] = old + os.pathsep + value if old else value
        elif op == "path_list_prepend":
            env[key] = value + os.pathsep + old if old else value
        else:
            raise RuntimeError("ENVIRONMENT_MODIFICATION %s: not handled" % op)
    return env


def is_criterion(path):
    """A program linked against Criterion (it answers --list)."""
    try:
        with open(path, "rb") as f:
            return b"libcriterion.so" in f.read()
    except OSError:
        return False


def criterion_cases(cmd, env, cwd):
    """Criterion's --list prints every test ("suite: N tests", then one
    "├── name" line per test) and ignores --filter, so the entry's own
    --filter pattern is applied here."""
    pattern = None
    for i, a in enumerate(cmd):
        if a == "--filter" and i + 1 < len(cmd):
            pattern = cmd[i + 1]
        elif a.startswith("--filter="):
            pattern = a.split("=", 1)[1]
    out = subprocess.run([cmd[0], "--list"], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=60)
    n, suite = 0, None
    for line in out.stdout.splitlines():
        m = CRITERION_SUITE.match(line)
        if m:
            suite = m.group(1)
        elif suite and "\u2500\u2500 " in line:
            name = line.split("\u2500\u2500 ", 1)[1].split()[0]
            n += pattern is None or fnmatch.fnmatchcase(suite + "/" + name,
                                                        pattern)
    if out.returncode != 0 or n == 0:
        raise RuntimeError("%s --list: exit %d, %d tests\n%s"
                           % (cmd[0], out.returncode, n, out.stderr))
    return n


def pytest_cases(cmd, env, cwd):
    """The CTest entry runs tests/python/run_pytest.py: collect the same
    directory with the same interpreter, environment and pytest arguments
    (a -k selection, say)."""
    runner = next(a for a in cmd if a.endswith("run_pytest.py"))
    here = os.path.dirname(runner)
    extra = cmd[cmd.index(runner) + 1:]
    env = dict(env, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([cmd[0], "-m", "pytest", "-p", "no:cacheprovider",
                          "--collect-only", "-q", here] + extra, env=env,
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    m = PYTEST_TOTAL.search(out.stdout)
    if out.returncode != 0 or not m or int(m.group(1)) == 0:
        raise RuntimeError("pytest --collect-only %s: exit %d\n%s"
                           % (here, out.returncode, out.stdout[-2000:]))
    return int(m.group(1)), "pytest --collect-only"


def run_entry(test, cmd, env, cwd, listed, how):
    """Run one CTest entry: (ran, skipped, failed) in cases."""
    props = properties(test)
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=props.get("TIMEOUT", 600))
    text = out.stdout + out.stderr
    skip_rc = props.get("SKIP_RETURN_CODE")
    if skip_rc is not None and out.returncode == skip_rc:
        return 0, listed, 0
    failed = listed if out.returncode != 0 else 0
    if how == "Criterion --list":
        m = re.search(r"Tested: (\d+) \| Passing: (\d+)", text)
        if m:
            ran = int(m.group(1))
            return ran, listed - ran, ran - int(m.group(2))
    elif how == "pytest --collect-only":
        counts = {k: int(n) for n, k in
                  re.findall(r"(\d+) (passed|skipped|failed|error)", text)}
        if counts:
            bad = counts.get("failed", 0) + counts.get("error", 0)
            return counts.get("passed", 0) + bad, counts.get("skipped", 0), bad
    return listed - failed, 0, failed


def main(argv):
    args = argv[1:]
    run = "--run" in args
    args = [a for a in args if a != "--run"]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    build = os.path.abspath(args[0] if args else "build")
    if not os.path.isfile(os.path.join(build, "CTestTestfile.cmake")):
        print("test_inventory: %s is not a configured build directory (run "
              "`bash tools/run.sh test` first)" % build, file=sys.stderr)
        return 1
    ctest = os.environ.get("DV_CTEST") or "ctest"
    out = subprocess.run([ctest, "--show-only=json-v1"], cwd=build,
                         capture_output=True, text=True, check=True)
    tests = json.loads(out.stdout).get("tests", [])
    if not tests:
        print("test_inventory: no tests in %s" % build, file=sys.stderr)
        return 1
    rows, total = [], 0
    for t in tests:
        cmd = t.get("command") or []
        props = properties(t)
        env, cwd = environment(props), props.get("WORKING_DIRECTORY", build)
        try:
            if any(a.endswith("run_pytest.py") for a in cmd):
                n, how = pytest_cases(cmd, env, cwd)
            elif cmd and is_criterion(cmd[0]):
                n, how = criterion_cases(cmd, env, cwd), "Criterion --list"
            else:
                n, how = 1, "one check"
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            print("test_inventory: %s: %s" % (t["name"], e), file=sys.stderr)
            return 1
        result = run_entry(t, cmd, env, cwd, n, how) if run else None
        rows.append((t["name"], n, how, result))
        total += n
    width = max(len(r[0]) for r in rows)
    sums = [0, 0, 0]
    for name, n, how, result in rows:
        line = "  %-*s %5d  %-22s" % (width, name, n, how)
        if result:
            sums = [a + b for a, b in zip(sums, result)]
            line += "  ran %d, skipped %d, failed %d" % result
        print(line.rstrip())
    print("%d CTest entries, %d test cases" % (len(rows), total) +
          ("; ran %d, skipped %d, failed %d" % tuple(sums) if run else ""))
    return 1 if sums[2] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
