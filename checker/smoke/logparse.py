"""Reads a vLLM (or llama.cpp) server log: the figures it reports and the known ways it fails.

Each pattern quotes the log call it matches (vLLM file and format string) so that a change in vLLM's
wording is easy to trace. Lines are matched anywhere in the log, with the ``(EngineCore pid=N) INFO ...``
prefixes left in place: vLLM prints exceptions from its worker processes with those prefixes too.
Pure functions over text; no I/O here.
"""

from __future__ import annotations

import re
from typing import Any

from modelcheck.record import field, record

GIB = 1024**3


@record
class LogFailure:
    """A known failure seen in the log. ``kind`` names the SMK rule that reports it."""

    kind: str  # kv-no-memory | kv-too-small | oom | arch-unsupported | bf16-unsupported | gated | tokenizer
    line: str  # the log line, stripped of vLLM's process/level prefix
    data: dict[str, Any] = field(default_factory=dict)


@record
class LogFacts:
    """What a server log says: figures (``None`` when not logged) and known failures, in log order."""

    weights_gib: float | None = None  # "Model loading took X GiB" (GPU runners)
    checkpoint_gib: float | None = None  # "Checkpoint size: X GiB" (weight_utils, every runner)
    load_weights_s: float | None = None
    kv_cache_gib: float | None = None  # available KV cache memory
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    concurrency_len: int | None = None  # the per-request length max_concurrency was computed for
    max_model_len: int | None = None
    engine_init_s: float | None = None
    version: str | None = None
    failures: tuple[LogFailure, ...] = ()
    error_lines: tuple[str, ...] = ()  # first and last exception / ERROR lines, for unknown failures

    def figures(self) -> dict[str, Any]:
        return {
            "weights_gib": self.weights_gib,
            "checkpoint_gib": self.checkpoint_gib,
            "load_weights_s": self.load_weights_s,
            "kv_cache_gib": self.kv_cache_gib,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": self.max_concurrency,
            "max_model_len": self.max_model_len,
            "engine_init_s": self.engine_init_s,
        }


_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
# vLLM's logger prefix: "(EngineCore pid=8677) INFO 12-03 15:32:08 [kv_cache_utils.py:2327] "
_PREFIX = re.compile(
    r"^(?:\([\w:-]+ pid=\d+\)\s+)?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\d\d-\d\d \S+ \[[^\]]*\]\s*)?"
)

# --- figures --------------------------------------------------------------------------------------
# vllm/v1/worker/gpu_model_runner.py: "Model loading took %s GiB memory and %.6f seconds"
# (older releases: "Model loading took %.4f GiB and %.6f seconds")
_WEIGHTS = re.compile(r"Model loading took " + _NUM + r" GiB(?: memory)? and " + _NUM + r" seconds")
# vllm/model_executor/model_loader/weight_utils.py: "... Checkpoint size: %.2f GiB. Available RAM: ..."
_CHECKPOINT = re.compile(r"Checkpoint size: " + _NUM + r" GiB")
# vllm/model_executor/model_loader/default_loader.py: "Loading weights took %.2f seconds"
_LOAD_WEIGHTS = re.compile(r"Loading weights took " + _NUM + r" seconds")
# vllm/v1/worker/gpu_worker.py: "Available KV cache memory: %s GiB"
_KV_MEM = re.compile(r"Available KV cache memory: " + _NUM + r" GiB")
# vllm/v1/worker/cpu_worker.py (CPU backend): "Explicitly set (%s/%s) GiB for KV cache on node %d."
_KV_MEM_CPU = re.compile(r"Explicitly set \(" + _NUM + r"/" + _NUM + r"\) GiB for KV cache")
# vllm/v1/core/kv_cache_utils.py: "%s KV cache size: %s tokens, " "Maximum concurrency for %s tokens
# per request: %.2fx" (one line since v1; older releases logged the two halves on separate lines)
_KV_TOKENS = re.compile(
    r"(?:GPU|CPU|XPU|TPU|HPU|NPU|[A-Z]+)(?: \+ host)? KV cache size: " + _NUM + r" tokens"
)
_CONCURRENCY = re.compile(r"Maximum concurrency for " + _NUM + r" tokens per request: " + _NUM + r"x")
# vllm/config/model.py: "Using max model len %s"
_MAX_LEN = re.compile(r"Using max model len " + _NUM)
# vllm/v1/engine/core.py: "init engine (profile, create kv cache, warmup model) took %.2f s[econds]"
_INIT = re.compile(r"init engine \(profile, create kv cache, warmup model\) took " + _NUM + r" s")
# the start-up banner ("... version 0.32.0"), "vLLM API server version %s" (older), "Initializing a V1 LLM engine (v0.32.0) with config"
_VERSION = re.compile(
    r"(?:vLLM API server version |LLM engine \(v|\u2588\s+version )([0-9][\w.+-]*?)\)?(?:\s|$|,)"
)

