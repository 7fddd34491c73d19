# SPDX-License-Identifier: Apache-2.0
"""Build of the dynvram Python package.

The C library is compiled into the extension module (dynvram._native): no
separate libdynvram.so has to be found at run time, and the wheel works on
any machine (vendor GPU libraries are loaded at run time by the library
itself). The sources are the repository's own, two levels up; the list of
core and backend files is read from the CMake files that define it, so the
two builds cannot drift apart. The CUDA allocation interposer is built as a
second shared object (dynvram/_interpose.abi3.so, Linux only).

Install from the repository root, offline, with Debian's setuptools:

    python3 -m pip install --no-build-isolation ./bindings/python
"""
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
IS_WIN = sys.platform == "win32"


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _version():
    h = _read("include/dynvram.h")
    parts = [re.search(r"#define DV_VERSION_%s (\d+)" % k, h).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def _platform_ok(src):
    name = os.path.basename(src)
    if "_win" in name:
        return IS_WIN
    if "_posix" in name:
        return not IS_WIN
    return True


def _library_sources():
    """The library's sources from the lists the CMake build uses:
    base/base.cmake, core/core.cmake, hal/<name>/backend.cmake (with their
    DV_HAVE_* definitions) and the registry."""
    srcs = []
    for path in ("base/base.cmake", "core/core.cmake"):
        srcs += re.findall(r"(?:base|core)/[\w/]+\.c", _read(path))
    srcs.append("hal/registry.c")
    defs = []
    for backend in ("host", "cuda", "hip", "levelzero"):
        path = "hal/%s/backend.cmake" % backend
        if not os.path.exists(os.path.join(ROOT, path)):
            continue
        text = _read(path)
        srcs += re.findall(r"hal/[\w/]+\.c", text)
        defs += re.findall(r"(DV_HAVE_\w+)=(\w+)", text)
    seen, out = set(), []
    for s in srcs:
        if s not in seen and _platform_ok(s):
            seen.add(s)
            out.append(_rel(os.path.join(ROOT, s)))
    return out, defs


def _rel(path):
    """setuptools wants source paths relative to this directory."""
    return os.path.relpath(path, HERE).replace(os.sep, "/")


class BuildExt(build_ext):
    """Object files of sources outside this directory ('../../core/x.c')
    would land outside build/: name them by their path in the repository."""

    def build_extensions(self):
        orig = self.compiler.object_filenames

        def object_filenames(sources, strip_dir=0, output_dir=""):
            mapped = [os.path.relpath(os.path.join(HERE, s), ROOT)
                      for s in sources]
            return orig(mapped, strip_dir, output_dir)

        self.compiler.object_filenames = object_filenames
        super().build_extensions()

    def get_export_symbols(self, ext):
        # The allocator libraries are loaded by ctypes / torch, not
        # imported: they export their own entry points, no PyInit_.
        if ext.name in PLAIN_LIBRARIES:
            return PLAIN_LIBRARIES[ext.name]
        return super().get_export_symbols(ext)


if not os.path.exists(os.path.join(ROOT, "include", "dynvram.h")):
    sys.exit("dynvram: build this package from the repository "
             "(bindings/python of a dynvram checkout)")

lib_sources, lib_defs = _library_sources()
# C11 as in the CMake build (CMAKE_C_STANDARD 11): MSVC needs /std:c11 for
# _Static_assert and the other C11 the core uses.
cflags = ["/std:c11"] if IS_WIN else ["-std=c11", "-fvisibility=hidden"]
native_sources = ["src/" + n
                  for n in ("module.c", "device.c", "vbar.c", "dlpack.c",
                            "hostio.c", "graph.c", "schedule.c")]
libs = [] if IS_WIN else ["dl", "pthread"]
extensions = [
    Extension(
        "dynvram._native",
        sources=native_sources + lib_sources,
        include_dirs=[os.path.join(ROOT, "include"),
                      os.path.join(ROOT, "base", "include"), ROOT,
                      os.path.join(ROOT, "bindings", "interpose")],
        define_macros=[("DYNVRAM_BUILDING", None),
                       ("Py_LIMITED_API", "0x03080000")] + lib_defs,
        extra_compile_args=cflags,
        libraries=libs,
        py_limited_api=True,
    ),
]
# The CUDAPluggableAllocator pair on the CUDA driver API (every platform:
# the route for PyTorch builds the interposer cannot reach, e.g. Windows).
PLAIN_LIBRARIES = {
    "dynvram._pluggable": ["dv_pluggable_attach", "dv_pluggable_detach",
                           "dv_pluggable_get_stats",
                           "dv_pluggable_driver_loaded", "dv_pluggable_alloc",
                           "dv_pluggable_free"],
}
extensions.append(Extension(
    "dynvram._pluggable",
    sources=["../interpose/pluggable.c"],
    include_dirs=[os.path.join(ROOT, "include"),
                  os.path.join(ROOT, "bindings", "interpose")],
    extra_compile_args=cflags,
    libraries=libs,
    py_limited_api=True,
))
if sys.platform.startswith("linux"):
    PLAIN_LIBRARIES["dynvram._interpose"] = []
    extensions.append(Extension(
        "dynvram._interpose",
        sources=["../interpose/interpose.c"],
        include_dirs=[os.path.join(ROOT, "include"),
                      os.path.join(ROOT, "bindings", "interpose")],
        extra_compile_args=cflags,
        libraries=libs,
        py_limited_api=True,
    ))

# The comfy_aimdo drop-in is a distribution of its own (comfy-aimdo, in
# bindings/comfy_aimdo), so that pip replaces the original with it.
packages = ["dynvram"]

setup(
    version=_version(),
    packages=packages,
    ext_modules=extensions,
    options={"bdist_wheel": {"py_limited_api": "cp38"}},
    cmdclass={"build_ext": BuildExt},
    zip_safe=False,
)
