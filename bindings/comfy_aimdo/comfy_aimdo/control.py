# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.control: starting dynvram, its devices, headroom and logging.

How ComfyUI drives it (../../shared/spec/comfy_aimdo.md):

1. before ``import torch``: ``init()``. This picks the backend (the GPU
   dynvram finds, or ``DYNVRAM_BACKEND``), and on CUDA loads dynvram's
   allocation interposer into the global symbol scope, so that torch's
   ``cudaMalloc`` / ``cudaMallocAsync`` (both of torch's allocator
   backends) go through dynvram from then on: when VRAM is short, weight
   pages of low-priority models are evicted instead of torch running out of
   memory;
2. after ``import torch``: ``init_devices((index, extra_headroom), ...)``:
   opens one dynvram device per GPU and routes torch's allocations on that
   GPU to it; False means "not available, use the old path";
3. one of the ``set_log_*`` functions.

State is process-wide and guarded by one lock; every function is safe from
any thread. ``init()`` never raises; ``init_devices`` raises only
``ValueError`` for malformed entries.

Headroom: free VRAM dynvram leaves alone, ``simple_vram_headroom`` (default
256 MiB, 512 MiB with ``nvml_pressure``) plus the per-device extra given to
``init_devices``. A change takes effect at the next fault or allocation.