# --- known failures -------------------------------------------------------------------------------
_FAILURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # vllm/v1/core/kv_cache_utils.py _check_enough_kv_cache_memory:
    # "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` ..."
    ("kv-no-memory", re.compile(r"No available memory for the cache blocks")),
    # same function: "To serve at least one request with the model's max seq len (%d), (%s GiB KV cache
    # is needed, which is larger than the available KV cache memory (%s GiB). Based on the available
    # memory, the estimated maximum model length is %d. ..."
    (
        "kv-too-small",
        re.compile(
            r"max seq len \((?P<max_model_len>\d+)\), \((?P<needed_gib>[\d.]+) GiB KV cache is needed, which is "
            r"larger than the available KV cache memory \((?P<available_gib>[\d.]+) GiB\)"
            r"(?:\. Based on the available memory, the estimated maximum model length is (?P<fits_len>\d+))?"
        ),
    ),
    # vLLM <= 0.6 (vllm/worker/worker.py raise_if_cache_size_invalid): "The model's max seq len (%d) is
    # larger than the maximum number of tokens that can be stored in KV cache (%d). Try increasing ..."
    (
        "kv-too-small",
        re.compile(
            r"max seq len \((?P<max_model_len>\d+)\) is larger than the maximum number of tokens that can be "
            r"stored in KV cache \((?P<fits_len>\d+)\)"
        ),
    ),
    # torch.OutOfMemoryError: "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity
    # of 22.05 GiB of which ..." ; vllm/v1/worker/gpu_model_runner.py adds "Failed to load model - not
    # enough GPU memory."
    (
        "oom",
        re.compile(
            r"(?:CUDA|HIP|XPU) out of memory\.(?: Tried to allocate (?P<tried>[\d.]+ [KMG]iB))?"
            r"|Failed to load model - not enough GPU memory"
        ),
    ),
    # vllm/model_executor/models/registry.py: f"Model architectures {architectures} are not supported for
    # now. Supported architectures: {all_supported_archs}"
    (
        "arch-unsupported",
        re.compile(r"Model architectures? (?P<archs>\[[^\]]*\]) (?:are|is) not supported for now"),
    ),
    # same file: f"Model architecture {arch} is not supported in-tree anymore. Please install the plugin"
    ("arch-unsupported", re.compile(r"Model architecture (?P<archs>\S+) is not supported in-tree anymore")),
    # vllm/platforms/cuda.py: "Bfloat16 is only supported on GPUs with compute capability of at least 8.0.
    # Your {gpu_name} GPU has compute capability {version_str}. You can use float16 instead ..."
    (
        "bf16-unsupported",
        re.compile(
            r"Bfloat16 is only supported on GPUs with compute capability of at least (?P<needed>[\d.]+)\."
            r"(?: Your (?P<gpu>.+?) GPU (?:has compute capability (?P<cc>\d+(?:\.\d+)?)|does not have a compute capability))?"
        ),
    ),
    # huggingface_hub/utils/_http.py hf_raise_for_status: "Cannot access gated repo for url {url}." and the
    # Hub's own "Access to model {repo} is restricted. You must have access to it and be authenticated"
    (
        "gated",
        re.compile(
            r"Cannot access gated repo for url (?P<url>\S+?)\.?$|Access to model (?P<repo>\S+) is restricted"
            r"|GatedRepoError"
        ),
    ),
    # transformers/tokenization_utils_base.py: "Can't load tokenizer for '{name}'. ..."; the tokenizers
    # crate: "data did not match any variant of untagged enum ..." (tokenizer.json from a newer version)
    # or serde errors while reading tokenizer.json ("Exception: EOF while parsing an object at line 1").
    (
        "tokenizer",
        re.compile(
            r"Can't load tokenizer for|data did not match any variant of untagged enum"
            r"|Tokenizer class \S+ does not exist or is not currently imported"
            r"|Failed to load (?:the )?tokenizer"
            r"|(?:Exception|Error): (?:EOF while parsing|expected value|unknown variant|missing field) .* at line \d+"
        ),
    ),
)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n")).strip()


