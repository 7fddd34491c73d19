# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.model_mmap: read-only mappings of model files.

Wraps dynvram's model files. NOT WIRED YET: this build of dynvram has no
host I/O, so ModelMMAP raises RuntimeError (see the README's ComfyUI
section).
"""
from ._missing import need

__all__ = ["ModelMMAP"]


class ModelMMAP:
    """ModelMMAP(path): RuntimeError on failure."""

    def __init__(self, path):
        need("host I/O (model files)", "ModelMMAP")
