"""llama-server's own semantics (checker/engines/llamacpp.py) per build, on llama.cpp's own GGUF files and end
to end: --fit shrinks the context or offloads fewer layers instead of failing; pinned -c / -ngl fail."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from modelcheck.engines import llamacpp as L
from modelcheck.facts.gguf import parse_file
from fixtures import builders

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realworld" / "gguf"
GIB = 1 << 30
A10 = ("--instance", "ecs.gn7i-c8g1.2xlarge")  # 1x A10 24 GB


@pytest.fixture(scope="module")
def vocab_only(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vocab") / "phi3-vocab"
    d.mkdir()
    (d / "ggml-vocab-phi-3.gguf").write_bytes(gzip.decompress((REAL / "ggml-vocab-phi-3.gguf.gz").read_bytes()))
    return d


def test_defaults_per_build() -> None:
    legacy = L.defaults(5000)
    assert legacy.era == "legacy" and legacy.n_ctx == 4096 and not legacy.all_layers_on_gpu and not legacy.fit
    new = L.defaults(7437)
    assert new.era == "fit" and new.n_ctx is None and new.all_layers_on_gpu and new.fit and new.note is None
    assert "not read" in L.defaults(7000).note and "build unknown" in L.defaults(None).note
    assert L.build_number("server-cuda-b7437") == 7437 and L.build_number("b6000") == 6000
    assert L.build_number("server-cuda") is None and L.build_number(None) is None
    assert L.context(131072, None, None) == (131072, "the GGUF's context_length 131072 (-c 0 / default)")
    assert L.context(131072, None, 5000) == (4096, "llama-server default -c 4096")
    assert L.context(131072, 8192, None)[0] == 8192
    from modelcheck.engine_args import spelling

    assert spelling("max_model_len", "llama.cpp") == "-c" and spelling("n_gpu_layers", "llama.cpp") == "-ngl"


def test_plan_fit_and_pinned() -> None:
    # 8 GiB of weights, 128 KiB/token (Llama-3.1-8B at f16), 24 GiB free
    args = (8 * GIB, 32, 131072, GIB // 4, 24 * GIB, 131072)
    p = L.plan(*args)
    assert p.status == "context-reduced" and p.gpu_layers == 32 and p.fitted
    assert 4096 <= p.n_ctx < 131072 and p.n_ctx % 256 == 0
    # the fitted context leaves the 1 GiB margin: one more 256-token step would not
    assert 8 * GIB + 131072 * p.n_ctx + GIB // 4 <= 23 * GIB < 8 * GIB + 131072 * (p.n_ctx + 512) + GIB // 4
    pinned = L.plan(*args, requested_ctx=131072, requested_ngl=99)
    assert pinned.status == "fail" and "the CUDA allocation fails at load" in pinned.message
    big = L.plan(30 * GIB, 32, 131072, GIB // 4, 24 * GIB, 131072)
    assert big.status == "partial-offload" and big.n_ctx == 4096 and 0 < big.gpu_layers < 32
    assert L.plan(*args, fit=False).status == "fail"  # --fit off: the defaults as they are
    assert L.plan(*args, build=5000).status == "cpu-only"  # legacy: -ngl defaults to 0


def test_load_check_vocab_only_real_file(vocab_only: Path) -> None:
    f = vocab_only / "ggml-vocab-phi-3.gguf"
    info, err = parse_file(str(f), f.name, f.stat().st_size)
    assert err is None and info.tensor_count == 0 and info.metadata["general.architecture"] == "phi3"
    lc = L.load_check(info.metadata, info.tensor_count)
    assert not lc.loads and "no tensors" in lc.reason and "missing tensor" in lc.reason
    assert L.load_check(info.metadata, 195).loads
    assert "unknown model architecture 'nosuch'" in L.load_check({"general.architecture": "nosuch"}, 5).reason
    # architectures per build: qwen3next appears after the legacy source read
    assert "qwen3next" in L.architectures(None) and "qwen3next" not in L.architectures(5000)


def check(path: Path, *args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, [str(path), *args, "--format", "json", "--no-config"], catch_exceptions=False)
    return r.exit_code, json.loads(r.output)["results"][0]


def test_e2e_vocab_only_gguf_has_no_memory_figure(vocab_only: Path) -> None:
    _, res = check(vocab_only, "--image", "llama.cpp:server-cuda", *A10)
    assert res["memory"] is None  # nothing is loaded: no "0.00 GiB weights" estimate
    assert not [f for f in res["findings"] if f["rule"].startswith("MEM")]


def test_e2e_gguf_on_llamacpp_fit_warning(tmp_path: Path) -> None:
    d = tmp_path / "llama3-q8"
    d.mkdir()
    # Llama-3.1-8B geometry at Q8_0 with its 131072 context: the KV cache of the full context does not fit the A10
    builders.make_gguf(d / "model.gguf", n_layers=32, hidden=4096, ffn=14336, vocab=128256, quant="Q8_0",
                       context_length=131072)
    code, res = check(d, "--image", "llama.cpp:server-cuda", *A10)
    f = {x["rule"]: x for x in res["findings"]}
    assert res["memory"]["engine"] == "llama.cpp" and res["memory"]["status"] == "ok"
    assert f["MEM003"]["severity"] == "warning" and f["MEM003"]["message"].startswith("--fit reduces the context")
    assert f["MEM003"]["hint"].startswith("pass -c ") and "--max-model-len" not in f["MEM003"]["hint"]
    assert "MEM001" not in f and code == 0
