"""How well the memory estimator predicts real vLLM start-ups (tests/data/vllm_memory_observations.yaml).

For each observation: rebuild the model as a sparse safetensors fixture from its config (real headers,
data as holes), gather facts through the real pipeline, run ``modelcheck.estimate.compute`` with that row's
GPU memory, vLLM version and settings, and compare with what vLLM printed.

    .venv/bin/python bench/accuracy.py [--rows ID,ID] [--csv]

Rows whose GPU memory is unknown cannot be checked for KV tokens (marked "gpu?"). Quantized checkpoints
are rebuilt at 16 bit (the fixture builder writes one dtype), so for them the row's reported loaded
weights replace the fixture's: the KV arithmetic is still tested, the weights column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# --baseline runs this same bench against another checkout of the estimator (CODE_ROOT), for side-by-side
CODE_ROOT = Path(os.environ.get("MODELCHECK_BENCH_CODE") or ROOT)
sys.path.insert(0, str(CODE_ROOT))

from modelcheck.estimate import compute
from modelcheck.model import GPU, ImageRef, Instance, Target, WeightsSummary

DATA = ROOT / "tests" / "data" / "vllm_memory_observations.yaml"
GIB = 1 << 30
# Driver-reported totals of common cards (GiB), used when a row names the card class but not the total
TYPICAL_TOTAL_GIB = {16: 14.56, 24: 22.06, 32: 31.74, 40: 39.39, 48: 44.39, 80: 79.19, 96: 94.97}
# Rows whose parallel layout the estimator does not model; their loaded weights come from the report.
WEIGHTS_FROM_REPORT = {
    # DP2 x TP4 with expert parallelism over 8 L40S: experts split 8 ways, attention 4 ways (27.72 GiB/GPU)
    "l40s-qwen3-235b-2507-fp8-tp4ep": "reported (EP over DP2xTP4)",
}
# Models whose calibration entry lacks the geometry: the published config.json values (model card /
# HF config, not from the calibration source). llava-v1.6-mistral-7b: Mistral-7B-Instruct-v0.2 text model
# (its 131072 B/token fp16 KV matches the row's 59212694937 B / 451744 tokens) + CLIP ViT-L/14-336.
MODEL_CARD_CONFIGS: dict[str, dict[str, Any]] = {
    "llava-hf/llava-v1.6-mistral-7b-hf": {
        "architectures": ["LlavaNextForConditionalGeneration"], "model_type": "llava_next",
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 32064, "max_position_embeddings": 32768,
        "torch_dtype": "float16", "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336],
                                                            [336, 1008]],
        "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                          "num_attention_heads": 16, "image_size": 336, "patch_size": 14},
    },
}
QUANT_HINTS = ("gptq", "awq", "bnb", "bitsandbytes", "fp8", "w8a8", "int4", "aqlm", "mxfp4")


def load() -> dict[str, Any]:
    return yaml.safe_load(DATA.read_text())


def row_version(row: dict[str, Any]) -> str | None:
    if row.get("vllm_version"):
        return str(row["vllm_version"]).split("+")[0]
    note = str(row.get("vllm_version_note") or "")
    import re

    m = re.search(r"v?(0\.\d+\.\d+)", note)
    if m:
        return m.group(1)
    m = re.search(r"~v?(0\.\d+)", note)
    if m:
        return m.group(1) + ".0"
    return "0.7.2" if row.get("engine") == "V0" else "0.11.0"


def model_config(models: dict[str, Any], model_id: str) -> dict[str, Any] | None:
    m = models.get(model_id)
    if model_id in MODEL_CARD_CONFIGS and (not m or not m.get("num_hidden_layers")):
        return dict(MODEL_CARD_CONFIGS[model_id])
    if not m or not m.get("num_hidden_layers"):
        return None
    cfg = {k: v for k, v in m.items() if v is not None and not isinstance(v, (list,)) or k == "architectures"}
    for k in ("config_source", "notes", "total_params", "total_safetensors_bytes", "moe", "mla", "vision_config",
              "quantization_config"):
        cfg.pop(k, None)
    for sub in ("moe", "mla"):
        if isinstance(m.get(sub), dict):
            cfg.update({k: v for k, v in m[sub].items() if v is not None})
    if isinstance(m.get("vision_config"), dict):
        cfg["vision_config"] = m["vision_config"]
    if m.get("max_position_embeddings") is None:
        cfg["max_position_embeddings"] = 32768
    cfg.pop("sliding_window_note", None)
    if m.get("model_type") == "qwen2":
        cfg["use_sliding_window"] = False
    if m.get("model_type") == "gpt_oss":
        cfg["layer_types"] = ["sliding_attention", "full_attention"] * (m["num_hidden_layers"] // 2)
    return {k: v for k, v in cfg.items() if not str(k).endswith("_note") and not str(k).endswith("_source")}


def build_facts(cfg: dict[str, Any], tmp: Path, name: str, dtype: str = "BF16"):
    """The real pipeline: sparse fixture -> modelcheck.facts.gather. Falls back to in-memory facts."""
    try:
        from modelcheck.facts import gather
        from fixtures.builders import make_hf_llm

        d = make_hf_llm(tmp / f"{name.replace('/', '_')}-{dtype}", cfg, tokenizer=False, dtype=dtype)
        return gather(str(d))
    except Exception as exc:  # noqa: BLE001 - the bench must still print a row
        print(f"  ({name}: fixture pipeline failed: {exc}; using in-memory facts)", file=sys.stderr)
        from modelcheck.testing import make_facts

        return make_facts(config=cfg, weights=WeightsSummary("safetensors", 0, 0, {}, None, 0, ()))


def target_for(row: dict[str, Any], total_bytes: int, cc: str) -> Target:
    args: dict[str, Any] = {}
    for k in ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
              "tensor_parallel_size", "enable_chunked_prefill", "enforce_eager"):
        if row.get(k) is not None:
            args[k] = row[k]
    if row.get("util_assumed") is None and row.get("gpu_memory_utilization") is None:
        args.pop("gpu_memory_utilization", None)
    if str(row.get("dtype") or "").startswith("float16"):
        args["dtype"] = "float16"
    if row.get("lora_enabled"):
        args["enable_lora"] = True
    if str(row.get("quantization") or "").startswith("bitsandbytes"):
        args["quantization"] = "bitsandbytes"
    if row.get("kv_cache_dtype"):
        args["kv_cache_dtype"] = row["kv_cache_dtype"]
    gpu_name = str((row.get("gpu") or {}).get("model") or "unknown")
    gpu = GPU(name=gpu_name, memory_bytes=total_bytes, nominal_gb=0, compute_capability=cc, bf16=True, fp8=True)
    n = int(row.get("num_gpus") or 1)
    ver = row_version(row)
    return Target(
        image=ImageRef(raw=f"vllm:{ver}-gpu", engine="vllm", version=ver, chip="GPU", category="llm"),
        instance=Instance(name="bench", cloud="user", chip="GPU", gpu=gpu, gpu_count=n), chip="GPU",
        engine_args=args,
    )


def gpu_total(row: dict[str, Any]) -> tuple[int | None, str]:
    g = row.get("gpu") or {}
    model = str(g.get("model") or "")
    cc = "7.5" if "T4" in model else "7.0" if "V100" in model else "8.0"
    if g.get("total_vram_gib_reported"):
        return int(g["total_vram_gib_reported"] * GIB), cc
    if g.get("nominal_vram_gb") in TYPICAL_TOTAL_GIB:
        return int(TYPICAL_TOTAL_GIB[g["nominal_vram_gb"]] * GIB), cc
    return None, cc


def reported_weights(rep: dict[str, Any]) -> float | None:
    for k in ("weights_gib", "model_loading_gib", "weights_gib_per_gpu", "model_loading_gib_per_gpu"):
        if rep.get(k):
            return float(rep[k])
    return None


def reported_tokens(rep: dict[str, Any]) -> int | None:
    if rep.get("kv_cache_tokens"):
        return int(rep["kv_cache_tokens"])
    if rep.get("gpu_blocks"):
        return int(rep["gpu_blocks"]) * int(rep.get("block_size") or 16)
    if rep.get("num_gpu_blocks"):
        return int(rep["num_gpu_blocks"]) * 16
    return None


def evaluate(row: dict[str, Any], models: dict[str, Any], tmp: Path, cache: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "engine": row.get("engine"), "version": row_version(row)}
    cfg = model_config(models, row["model_id"])
    total, cc = gpu_total(row)
    if cfg is None:
        out["note"] = "no config geometry"
        return out
    qtext = str(row.get("quantization") or "").lower() + row["model_id"].lower()
    # FP8 checkpoints are rebuilt in F8_E4M3 (norms and embeddings too: a slight under-count)
    dtype = "F8_E4M3" if "fp8" in qtext else "BF16"
    key = f"{row['model_id']}:{dtype}"
    if key not in cache:
        cache[key] = build_facts(cfg, tmp, row["model_id"], dtype)
    facts = cache[key]
    rep = row.get("reported") or {}
    quant = dtype == "BF16" and any(h in qtext for h in QUANT_HINTS)
    multimodal = "vision_config" in cfg
    rw = reported_weights(rep)
    tp = int(row.get("tensor_parallel_size") or 1)
    from modelcheck.record import replace

    out["weights_src"] = "fixture headers"
    if row["id"] in WEIGHTS_FROM_REPORT and rw:
        facts = replace(facts, weights=replace(facts.weights, total_bytes=int(rw * GIB * tp) - 32 * (1 << 20) * tp))
        out["weights_src"] = WEIGHTS_FROM_REPORT[row["id"]]
    elif (quant or multimodal) and rw:
        # 4-bit packs and vision towers are not rebuilt by the text-LLM fixture builder
        facts = replace(facts, weights=replace(facts.weights, total_bytes=int(rw * GIB * tp) - 32 * (1 << 20) * tp))
        out["weights_src"] = "reported (quantized)" if quant else "reported (vision tower)"
    out["weights_pred"] = facts.weights.total_bytes / tp / GIB
    out["weights_rep"] = rw
    if total is None:
        out["note"] = "gpu?"
        return out
    est = compute(facts, target_for(row, total, cc))
    if est is None:
        out["note"] = "no estimate"
        return out
    out["weights_pred"] = est.weights_bytes_per_gpu / GIB
    out["act_pred"] = est.activation_bytes / GIB
    out["act_rep"] = rep.get("activation_peak_gib")
    out["kv_gib_pred"] = est.kv_cache_bytes / GIB
    out["kv_gib_rep"] = rep.get("available_kv_gib")
    out["tokens_pred"] = est.kv_cache_tokens
    out["tokens_rep"] = reported_tokens(rep)
    out["conc_pred"] = est.max_concurrency
    out["conc_rep"] = rep.get("max_concurrency")
    failed = "fail" in str(row.get("status") or "").lower()
    out["start_rep"] = "fail" if failed else "ok"
    out["start_pred"] = est.status
    if out["tokens_rep"] and out["tokens_pred"] is not None:
        out["tok_err"] = (out["tokens_pred"] - out["tokens_rep"]) / out["tokens_rep"]
    return out


def fmt(v: Any, spec: str = ".2f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def version_group(version: str | None) -> str:
    """The release groups whose memory accounting differs (vllm.py module docstring)."""
    try:
        v = tuple(int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return "?"
    if v < (0, 8):
        return "V0 <0.8"
    if v < (0, 11):
        return "0.8-0.10"
    if v < (0, 17):
        return "0.11-0.16"
    if v < (0, 20):
        return "0.17-0.19"
    return ">=0.20"


def baseline_results(rev: str, rows: str) -> dict[str, dict[str, Any]]:
    """Run this bench (this data, these rows) against the estimator code of git revision ``rev``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "checker", "fixtures"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "MODELCHECK_BENCH_CODE": tmp, "PYTHONPATH": tmp}
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json", "--rows", rows],
                             env=env, check=True, capture_output=True, text=True).stdout
    return {r["id"]: r for r in json.loads(out)}


