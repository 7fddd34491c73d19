# SPDX-License-Identifier: Apache-2.0
"""safetensors files read through dynvram's read pool.

The format: an 8-byte little-endian header length N, then N bytes of JSON
(an object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
plus an optional "__metadata__" object of strings), then the data; offsets
count from the first byte after the header. The header is read with plain
Python I/O (it is small); tensor bytes are moved by the read pool
(dynvram.read_file) straight into a pinned HostBuffer, a VBAR or device
memory, never through a pageable copy.

``read_header(path)`` parses and checks the header (no torch needed). The
loaders are in dynvram.torch: ``load_safetensors_to_host``,
``load_safetensors_to_vbar``, ``load_safetensors_to_device``.
"""

import json
import os
import struct
from typing import NamedTuple

__all__ = ["TensorInfo", "read_header"]

# Bytes per element of each safetensors dtype.
ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
             "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1,
             "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}

MAX_HEADER = 100 << 20


class TensorInfo(NamedTuple):
    """One tensor of a safetensors file. `begin`/`end` are absolute file
    offsets of its bytes."""
    name: str
    dtype: str
    shape: tuple
    begin: int
    end: int

    @property
    def nbytes(self):
        return self.end - self.begin


def _bad(path, why):
    return ValueError("%s: not a valid safetensors file: %s" % (path, why))


def _entry(path, name, e, data_len):
    if not isinstance(e, dict):
        raise _bad(path, "entry %r is not an object" % name)
    dtype, shape, offs = e.get("dtype"), e.get("shape"), e.get("data_offsets")
    if dtype not in ITEM_SIZE:
        raise _bad(path, "tensor %r has unknown dtype %r" % (name, dtype))
    if (not isinstance(shape, list) or
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                    for s in shape)):
        raise _bad(path, "tensor %r has a bad shape %r" % (name, shape))
    if (not isinstance(offs, list) or len(offs) != 2 or
            not all(isinstance(o, int) and not isinstance(o, bool)
                    for o in offs)):
        raise _bad(path, "tensor %r has bad data_offsets %r" % (name, offs))
    begin, end = offs
    if not 0 <= begin <= end <= data_len:
        raise _bad(path, "tensor %r: data_offsets %r outside the %d data "
                   "bytes" % (name, offs, data_len))
    numel = 1
    for s in shape:
        numel *= s
    if numel * ITEM_SIZE[dtype] != end - begin:
        raise _bad(path, "tensor %r: %d bytes for shape %r of %s" %
                   (name, end - begin, shape, dtype))
    return dtype, tuple(shape), begin, end


def read_header(path):
    """(tensors, metadata, data_start): the tensors in file order as
    TensorInfo, the "__metadata__" dict (or {}), and the file offset where
    the data begins. Raises ValueError on a malformed file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise _bad(path, "shorter than 8 bytes")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or n > size - 8:
            raise _bad(path, "header length %d with a file of %d bytes" %
                       (n, size))
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(path, "the header is not JSON (%s)" % e) from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict):
        raise _bad(path, "__metadata__ is not an object")
    start = 8 + n
    data_len = size - start
    tensors = []
    for name, e in header.items():
        dtype, shape, begin, end = _entry(path, name, e, data_len)
        tensors.append(TensorInfo(name, dtype, shape, start + begin,
                                  start + end))
    tensors.sort(key=lambda t: t.begin)
    for a, b in zip(tensors, tensors[1:]):
        if b.begin < a.end:
            raise _bad(path, "tensors %r and %r overlap" % (a.name, b.name))
    return tensors, meta, start
