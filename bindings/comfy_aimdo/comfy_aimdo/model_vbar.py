# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.model_vbar: one VBAR per model, faults and signatures.

A ``ModelVBAR(size, device)`` is a dynvram.VBAR: ``size`` bytes of virtual
address space on an initialised device, costing no VRAM. ``alloc()`` places
weights in it (bump allocation, 512-byte aligned) and returns the tuple
``(vbar, address, num_bytes)`` the module functions take.

The fast path, per layer and step::

    sig = vbar_fault(alloc)          # None: stream the weight instead
    if sig is not None and not vbar_signature_compare(sig, saved):
        copy the weight in; saved = sig
    ... launch the layer ...
    vbar_unpin(alloc)                # evictable once the GPU is done

Signatures. One uint32 per page under the range (the device's page, 32 MiB
by default), the page's generation: a device-wide stamp that changes each
time the page gets new physical memory. A re-populated page always gets the
device's newest stamp, so the largest stamp under a range (what the fault
returns) grows whenever any page under it was re-populated: when it equals
the one seen last time for that range, the signature object made then is
returned again, and a whole-block fault (one range over a block's weights,
faulted every step) costs what a single weight's does.

Errors: ``vbar_fault`` returns None when the range cannot be made resident
(not enough VRAM without evicting higher-priority pages, or at or above the
VBAR's watermark) and raises RuntimeError for anything else (a range
outside the VBAR, a released VBAR, a driver failure).