def summary(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(version_group(r.get("version")), []).append(r)
    for name in ("V0 <0.8", "0.8-0.10", "0.11-0.16", "0.17-0.19", ">=0.20", "?", "all"):
        rs = results if name == "all" else groups.get(name, [])
        errs = [abs(r["tok_err"]) for r in rs if r.get("tok_err") is not None]
        verdicts = [r for r in rs if r.get("start_pred")]
        right = sum(r["start_pred"] == r["start_rep"] for r in verdicts)
        if not rs:
            continue
        mean = f"{sum(errs) / len(errs):.1%}" if errs else "-"
        mx = f"{max(errs):.1%}" if errs else "-"
        lines.append(f"  {name:10} KV |err| mean {mean:>6} max {mx:>6} over {len(errs):2} rows; "
                     f"start/fail right {right}/{len(verdicts)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="")
    ap.add_argument("--json", action="store_true", help="print the per-row results as JSON")
    ap.add_argument("--baseline", metavar="REV", help="also run the estimator of git revision REV, side by side")
    args = ap.parse_args(argv)
    data = load()
    rows = data["observations"]
    if args.rows:
        wanted = set(args.rows.split(","))
        rows = [r for r in rows if r["id"] in wanted]
    results = []
    cache: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            results.append(evaluate(row, data["models"], Path(tmp), cache))
    if args.json:
        print(json.dumps(results, default=str))
        return 0
    base = baseline_results(args.baseline, ",".join(r["id"] for r in rows)) if args.baseline else {}
    head = f"{'id':46} {'eng':3} {'ver':7} {'W pred/rep':>13} {'act pred/rep':>12} {'KV GiB pred/rep':>16} " \
           f"{'tokens pred/rep':>21} {'err':>7} {'conc pred/rep':>15} start"
    print(head)
    errs_v1, errs_all, start_ok, start_n = [], [], 0, 0
    for r in results:
        start = ""
        if r.get("start_pred"):
            start_n += 1
            good = r["start_pred"] == r["start_rep"]
            start_ok += good
            start = f"{r['start_pred']}/{r['start_rep']} {'OK' if good else 'WRONG'}"
        err = r.get("tok_err")
        if err is not None:
            errs_all.append(abs(err))
            if r.get("engine") == "V1":
                errs_v1.append(abs(err))
        print(f"{r['id'][:46]:46} {fmt(r.get('engine')):3} {fmt(r.get('version')):7} "
              f"{fmt(r.get('weights_pred')):>6}/{fmt(r.get('weights_rep')):<6} "
              f"{fmt(r.get('act_pred')):>5}/{fmt(r.get('act_rep')):<6} "
              f"{fmt(r.get('kv_gib_pred')):>7}/{fmt(r.get('kv_gib_rep')):<8} "
              f"{fmt(r.get('tokens_pred')):>10}/{fmt(r.get('tokens_rep')):<10} "
              f"{(f'{err:+.1%}' if err is not None else '-'):>7} "
              f"{fmt(r.get('conc_pred')):>7}/{fmt(r.get('conc_rep')):<7} {start} {r.get('note', '')}")
        b = base.get(r["id"])
        if b and (b.get("tokens_pred") != r.get("tokens_pred") or b.get("start_pred") != r.get("start_pred")):
            berr = b.get("tok_err")
            print(f"{'  baseline ' + args.baseline:46.46} {'':3} {'':7} {fmt(b.get('weights_pred')):>6}/{'':6} "
                  f"{fmt(b.get('act_pred')):>5}/{'':6} {fmt(b.get('kv_gib_pred')):>7}/{'':8} "
                  f"{fmt(b.get('tokens_pred')):>10}/{'':10} {(f'{berr:+.1%}' if berr is not None else '-'):>7} "
                  f"{'':15} {b.get('start_pred') or ''}")
    print()
    if base:
        print(f"baseline {args.baseline}, per version group:")
        print("\n".join(summary(list(base.values()))))
        print("this checkout, per version group:")
    else:
        print("per version group:")
    print("\n".join(summary(results)))
    print()
    print(f"start/fail predicted right: {start_ok}/{start_n} rows with a known GPU")
    if errs_all:
        print(f"KV tokens |error|: mean {sum(errs_all) / len(errs_all):.1%} over {len(errs_all)} rows; "
              f"max {max(errs_all):.1%}")
    if errs_v1:
        print(f"V1 rows: mean {sum(errs_v1) / len(errs_v1):.1%}, max {max(errs_v1):.1%} over {len(errs_v1)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