``nvml_pressure``: on CUDA the devices opened afterwards take free VRAM from
NVML as well (every process's use counted), through the CUDA backend's
``nvml=1`` option; where NVML is missing the backend says so and uses the
driver's figure. Other backends ignore it.
"""
import logging
import operator
import os
import sys
import threading
import warnings
import weakref

try:
    import dynvram
except ImportError as _exc:  # a broken install: init() answers False
    dynvram = None
    _import_error = _exc
else:
    _import_error = None

__all__ = [
    "analyze", "deinit", "devctxs", "get_devctx", "get_simple_vram_headroom",
    "get_total_vram_usage", "init", "init_device", "init_devices", "lib",
    "record", "set_log_critical", "set_log_debug", "set_log_detail",
    "set_log_error", "set_log_info", "set_log_none", "set_log_verbose",
    "set_log_vverbose", "set_log_warning", "set_simple_vram_headroom",
]

MIB = 1 << 20
DEFAULT_HEADROOM = 256 * MIB
NVML_HEADROOM = 512 * MIB
MAX_HEADROOM = 1 << 60

#: The loaded native library (dynvram's extension module) once init()
#: succeeded, else None.
lib = None

#: Contexts of the initialised devices, in the order they were opened (the
#: same list object for the life of the process).
devctxs = []

logger = logging.getLogger("comfy_aimdo")

# "detail" sits between info and debug.
DETAIL = 15
logging.addLevelName(DETAIL, "DETAIL")

_lock = threading.RLock()
_devices = {}  # device index -> DevCtx


class _State:
    backend = None           # dynvram backend name chosen by init()
    headroom = None          # set explicitly (init or setter), else None
    nvml_pressure = False
    pressure_route = None    # "interposer", or None (see pressure_status)
    pressure_reason = ""     # why there is no route, when there is none


_state = _State()


class DevCtx:
    """One initialised device: its dynvram.Device and what lives on it.

    Attributes: ``device_id`` (the torch / CUDA index), ``device`` (the
    dynvram.Device), ``extra_vram_headroom``, ``backend``. The objects
    made on it (ModelVBARs, VRAMBuffers, graphs) are tracked weakly, so
    ``deinit()`` can close them first.
    """

    def __init__(self, device_id, device, extra_vram_headroom):
        self.device_id = device_id
        self.device = device
        self.extra_vram_headroom = extra_vram_headroom
        self.backend = device.backend
        self._objects = weakref.WeakSet()

    def track(self, obj):
        """Remember `obj` (it has a ``_release()``) until it is gone."""
        self._objects.add(obj)

    def stats(self):
        """The device's dynvram counters (dynvram.Device.stats)."""
        return self.device.stats()

    def __repr__(self):
        return "<comfy_aimdo DevCtx %d: %r>" % (self.device_id, self.device)


# ---- logging --------------------------------------------------------------

# name -> (dynvram native level, Python logging level)
_LOG_LEVELS = {
    "none": (0, logging.CRITICAL + 10),
    "critical": (1, logging.CRITICAL),
    "error": (2, logging.ERROR),
    "warning": (3, logging.WARNING),
    "info": (4, logging.INFO),
    "detail": (4, DETAIL),
    "debug": (5, logging.DEBUG),
    "verbose": (6, 5),
    "vverbose": (6, 1),
}


def _set_log(name):
    native, level = _LOG_LEVELS[name]
    logger.setLevel(level)
    logging.getLogger("dynvram").setLevel(level)
    if dynvram is not None:
        dynvram.set_log_level(native)


def set_log_none():
    """No messages at all (the native library's included)."""
    _set_log("none")


def set_log_critical():
    _set_log("critical")


def set_log_error():
    _set_log("error")


def set_log_warning():
    _set_log("warning")


def set_log_info():
    _set_log("info")


def set_log_detail():
    """Between info and debug: the drop-in's own per-model and per-device
    summaries (logging level 15, "DETAIL"), the native library at info."""
    _set_log("detail")


def set_log_debug():
    _set_log("debug")


def set_log_verbose():
    _set_log("verbose")


def set_log_vverbose():
    """Everything (the native library has nothing beyond verbose)."""
    _set_log("vverbose")


# ---- init -----------------------------------------------------------------

_IMPLEMENTATIONS = {
    None: None, "": None, "auto": None, "dynvram": None,
    "cuda": "cuda", "nvidia": "cuda",
    "hip": "hip", "rocm": "hip", "amd": "hip",
    "levelzero": "levelzero", "xpu": "levelzero", "intel": "levelzero",
    "host": "host", "cpu": "host",
}


def _pick_backend(implementation):
    """The dynvram backend to use, or (None, reason)."""
    env = os.environ.get("DYNVRAM_BACKEND")
    if env:
        wanted = env
    else:
        key = implementation.lower() if isinstance(implementation, str) \
            else implementation
        if key not in _IMPLEMENTATIONS:
            return None, "unknown implementation %r" % (implementation,)
        wanted = _IMPLEMENTATIONS[key]
    probes = dynvram.backends()
    if wanted:
        for b in probes:
            if b["name"] == wanted:
                if b["available"]:
                    return wanted, ""
                return None, "%s: %s" % (wanted, b["reason"])
        return None, "no dynvram backend named %r" % (wanted,)
    # Automatic: a GPU only. The host backend simulates a device in host
    # memory; it is used only when asked for (DYNVRAM_BACKEND=host).
    reasons = []
    for b in probes:
        if b["name"] == "host":
            continue
        if b["available"]:
            return b["name"], ""
        reasons.append("%s: %s" % (b["name"], b["reason"]))
    return None, "no supported GPU (%s)" % "; ".join(reasons)


def _start_pressure(backend):
    """Put torch's own allocations under the budget (see pressure_status).

    Linux: the interposer, loaded now, before torch. Elsewhere (Windows,
    where PyTorch links the CUDA runtime statically), or with
    DYNVRAM_COMFY_PRESSURE=pluggable: dynvram's CUDAPluggableAllocator on
    the driver API, installed into torch by init_devices."""
    if backend != "cuda":
        _state.pressure_route = None
        _state.pressure_reason = (
            "the host backend runs torch on the CPU" if backend == "host" else
            "no allocation interposer for the %s backend" % backend)
        return
    want = os.environ.get("DYNVRAM_COMFY_PRESSURE", "").strip().lower()
    if want in ("none", "off", "0"):
        _state.pressure_route = None
        _state.pressure_reason = "DYNVRAM_COMFY_PRESSURE=%s" % want
        return
    if want == "pluggable" or not sys.platform.startswith("linux"):
        from dynvram import pluggable
        try:
            ok, why = pluggable.driver_loaded()
        except OSError as exc:
            ok, why = False, str(exc)
        _state.pressure_route = "pluggable" if ok else None
        _state.pressure_reason = "" if ok else why
        if not ok:
            logger.warning("comfy_aimdo: pluggable allocator unavailable: %s",
                           why)
        return
    from dynvram import interpose
    if "torch" in sys.modules and not interpose.is_loaded():
        logger.warning(
            "comfy_aimdo: torch was imported before control.init(): its "
            "cudaMalloc may already be bound to libcudart, so its "
            "allocations may not put pressure on model weights")
    try:
        interpose.load()
    except OSError as exc:
        _state.pressure_route = None
        _state.pressure_reason = str(exc)
        logger.warning("comfy_aimdo: allocation interposer unavailable: %s",
                       exc)
        return
    _state.pressure_route = "interposer"
    _state.pressure_reason = ""


def pressure_status():
    """How torch's allocations reach the budget: (route, reason). route is
    "interposer" (torch's cudaMalloc / cudaMallocAsync are dynvram's),
    "pluggable" (torch's allocator is dynvram's CUDAPluggableAllocator) or
    None, with the reason."""
    return _state.pressure_route, _state.pressure_reason


def _install_pluggable():
    """Make dynvram's pluggable allocator torch's (before its first CUDA
    allocation). On failure the route is None, with torch's reason."""
    from dynvram import pluggable
    try:
        pluggable.install()
    except (RuntimeError, AttributeError, OSError, ImportError) as exc:
        _state.pressure_route = None
        _state.pressure_reason = "torch did not take the pluggable " \
            "allocator: %s: %s" % (type(exc).__name__, exc)
        logger.warning("comfy_aimdo: %s", _state.pressure_reason)


def init(implementation=None, simple_vram_headroom=None, nvml_pressure=False,
         **ignored):
    """Load dynvram and start the allocation interposition. Returns True,
    or False (never raises) when the platform or GPU is unsupported.

    implementation: None (automatic: the first GPU backend dynvram finds),
    or "cuda", "rocm", "xpu", "host" ...; DYNVRAM_BACKEND overrides it.
    simple_vram_headroom: bytes of free VRAM left alone (default 256 MiB,
    512 MiB with nvml_pressure). nvml_pressure: free VRAM from NVML too.
    Other keyword arguments are accepted and ignored.

    A repeat call (already loaded) only updates the headroom and the NVML
    setting and returns True."""
    global lib
    try:
        with _lock:
            if ignored:
                logger.debug("comfy_aimdo.init: ignoring %s",
                             ", ".join(sorted(ignored)))
            if lib is not None:
                _state.nvml_pressure = bool(nvml_pressure)
                if simple_vram_headroom is not None:
                    _state.headroom = _check_headroom(simple_vram_headroom)
                _apply_headroom()
                return True
            if dynvram is None:
                logger.warning("comfy_aimdo: dynvram is not importable: %s",
                               _import_error)
                return False
            headroom = None
            if simple_vram_headroom is not None:
                headroom = _check_headroom(simple_vram_headroom)
            backend, reason = _pick_backend(implementation)
            if backend is None:
                logger.info("comfy_aimdo: dynvram unavailable: %s", reason)
                return False
            _start_pressure(backend)
            _state.backend = backend
            _state.headroom = headroom
            _state.nvml_pressure = bool(nvml_pressure)
            lib = dynvram._native
            logger.log(DETAIL, "comfy_aimdo: dynvram %s on %s (allocation "
                       "pressure: %s)", dynvram.__version__, backend,
                       _state.pressure_route or _state.pressure_reason)
            return True
    except Exception as exc:  # never raise: ComfyUI takes the old path
        logger.warning("comfy_aimdo.init failed: %s: %s",
                       type(exc).__name__, exc)
        return False


# ---- headroom -------------------------------------------------------------

def _check_headroom(n):
    if isinstance(n, bool):
        raise ValueError("headroom must be a number of bytes, not %r" % (n,))
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    try:
        n = operator.index(n)
    except TypeError:
        raise ValueError("headroom must be a whole number of bytes, not %r"
                         % (n,)) from None
    if n < 0 or n > MAX_HEADROOM:
        raise ValueError("headroom %d is outside [0, 2^60]" % n)
    return n


def _effective_headroom():
    if _state.headroom is not None:
        return _state.headroom
    return NVML_HEADROOM if _state.nvml_pressure else DEFAULT_HEADROOM


def _apply_headroom():
    h = _effective_headroom()
    for ctx in devctxs:
        ctx.device.set_headroom(min(h + ctx.extra_vram_headroom, MAX_HEADROOM))


def set_simple_vram_headroom(num_bytes):
    """Free VRAM dynvram leaves alone on every device (plus each device's
    extra from init_devices), from the next fault or allocation on.
    ValueError outside [0, 2^60]; RuntimeError before init()."""
    n = _check_headroom(num_bytes)
    with _lock:
        if lib is None:
            raise RuntimeError("comfy_aimdo is not initialized: call "
                               "comfy_aimdo.control.init() first")
        _state.headroom = n
        _apply_headroom()


def get_simple_vram_headroom():
    """The headroom in bytes (256 MiB by default, 512 MiB with NVML
    pressure, or what was set)."""
    with _lock:
        return _effective_headroom()


# ---- devices --------------------------------------------------------------

def _parse_entries(device_ids):
    """[(index, extra_headroom)] from ints and (int, int) pairs; ValueError
    for anything else."""
    if device_ids is None or isinstance(device_ids, (str, bytes)):
        raise ValueError("device_ids must be an iterable of device indices "
                         "or (index, extra_vram_headroom) pairs, not %r"
                         % (device_ids,))
    try:
        items = list(device_ids)
    except TypeError:
        raise ValueError("device_ids must be iterable, not %r"
                         % (device_ids,)) from None
    out, seen = [], set()
    for e in items:
        if isinstance(e, (tuple, list)):
            if len(e) != 2:
                raise ValueError("a device entry must be (index, "
                                 "extra_vram_headroom), not %r" % (e,))
            idx, extra = e
        else:
            idx, extra = e, 0
        idx = _check_index(idx)
        if isinstance(extra, bool):
            raise ValueError("extra_vram_headroom must be bytes, not %r"
                             % (extra,))
        try:
            extra = operator.index(extra)
        except TypeError:
            raise ValueError("extra_vram_headroom must be a whole number of "
                             "bytes, not %r" % (extra,)) from None
        if extra < 0 or extra > MAX_HEADROOM:
            raise ValueError("extra_vram_headroom %d is outside [0, 2^60]"
                             % extra)
        if idx in seen:
            raise ValueError("device %d is listed twice" % idx)
        seen.add(idx)
        out.append((idx, extra))
    return out


def _check_index(idx):
    if isinstance(idx, bool):
        raise ValueError("a device index must be an int, not %r" % (idx,))
    try:
        idx = operator.index(idx)
    except TypeError:
        raise ValueError("a device index must be an int, not %r"
                         % (idx,)) from None
    if idx < 0:
        raise ValueError("device index %d is negative" % idx)
    return idx


def _env_size(name):
    """A byte size from the environment ("6G", "512M", "4096"); 0 if
    unset. ValueError for anything else."""
    v = os.environ.get(name, "").strip()
    if not v:
        return 0
    units = {"K": 10, "M": 20, "G": 30, "T": 40}
    shift = units.get(v[-1].upper(), 0)
    digits = v[:-1] if shift else v
    if not digits.isdigit():
        raise ValueError("%s=%r is not a size (e.g. 8G, 512M)" % (name, v))
    return int(digits) << shift


def _open(idx, extra):
    h = min(_effective_headroom() + extra, MAX_HEADROOM)
    options = "nvml=1" if _state.nvml_pressure and _state.backend == "cuda" \
        else None
    # DYNVRAM_COMFY_VRAM_LIMIT simulates a smaller GPU (weights, torch's
    # allocations, buffers and graphs together); DYNVRAM_COMFY_PAGE_SIZE
    # sets the residency unit (default 32 MiB).
    dev = dynvram.Device(_state.backend, ordinal=idx, headroom=h,
                         vram_limit=_env_size("DYNVRAM_COMFY_VRAM_LIMIT"),
                         page_size=_env_size("DYNVRAM_COMFY_PAGE_SIZE"),
                         backend_options=options)
    try:
        if _state.pressure_route == "interposer":
            from dynvram import interpose
            interpose.attach(dev, idx)
        elif _state.pressure_route == "pluggable":
            from dynvram import pluggable
            pluggable.attach(dev, idx)
    except Exception:
        dev.close()
        raise
    return DevCtx(idx, dev, extra)


def _register(ctx):
    _devices[ctx.device_id] = ctx
    devctxs.append(ctx)
    logger.log(DETAIL, "comfy_aimdo: device %d: %r, budget %d MiB, headroom "
               "%d MiB", ctx.device_id, ctx.device,
               ctx.device.stats().budget >> 20,
               ctx.device.headroom >> 20)


def init_devices(device_ids):
    """Open a dynvram device per entry of `device_ids`: ints, or
    (index, extra_vram_headroom_bytes) pairs, any iterable (a generator
    too). Returns True, or False when it cannot start (init() not called or
    failed, no such device, no entries): then nothing is open. ValueError
    for a malformed entry (a pair of the wrong length, a negative headroom,
    a non-integer). A second call without deinit() warns "devices are
    already initialized" and returns False."""
    entries = _parse_entries(device_ids)
    with _lock:
        if lib is None:
            logger.info("comfy_aimdo.init_devices: init() did not succeed")
            return False
        if _devices:
            msg = ("comfy_aimdo: devices are already initialized (call "
                   "deinit() first)")
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            logger.warning(msg)
            return False
        if not entries:
            logger.info("comfy_aimdo.init_devices: no devices given")
            return False
        opened = []
        try:
            for idx, extra in entries:
                opened.append(_open(idx, extra))
        except Exception as exc:
            for ctx in opened:
                _close_ctx(ctx)
            logger.info("comfy_aimdo.init_devices: cannot start: %s: %s",
                        type(exc).__name__, exc)
            return False
        for ctx in opened:
            _register(ctx)
        if _state.pressure_route == "pluggable":
            _install_pluggable()
        return True


def init_device(device_id, extra_vram_headroom=0):
    """Open one more device. False when it cannot start or when that device
    is already initialized (with a warning); ValueError for bad
    arguments."""
    ((idx, extra),) = _parse_entries([(device_id, extra_vram_headroom)])
    with _lock:
        if lib is None:
            return False
        if idx in _devices:
            warnings.warn("comfy_aimdo: device %d is already initialized"
                          % idx, RuntimeWarning, stacklevel=2)
            return False
        try:
            ctx = _open(idx, extra)
        except Exception as exc:
            logger.info("comfy_aimdo.init_device(%d): cannot start: %s: %s",
                        idx, type(exc).__name__, exc)
            return False
        _register(ctx)
        return True


def _device_index(device):
    """A device index from an int, a torch.device or "cuda:N"."""
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    if isinstance(device, str):
        tail = device.rsplit(":", 1)
        if len(tail) == 2 and tail[1].isdigit():
            return int(tail[1])
        return 0
    if hasattr(device, "type") and hasattr(device, "index"):  # torch.device
        return device.index if device.index is not None else 0
    return operator.index(device)


def get_devctx(device_id):
    """The context of an initialised device; RuntimeError otherwise."""
    idx = _device_index(device_id)
    ctx = _devices.get(idx)
    if ctx is None:
        raise RuntimeError("comfy_aimdo: device %r is not initialized"
                           % (device_id,))
    return ctx


def _close_ctx(ctx):
    """Close what lives on the device, detach it, close it. Objects that
    refuse (pages still pinned) keep the device open, with an error."""
    for obj in list(ctx._objects):
        try:
            obj._release()
        except Exception as exc:
            logger.error("comfy_aimdo.deinit: %r not released: %s", obj, exc)
    try:
        ctx.device.close()
    except Exception as exc:
        logger.error("comfy_aimdo.deinit: device %d not closed: %s",
                     ctx.device_id, exc)


def deinit():
    """Close every device (the ModelVBARs, VRAMBuffers and graphs on them
    first: they raise on use afterwards). init_devices() may be called
    again; the library stays loaded."""
    with _lock:
        ctxs = list(devctxs)
        _devices.clear()
        del devctxs[:]
    for ctx in ctxs:
        _close_ctx(ctx)


def get_total_vram_usage():
    """Bytes of VRAM dynvram holds on all devices: weight pages, its pool,
    device buffers and graph memory; not torch's own allocations (torch
    reports those itself)."""
    total = 0
    for ctx in list(devctxs):
        st = ctx.device.stats()
        total += st.used - st.framework_bytes
    return total


def analyze():
    """Log a usage report of every device (at info level) and return it as
    text."""
    lines = []
    for ctx in list(devctxs):
        st = ctx.device.stats()
        lines.append(
            "device %d (%s): budget %d MiB, used %d MiB (weights %d, pinned "
            "%d, pool %d, torch %d), faults %d hit / %d populated / %d "
            "offloaded, %d evictions" % (
                ctx.device_id, ctx.backend, st.budget >> 20, st.used >> 20,
                st.resident_bytes >> 20, st.pinned_bytes >> 20,
                st.pool_bytes >> 20, st.framework_bytes >> 20, st.faults_hit,
                st.faults_populated, st.faults_offloaded, st.evictions))
        for obj in list(ctx._objects):
            describe = getattr(obj, "_describe", None)
            if describe is not None:
                lines.append("  " + describe())
    if not lines:
        lines.append("no device initialized")
    text = "\n".join(lines)
    logger.info("comfy_aimdo usage:\n%s", text)
    return text


def record(stream, assert_graph_breaks=False):
    """Shortcut to comfy_aimdo.malloc_graph.record."""
    from . import malloc_graph
    return malloc_graph.record(stream, assert_graph_breaks)