def parse(text: str) -> LogFacts:
    """Figures and failures from one whole server log (last value wins for repeated figures)."""
    values: dict[str, Any] = {}
    failures: list[LogFailure] = []
    seen: set[tuple[str, str]] = set()
    errors: list[str] = []
    # a Python traceback: the frames tell where an otherwise generic exception (JSONDecodeError) came from
    in_traceback = False
    frames: list[tuple[str, str]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = strip_prefix(raw)
        if m := _WEIGHTS.search(line):
            values["weights_gib"] = _num(m.group(1))
        if m := _CHECKPOINT.search(line):
            values["checkpoint_gib"] = _num(m.group(1))
        if m := _LOAD_WEIGHTS.search(line):
            values["load_weights_s"] = _num(m.group(1))
        if (m := _KV_MEM.search(line)) or (m := _KV_MEM_CPU.search(line)):
            values["kv_cache_gib"] = _num(m.group(1))
        if m := _KV_TOKENS.search(line):
            values["kv_cache_tokens"] = int(_num(m.group(1)))
        if m := _CONCURRENCY.search(line):
            values["concurrency_len"] = int(_num(m.group(1)))
            values["max_concurrency"] = _num(m.group(2))
        if m := _MAX_LEN.search(line):
            values["max_model_len"] = int(_num(m.group(1)))
        if m := _INIT.search(line):
            values["engine_init_s"] = _num(m.group(1))
        if "version" not in values and (m := _VERSION.search(line)):
            values["version"] = m.group(1)
        for kind, pattern in _FAILURES:
            m = pattern.search(line)
            if not m:
                continue
            # the same exception is printed by the worker, the engine core and the API server
            key = (kind, line[m.start() : m.start() + 160])
            if key not in seen:
                seen.add(key)
                data = {k: v for k, v in m.groupdict().items() if v is not None}
                failures.append(LogFailure(kind, line[:2000], _typed(data)))
            break
        if line.startswith("Traceback (most recent call last)"):
            frames = []
            in_traceback = True
        elif in_traceback and (m := _FRAME.match(line)):
            frames.append((m.group(1), m.group(2)))
        elif in_traceback and _EXC_LINE.match(line):
            in_traceback = False
            if "tokenizer" not in {f.kind for f in failures} and _tokenizer_frames(frames):
                failures.append(LogFailure("tokenizer", line[:2000], {"exception": line[:300]}))
        if _EXC_LINE.match(line) or (" ERROR " in raw[:80] and not in_traceback and not _FRAME.match(line)):
            errors.append(line[:500])
    return LogFacts(**values, failures=_dedupe(failures), error_lines=_ends(errors))


def _ends(lines: list[str], n: int = 5) -> tuple[str, ...]:
    """First and last ``n`` lines: the root cause is near the start, the final verdict at the end."""
    return tuple(lines if len(lines) <= 2 * n else lines[:n] + lines[-n:])


def _typed(data: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in ("max_model_len", "fits_len"):
            out[k] = int(v)
        elif k in ("needed_gib", "available_gib"):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def _dedupe(failures: list[LogFailure]) -> tuple[LogFailure, ...]:
    """One failure per kind: the first is the cause, the repeats are the same exception re-raised."""
    out: dict[str, LogFailure] = {}
    for f in failures:
        out.setdefault(f.kind, f)
    return tuple(out.values())


_FRAME = re.compile(r'^File "([^"]+)", line \d+, in (\S+)')
# where vLLM and transformers load tokenizers (vllm/tokenizers/registry.py get_tokenizer, transformers'
# tokenization_*.py): an exception raised under these frames is a tokenizer that cannot be loaded
_TOKENIZER_FUNCS = {
    "get_tokenizer",
    "cached_get_tokenizer",
    "init_tokenizer_from_configs",
    "cached_tokenizer_from_config",
}


def _tokenizer_frames(frames: list[tuple[str, str]]) -> bool:
    return any(
        func in _TOKENIZER_FUNCS or "/tokenization_" in path or "/vllm/tokenizers/" in path
        for path, func in frames
    )


_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b(?::|$)")
