# SPDX-License-Identifier: Apache-2.0
"""Run a snippet in a child interpreter, so that a crash (SIGSEGV in the
extension or the library) fails one test instead of killing pytest.

The child is this interpreter (sys.executable) with this process's sys.path
and environment (DYNVRAM_BACKEND=host from CTest, LD_PRELOAD of the ASan
runtime in sanitizer builds). Its snippet runs after a prelude that imports
dynvram, opens ``dev`` (host backend, 1 MiB pages, 16 MiB budget, no pool)
and ``vbar`` (8 pages) and defines:

    attempt(fn, *args)   call fn; the exception it raised as a dict
                         (type, mro, message, name, code), or None
    report(key, value)   send a JSON-serialisable value to the parent

``run(snippet)`` returns the reported values as a dict; a child that did not
exit with status 0 fails the calling test with its status (or signal), its
stdout and its stderr (faulthandler's traceback of a crash included).
"""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

_MARK = "@@dvchild "

PRELUDE = r'''
import json, sys
import dynvram

MIB = 1 << 20
PAGE = MIB

def report(key, value):
    print(%(mark)r + json.dumps([key, value]), flush=True)

def attempt(fn, *args):
    try:
        fn(*args)
    except BaseException as e:
        return {"type": type(e).__name__,
                "mro": [c.__name__ for c in type(e).__mro__],
                "message": str(e),
                "name": getattr(e, "name", None),
                "code": getattr(e, "code", None)}
    return None

dev = dynvram.Device("host", page_size=PAGE, vram_limit=16 * PAGE,
                     pool_limit=0)
vbar = dynvram.VBAR(dev, 8 * PAGE)
''' % {"mark": _MARK}


def _describe(rc):
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


def run(snippet, timeout=120, expect_crash=False):
    """Run PRELUDE + snippet in a child; see the module docstring.

    With expect_crash=True the child must NOT exit normally (the snippet is
    expected to touch inaccessible memory); returns (rc, reports) instead.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    src = PRELUDE + textwrap.dedent(snippet)
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", src],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    reports = {}
    for line in p.stdout.splitlines():
        if line.startswith(_MARK):
            key, value = json.loads(line[len(_MARK):])
            reports[key] = value
    if expect_crash:
        return p.returncode, reports
    if p.returncode != 0:
        pytest.fail("child %s\n--- reported: %r\n--- stdout:\n%s\n--- stderr:\n%s"
                    % (_describe(p.returncode), reports, p.stdout, p.stderr),
                    pytrace=False)
    return reports


def assert_raised(exc, type_name, *words, name=None):
    """`exc` (from attempt()) is an exception of exactly the class named
    `type_name` (not merely a subclass of it), its message contains every
    word of `words` (case-insensitive) and, if given, its .name is `name`
    (a dynvram result name)."""
    assert exc is not None, "the call succeeded; it should have raised"
    assert exc["type"] == type_name, exc
    msg = exc["message"].lower()
    for w in words:
        assert w.lower() in msg, (w, exc)
    if name is not None:
        assert exc["name"] == name, exc


def assert_invalid(exc, *words):
    """The library's (or the binding's) rejection of an invalid argument:
    dynvram.InvalidArgumentError (a ValueError) named
    DV_ERROR_INVALID_ARGUMENT, its message naming the problem."""
    assert_raised(exc, "InvalidArgumentError", *words,
                  name="DV_ERROR_INVALID_ARGUMENT")
