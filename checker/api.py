"""The pipeline as a Python API. One model path, each step once, data flowing one way:

    options.resolve -> target.resolve -> facts.gather -> engines.view -> estimate.compute
    -> plan.alternatives -> linter.run -> [smoke stage -> linter.run(SMK)] -> PathReport

    from modelcheck import check
    report = check("./Qwen2.5-7B-Instruct", image="vllm:0.14.0-gpu", instance="ecs.gn7i-c8g1.2xlarge",
                   max_model_len=8192)
    report.exit_code, [f.rule for f in report.results[0].findings]

The CLI is a thin layer over :func:`run`; everything a flag can say, a keyword can say.
"""

from __future__ import annotations

import os
from typing import Any

from modelcheck import engine_args, linter, registry
from modelcheck.errors import CheckError, UsageError
from modelcheck.options import Options, Resolved, resolve
from modelcheck.record import replace
from modelcheck.report import PathReport, Report
from modelcheck.rule import Context, Severity


def check_path(path: str, flags: Options) -> PathReport:
    """Check one model path. Raises CheckError (exit 2) when it cannot run at all."""
    from modelcheck import catalog as catalog_mod
    from modelcheck import engines, estimate, facts, plan
    from modelcheck import target as target_mod

    resolved = resolve(path, flags)
    options = resolved.options
    cat = catalog_mod.load(options.catalog_files)
    image_spec = instance_spec = None
    if options.image_spec or options.instance_spec:
        from modelcheck import cloudspec

        image_spec = cloudspec.image_from_spec(options.image_spec, options.image) if options.image_spec else None
        instance_spec = cloudspec.instances_from_spec(options.instance_spec, cat) if options.instance_spec else None
    target = target_mod.resolve(
        cat, image=options.image, chip=options.chip, instance=options.instance, gpu=options.gpu,
        gpu_count=options.gpu_count, engine_args=options.engine_args,
        engine=options.engine, image_spec=image_spec, instance_spec=instance_spec,
    )
    if options.deployment is not None:
        target = replace(target, deployment=options.deployment)
    model = facts.gather(path, online=options.online, verify=options.verify)
    view = engines.view(model, target)
    est = estimate.compute(model, target, view)
    alternatives = plan.alternatives(model, target, cat)
    reg = registry.load()
    selected = registry.select(reg.rules, list(options.select), list(options.ignore))
    settings = linter.Settings(
        severity_overrides=dict(options.severity_overrides), options=dict(options.rule_options),
        suppressions=resolved.suppressions, selected=selected,
    )
    settings = replace(settings, extra_findings=linter.plugin_load_findings(reg.load_errors, settings))
    ctx = Context(facts=model, target=target, estimate=est, catalog=cat, view=view, alternatives=alternatives)
    result = linter.run(selected, ctx, settings)
    smoke_result = None
    if options.smoke is not None:
        smoke_result = _smoke(ctx, options, result, replace(settings, extra_findings=(), suppressions=()), selected)
    return PathReport(
        path=path, facts=model, target=target, estimate=est, result=result, smoke=smoke_result,
        fail_on=resolved.fail_on, exit_zero=resolved.exit_zero, config=resolved.config,
    )


def _smoke(ctx: Context, options: Options, static: linter.Result, settings: linter.Settings,
           selected: tuple[Any, ...]) -> Any:
    """Start the model for real, then judge what was observed with the SMK rules (through the linter)."""
    from modelcheck import smoke

    observed = smoke.run_smoke(ctx.facts, ctx.target, estimate=ctx.estimate, options=options.smoke,
                               findings=static.findings)
    return judge_smoke(ctx, observed, settings, selected)


def judge_smoke(ctx: Context, observed: Any, settings: linter.Settings | None = None,
                selected: tuple[Any, ...] | None = None) -> Any:
    """The smoke result with the SMK rules' findings on what it observed (through the linter)."""
    from modelcheck import smoke

    if observed.observation is None:
        return observed
    rules = selected if selected is not None else registry.load().rules
    smk = tuple(r for r in rules if r.family == "SMK")
    judged = linter.run(smk, replace(ctx, observation=observed.observation), settings)
    return smoke.with_findings(observed, judged.findings)


def validate_selection(options: Options) -> None:
    reg = registry.load()
    bad = registry.unknown_selectors(reg.rules, [*options.select, *options.ignore])
    if bad:
        close = registry.suggest(bad[0], reg)
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
        results = _check_in_processes(paths, options, jobs)
    # the root report paths are relative to, computed once here so the formatters do no filesystem work
    from modelcheck import repo

    root = repo.source_root()
    results = [replace(r, repo_root=repo.root_for(r.path, root)) for r in results]
    return Report(results=tuple(results), verbose=options.verbose)


def _check_in_processes(paths: list[str], options: Options, jobs: int) -> list[PathReport]:
    """``-j N``: the paths in N worker processes (the checks are CPU-bound Python: threads would share
    one interpreter lock). A PathReport is plain frozen dataclasses and pickles back; a CheckError in a
    worker is raised here again, for the first failing path in input order, as a serial run would."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor  # only for -j: it pulls in logging

    # fork (where there is one) starts workers without re-importing the pipeline
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    outcomes: list[PathReport | _Failed] = []
    rest = paths
    if method == "fork":
        # the first path here: it loads the modules, catalogs and caches every worker then inherits
        outcomes.append(_check_one(paths[0], options))
        rest = paths[1:]
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=min(jobs, len(rest)), mp_context=ctx) as pool:
        outcomes.extend(pool.map(_check_one, rest, [options] * len(rest)))
    results: list[PathReport] = []
    for outcome in outcomes:
        if isinstance(outcome, _Failed):
            raise outcome.error_class(outcome.message)
        results.append(outcome)
    return results


class _Failed:
    """A CheckError from a worker, in a form that always pickles (exception subclasses may not)."""

    __slots__ = ("error_class", "message")

    def __init__(self, error_class: type[CheckError], message: str) -> None:
        self.error_class = error_class
        self.message = message

    def __getstate__(self) -> tuple[type[CheckError], str]:
        return (self.error_class, self.message)

    def __setstate__(self, state: tuple[type[CheckError], str]) -> None:
        self.error_class, self.message = state


def _check_one(path: str, options: Options) -> PathReport | _Failed:
    try:
        return check_path(path, options)
    except CheckError as err:
        return _Failed(type(err), str(err))


def check(path: str | os.PathLike[str], **kwargs: Any) -> Report:
    """Check one model path. Keywords: the fields of :class:`Options` plus any declared engine argument
    (``max_model_len=8192``, ``gpu_memory_utilization=0.9``...). Raises CheckError subclasses."""
    args = dict(kwargs.pop("engine_args", {}) or {})
    for key in list(kwargs):
        if engine_args.lookup(key) is not None and key not in Options.__record_fields__:
            args[key] = kwargs.pop(key)
    if kwargs.get("fail_on") is not None:
        kwargs["fail_on"] = Severity.parse(kwargs["fail_on"])
    for key in ("select", "ignore", "catalog_files"):
        if key in kwargs and isinstance(kwargs[key], str):
            kwargs[key] = (kwargs[key],)
        elif key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    try:
        options = Options(engine_args=args, **kwargs)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    return run([os.fspath(path)], options)


__all__ = ["CheckError", "Options", "Resolved", "check", "check_path", "judge_smoke", "run"]
