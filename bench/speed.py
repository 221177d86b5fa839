"""Size independence of the default check: time `check` on sparse models from 0.5B to 405B, side by side.

    .venv/bin/python bench/speed.py [--rounds 7]

Builds (into a temp dir) sparse models whose headers are real and whose data regions are holes:
Qwen2.5-0.5B (1 shard), Qwen2.5-7B (4 shards), Llama-3.1-405B (191 shards) and a multi-GB GGUF. Each
round runs every command once, in a shuffled order, so machine noise hits all of them alike; the median
per command is reported. Prints the ratios the issue sets targets for:
  405B / 0.5B (target <= 1.3), 405B / `check --version` (target <= 2x), 405B / the floor (bench/floor.py:
  a bare Python process that stats every file and parses every header and config; target <= 3x),
  and our own import time (-X importtime over the CLI, pipeline and all rule modules; target <= 150 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.builders import LLAMA_405B, make_gguf, make_hf_llm  # noqa: E402

CHECK = [sys.executable, "-m", "modelcheck"]  # what the `check` console script runs (modelcheck.launch)
TARGET = ["--image", "vllm:0.14.0-gpu", "--instance", "ecs.gn7i-c8g1.2xlarge", "--format", "json", "--no-config"]


def build(tmp: Path) -> dict[str, Path]:
    models = {
        "qwen2.5-0.5b": make_hf_llm(tmp / "Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct", shards=1),
        "qwen2.5-7b": make_hf_llm(tmp / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct", shards=4),
        "llama-405b": make_hf_llm(tmp / "Llama-3.1-405B-Instruct", LLAMA_405B, shards=191),
    }
    gguf = tmp / "llama-3-8b-Q4_K_M.gguf"
    make_gguf(gguf, arch="llama", n_layers=32, quant="Q4_K", hidden=4096, ffn=14336, vocab=128256)
    models["gguf-8b"] = gguf
    return models


def disk_size(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of a file or folder."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run. CPU time is the steadier of the two on a shared
    machine (it does not count the time the process waited for a core)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return elapsed, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def import_time_ms() -> tuple[float, float]:
    """(our own modules' cumulative import time, everything) in ms, from -X importtime."""
    # everything the default check imports: the launcher (`check`), the pipeline and every built-in rule module
    code = "import modelcheck.launch, modelcheck.console, modelcheck.api, modelcheck.facts, modelcheck.catalog, " \
        "modelcheck.estimate, modelcheck.target, modelcheck.formatters; import modelcheck.registry as r; r.load()"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True)
    ours = total = 0.0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not m:
            continue
        self_us, name = int(m.group(1)), m.group(4)
        total += self_us
        if name.split(".")[0] in ("modelcheck", "modelcheck_rules"):
            ours += self_us
    return ours / 1000, total / 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    # what an installed package has: bytecode on disk (this environment may set PYTHONDONTWRITEBYTECODE,
    # which would make every run recompile our sources and measure the compiler, not the check)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "checker", "rules"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="modelcheck-bench-") as tmp:
        t0 = time.perf_counter()
        models = build(Path(tmp))
        print(f"built fixtures in {time.perf_counter() - t0:.1f}s")
        for name, path in models.items():
            apparent, allocated = disk_size(path)
            print(f"  {name:<12} {apparent / 2**30:9.2f} GiB apparent, {allocated / 2**20:7.2f} MiB on disk")
        cmds = {"--version": [*CHECK, "--version"],
                "floor-405b": [sys.executable, str(ROOT / "bench" / "floor.py"), str(models["llama-405b"])]}
        for name, path in models.items():
            cmds[name] = [*CHECK, str(path), *TARGET]
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}
        for k, cmd in cmds.items():  # warm the page cache once
            timed(cmd)
        for _ in range(args.rounds):
            order = list(cmds)
            random.shuffle(order)
            for k in order:
                wall, used = timed(cmds[k])
                times[k].append(wall)
                cpu[k].append(used)
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"\nmedian over {args.rounds} interleaved rounds (subprocess, incl. interpreter start):")
        for k, v in med.items():
            print(f"  {k:<12} {v * 1000:8.1f} ms wall (min {min(times[k]) * 1000:.1f}, max {max(times[k]) * 1000:.1f})"
                  f"   {med_cpu[k] * 1000:8.1f} ms CPU")
        ours, total = import_time_ms()
        print("\nratios (wall; CPU in brackets):")
        for label, a, b, target in (("405B (191 shards) / 0.5B", "llama-405b", "qwen2.5-0.5b", "<= 1.3"),
                                    ("405B full check / check --version", "llama-405b", "--version", "<= 2.0"),
                                    ("405B full check / bare-Python floor (stat + every header and config)",
                                     "llama-405b", "floor-405b", "<= 3.0")):
            print(f"  {label} = {med[a] / med[b]:.2f} [{med_cpu[a] / med_cpu[b]:.2f}]   (target {target})")
        print(f"  imports of the default path: own modules {ours:.1f} ms of {total:.1f} ms total   (target <= 150 ms own)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "0")
    main()
