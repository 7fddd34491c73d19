# SPDX-License-Identifier: Apache-2.0
"""CTest driver of the Python suite.

Exit codes: pytest's own (0 passed, 1 failures, ...), except
  - pytest's 5 ("no tests collected") becomes 1 with a message: an empty
    run is a broken suite, never a pass;
  - 77 (CTest's SKIP_RETURN_CODE) with a message when the package was not
    built here (no Python headers) or pytest/numpy are missing; CTest then
    lists the test as skipped, not passed.
Arguments after the script are passed to pytest.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    try:
        import dynvram  # noqa: F401
    except ImportError as e:
        print("SKIP: the dynvram package is not importable (%s); was it "
              "built? (needs python3-dev)" % e, flush=True)
        return 77
    missing = []
    for mod, pkg in (("pytest", "python3-pytest"), ("numpy", "python3-numpy")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        print("SKIP: missing %s (apt-get install %s)"
              % (", ".join(missing), " ".join(missing)), flush=True)
        return 77
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra",
           HERE] + sys.argv[1:]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    rc = subprocess.call(cmd, env=env)
    if rc == 5:
        print("ERROR: pytest collected no tests from %s: the suite is broken"
              % HERE, flush=True)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