Priorities (dynvram's): the newest or most recently prioritized VBAR is on
top; inside a VBAR lower addresses win; eviction lowers the VBAR's
watermark, faults at or above it return None until ``prioritize()`` (or
``set_watermark``; with dynvram's watermark recovery, also once VRAM is
free again).
"""
import array
import functools
import logging
import operator
import sys
import threading

from . import control

__all__ = ["ModelVBAR", "vbar_fault", "vbar_signature_compare", "vbar_unpin",
           "vbars_analyze", "vbars_reset_watermark_limits"]

ALIGN = 512
_EMPTY = array.array("I")
logger = logging.getLogger("comfy_aimdo")


def _current_stream(backend, index):
    """A callable giving the torch stream work is queued on now (its raw
    handle), or None when unpins can use the default stream 0."""
    if backend not in ("cuda", "hip"):
        return None
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None  # no torch yet, or one without CUDA: the default stream
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return functools.partial(raw, index)
    return lambda: torch.cuda.current_stream(index).cuda_stream


class ModelVBAR:
    """A reserved virtual range for one model's weights (see the module).

    ModelVBAR(size, device): `device` is an initialised device index (an
    int, a torch.device or "cuda:N"). MemoryError when the range cannot be
    reserved; RuntimeError when the device is not initialised.

    Attributes: ``device`` (index), ``max_size``, ``offset`` (the bump
    pointer; writable), ``base_addr``. Releasing the object (or
    control.deinit()) gives its VRAM and address space back."""

    def __init__(self, size, device):
        ctx = control.get_devctx(device)
        size = operator.index(size)
        if size <= 0:
            raise MemoryError("ModelVBAR: size must be positive, not %d"
                              % size)
        try:
            self._vbar = control.dynvram.VBAR(ctx.device, size)
        except (ValueError, RuntimeError, OverflowError) as exc:
            raise MemoryError("ModelVBAR: cannot reserve %d bytes: %s"
                              % (size, exc)) from exc
        self.device = ctx.device_id
        self.max_size = size
        self.offset = 0
        self.base_addr = self._vbar.base
        self._lock = threading.Lock()
        self._fault = self._vbar.fault
        self._unpin = self._vbar.unpin
        self._sigs = {}  # offset -> {size: (max generation, signature)}
        self._backend = ctx.backend
        self._stream = _current_stream(ctx.backend, ctx.device_id)
        if self._stream is None and ctx.backend in ("cuda", "hip"):
            self._stream = self._resolve_stream
        ctx.track(self)
        logger.log(control.DETAIL, "comfy_aimdo: ModelVBAR of %d MiB on "
                   "device %d at 0x%x", size >> 20, self.device,
                   self.base_addr)

    def _resolve_stream(self):
        # torch was not imported when this VBAR was made: look again.
        s = _current_stream(self._backend, self.device)
        if s is None:
            return 0
        self._stream = s
        return s()

    # -- placement --

    def alloc(self, num_bytes):
        """Place `num_bytes` at the next 512-byte aligned offset: returns
        (self, address, num_bytes). Uses no VRAM. MemoryError("VBAR OOM")
        past max_size."""
        n = operator.index(num_bytes)
        if n < 0:
            raise ValueError("alloc: num_bytes %d is negative" % n)
        with self._lock:
            off = (self.offset + ALIGN - 1) & ~(ALIGN - 1)
            if off + n > self.max_size:
                raise MemoryError("VBAR OOM")
            self.offset = off + n
        return (self, self.base_addr + off, n)

    # -- residency --

    def fault(self, address, size):
        """Pin the pages under [address, address + size): the range's
        signature, or None when it cannot be made resident."""
        return vbar_fault((self, address, size))

    def _fault_failed(self, off, size, exc):
        if size == 0 and 0 <= off <= self.max_size:
            return _EMPTY
        raise RuntimeError("vbar_fault(0x%x, %d): %s"
                           % (self.base_addr + off, size, exc)) from exc

    def _signature(self, off, size, gen):
        gens = self._vbar.generations(off, size)
        sig = array.array("I", [g & 0xFFFFFFFF for g in gens])
        self._sigs.setdefault(off, {})[size] = (gen, sig)
        return sig

    def unpin(self, address, size):
        """The work reading the range is queued: its pages become
        evictable once the GPU has finished it."""
        s = self._stream
        try:
            self._unpin(address - self.base_addr, size,
                        s() if s is not None else 0)
        except (ValueError, TypeError, RuntimeError) as exc:
            self._unpin_failed(address, size, exc)

    def _unpin_failed(self, address, size, exc):
        if size == 0 or getattr(exc, "name", None) == "DV_ERROR_NOT_PINNED":
            # Nothing pinned (the fault returned None, or the range was
            # unpinned already): nothing to do.
            return
        raise RuntimeError("vbar_unpin(0x%x, %d): %s"
                           % (address, size, exc)) from exc

    def prioritize(self):
        """Top of the device's priority list; resets the watermark."""
        self._call(self._vbar.prioritize)

    def deprioritize(self):
        """Bottom of the priority list: evicted first."""
        self._call(self._vbar.deprioritize)

    def free_memory(self, num_bytes):
        """Evict unpinned pages from the top of this VBAR until at least
        `num_bytes` are freed (or none is left); returns bytes freed."""
        freed = self._call(self._vbar.evict, operator.index(num_bytes))
        logger.log(control.DETAIL, "comfy_aimdo: ModelVBAR 0x%x freed %d MiB",
                   self.base_addr, freed >> 20)
        return freed

    def loaded_size(self):
        """Bytes of this VBAR resident in VRAM."""
        return self._call(self._vbar.info)["resident_bytes"]

    def set_watermark_limit(self, num_bytes):
        """Pages below `num_bytes` (rounded up) are never evicted."""
        self._call(self._vbar.set_watermark_limit, operator.index(num_bytes))

    def set_watermark(self, num_bytes):
        """Faults at or above `num_bytes` (rounded up to pages) return
        None."""
        self._call(self._vbar.set_watermark, operator.index(num_bytes))

    def get_watermark(self):
        """The watermark in pages."""
        return self._call(self._vbar.info)["watermark"]

    def get_nr_pages(self):
        return self._vbar.page_count

    def get_residency(self):
        """Per page: bit 0 resident, bit 1 pinned."""
        return list(self._call(self._vbar.residency))

    @property
    def page_size(self):
        return self._vbar.page_size

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError("ModelVBAR 0x%x: %s"
                               % (self.base_addr, exc)) from exc

    def _release(self):
        """Give the VRAM and address space back now (also done when the
        object is freed). RuntimeError while pages are pinned."""
        self._sigs.clear()
        self._call(self._vbar.close)

    def _describe(self):
        if self._vbar.closed:
            return "ModelVBAR 0x%x: released" % self.base_addr
        info = self._vbar.info()
        return ("ModelVBAR 0x%x: %d MiB placed of %d, %d MiB resident, "
                "watermark %d / %d pages, priority %d" % (
                    self.base_addr, self.offset >> 20, self.max_size >> 20,
                    info["resident_bytes"] >> 20, info["watermark"],
                    info["page_count"], info["priority_rank"]))

    def __repr__(self):
        return "<comfy_aimdo ModelVBAR device=%d base=0x%x max_size=%d>" % (
            self.device, self.base_addr, self.max_size)


# ---- module functions (the names ComfyUI calls) ---------------------------

def vbar_fault(alloc):
    """Pin the pages under `alloc` (from ModelVBAR.alloc): its signature, or
    None when it cannot be made resident (out of VRAM, or at or above the
    watermark). RuntimeError on any other failure. (ComfyUI's hot path:
    ModelVBAR.fault calls this, not the other way round.)"""
    vbar, address, size = alloc
    off = address - vbar.base_addr
    try:
        gen = vbar._fault(off, size)
    except (ValueError, TypeError, RuntimeError) as exc:
        return vbar._fault_failed(off, size, exc)
    if gen is None:
        return None
    by_size = vbar._sigs.get(off)
    if by_size is not None:
        e = by_size.get(size)
        if e is not None and e[0] == gen:
            return e[1]
    return vbar._signature(off, size, gen)


def vbar_unpin(alloc):
    """End the use of `alloc` (None: nothing to do). The pages become
    evictable when the work queued so far on the current stream is done."""
    if alloc is None:
        return
    vbar, address, size = alloc
    s = vbar._stream
    try:
        vbar._unpin(address - vbar.base_addr, size,
                    s() if s is not None else 0)
    except (ValueError, TypeError, RuntimeError) as exc:
        vbar._unpin_failed(address, size, exc)


def vbar_signature_compare(a, b):
    """True when two signatures are equal; False when either is None;
    ValueError when their lengths differ."""
    if a is None or b is None:
        return False
    if a is b:
        return True
    if len(a) != len(b):
        raise ValueError("signatures of %d and %d pages cannot be compared"
                         % (len(a), len(b)))
    return a == b


def vbars_reset_watermark_limits():
    """Reset the watermark limit of every VBAR on every initialised device
    (ComfyUI calls it after each prompt)."""
    for ctx in list(control.devctxs):
        ctx.device.reset_watermark_limits()


def vbars_analyze(device=None):
    """Bytes of VRAM held by VBAR pages, on `device` (an index) or on all
    initialised devices; each ModelVBAR is described at the DETAIL log
    level."""
    if device is None:
        ctxs = list(control.devctxs)
    else:
        ctxs = [control.get_devctx(device)]
    total = 0
    for ctx in ctxs:
        total += ctx.device.stats().resident_bytes
        if logger.isEnabledFor(control.DETAIL):
            for obj in list(ctx._objects):
                if isinstance(obj, ModelVBAR):
                    logger.log(control.DETAIL, "comfy_aimdo: %s",
                               obj._describe())
    return total
