# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.storage.fast_disk: the Linux answer from sysfs, on fake sysfs
trees built around the device number of a real temporary file (NVMe, SATA
SSD, rotational disk, partitions, device-mapper over several disks, virtual
disks, missing queue data), the mount table parser, the Windows decision,
and answers that must be None."""
import os
import sys

import pytest

from comfy_aimdo import storage


def _dev_of(path):
    st = os.stat(path)
    return os.major(st.st_dev), os.minor(st.st_dev)


def _disk(root, rel, rotational="0"):
    d = root / "sys" / "devices" / rel
    (d / "queue").mkdir(parents=True)
    if rotational is not None:
        (d / "queue" / "rotational").write_text(rotational + "\n")
    return d


def _partition(disk, name):
    p = disk / name
    p.mkdir()
    (p / "partition").write_text("1\n")
    return p


def _link(root, target, dev):
    blk = root / "sys" / "dev" / "block"
    blk.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, blk), blk / ("%d:%d" % dev))


@pytest.fixture
def target(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    if _dev_of(f)[0] == 0:
        pytest.skip("the temporary directory has an anonymous device number")
    return f


def _judge(target, root):
    return storage._linux_fast_disk(str(target), root=str(root),
                                    mountinfo=str(root / "none"))


def test_nvme_partition_is_fast(tmp_path, target):
    root = tmp_path / "r"
    disk = _disk(root, "pci0000:00/0000:00:01.0/nvme/nvme0/nvme0n1")
    _link(root, _partition(disk, "nvme0n1p2"), _dev_of(target))
    assert _judge(target, root) is True


def test_sata_ssd_and_rotational_disks_are_not(tmp_path, target):
    for rot, name in (("0", "ssd"), ("1", "hdd")):
        root = tmp_path / name
        disk = _disk(root, "pci0000:00/ata1/host0/target0/0:0:0:0/block/sda",
                     rotational=rot)
        _link(root, _partition(disk, "sda1"), _dev_of(target))
        assert _judge(target, root) is False, name


def test_device_mapper_needs_every_disk_fast(tmp_path, target):
    for second, want in (("nvme1n1", True), ("sdb", False)):
        root = tmp_path / second
        n0 = _disk(root, "pci0000:00/nvme/nvme0/nvme0n1")
        other = _disk(root, "pci0000:00/x/%s" % second)
        dm = _disk(root, "virtual/block/dm-0")
        (dm / "slaves").mkdir()
        os.symlink(os.path.relpath(n0, dm / "slaves"), dm / "slaves" / "a")
        os.symlink(os.path.relpath(other, dm / "slaves"), dm / "slaves" / "b")
        _link(root, dm, _dev_of(target))
        assert _judge(target, root) is want, second


def test_unknown_answers_are_none(tmp_path, target):
    cases = {
        "virtio": ("pci0000:00/virtio1/block/vda", "0"),
        "zram": ("virtual/block/zram0", "0"),
        "no-queue-data": ("pci0000:00/nvme/nvme0/nvme0n1", None),
    }
    for name, (rel, rot) in cases.items():
        root = tmp_path / name
        _link(root, _disk(root, rel, rotational=rot), _dev_of(target))
        assert _judge(target, root) is None, name
    # No sysfs entry at all, and no mount source to fall back on.
    assert _judge(target, tmp_path / "empty") is None


def test_mountinfo_longest_prefix_and_escapes(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text(
        "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
        "23 22 259:2 / /data rw shared:1 - btrfs /dev/nvme0n1p2 rw\n"
        "24 22 0:40 / /data/with\\040space rw - xfs /dev/sdb1 rw\n"
        "25 22 0:41 / /datax rw - tmpfs tmpfs rw\n"
        "garbage line\n")
    src = storage._mount_source
    assert src("/data/models/m.safetensors", str(mi)) == "/dev/nvme0n1p2"
    assert src("/data/with space/m", str(mi)) == "/dev/sdb1"
    assert src("/datax/m", str(mi)) == "tmpfs"
    assert src("/etc/passwd", str(mi)) == "/dev/sda1"
    assert src("/x", str(tmp_path / "missing")) is None


def test_windows_decision():
    judge = storage._judge_windows
    assert judge(17, False) is True       # NVMe
    assert judge(17, None) is True
    assert judge(11, False) is False      # SATA
    assert judge(7, None) is False        # USB
    assert judge(1, True) is False        # SCSI, seeks
    assert judge(8, True) is False        # RAID with a seek penalty
    assert judge(8, False) is None        # RAID hides the drive
    assert judge(None, None) is None


def test_public_function_never_raises():
    assert storage.fast_disk("/nonexistent/file") is None
    assert storage.fast_disk("/proc/self/status") is None  # no block device
    assert storage.fast_disk(12345678) is None  # a bad file descriptor
    assert storage.fast_disk(os.devnull) in (True, False, None)
    r = storage.fast_disk(__file__)
    assert r in (True, False, None)
    if not sys.platform.startswith(("linux", "win32")):
        assert r is None
