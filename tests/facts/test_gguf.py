"""Our bounded GGUF parser, cross-checked against gguf.GGUFReader on files written by gguf.GGUFWriter."""

from __future__ import annotations

import struct

import gguf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck.facts.ggml_types import GGML_TYPES, tensor_nbytes
from modelcheck.facts.gguf import parse_file
from fixtures.builders import make_gguf


def _parse(p):
    return parse_file(str(p), p.name, p.stat().st_size)


def test_type_table_matches_gguf_library():
    for qt, (block, size) in gguf.GGML_QUANT_SIZES.items():
        if (
            qt.name == "Q8_1"
        ):  # gguf-py uses f32 d+s (40 B); ggml-common.h block_q8_1 is 36 B; activation-only
            continue
        assert GGML_TYPES[int(qt)] == (qt.name, block, size)


@pytest.mark.parametrize("quant", ["Q4_K", "Q8_0", "F16", "Q6_K", "IQ4_XS"])
def test_matches_gguf_reader(tmp_path, quant):
    p = tmp_path / f"m-{quant}.gguf"
    size = make_gguf(p, n_layers=2, quant=quant, vocab=3000)
    info, err = _parse(p)
    assert err is None and info.file_size == size
    r = gguf.GGUFReader(str(p))
    assert info.version == 3 and info.tensor_count == len(r.tensors) == 2 * 9 + 3
    assert info.data_offset == r.data_offset
    for ours, theirs in zip(info.tensors, r.tensors):
        assert ours.name == theirs.name
        assert ours.dtype == theirs.tensor_type.name
        assert ours.shape == tuple(int(x) for x in theirs.shape)
        assert ours.nbytes == int(theirs.n_bytes)
        assert ours.offset == theirs.data_offset
    assert info.metadata["general.architecture"] == "llama" == info.architecture
    assert info.metadata["llama.block_count"] == 2
    assert info.metadata["llama.embedding_length"] == 512
    # The token list is summarised, never materialised.
    assert info.metadata["tokenizer.ggml.tokens"] == {"type": "STRING", "length": 3000}
    assert info.metadata["tokenizer.ggml.token_type"] == {"type": "INT32", "length": 3000}
    assert info.metadata["tokenizer.chat_template"].startswith("{% for m in messages %}")
    assert r.fields["tokenizer.ggml.tokens"].contents(0) == "tok0"
    assert info.expected_file_size <= size and info.expected_file_size > size - 32


def test_quantized_nbytes_and_param_count(gguf_q4):
    info, _ = _parse(gguf_q4)
    emb = next(t for t in info.tensors if t.name == "token_embd.weight")
    assert emb.dtype == "Q4_K" and emb.shape == (512, 1000)  # ggml order: ne0 (row length) first
    assert emb.nbytes == 512 * 1000 // 256 * 144 == tensor_nbytes(12, (512, 1000))


def test_big_endian(tmp_path):
    p = tmp_path / "be.gguf"
    w = gguf.GGUFWriter(str(p), "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_block_count(3)
    w.add_tensor("a", np.ones((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info, err = _parse(p)
    assert err is None and info.metadata["llama.block_count"] == 3
    assert info.tensors[0].shape == (32, 4) and info.tensors[0].nbytes == 512


def test_split_metadata_and_truncation(tmp_path):
    p = tmp_path / "m-00001-of-00002.gguf"
    full = make_gguf(p, extra_kv={"split.no": 0, "split.count": 2}, truncate_to=50_000)
    info, err = _parse(p)
    assert err is None
    assert (info.split_index, info.split_count) == (0, 2)
    assert info.file_size == 50_000 < info.expected_file_size <= full


def _header(version=3, tensors=0, kvs=0, endian="<"):
    return b"GGUF" + struct.pack(endian + "IQQ", version, tensors, kvs)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"ggjt" + b"\0" * 40, "legacy GGML/GGJT"),
        (b"PK\3\4" + b"\0" * 40, "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 99) + b"\0" * 30, "unsupported GGUF version"),
        (_header(tensors=10**12), "cannot fit"),
        (_header(kvs=1) + struct.pack("<Q", 10**9) + b"k", "implausible"),
        (
            _header(kvs=1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", 77),
            "unknown metadata value type 77",
        ),
        (
            _header(kvs=1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 10**15),
            "cannot fit in the file",
        ),
        (_header(tensors=1) + struct.pack("<Q", 1) + b"t" + struct.pack("<I", 99) + b"\0" * 30, "n_dims 99"),
        (
            _header(tensors=1)
            + struct.pack("<Q", 1)
            + b"t"
            + struct.pack("<IQIQ", 1, 32, 200, 0)
            + b"\0" * 40,
            "unknown ggml type id 200",
        ),
        (
            _header(tensors=1)
            + struct.pack("<Q", 1)
            + b"t"
            + struct.pack("<IQIQ", 1, 33, 12, 0)
            + b"\0" * 40,
            "not a whole number of blocks",
        ),
        (_header(kvs=1)[:20], "truncated inside the GGUF header"),
        (_header(kvs=1) + struct.pack("<Q", 4) + b"ke", "unexpected end of file at byte 34: a 4-byte string starts at byte 32 (truncated)"),
        (
            _header(kvs=1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", 4) + b"\1",
            "unexpected end of file",
        ),
    ],
)
def test_corrupt_headers_become_fact_errors(tmp_path, data, needle):
    p = tmp_path / "bad.gguf"
    p.write_bytes(data)
    info, err = _parse(p)
    assert info is None and err.kind == "gguf" and err.path == "bad.gguf"
    assert needle in err.message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(tmp_path_factory, tail):
    p = tmp_path_factory.mktemp("g") / "r.gguf"
    p.write_bytes(_header(tensors=1, kvs=2) + tail)
    info, err = _parse(p)
    assert (info is None) != (err is None)
