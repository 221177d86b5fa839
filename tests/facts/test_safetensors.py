"""Our safetensors header parser and sparse writer, cross-checked against safetensors and huggingface_hub."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from modelcheck.facts.safetensors import parse_file
from fixtures.builders import safetensors_header, write_safetensors_sparse

ARRAYS = {
    "z.small": np.zeros((3,), dtype=np.int8),
    "a.weight": np.zeros((2, 3), dtype=np.float16),
    "b.bias": np.zeros((5,), dtype=np.float32),
    "c.ids": np.zeros((2, 2), dtype=np.int64),
    "d.flag": np.zeros((4,), dtype=np.bool_),
    "e.u16": np.zeros((7,), dtype=np.uint16),
}
DTYPE = {"int8": "I8", "float16": "F16", "float32": "F32", "int64": "I64", "bool": "BOOL", "uint16": "U16"}


def _spec(arrays):
    return {k: (DTYPE[str(v.dtype)], v.shape) for k, v in arrays.items()}


def test_sparse_writer_is_byte_identical_to_library(tmp_path):
    lib, ours = tmp_path / "lib.safetensors", tmp_path / "ours.safetensors"
    save_file(ARRAYS, str(lib), metadata={"format": "pt"})
    write_safetensors_sparse(ours, _spec(ARRAYS), {"format": "pt"})
    assert ours.read_bytes() == lib.read_bytes()  # zeros in the hole read back as zeros


def test_parser_matches_safe_open_and_hub(tmp_path):
    from huggingface_hub import parse_local_safetensors_file_metadata

    p = tmp_path / "m.safetensors"
    save_file(ARRAYS, str(p), metadata={"format": "pt", "note": "x"})
    h, err = parse_file(str(p), "m.safetensors", p.stat().st_size)
    assert err is None
    with safe_open(str(p), "np") as f:
        assert f.metadata() == h.metadata == {"format": "pt", "note": "x"}
        for t in h.tensors:
            sl = f.get_slice(t.name)
            assert (sl.get_dtype(), list(sl.get_shape())) == (t.dtype, list(t.shape))
    hub = parse_local_safetensors_file_metadata(p)
    assert {n: (i.dtype, tuple(i.shape), i.data_offsets) for n, i in hub.tensors.items()} == {
        t.name: (t.dtype, t.shape, (t.offset - 8 - h.header_size, t.offset - 8 - h.header_size + t.nbytes))
        for t in h.tensors
    }
    assert h.expected_file_size == p.stat().st_size
    assert h.data_bytes == sum(a.nbytes for a in ARRAYS.values())


def test_truncated_file_is_recorded_not_an_error(tmp_path):
    p = tmp_path / "t.safetensors"
    full = write_safetensors_sparse(p, {"w": ("BF16", (1024, 1024))}, truncate_to=100_000)
    h, err = parse_file(str(p), "t.safetensors", p.stat().st_size)
    assert (
        err is None
        and h.file_size == 100_000
        and h.expected_file_size == full == 2 * 1024 * 1024 + 8 + h.header_size
    )


def _raw(tmp_path, header: bytes, extra: int = 0, length: int | None = None):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * extra)
    return parse_file(str(p), "bad.safetensors", p.stat().st_size)


@pytest.mark.parametrize(
    ("header", "extra", "length", "needle"),
    [
        (b'{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', 4, 10**6, "larger than the file"),
        (b"x" * 16, 0, 2 * 10**8, "exceeds the 100 MB"),
        (b"[1,2]   ", 0, None, "does not start with '{'"),
        (b"{not json}", 0, None, "not valid JSON"),
        (b'{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,4]}}', 4, None, "unknown dtype 'F17'"),
        (b'{"a":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}}', 4, None, "non-negative integers"),
        (
            b'{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}',
            4,
            None,
            "needs 6 bytes but data_offsets span 4",
        ),
        (b'{"a":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}', 8, None, "expected 0 (gap or overlap)"),
        (b'{"a":{"dtype":"F16","shape":[2],"data_offsets":[4,0]}}', 8, None, "begin <= end"),
        (b'{"__metadata__":{"a":1}}', 0, None, "__metadata__ must map strings to strings"),
    ],
)
def test_bad_headers_become_fact_errors(tmp_path, header, extra, length, needle):
    h, err = _raw(tmp_path, header, extra, length)
    assert h is None and err.kind == "safetensors" and err.path == "bad.safetensors"
    assert needle in err.message


def test_tiny_file(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"abc")
    h, err = parse_file(str(p), "x.safetensors", 3)
    assert h is None and "too small" in err.message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("f") / "r.safetensors"
    p.write_bytes(data)
    h, err = parse_file(str(p), "r.safetensors", len(data))
    assert (h is None) != (err is None)


def test_header_helper_reports_data_size():
    head, data = safetensors_header({"w": ("F32", (3, 4)), "b": ("BF16", (5,))})
    doc = json.loads(head[8:])
    assert data == 58 and doc["w"]["data_offsets"] == [0, 48] and doc["b"]["data_offsets"] == [48, 58]
