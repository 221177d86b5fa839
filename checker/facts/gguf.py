"""Bounded GGUF header parser (versions 1-3, little- or big-endian). Reads metadata and tensor infos only.

Layout (ggml-org/ggml docs/gguf.md): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count (u32 in
v1), kv pairs (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 dims[n_dims],
u32 ggml type, u64 offset), padding to ``general.alignment`` (default 32), tensor data.
Large arrays (tokenizer.ggml.tokens, merges, scores...) are skipped and summarised as
{"type", "length"}; every count and length is checked against the bytes left in the file first.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

from modelcheck.facts.ggml_types import GGML_TYPES, tensor_nbytes
from modelcheck.model import FactError, GGUFInfo, TensorInfo

MAX_STRING = 1 << 20  # a metadata string longer than 1 MiB is treated as corrupt
KEEP_STRING = 256 * 1024  # stored prefix of long strings (chat templates are tens of KB)
SMALL_ARRAY = 16  # arrays up to this many scalar items are kept as lists
MAX_DIMS = 4  # ggml.h GGML_MAX_DIMS: llama.cpp's gguf_init_from_file rejects more
CHUNK = 1 << 20
# Real files: ~20-60 metadata keys, at most a few thousand tensors, vocabularies up to ~260k tokens.
# Each parsed entry costs hundreds of bytes of Python objects and a microsecond or more, so absurd counts
# that still fit in the file (a 40 MB table of a million empty tensors) are refused as corrupt.
MAX_KV = 4_096
MAX_KEPT_BYTES = 16 << 20  # metadata string bytes kept in memory, all keys together
MAX_TENSORS = 100_000
MAX_ARRAY_ITEMS = 2_000_000  # strings walked one by one (scalars are skipped in one seek)
MAX_NESTED_ARRAYS = 65_536  # arrays of arrays: no writer emits big ones; each costs a Python call

VALUE_TYPES = {
    0: ("UINT8", "B", 1),
    1: ("INT8", "b", 1),
    2: ("UINT16", "H", 2),
    3: ("INT16", "h", 2),
    4: ("UINT32", "I", 4),
    5: ("INT32", "i", 4),
    6: ("FLOAT32", "f", 4),
    7: ("BOOL", "?", 1),
    8: ("STRING", None, None),
    9: ("ARRAY", None, None),
    10: ("UINT64", "Q", 8),
    11: ("INT64", "q", 8),
    12: ("FLOAT64", "d", 8),
}


class _Corrupt(Exception):
    pass


class _Reader:
    """Sequential reader over a file with a chunk buffer; never reads past ``size``."""

    def __init__(self, f, size: int, endian: str) -> None:
        self.f = f
        self.size = size
        self.e = endian
        self.buf = b""
        self.bpos = 0  # position of buf[0] in the file
        self.i = 0  # index into buf
        self.kept = 0  # string bytes kept so far (MAX_KEPT_BYTES)

    @property
    def pos(self) -> int:
        return self.bpos + self.i

    def _need(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _Corrupt(f"unexpected end of file at byte {self.pos} (needed {n} more bytes)")
        if self.i + n > len(self.buf):
            rest = self.buf[self.i :]
            self.bpos += self.i
            self.f.seek(self.bpos + len(rest))
            self.buf = rest + self.f.read(max(CHUNK, n - len(rest)))
            self.i = 0
            if len(self.buf) < n:
                raise _Corrupt(f"short read at byte {self.pos}")

    def unpack(self, fmt: str, n: int):
        self._need(n)
        v = struct.unpack_from(self.e + fmt, self.buf, self.i)[0]
        self.i += n
        return v

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _Corrupt(f"length {n} at byte {self.pos} runs past the end of the file")
        if self.i + n <= len(self.buf):
            self.i += n
        else:
            self.bpos = self.pos + n
            self.buf = b""
            self.i = 0

    def _skip_strings(self, count: int) -> None:
        """Skip ``count`` length-prefixed strings (a 150k-token vocabulary) with a tight in-buffer loop."""
        fmt = struct.Struct(self.e + "Q").unpack_from
        left = count
        while left:
            buf, i, end = self.buf, self.i, len(self.buf)
            while left and i + 8 <= end:
                n = fmt(buf, i)[0]
                if n > MAX_STRING:
                    raise _Corrupt(f"string length {n} at byte {self.bpos + i} is implausible")
                if i + 8 + n > end:
                    break
                i += 8 + n
                left -= 1
            self.i = i
            if left:  # the next string crosses the buffer end: take the slow path once
                n = self.unpack("Q", 8)
                if n > MAX_STRING:
                    raise _Corrupt(f"string length {n} at byte {self.pos - 8} is implausible")
                self.skip(n)
                left -= 1

    def raw(self, n: int) -> bytes:
        self._need(n)
        b = self.buf[self.i : self.i + n]
        self.i += n
        return b

    def string(self, keep: int = KEEP_STRING) -> str:
        n = self.unpack("Q", 8)
        if n > MAX_STRING:
            raise _Corrupt(f"string length {n} at byte {self.pos - 8} is implausible")
        if self.pos + n > self.size:
            raise _Corrupt(f"unexpected end of file at byte {self.size}: a {n}-byte string starts at byte "
                           f"{self.pos} (truncated)")
        keep = min(keep, max(0, MAX_KEPT_BYTES - self.kept))
        self.kept += min(n, keep)
        if n > keep:
            s = self.raw(keep).decode("utf-8", "replace")
            self.skip(n - keep)
            return s
        return self.raw(n).decode("utf-8", "replace")

    def value(self, vtype: int, depth: int = 0) -> Any:
        info = VALUE_TYPES.get(vtype)
        if info is None:
            raise _Corrupt(f"unknown metadata value type {vtype} at byte {self.pos}")
        _, fmt, size = info
        if fmt is not None:
            return self.unpack(fmt, size)
        if vtype == 8:
            return self.string()
        # array
        if depth > 3:
            raise _Corrupt("arrays nested deeper than 3 levels")
        itype = self.unpack("I", 4)
        count = self.unpack("Q", 8)
        iinfo = VALUE_TYPES.get(itype)
        if iinfo is None:
            raise _Corrupt(f"unknown array item type {itype} at byte {self.pos}")
        iname, _, isize = iinfo
        min_item = isize if isize else (8 if itype == 8 else 12)
        if count * min_item > self.size - self.pos:
            raise _Corrupt(f"array of {count} {iname} at byte {self.pos} cannot fit in the file")
        if count <= SMALL_ARRAY and itype != 9:
            return [self.value(itype, depth + 1) for _ in range(count)]
        if itype == 9 and count > MAX_NESTED_ARRAYS:
            raise _Corrupt(f"array of {count:,} arrays at byte {self.pos} is implausibly long")
        if not isize and count > MAX_ARRAY_ITEMS:
            raise _Corrupt(f"array of {count:,} {iname} at byte {self.pos} is implausibly long")
        if isize:
            self.skip(count * isize)
        elif itype == 8:
            self._skip_strings(count)
        else:
            for _ in range(count):
                self.value(itype, depth + 1)
        return {"type": iname, "length": count}


def _detect_endian(head: bytes) -> tuple[str, int] | None:
    le = struct.unpack_from("<I", head, 4)[0]
    if 1 <= le <= 3:
        return "<", le
    be = struct.unpack_from(">I", head, 4)[0]
    if 1 <= be <= 3:
        return ">", be
    return None


def parse_file(abs_path: str, rel: str, file_size: int) -> tuple[GGUFInfo | None, FactError | None]:
    """Parse the header of one .gguf file. Problems become FactError(kind="gguf")."""
    try:
        with open(abs_path, "rb") as f:
            return _parse(f, rel, file_size), None
    except _Corrupt as e:
        return None, FactError("gguf", rel, str(e))
    except OSError as e:
        return None, FactError("gguf", rel, f"cannot read: {e.strerror or e}")


def _parse(f, rel: str, file_size: int) -> GGUFInfo:
    head = f.read(24)
    if head[:4] == b"GGUF" and len(head) < 24:
        raise _Corrupt(f"file is {len(head)} bytes: truncated inside the GGUF header")
    if len(head) < 24 or head[:4] != b"GGUF":
        if head[:4] in (b"ggjt", b"ggml", b"ggmf", b"tjgg", b"lmgg"):
            raise _Corrupt("legacy GGML/GGJT file (pre-GGUF): convert it with llama.cpp's convert scripts")
        raise _Corrupt("not a GGUF file (magic bytes are not 'GGUF')")
    det = _detect_endian(head)
    if det is None:
        raise _Corrupt(f"unsupported GGUF version field {head[4:8].hex()}")
    endian, version = det
    r = _Reader(f, file_size, endian)
    r.skip(8)
    if version == 1:
        tensor_count, kv_count = r.unpack("I", 4), r.unpack("I", 4)
    else:
        tensor_count, kv_count = r.unpack("Q", 8), r.unpack("Q", 8)
    # Minimal encodings: a kv pair is >= 8 (key len) + 4 (type) + 1 bytes, a tensor info >= 8+4+4+8.
    if kv_count * 13 > file_size or tensor_count * 24 > file_size:
        raise _Corrupt(f"tensor_count {tensor_count} / kv_count {kv_count} cannot fit in {file_size} bytes")
    if kv_count > MAX_KV or tensor_count > MAX_TENSORS:
        raise _Corrupt(f"tensor_count {tensor_count:,} / kv_count {kv_count:,} are implausible "
                       f"(limits {MAX_TENSORS:,} / {MAX_KV:,})")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = r.string(keep=4096)
        if key in metadata:  # llama.cpp ggml/src/gguf.cpp: "duplicate key" fails the load
            raise _Corrupt(f"duplicate metadata key {key!r}")
        vtype = r.unpack("I", 4)
        metadata[key] = r.value(vtype)
    tensors: list[tuple[str, int, tuple[int, ...], int]] = []
    for _ in range(tensor_count):
        name = r.string(keep=4096)
        n_dims = r.unpack("I", 4)
        if n_dims > MAX_DIMS:
            raise _Corrupt(f"tensor {name!r}: n_dims {n_dims} > {MAX_DIMS} (llama.cpp allows at most {MAX_DIMS} dimensions)")
        dims = tuple(r.unpack("Q", 8) for _ in range(n_dims))
        ttype = r.unpack("I", 4)
        offset = r.unpack("Q", 8)
        tensors.append((name, ttype, dims, offset))
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"general.alignment {alignment!r} is not a positive power of two")
    data_offset = -(-r.pos // alignment) * alignment
    infos: list[TensorInfo] = []
    end = 0
    names: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    for name, ttype, dims, offset in tensors:
        nbytes = tensor_nbytes(ttype, dims)
        tname = GGML_TYPES[ttype][0] if ttype in GGML_TYPES else f"TYPE_{ttype}"
        if ttype not in GGML_TYPES:
            raise _Corrupt(f"tensor {name!r}: unknown ggml type id {ttype} (newer llama.cpp type?)")
        if nbytes is None:
            raise _Corrupt(f"tensor {name!r}: {tname} dims {list(dims)} are not a whole number of blocks")
        if offset % alignment:
            raise _Corrupt(f"tensor {name!r}: data offset {offset} is not aligned to {alignment}")
        if name in names:  # llama.cpp ggml/src/gguf.cpp: "duplicate tensor name" fails the load
            raise _Corrupt(f"duplicate tensor name {name!r}")
        names.add(name)
        infos.append(TensorInfo(name, tname, dims, nbytes, data_offset + offset))
        spans.append((offset, offset + nbytes, name))
        end = max(end, offset + nbytes)
    spans.sort()
    for (_, prev_end, prev), (start, _, cur) in itertools.pairwise(spans):
        if start < prev_end:  # llama.cpp checks each tensor starts where the previous (padded) one ends
            raise _Corrupt(f"tensor {cur!r} data (offset {start}) overlaps tensor {prev!r} (ends at {prev_end})")
    # A GGUF without tensors (llama.cpp's vocab-only ggml-vocab-*.gguf, `convert_hf_to_gguf.py --vocab-only`)
    # ends right after its metadata: gguf-py pads to the alignment only before tensor data
    # (gguf-py/gguf/gguf_writer.py@llama_cpp_python-0.3.16/vendor/llama.cpp: write_tensors_to_file calls
    # write_padding; convert_hf_to_gguf.py write_vocab stops after write_kv_data_to_file), and llama.cpp's
    # reader seeks past the end and reads a data section of 0 bytes (ggml/src/gguf.cpp@same:
    # fseek(GGML_PAD(ftell(file), alignment)), ctx->size = 0). Such a file is whole at its header's end.
    expected = data_offset + end if tensors else r.pos
    split_no = metadata.get("split.no")
    split_count = metadata.get("split.count")
    return GGUFInfo(
        path=rel,
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        metadata=metadata,
        tensors=tuple(infos),
        file_size=file_size,
        data_offset=data_offset,
        expected_file_size=expected,
        split_index=split_no if isinstance(split_no, int) else None,
        split_count=split_count if isinstance(split_count, int) else None,
    )
