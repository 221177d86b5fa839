"""Bounded safetensors header parser: one open, one or two reads, never touches tensor data.

Format (huggingface/safetensors docs "Format"): 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
``{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}``, then the
data buffer; offsets are relative to the buffer and must tile it without gaps. The library refuses
headers above 100 MB (MAX_HEADER_SIZE), so do we.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from operator import attrgetter

from modelcheck.model import FactError, SafetensorsHeader, TensorInfo

MAX_HEADER_SIZE = 100_000_000
# Parsing costs ~1 KB of Python objects per tensor entry: a 100 MB header of tiny entries would need GBs.
# Real files hold hundreds to a few thousand tensors per file (a 671B MoE: ~600 per shard).
MAX_TENSORS = 100_000
# The raw header, its decoded text and the parsed objects are all alive at once: a 100 MB header costs
# 300+ MB. 16 MB holds 100k tensor entries of ~160 bytes, far beyond any real file.
MAX_PARSE_BYTES = 16 * 1024 * 1024

# dtype -> bits per element (safetensors Dtype enum, incl. the sub-byte float types added in 0.6).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
}


_U64 = struct.Struct("<Q")


def _short(value: object, limit: int = 80) -> str:
    """repr capped for messages: names and shapes come from the file and can be megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _err(rel: str, msg: str) -> tuple[None, FactError]:
    return None, FactError("safetensors", rel, msg)


FIRST_READ = 4096  # one read holds the length prefix and the header of a typical shard (and the scanner's head)


def parse_file(abs_path: str, rel: str, file_size: int,
               heads: dict[str, bytes] | None = None) -> tuple[SafetensorsHeader | None, FactError | None]:
    """Read and validate the header of one .safetensors file. Problems become a FactError.

    A file shorter than the header promises (truncated download) is NOT an error here: the header is
    returned and ``expected_file_size > file_size`` tells the files rule. ``heads``: where to leave the
    file's first bytes (the code scan sniffs the same bytes instead of opening the file again).
    """
    if file_size < 8:
        return _err(rel, f"file is {file_size} bytes, too small for the 8-byte safetensors header length")
    try:
        fd = os.open(abs_path, os.O_RDONLY)  # os.read, not a buffered file: half the cost per shard
        try:
            first = os.read(fd, FIRST_READ)
            if heads is not None:
                heads[rel] = first
            if len(first) < 8:
                return _err(rel, f"short read of the header length ({len(first)} of 8 bytes)")
            (n,) = _U64.unpack_from(first)
            if n > MAX_HEADER_SIZE:
                return _err(
                    rel,
                    f"header length {n} exceeds the 100 MB safetensors limit (corrupt or not safetensors)",
                )
            if n > MAX_PARSE_BYTES:
                return _err(
                    rel,
                    f"header length {n:,} is above the {MAX_PARSE_BYTES >> 20} MB this checker parses "
                    "(real headers are well under 1 MB per thousand tensors)",
                )
            if n > file_size - 8:
                return _err(
                    rel,
                    f"header length {n} is larger than the file ({file_size} bytes): truncated or not safetensors",
                )
            raw = first[8 : 8 + n]
            while len(raw) < n:  # a header past the first read: the rest, in as few reads as the OS allows
                more = os.read(fd, n - len(raw))
                if not more:
                    break
                raw += more
        finally:
            os.close(fd)
    except OSError as e:
        return _err(rel, f"cannot read: {e.strerror or e}")
    if len(raw) != n:
        return _err(rel, f"short read of header ({len(raw)} of {n} bytes)")
    return parse_header_bytes(raw, rel, file_size)


def parse_header_bytes(
    raw: bytes, rel: str, file_size: int
) -> tuple[SafetensorsHeader | None, FactError | None]:
    n = len(raw)
    if not raw.lstrip(b" ").startswith(b"{"):
        return _err(rel, "header does not start with '{': not a safetensors file")
    declared = raw.count(b'"data_offsets"')  # counted before json.loads builds an object per entry
    if declared > MAX_TENSORS:
        return _err(rel, f"header declares {declared:,} tensors, more than the {MAX_TENSORS:,} this checker reads")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return _err(rel, f"header is not valid JSON: {str(e)[:120]}")
    if not isinstance(doc, dict):
        return _err(rel, "header JSON is not an object")
    metadata: dict[str, str] = {}
    tensors: list[TensorInfo] = []
    spans: list[tuple[int, int, str]] = []
    bits_of, intern, start = DTYPE_BITS.get, sys.intern, 8 + n
    # this loop runs once per tensor (100k+ in the largest checkpoints): plain type checks, no helper calls
    for name, entry in doc.items():
        if name == "__metadata__":
            if entry is None:
                continue
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                return _err(rel, "__metadata__ must map strings to strings")
            metadata = entry
            continue
        if type(entry) is not dict:
            return _err(rel, f"tensor {_short(name)}: entry is not an object")
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offs = entry.get("data_offsets")
        bits = bits_of(dtype) if type(dtype) is str else None  # a list dtype is unhashable
        if bits is None:
            return _err(rel, f"tensor {_short(name)}: unknown dtype {_short(dtype)}")
        if type(shape) is not list:
            return _err(rel, f"tensor {_short(name)}: shape {_short(shape)} is not a list of non-negative integers")
        numel = 1
        for d in shape:
            if type(d) is not int or d < 0:
                return _err(rel, f"tensor {_short(name)}: shape {_short(shape)} is not a list of non-negative integers")
            numel *= d
        if type(offs) is not list or len(offs) != 2:
            return _err(rel, f"tensor {_short(name)}: data_offsets {_short(offs)} are not [begin, end] with begin <= end")
        begin, end = offs
        if type(begin) is not int or type(end) is not int or not 0 <= begin <= end:
            return _err(rel, f"tensor {_short(name)}: data_offsets {_short(offs)} are not [begin, end] with begin <= end")
        bits *= numel
        if bits % 8 == 0 and bits // 8 != end - begin:
            return _err(
                rel,
                f"tensor {_short(name)}: {dtype}{_short(shape)} needs {bits // 8} bytes but data_offsets span {end - begin}",
            )
        tensors.append(TensorInfo(name, intern(dtype), tuple(shape), end - begin, start + begin))
        spans.append((begin, end, name))
    # The buffer must be tiled without gaps or overlaps (safetensors' validate_offsets).
    spans.sort()
    end = 0
    for begin, stop, name in spans:
        if begin != end:
            return _err(
                rel, f"tensor {_short(name)}: data_offsets start at {begin}, expected {end} (gap or overlap)"
            )
        end = stop
    tensors.sort(key=_OFFSET)
    return SafetensorsHeader(rel, n, end, file_size, tuple(tensors), metadata), None


_OFFSET = attrgetter("offset")
