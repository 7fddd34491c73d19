# SPDX-License-Identifier: Apache-2.0
"""The table of CUDA ordinals routed to dynvram devices, shared by the two
ways torch's allocations reach dynvram: the interposer (`interpose`) and
the pluggable allocator (`pluggable`). Each keeps the Device of each
attached ordinal alive while it is attached; the C side keeps only the
handle."""

import threading

from . import _native


class Routes:
    """Ordinals attached through one library whose entry points are
    `<prefix>_attach(ordinal, device, api)` and `<prefix>_detach(ordinal)`.
    `load()` loads the library (OSError when it is missing); `loaded()` is
    the library when loaded, else None."""

    def __init__(self, prefix, load, loaded):
        self._prefix = prefix
        self._load = load
        self._loaded = loaded
        self._lock = threading.Lock()
        self._attached = {}  # cuda ordinal -> Device

    def attach(self, device, cuda_device=None):
        lib = self._load()
        if device.closed:
            raise ValueError("device is closed")
        ordinal = device.ordinal if cuda_device is None else int(cuda_device)
        r = getattr(lib, self._prefix + "_attach")(
            ordinal, device.handle, _native.interpose_api())
        if r != 0:
            raise ValueError("%s_attach(%d) failed: %s"
                             % (self._prefix, ordinal, _native.result_name(r)))
        with self._lock:
            self._attached[ordinal] = device

    def detach(self, cuda_device):
        lib = self._loaded()
        if lib is None:
            return
        getattr(lib, self._prefix + "_detach")(int(cuda_device))
        with self._lock:
            self._attached.pop(int(cuda_device), None)

    def detach_device(self, device):
        with self._lock:
            ordinals = [o for o, d in self._attached.items() if d is device]
        for o in ordinals:
            self.detach(o)

    def detach_all(self):
        with self._lock:
            ordinals = list(self._attached)
        for o in ordinals:
            self.detach(o)

    def attached(self):
        with self._lock:
            return dict(self._attached)
