"""The pipeline as a Python API: config -> target -> facts -> estimate -> rules -> report.

    from checker import check
    report = check("./Qwen2.5-7B-Instruct", image="vllm:0.14.0-gpu", instance="ecs.gn7i-c8g1.2xlarge",
                   max_model_len=8192)
    report.exit_code, [f.rule for f in report.results[0].findings]

The CLI is a thin layer over :func:`run`; everything a flag can say, a keyword can say.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from checker import linter, registry
from checker.errors import CheckError, UsageError
from checker.report import PathReport, Report
from checker.rule import Finding, Severity

# vLLM engine arguments we understand (underscored names) and their value types.
ENGINE_ARGS: dict[str, type] = {
    "gpu_memory_utilization": float,
    "max_model_len": int,
    "max_num_seqs": int,
    "max_num_batched_tokens": int,
    "tensor_parallel_size": int,
    "pipeline_parallel_size": int,
    "data_parallel_size": int,
    "dtype": str,
    "kv_cache_dtype": str,
    "quantization": str,
    "enforce_eager": bool,
    "trust_remote_code": bool,
    "block_size": int,
    "enable_chunked_prefill": bool,
    "served_model_name": str,
    "tokenizer": str,
    "chat_template": str,
    "cpu_offload_gb": float,
    "swap_space": float,
    "limit_mm_per_prompt": str,
    "mem_fraction_static": float,  # SGLang
    "context_length": int,  # SGLang
    "n_gpu_layers": int,  # llama.cpp
    "ctx_size": int,  # llama.cpp
}


def coerce_engine_arg(key: str, value: Any) -> Any:
    """Turn a flag / config value into the type vLLM would parse it as; bad values are UsageErrors."""
    kind = ENGINE_ARGS.get(key)
    if kind is None or value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on", ""):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int and isinstance(value, str) and value.lower().endswith("k"):
            return int(float(value[:-1]) * 1024)
        return kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"engine argument --{key.replace('_', '-')}: {value!r} is not a valid {kind.__name__}") from None


@dataclass(frozen=True, slots=True)
class Options:
    """Everything one run is told: target, rule selection, output policy. Flags > config file > defaults."""

    image: str | None = None
    chip: str | None = None
    instance: str | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity = Severity.ERROR
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog_files: tuple[str, ...] = ()
    deployment: dict[str, Any] = field(default_factory=dict)
    exit_zero: bool = False
    jobs: int = 1
    online: bool = False
    verify: bool = False
    smoke: Any = None  # checker.smoke.SmokeOptions when --smoke was given
    config_file: str | None = None  # explicit --config
    use_config: bool = True  # discover pyproject / .modelcheck.toml
    verbose: bool = False  # text output: every assumption behind the memory figures


def _plugin_findings(reg: registry.Registry) -> tuple[Finding, ...]:
    return tuple(
        Finding(
            f"rule plugin {name!r} failed to load: {reason}",
            hint="fix or uninstall the plugin; its rules did not run",
            data={"plugin": name},
        ).stamped(linter.PLUGIN_LOAD_CODE, "plugin-load-failed", Severity.WARNING)
        for name, reason in reg.load_errors
    )


def _apply_config(path: str, options: Options) -> Options:
    """Merge the discovered config (``[tool.modelcheck]`` / ``.modelcheck.toml``) under the flags."""
    if not options.use_config:
        return options
    try:
        from checker import config as config_mod
    except ImportError:
        return options
    return config_mod.apply(path, options)


def check_path(path: str, options: Options) -> PathReport:
    """Check one model path. Raises CheckError (exit 2) when it cannot run at all."""
    from checker import catalog as catalog_mod
    from checker import facts as facts_mod
    from checker import target as target_mod

    options = _apply_config(path, options)
    cat = catalog_mod.load(options.catalog_files)
    engine_args = {k: coerce_engine_arg(k, v) for k, v in options.engine_args.items()}
    target = target_mod.resolve(
        cat,
        image=options.image,
        chip=options.chip,
        instance=options.instance,
        gpu=options.gpu,
        gpu_count=options.gpu_count,
        engine_args=engine_args,
    )
    if options.deployment:
        target = replace(target, deployment=dict(options.deployment))
    facts = facts_mod.gather(_local_path(path, options))
    from checker import engines

    view = engines.view(facts, target)
    estimate = None
    try:
        from checker import estimate as estimate_mod
    except ImportError:
        estimate_mod = None
    if estimate_mod is not None:
        estimate = estimate_mod.compute(facts, target, cat, view=view)
    if options.verify:
        # reads every weight byte: only on request. SEC011 reports what the hashes say.
        import dataclasses

        from checker import verify as verify_mod

        results = verify_mod.verify_hashes(facts, online=options.online, progress=verify_mod.tty_progress())
        facts.extra["verify"] = [dataclasses.asdict(r) for r in results]
    reg = registry.load()
    selected = registry.select(reg.rules, list(options.select), list(options.ignore))
    settings = linter.Settings(severity_overrides=dict(options.severity_overrides), options=dict(options.rule_options))
    result = linter.run(selected, facts, target, estimate, settings, catalog=cat, view=view)
    extra = _plugin_findings(reg)
    if extra:
        result = linter.Result(findings=extra + result.findings, skipped=result.skipped, ran=result.ran)
    if options.config_file is not None or options.use_config:
        result = _apply_suppressions(path, options, result)
    smoke_result = None
    if options.smoke is not None:
        from checker import smoke as smoke_mod

        smoke_result = smoke_mod.run_smoke(
            facts, target, estimate=estimate, options=options.smoke, findings=result.findings, settings=settings
        )
    return PathReport(path=path, facts=facts, target=target, estimate=estimate, result=result, smoke=smoke_result)


def _local_path(path: str, options: Options) -> str:
    """A hub reference (``hf://org/name`` or a bare ``org/name`` that is not a local path) becomes a
    local folder: the Hugging Face cache snapshot, or with ``--online`` a metadata-only mirror."""
    if os.path.exists(path) or not (path.startswith("hf://") or _looks_like_repo_id(path)):
        return path
    from checker import hub

    return hub.materialize(path, online=options.online)


def _looks_like_repo_id(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 2 and all(parts) and not path.startswith((".", "~")) and ":" not in path


def _apply_suppressions(path: str, options: Options, result: linter.Result) -> linter.Result:
    try:
        from checker import config as config_mod
    except ImportError:
        return result
    apply = getattr(config_mod, "apply_suppressions", None)
    return apply(path, options, result) if apply else result


def validate_selection(options: Options) -> None:
    from checker import docs

    reg = registry.load()
    bad = docs.unknown_selectors([*options.select, *options.ignore], reg)  # rules and CHK codes
    if bad:
        close = docs.suggest(bad[0], reg)
        hint = f"; did you mean {close}?" if close else ""
        raise UsageError(f"unknown rule selector(s): {', '.join(bad)}{hint} (see `check rules`)")


def run(paths: list[str], options: Options) -> Report:
    """Check several paths (in parallel with ``options.jobs``), one report in input order."""
    if not paths:
        raise UsageError("no PATH given")
    validate_selection(options)
    jobs = max(1, min(options.jobs or 1, len(paths), (os.cpu_count() or 1) * 2))
    if jobs == 1:
        results = [check_path(p, options) for p in paths]
    else:
        from concurrent.futures import ThreadPoolExecutor  # only for -j: it pulls in logging

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda p: check_path(p, options), paths))
    return Report(
        results=tuple(results), fail_on=options.fail_on, exit_zero=options.exit_zero, verbose=options.verbose
    )


def check(path: str | os.PathLike[str], **kwargs: Any) -> Report:
    """Check one model path. Keywords: the fields of :class:`Options` plus any vLLM engine argument
    (``max_model_len=8192``, ``gpu_memory_utilization=0.9``...). Raises CheckError subclasses."""
    engine_args = dict(kwargs.pop("engine_args", {}) or {})
    for key in list(kwargs):
        if key in ENGINE_ARGS:
            engine_args[key] = kwargs.pop(key)
    if "fail_on" in kwargs:
        kwargs["fail_on"] = Severity.parse(kwargs["fail_on"])
    for key in ("select", "ignore", "catalog_files"):
        if key in kwargs and isinstance(kwargs[key], str):
            kwargs[key] = (kwargs[key],)
        elif key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    try:
        options = Options(engine_args=engine_args, **kwargs)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    return run([os.fspath(path)], options)


__all__ = ["ENGINE_ARGS", "CheckError", "Options", "check", "check_path", "run"]
