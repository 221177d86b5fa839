"""Mutation fuzzing of modelcheck's own readers: safetensors, GGUF, JSON and pickle, in-process.

    .venv/bin/python bench/fuzz.py [--n 100000] [--seed 0]

Seeds are real files written by the field's libraries (safetensors, gguf, numpy/joblib, the stdlib
pickler via fixtures/malicious/build.py). Each input is a seed mutated by bit flips, byte overwrites
with boundary integers, truncation, insertion, duplication of chunks or splicing; or plain random bytes.
A crash is any exception escaping a reader (they must return a FactError instead). Prints crashes,
peak RSS and the slowest input per format; exits 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]


def _load_build():
    spec = importlib.util.spec_from_file_location("corpus_build", ROOT / "fixtures" / "malicious" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def seeds(tmp: str) -> dict[str, list[bytes]]:
    """Valid files per format, small enough to mutate quickly."""
    import numpy as np
    from safetensors.numpy import save

    out: dict[str, list[bytes]] = {"safetensors": [], "gguf": [], "json": [], "pickle": []}
    out["safetensors"].append(save({"w": np.zeros((4, 4), np.float16), "b": np.ones(3, np.float32)},
                                   metadata={"format": "pt"}))
    out["safetensors"].append(save({f"layers.{i}.w": np.zeros((2, 2), np.int8) for i in range(5)}))
    try:
        import gguf

        path = os.path.join(tmp, "seed.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_block_count(2)
        w.add_context_length(4096)
        w.add_string("general.name", "seed")
        w.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
        w.add_tensor("tok_embd.weight", np.zeros((4, 8), np.float32))
        w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        out["gguf"].append(Path(path).read_bytes())
    except ImportError:
        pass
    out["json"].append(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
                                   "num_hidden_layers": 32, "rope_scaling": {"type": "linear", "factor": 2.0},
                                   "torch_dtype": "bfloat16", "auto_map": {"AutoModel": "m.M"}}).encode())
    out["json"].append(json.dumps({"weight_map": {f"l.{i}": "model-00001-of-00002.safetensors" for i in range(20)},
                                   "metadata": {"total_size": 123}}).encode())
    corpus = os.path.join(tmp, "corpus")
    build = _load_build()
    build.build(corpus)
    for name in sorted(os.listdir(corpus)):
        if not name.endswith(".npz"):
            out["pickle"].append(Path(corpus, name).read_bytes())
    return out


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    if rng.random() < 0.03:
        return rng.randbytes(rng.randint(0, 512))
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b)) if b else 0
        if op == 0 and b:  # bit flip
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # random byte
            b[pos] = rng.randrange(256)
        elif op == 2:  # boundary integer, 1/2/4/8 bytes
            width = rng.choice((1, 2, 4, 8))
            val = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            b[pos:pos + width] = val.to_bytes(width, "little")
        elif op == 3:  # truncate
            del b[rng.randrange(len(b) + 1):]
        elif op == 4:  # insert random bytes
            b[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 5 and b:  # duplicate a chunk
            n = rng.randint(1, min(64, len(b)))
            b[pos:pos] = b[pos:pos + n] * rng.randint(1, 8)
        elif op == 6 and pool:  # splice with another seed
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            b[pos:] = other[cut:]
    return bytes(b)


def readers() -> dict[str, Callable[[str, str, int], object]]:
    from modelcheck.facts import gguf, jsonfile, safetensors
    from modelcheck.facts.pickle import scan_file

    return {
        "safetensors": safetensors.parse_file,
        "gguf": gguf.parse_file,
        "json": jsonfile.read_json,
        "pickle": scan_file,
    }


_SUFFIX = {"safetensors": ".safetensors", "gguf": ".gguf", "json": ".json", "pickle": ".pkl"}


def run(n: int, seed: int, out_dir: str | None = None) -> dict[str, object]:
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="mcfuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    pools = seeds(tmp)
    funcs = readers()
    formats = [f for f in funcs if pools.get(f)]
    stats = {f: {"inputs": 0, "crashes": 0, "slowest_s": 0.0, "slowest_len": 0, "total_s": 0.0} for f in formats}
    crashes: list[str] = []
    t0 = time.perf_counter()
    for i in range(n):
        fmt = formats[i % len(formats)]
        data = mutate(rng, rng.choice(pools[fmt]), pools[fmt])
        if fmt == "pickle" and rng.random() < 0.2:  # also mutate pickles inside zip archives / npy files
            suffix = rng.choice((".pt", ".npy", ".joblib", ".bin"))
        else:
            suffix = _SUFFIX[fmt]
        path = os.path.join(tmp, "input" + suffix)
        with open(path, "wb") as fh:
            fh.write(data)
        s = stats[fmt]
        start = time.perf_counter()
        try:
            funcs[fmt](path, "input" + suffix, len(data))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            s["crashes"] += 1
            if len(crashes) < 20:
                crashes.append(f"{fmt}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
                if out_dir:
                    Path(out_dir, f"crash-{fmt}-{i}{suffix}").write_bytes(data)
        dt = time.perf_counter() - start
        s["inputs"] += 1
        s["total_s"] += dt
        if dt > s["slowest_s"]:
            s["slowest_s"], s["slowest_len"] = dt, len(data)
    elapsed = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for name in os.listdir(tmp):
        p = os.path.join(tmp, name)
        if os.path.isfile(p):
            os.unlink(p)
    return {"inputs": n, "elapsed_s": round(elapsed, 1), "peak_rss_mib": round(peak_mib, 1),
            "per_format": stats, "crashes": crashes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-crashes", default=None, help="folder for crashing inputs")
    args = ap.parse_args()
    res = run(args.n, args.seed, args.save_crashes)
    print(f"inputs {res['inputs']:,} in {res['elapsed_s']} s, peak RSS {res['peak_rss_mib']} MiB")
    for fmt, s in res["per_format"].items():
        print(f"  {fmt:12s} {s['inputs']:>7,} inputs  crashes {s['crashes']:>3}  "
              f"mean {1e3 * s['total_s'] / max(1, s['inputs']):.3f} ms  "
              f"slowest {1e3 * s['slowest_s']:.1f} ms ({s['slowest_len']:,} bytes)")
    for c in res["crashes"]:
        print("CRASH", c)
    return 1 if res["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
