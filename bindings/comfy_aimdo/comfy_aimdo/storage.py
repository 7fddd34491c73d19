# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.storage: is a file on a fast NVMe drive?

``fast_disk(path)`` answers True (an NVMe solid-state drive), False (a
rotational disk, or a solid-state drive on a slower bus: SATA, USB, ...)
or None (unknown: a network or virtual file system, a RAM disk, an OS this
module cannot ask). ComfyUI then prefers streaming weights from the file
over pinning them in RAM. Imports on every OS; never raises for a path it
cannot judge (a missing file is None too).

Linux: the block device under the file system holding `path` (st_dev, or
the mount's source device for file systems with anonymous device numbers
such as btrfs), its whole-disk parent for a partition, the disks under a
device-mapper / md device (all must be NVMe); NVMe is recognised by the
device's name or its sysfs path (``/nvme``), rotation by
``queue/rotational``.

Windows: IOCTL_STORAGE_QUERY_PROPERTY on the volume holding `path`: the
adapter's bus type (NVMe -> True; SATA, ATA, USB, SCSI, SAS ... -> False)
and, for other buses, the seek penalty (a disk with one -> False).
"""
import os
import sys

__all__ = ["fast_disk"]

SYS_DEV_BLOCK = "/sys/dev/block"
SYS_BLOCK = "/sys/block"
MOUNTINFO = "/proc/self/mountinfo"


def fast_disk(path):
    """True / False / None, see the module."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_fast_disk(path)
        if sys.platform == "win32":
            return _windows_fast_disk(path)
    except (OSError, ValueError, TypeError):
        return None
    return None


# ---- Linux ----------------------------------------------------------------

def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _unescape_mountinfo(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and \
                len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mount_source(path, mountinfo=MOUNTINFO):
    """The source of the mount holding `path` (e.g. "/dev/nvme0n1p2"), from
    the longest mount point that contains it; None if unknown."""
    real = os.path.realpath(path)
    best, best_len = None, -1
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        mnt = _unescape_mountinfo(fields[4])
        inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) > best_len:
            best, best_len = _unescape_mountinfo(rest[1]), len(mnt)
    return best


def _sysfs_block_dir(major, minor, root):
    d = os.path.join(root, SYS_DEV_BLOCK.lstrip("/"), "%d:%d" % (major, minor))
    return os.path.realpath(d) if os.path.exists(d) else None


def _disk_dirs(block_dir, depth=0):
    """The whole-disk sysfs directories under a block device: itself, its
    parent for a partition, its slaves (recursively) for dm / md."""
    if depth > 8:
        return []
    if os.path.exists(os.path.join(block_dir, "partition")):
        block_dir = os.path.dirname(block_dir)
    slaves = os.path.join(block_dir, "slaves")
    try:
        names = sorted(os.listdir(slaves))
    except OSError:
        names = []
    if names:
        out = []
        for n in names:
            out += _disk_dirs(os.path.realpath(os.path.join(slaves, n)),
                              depth + 1)
        return out
    return [block_dir]


def _judge_disk(disk_dir):
    """True (NVMe, not rotational), False (rotational, or a drive on a
    slower bus), None (no queue information, or a virtual device)."""
    rot = _read(os.path.join(disk_dir, "queue", "rotational"))
    name = os.path.basename(disk_dir)
    if rot is None:
        return None
    if rot == "1":
        return False
    if name.startswith("nvme") or "/nvme" in disk_dir:
        return True
    # RAM disks, loop and network block devices, and virtual machines'
    # disks (virtio, Xen) hide what stores the bytes.
    if name.startswith(("loop", "ram", "zram", "nbd", "vd", "xvd")):
        return None
    return False


