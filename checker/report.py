"""What one run produced, for every path checked, and the exit code a CI gate uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.linter import Result, Skip
from checker.model import Estimate, ModelFacts, Target
from checker.rule import Finding, Severity


@dataclass(frozen=True, slots=True)
class PathReport:
    path: str  # as the user typed it
    facts: ModelFacts
    target: Target
    estimate: Estimate | None
    result: Result
    smoke: Any = None  # checker.smoke.SmokeResult when the smoke stage ran

    @property
    def findings(self) -> tuple[Finding, ...]:
        extra = tuple(getattr(self.smoke, "findings", ()) or ())
        return self.result.findings + extra

    @property
    def skipped(self) -> tuple[Skip, ...]:
        return self.result.skipped


@dataclass(frozen=True, slots=True)
class Report:
    results: tuple[PathReport, ...]
    fail_on: Severity = Severity.ERROR
    exit_zero: bool = False
    verbose: bool = False  # text output: show every assumption behind the memory figures
    notes: tuple[str, ...] = field(default_factory=tuple)  # run-level notes (e.g. config files used)

    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for r in self.results:
            for f in r.findings:
                counts[(f.severity or Severity.ERROR).label] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any((f.severity or Severity.ERROR) >= self.fail_on for r in self.results for f in r.findings)

    @property
    def exit_code(self) -> int:
        if self.exit_zero:
            return 0
        return 1 if self.failed else 0
