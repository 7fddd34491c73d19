# SPDX-License-Identifier: Apache-2.0
"""The drop-in installed as the README says (a venv with
--system-site-packages, pip offline, no build isolation), and told apart
from the original: both are the distribution comfy-aimdo, so installing
one replaces the other; the version's local label and
comfy_aimdo.IMPLEMENTATION name the implementation. The "original" here is
a stand-in package of that name written by the test."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _sh(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=600, **kw)
    assert p.returncode == 0, "%s failed:\n%s" % (" ".join(cmd), p.stdout)
    return p.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    if not os.environ.get("DV_TEST_INSTALL"):
        pytest.skip("an install test (a minute or two of compiling): CTest "
                    "runs it as python.comfy_install (DV_TEST_INSTALL=1)")
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("pip builds C code: not under a preloaded sanitizer")
    for mod in ("venv", "pip", "setuptools"):
        if subprocess.call([sys.executable, "-c", "import " + mod],
                           stderr=subprocess.DEVNULL) != 0:
            pytest.skip("python3-%s is not installed" % mod)
    d = tmp_path_factory.mktemp("venv")
    _sh([sys.executable, "-m", "venv", "--system-site-packages", str(d)])
    py = str(d / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return py, env


def _pip(venv, *args):
    py, env = venv
    return _sh([py, "-m", "pip", "install", "--no-index",
                "--no-build-isolation"] + list(args), cwd=ROOT, env=env)


def _probe(venv):
    py, env = venv
    code = textwrap.dedent("""
        import importlib.metadata as m, json, sys
        import comfy_aimdo
        print(json.dumps([m.version("comfy-aimdo"),
                          getattr(comfy_aimdo, "IMPLEMENTATION", None),
                          comfy_aimdo.__file__]))
    """)
    import json
    out = _sh([py, "-c", code], cwd="/", env=env)
    return json.loads(out.strip().splitlines()[-1])


def _original(tmp_path):
    """A stand-in for the original comfy-aimdo distribution."""
    src = tmp_path / "original"
    (src / "comfy_aimdo").mkdir(parents=True)
    (src / "comfy_aimdo" / "__init__.py").write_text("ORIGINAL = True\n")
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "comfy-aimdo"
        version = "0.5.5"
        [tool.setuptools]
        packages = ["comfy_aimdo"]
    """))
    return str(src)


def test_readme_install_and_replacement(venv, tmp_path):
    # The README's command: dynvram and the drop-in together.
    _pip(venv, "./bindings/python", "./bindings/comfy_aimdo")
    version, impl, path = _probe(venv)
    assert "+dynvram." in version and impl == "dynvram"
    assert "site-packages" in path
    # The original replaces it (same distribution name) ...
    _pip(venv, _original(tmp_path))
    version, impl, _ = _probe(venv)
    assert version == "0.5.5" and impl is None
    # ... and it replaces the original again; dynvram itself stays.
    out = _pip(venv, "./bindings/comfy_aimdo")
    assert "Successfully uninstalled comfy-aimdo-0.5.5" in out \
        or "comfy-aimdo 0.5.5" in out, out
    version, impl, _ = _probe(venv)
    assert "+dynvram." in version and impl == "dynvram"
    py, env = venv
    listing = _sh([py, "-m", "pip", "list", "--format=freeze"], env=env)
    assert listing.count("comfy-aimdo==") + listing.count("comfy_aimdo==") \
        == 1, listing
