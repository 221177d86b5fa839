"""Shared pytest fixtures: model folders built with fixtures.builders (sparse real-format files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # make ``from fixtures.builders import ...`` work from any rootdir
    sys.path.insert(0, str(ROOT))

from fixtures import builders


@pytest.fixture
def qwen_example(tmp_path: Path) -> Path:
    """The shipped Qwen2.5-0.5B-Instruct example: real configs + sparse model.safetensors."""
    return builders.make_example_qwen(tmp_path / "Qwen2.5-0.5B-Instruct")


@pytest.fixture(scope="session")
def llama_405b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama-3.1-405B-Instruct geometry in 191 sparse BF16 shards + index (built once per session)."""
    return builders.make_hf_llm(
        tmp_path_factory.mktemp("m") / "Llama-3.1-405B-Instruct", builders.LLAMA_405B, shards=191
    )


@pytest.fixture
def gguf_q4(tmp_path: Path) -> Path:
    """A small llama GGUF with Q4_K tensors written by gguf.GGUFWriter (data region is a hole)."""
    p = tmp_path / "tiny-llama-Q4_K_M.gguf"
    builders.make_gguf(p, n_layers=2, quant="Q4_K")
    return p