def _linux_fast_disk(path, root="/", mountinfo=MOUNTINFO):
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    block = None
    if major != 0:
        block = _sysfs_block_dir(major, minor, root)
    if block is None:
        # An anonymous device number (btrfs, overlayfs, tmpfs, NFS...):
        # the mount's source, when it is a block device.
        src = _mount_source(path, mountinfo)
        if not src or not src.startswith("/"):
            return None
        try:
            sst = os.stat(src)
        except OSError:
            return None
        if not sst.st_rdev:
            return None
        block = _sysfs_block_dir(os.major(sst.st_rdev),
                                 os.minor(sst.st_rdev), root)
        if block is None:
            return None
    answers = [_judge_disk(d) for d in _disk_dirs(block)]
    if not answers or None in answers:
        return None
    return all(answers)


# ---- Windows --------------------------------------------------------------

# STORAGE_BUS_TYPE values (winioctl.h): 17 NVMe; slower buses: 1 SCSI,
# 2 ATAPI, 3 ATA, 4 1394, 7 USB, 10 SAS, 11 SATA, 12 SD, 13 MMC. RAID (8),
# virtual disks (14, 15) and Storage Spaces (16) hide the drive: unknown.
BUS_NVME = 17
_SLOW_BUSES = {1, 2, 3, 4, 7, 10, 11, 12, 13}


def _judge_windows(bus_type, seek_penalty):
    """Decision from the adapter's bus type and the seek penalty (None when
    not reported)."""
    if bus_type == BUS_NVME:
        return True
    if seek_penalty:
        return False
    if bus_type in _SLOW_BUSES:
        return False
    return None


def _windows_fast_disk(path):  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateFileW.restype = ctypes.c_void_p
    kernel32.CreateFileW.argtypes = [
        wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p,
        wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p]
    full = os.path.abspath(path)
    vol = ctypes.create_unicode_buffer(261)
    if not kernel32.GetVolumePathNameW(full, vol, 261):
        return None
    root = vol.value.rstrip("\\")
    if len(root) != 2 or root[1] != ":":
        return None  # a mounted folder or a network share
    # No access rights needed for the property queries; share read and
    # write; OPEN_EXISTING.
    handle = kernel32.CreateFileW("\\\\.\\" + root, 0, 3, None, 3, 0, None)
    if handle is None or handle == ctypes.c_void_p(-1).value:
        return None
    try:
        IOCTL_STORAGE_QUERY_PROPERTY = 0x2D1400

        class Query(ctypes.Structure):
            _fields_ = [("PropertyId", ctypes.c_int),
                        ("QueryType", ctypes.c_int),
                        ("AdditionalParameters", ctypes.c_ubyte * 1)]

        class Adapter(ctypes.Structure):
            _fields_ = [("Version", wintypes.DWORD), ("Size", wintypes.DWORD),
                        ("MaximumTransferLength", wintypes.DWORD),
                        ("MaximumPhysicalPages", wintypes.DWORD),
                        ("AlignmentMask", wintypes.DWORD),
                        ("AdapterUsesPio", ctypes.c_ubyte),
                        ("AdapterScansDown", ctypes.c_ubyte),
                        ("CommandQueueing", ctypes.c_ubyte),
                        ("AcceleratedTransfer", ctypes.c_ubyte),
                        ("BusType", ctypes.c_ubyte),
                        ("BusMajorVersion", wintypes.WORD),
                        ("BusMinorVersion", wintypes.WORD)]

        class Seek(ctypes.Structure):
            _fields_ = [("Version", wintypes.DWORD), ("Size", wintypes.DWORD),
                        ("IncursSeekPenalty", ctypes.c_ubyte)]

        def query(prop, out):
            q = Query(prop, 0)
            got = wintypes.DWORD(0)
            ok = kernel32.DeviceIoControl(
                ctypes.c_void_p(handle), IOCTL_STORAGE_QUERY_PROPERTY,
                ctypes.byref(q), ctypes.sizeof(q), ctypes.byref(out),
                ctypes.sizeof(out), ctypes.byref(got), None)
            return bool(ok)

        adapter = Adapter()
        bus = adapter.BusType if query(1, adapter) else None  # Adapter
        seek = Seek()
        penalty = bool(seek.IncursSeekPenalty) if query(7, seek) else None
        if bus is None and penalty is None:
            return None
        return _judge_windows(bus, penalty)
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))
