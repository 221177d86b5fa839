"""The rule API shared by built-in rules and third-party plugins.

A rule is a generator function over one frozen :class:`Context` that yields :class:`Finding` objects and
does no I/O. ``@rule`` attaches its code, default severity and applicability; the engine stamps the
code, name and effective severity on every finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import IntEnum
from typing import Any

from modelcheck.model import Estimate, ModelFacts, Target
from modelcheck.record import field, record, replace


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r} (use error, warning or info)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@record
class Finding:
    message: str
    path: str | None = None  # file (relative to the model root) or field ("config.json:max_position_embeddings")
    hint: str | None = None  # the fix
    data: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # override the rule's default for this one finding
    # stamped by the engine
    rule: str = ""
    name: str = ""

    def stamped(self, code: str, name: str, severity: Severity) -> Finding:
        return replace(self, rule=code, name=name, severity=severity)


# Things a rule may need; the engine skips the rule with a reason when one is missing.
NEEDS = {
    "image": "no --image declared",
    "instance": "no --instance or --gpu declared",
    "gpu": "the target has no GPU",
    "vram": "no GPU memory known for the target",
    "estimate": "no memory estimate for this model and target",
    "config": "the folder has no config.json",
    "observation": "no smoke run (--smoke)",
    "deployment": "no deployment spec (--service, --deploy or --serve-cmd)",
}


@record
class Context:
    """Everything a rule may read, computed once per model path before any rule runs."""

    facts: ModelFacts
    target: Target
    estimate: Estimate | None = None
    options: dict[str, Any] = field(default_factory=dict)  # this rule's options (defaults merged)
    catalog: Any = None  # modelcheck.catalog.Catalog: image families, instances, GPUs
    view: Any = None  # modelcheck.engines.EngineView: what the target engine derives from this model
    alternatives: Sequence[Any] = ()  # modelcheck.plan.PlanRow: catalog instances where the model starts
    observation: Any = None  # modelcheck.smoke.SmokeObservation, only in the smoke stage


RuleFunc = Callable[[Context], Iterable[Finding]]

_CODE_RE = re.compile(r"^[A-Z]{3}\d{3}$")


@record
class Rule:
    code: str
    name: str
    severity: Severity
    func: RuleFunc
    kinds: frozenset[str] | None  # None = every kind
    needs: frozenset[str]
    options: dict[str, Any]
    module: str

    @property
    def summary(self) -> str:
        doc = self.doc
        return doc.splitlines()[0] if doc else ""

    @property
    def doc(self) -> str:
        import inspect  # only for `check rules` / `explain` / docs: keeps it off the default path

        return inspect.getdoc(self.func) or ""

    @property
    def family(self) -> str:
        return self.code[:3]


def rule(
    code: str,
    *,
    severity: Severity = Severity.ERROR,
    kinds: Iterable[str] | None = None,
    needs: Iterable[str] = (),
    options: dict[str, Any] | None = None,
) -> Callable[[RuleFunc], RuleFunc]:
    """Declare a rule. The function name (snake_case) becomes the rule name (kebab-case)."""
    if not _CODE_RE.match(code):
        raise ValueError(f"rule code {code!r} must be three capitals and three digits, e.g. FIL001")
    needs = frozenset(needs)
    unknown = needs - NEEDS.keys()
    if unknown:
        raise ValueError(f"rule {code}: unknown needs {sorted(unknown)}")

    def decorate(func: RuleFunc) -> RuleFunc:
        func.__modelcheck_rule__ = Rule(  # type: ignore[attr-defined]
            code=code,
            name=func.__name__.replace("_", "-"),
            severity=severity,
            func=func,
            kinds=frozenset(kinds) if kinds is not None else None,
            needs=needs,
            options=dict(options or {}),
            module=func.__module__,
        )
        return func

    return decorate


def rules_in(namespace: Any) -> Iterator[Rule]:
    """Every rule declared in a module (or any object with attributes)."""
    for value in vars(namespace).values():
        spec = getattr(value, "__modelcheck_rule__", None)
        if isinstance(spec, Rule):
            yield spec
