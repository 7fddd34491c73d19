# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.host_buffer: pinned growable host buffers and file reads.

Wraps dynvram's host I/O (host buffers, the file reader). NOT WIRED YET:
this build of dynvram has no host I/O, so every entry point raises
RuntimeError (see the README's ComfyUI section).
"""
from ._missing import need

__all__ = ["HostBuffer", "cleanup_file_reader", "read_file_to_device"]

_FEATURE = "host I/O (host buffers and file reads)"


class HostBuffer:
    """HostBuffer(size, prewarm=0, max_grow_size=0, mark_cold=True)."""

    def __init__(self, size, prewarm=0, max_grow_size=0, mark_cold=True):
        need(_FEATURE, "HostBuffer")


def read_file_to_device(file, file_offset, size, stream, device_ptr, device,
                        mark_cold=True):
    need(_FEATURE, "read_file_to_device")


def cleanup_file_reader():
    """Nothing to clean up without a reader."""
    return None
