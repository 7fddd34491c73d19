# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.vram_buffer: growable GPU buffers at a fixed address.

Wraps dynvram's device buffers. NOT WIRED YET: this build of dynvram has
no device buffers, so VRAMBuffer raises RuntimeError (see the README's
ComfyUI section).
"""
from ._missing import need

__all__ = ["VRAMBuffer"]


class VRAMBuffer:
    """VRAMBuffer(max_size, device)."""

    def __init__(self, max_size, device):
        need("device buffers", "VRAMBuffer")
