# SPDX-License-Identifier: Apache-2.0
"""Shared by the modules that wrap a piece of dynvram that a build may lack
(host I/O, allocation graphs): the check, and the error every entry point
raises then (RuntimeError, the error the spec gives for every failure of
these modules)."""
from . import control


def need(feature, what):
    """Raise RuntimeError: `what` needs dynvram's `feature`."""
    raise RuntimeError(
        "comfy_aimdo (dynvram): %s needs dynvram's %s, which this build of "
        "dynvram does not have yet" % (what, feature))


def dynvram_attr(name, feature, what):
    """dynvram.<name>, or RuntimeError when this dynvram has none."""
    dv = control.dynvram
    obj = getattr(dv, name, None) if dv is not None else None
    if obj is None:
        need(feature, what)
    return obj


def as_runtime_error(what, exc):
    """`exc` (ValueError, MemoryError, dynvram.Error, OSError, BufferError)
    as the RuntimeError the spec promises; raise it ``from exc``."""
    return RuntimeError("%s: %s" % (what, exc))
