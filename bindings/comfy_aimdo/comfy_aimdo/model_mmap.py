# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.model_mmap: read-only mappings of model files.

``ModelMMAP(path)`` is a dynvram.ModelFile: the whole file opened read-only
and mapped. ``get()`` is the mapping's address (ComfyUI makes tensors with
``torch.frombuffer`` over it), ``get_file_handle()`` the native handle (a
file descriptor; a HANDLE on Windows) for the file reads of host_buffer,
``bounce()`` drops the mapping's resident pages so RSS falls while every
address stays valid (MADV_DONTNEED on POSIX, the view remapped on Windows).
Every failure raises RuntimeError. Needs dynvram's host I/O.
"""
import os

from ._missing import as_runtime_error, dynvram_attr

__all__ = ["ModelMMAP"]


class ModelMMAP:
    """ModelMMAP(path): see the module."""

    def __init__(self, path):
        cls = dynvram_attr("ModelFile", "host I/O (model files)", "ModelMMAP")
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise RuntimeError("ModelMMAP: a path is needed, not %r"
                               % (path,))
        try:
            self._file = cls(path)
            self._address = self._file.get()
        except (ValueError, MemoryError, RuntimeError, OSError,
                TypeError) as exc:
            raise as_runtime_error("ModelMMAP(%r)" % (path,), exc) from exc
        self.path = path
        self.size = self._file.size

    def get(self):
        """The address of the file's first byte in the mapping."""
        return self._address

    def get_file_handle(self):
        """The native handle of the open file (do not close it)."""
        try:
            return self._file.fileno()
        except (ValueError, RuntimeError) as exc:
            raise as_runtime_error("ModelMMAP.get_file_handle", exc) from exc

    def fileno(self):
        return self.get_file_handle()

    def bounce(self):
        """Drop the mapping's resident pages; True."""
        try:
            return self._file.bounce()
        except (ValueError, RuntimeError, OSError) as exc:
            raise as_runtime_error("ModelMMAP.bounce", exc) from exc

    def close(self):
        """Unmap and close now (also done when the object is freed)."""
        self._file.close()
        self._address = 0

    def __repr__(self):
        return "<comfy_aimdo ModelMMAP %r size=%d>" % (self.path, self.size)
