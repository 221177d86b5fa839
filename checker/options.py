"""What one run is told, resolved once per model path: flags > config file > defaults.

``resolve(path, flags)`` finds the config that governs ``path`` (modelcheck.config), validates it, merges it
under the flags and returns a :class:`Resolved`: the effective options, the suppressions that apply to
this path, and the exit policy. Everything after it (target, facts, linter, report) reads the Resolved
and nothing reads the config again.
"""

from __future__ import annotations

import os
from typing import Any

from modelcheck import config as config_mod
from modelcheck import engine_args
from modelcheck.errors import ConfigError
from modelcheck.record import MISSING, field, fields, is_record, record, replace
from modelcheck.rule import Severity


@record
class Options:
    """Everything one run is told: target, rule selection, output policy.

    ``None`` means "not given" (so a flag equal to its default, ``--fail-on error``, still wins over the
    config)."""

    image: str | None = None
    chip: str | None = None
    instance: str | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    engine: str | None = None  # --engine vllm:0.14.0: the engine of a private image
    image_spec: str | None = None  # --image-spec FILE (modelcheck.cloudspec)
    instance_spec: str | None = None  # --instance-spec FILE (modelcheck.cloudspec)
    engine_args: dict[str, Any] = field(default_factory=dict)
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity | None = None  # None: the config's, else error
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog_files: tuple[str, ...] = ()
    deployment: Any = None  # modelcheck.deploy.Deployment from --service / --deploy / --serve-cmd
    exit_zero: bool = False
    jobs: int = 1
    online: bool = False
    verify: bool = False
    smoke: Any = None  # modelcheck.smoke.SmokeOptions when --smoke was given
    config_file: str | None = None  # explicit --config
    use_config: bool = True  # discover pyproject / .modelcheck.toml
    verbose: bool = False  # text output: every assumption behind the memory figures


@record
class Resolved:
    """The options for one model path after the config was merged, with what only the config can say."""

    options: Options
    suppressions: tuple[config_mod.Suppression, ...] = ()
    config: str | None = None  # display path of the config file used

    @property
    def fail_on(self) -> Severity:
        return self.options.fail_on or Severity.ERROR

    @property
    def exit_zero(self) -> bool:
        return self.options.exit_zero


def resolve(path: str, flags: Options) -> Resolved:
    """Merge the config governing ``path`` under ``flags``; validate it. ConfigError / PluginError: exit 2."""
    typed = replace(flags, engine_args=engine_args.coerce_all(flags.engine_args))
    if not flags.use_config and not flags.config_file:
        return Resolved(options=typed)
    config = config_mod.discover(path, flags.config_file)
    if config is None:
        return Resolved(options=typed)
    table = config_mod.effective(config, path)
    config_mod.check_table(config, table)
    options = _merge(typed, table, config)
    _check_required(options, config, path)
    return Resolved(options=options, suppressions=config_mod.suppressions_for(config, path), config=config.display)


def _check_required(options: Options, config: config_mod.Config, path: str) -> None:
    """``require = ["image", "instance"]``: a CI gate that was given no target would check next to nothing
    and pass; it is a usage error instead (exit 2)."""
    has = {"image": options.image or options.image_spec, "instance": options.instance or options.gpu}
    for need in config.data.get("require") or ():
        if not has.get(need):
            flag = "--image" if need == "image" else "--instance (or --gpu)"
            raise ConfigError(f"{config.display}: {config.key_path(['require'])}: {path} has no {need} declared "
                              f"(give {flag}, or set {need} in the config)")


_TARGET_KEYS = ("image", "chip", "instance", "gpu", "gpu-count")


def _merge(options: Options, table: dict[str, Any], config: config_mod.Config) -> Options:
    changes: dict[str, Any] = {}
    for key in _TARGET_KEYS:
        attr = key.replace("-", "_")
        if key in table and getattr(options, attr) is None:
            value = table[key]
            changes[attr] = value.upper() if attr == "chip" else value
    if "engine-args" in table:
        where = f"{config.display}: {config.key_path(['engine-args'])}"
        from_config = engine_args.coerce_all(dict(table["engine-args"]), where)
        changes["engine_args"] = {**from_config, **options.engine_args}
    for key in ("select", "ignore"):
        if key in table and not getattr(options, key):
            changes[key] = tuple(table[key])
    if "fail-on" in table and options.fail_on is None:
        changes["fail_on"] = Severity.parse(table["fail-on"])
    if "severity" in table:
        sev = {code.upper(): Severity.parse(level) for code, level in table["severity"].items()}
        changes["severity_overrides"] = {**sev, **options.severity_overrides}
    if "rule-options" in table:
        merged = {code.upper(): dict(opts) for code, opts in table["rule-options"].items()}
        for code, opts in options.rule_options.items():
            merged[code] = {**merged.get(code, {}), **opts}
        changes["rule_options"] = merged
    if "catalog" in table:
        files = tuple(os.path.join(config.root, f) for f in table["catalog"])
        changes["catalog_files"] = tuple(dict.fromkeys(files + tuple(options.catalog_files)))
    if "smoke" in table:
        changes["smoke"] = _merge_smoke(options.smoke, table["smoke"])
    return replace(options, **changes) if changes else options


def _merge_smoke(current: Any, table: dict[str, Any]) -> Any:
    """Smoke defaults from the config fill the fields the flags left at their defaults."""
    if current is None or not table or not is_record(current):
        return current
    changes: dict[str, Any] = {}
    for f in fields(current):
        value = table.get(f.name.replace("_", "-"), table.get(f.name))
        if value is None:
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        if getattr(current, f.name) in (None, default, (), []):
            changes[f.name] = tuple(value) if isinstance(value, list) else value
    return replace(current, **changes) if changes else current


__all__ = ["Options", "Resolved", "resolve"]
