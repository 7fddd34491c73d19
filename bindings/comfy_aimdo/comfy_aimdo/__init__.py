# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo, implemented by dynvram.

A drop-in for the package ComfyUI's "Dynamic VRAM" mode imports: the same
modules, functions and behaviour (../../shared/spec/comfy_aimdo.md), built
on dynvram's own API (the ``dynvram`` package and its C extension):

    comfy_aimdo.control       init, devices, headroom, logging
    comfy_aimdo.model_vbar    ModelVBAR, vbar_fault / vbar_unpin, signatures
    comfy_aimdo.torch         tensors over allocations and host buffers
    comfy_aimdo.host_buffer   HostBuffer, read_file_to_device
    comfy_aimdo.model_mmap    ModelMMAP
    comfy_aimdo.vram_buffer   VRAMBuffer
    comfy_aimdo.malloc_graph  record(), MallocGraph
    comfy_aimdo.storage       fast_disk()

Telling it from the original comfy-aimdo (the two must never both be
importable by accident):

 * the distribution is named ``comfy-aimdo`` too, so installing one with pip
   replaces the other (never two copies in one environment);
 * its version carries the local label ``+dynvram.<version>``
   (``importlib.metadata.version("comfy-aimdo")``);
 * ``comfy_aimdo.IMPLEMENTATION == "dynvram"`` (the original has no such
   attribute);
 * at import it looks for another ``comfy_aimdo`` on ``sys.path`` (the
   original installed elsewhere, shadowed by this one) and warns, naming
   both paths.

Every submodule imports before and after ``control.init()``; nothing here
imports torch until a torch helper is used, so ``control.init()`` can still
load the allocation interposer before torch.
"""
import os as _os
import sys as _sys
import warnings as _warnings

from ._version import __version__

IMPLEMENTATION = "dynvram"

__all__ = ["IMPLEMENTATION", "__version__", "shadowed"]


def shadowed():
    """Other ``comfy_aimdo`` packages on sys.path that this one hides (the
    original comfy-aimdo installed in another site directory, say)."""
    here = _os.path.realpath(_os.path.dirname(_os.path.abspath(__file__)))
    found = []
    for entry in _sys.path:
        if not isinstance(entry, str):
            continue
        cand = _os.path.join(entry or _os.getcwd(), "comfy_aimdo")
        try:
            if (_os.path.isdir(cand) and _os.path.realpath(cand) != here
                    and cand not in found):
                found.append(cand)
        except OSError:
            continue
    return found


def _warn_shadowed():
    others = shadowed()
    if others:
        _warnings.warn(
            "comfy_aimdo: dynvram's drop-in (%s) is imported; another "
            "comfy_aimdo is installed too and hidden by it: %s. Keep one "
            "(pip uninstall comfy-aimdo, then install the one you want)."
            % (_os.path.dirname(_os.path.abspath(__file__)),
               ", ".join(others)), RuntimeWarning, stacklevel=3)


_warn_shadowed()
