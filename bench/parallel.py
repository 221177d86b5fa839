"""`check -j N` against serial on several models, side by side in one run.

    .venv/bin/python bench/parallel.py [--models 8] [--jobs 0] [--rounds 3]

Builds (into a temp dir) several sparse models with real headers: Qwen2.5-7B (4 shards), Llama-3.1-405B
(191 shards: most header parsing), a GGUF and a diffusers pipeline, repeated to ``--models`` folders.
Each round runs ``check PATHS... -j 1`` and ``check PATHS... -j N`` (N = ``--jobs``, default the CPU
count) as separate processes, in alternating order so machine noise hits both alike; the median wall
time of each is reported with the ratio serial / parallel (> 1: -j N is faster). Both runs must print the
same report: the parallel one is checked for equal JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.builders import LLAMA_405B, make_diffusers, make_gguf, make_hf_llm

CHECK = [sys.executable, "-m", "modelcheck"]  # what the `check` console script runs
TARGET = ["--image", "vllm:0.14.0-gpu", "--instance", "ecs.gn7i-c8g1.2xlarge", "--format", "json", "--no-config"]


def build(tmp: Path, count: int) -> list[Path]:
    kinds = [
        lambda d: make_hf_llm(d, LLAMA_405B, shards=191),
        lambda d: make_hf_llm(d, "Qwen2.5-7B-Instruct", shards=4),
        lambda d: (make_gguf(d / "model.gguf"), d)[1],
        lambda d: make_diffusers(d),
    ]
    out = []
    for i in range(count):
        d = tmp / f"model-{i:02d}"
        d.mkdir(parents=True)
        out.append(Path(kinds[i % len(kinds)](d)))
    return out


def timed(args: list[str], cwd: Path) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"check failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=0, help="N for -j N (default: the CPU count)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    jobs = a.jobs or os.cpu_count() or 2
    tmp = Path(tempfile.mkdtemp(prefix="modelcheck-parallel-"))
    try:
        paths = [p.name for p in build(tmp, a.models)]
        serial_cmd = [*CHECK, *paths, *TARGET, "-j", "1"]
        parallel_cmd = [*CHECK, *paths, *TARGET, "-j", str(jobs)]
        timed(serial_cmd, tmp)  # warm the page cache and .pyc files once
        serial, parallel = [], []
        for i in range(a.rounds):
            order = [(serial_cmd, serial), (parallel_cmd, parallel)]
            for cmd, bucket in order if i % 2 == 0 else order[::-1]:
                elapsed, doc = timed(cmd, tmp)
                bucket.append((elapsed, doc))
        same = serial[0][1]["results"] == parallel[0][1]["results"]
        s = statistics.median(t for t, _ in serial)
        p = statistics.median(t for t, _ in parallel)
        print(f"{a.models} models, {os.cpu_count()} CPUs, median of {a.rounds} rounds")
        print(f"{'-j 1':>8}  {'-j ' + str(jobs):>8}  {'serial/parallel':>15}  same report")
        print(f"{s:7.2f}s  {p:7.2f}s  {s / p:14.2f}x  {'yes' if same else 'NO'}")
        if not same:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
