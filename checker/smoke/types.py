"""Data the smoke stage takes and gives: options, test cases, what was observed, the result.

Kept apart from the runner so that ``rules/smoke.py`` can read an observation without importing the
process and HTTP machinery.
"""

from __future__ import annotations

from typing import Any

from modelcheck.record import field, record, replace
from modelcheck.rule import Finding, Severity
from modelcheck.smoke.logparse import LogFacts

DEFAULT_PROMPT = "What is 2+2?"
DEFAULT_EXPECT = r"\b4\b"  # "4", " 4.", "The answer is 4" pass; "14", "42" do not
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_LAUNCH = ("{python}", "-m", "vllm.entrypoints.openai.api_server")


@record
class SmokeCase:
    prompt: str = DEFAULT_PROMPT
    expect: str = DEFAULT_EXPECT  # a regular expression searched in the answer


@record
class SmokeOptions:
    """How to run the smoke stage. Every field has a default that works after the README's setup.

    ``launch`` is the server command as a list of template tokens. Placeholders: ``{python}``,
    ``{model}`` (absolute model path), ``{port}``, ``{host}``, ``{name}`` (served model name),
    ``{image}`` (the declared image ref). The token ``{engine_args}`` expands to the target's engine
    flags, ``{args}`` to ``--model ... --host ... --port ... --served-model-name ...`` plus those flags;
    when the template has neither ``{args}`` nor ``{model}``, ``{args}`` is appended.
    """

    python: str | None = None  # interpreter that has vllm; None = $MODELCHECK_SMOKE_PYTHON or .venv-vllm
    launch: tuple[str, ...] | None = None  # None = DEFAULT_LAUNCH for vLLM, llama-server for GGUF
    cases: tuple[SmokeCase, ...] = (SmokeCase(),)
    timeout_s: float = DEFAULT_TIMEOUT_S  # until /health answers
    request_timeout_s: float = 120.0  # per generation request
    max_tokens: int = 16
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server
    log_path: str | None = None  # None = a kept temporary file
    force: bool = False  # run even when the static checks found errors (never for unsafe models)
    progress: bool | None = None  # None = only when stderr is a terminal
    throughput_tokens: int = 32  # length of the tokens-per-second probe (0 = skip it)
    tolerance: float = 1.5  # measured/predicted ratio beyond which a figure disagrees
    stop_grace_s: float = 10.0  # SIGTERM to SIGKILL


@record
class CaseResult:
    prompt: str
    expect: str
    endpoint: str  # "/v1/chat/completions" | "/v1/completions"
    answer: str | None  # None when the request failed
    passed: bool
    error: str | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    raw_answer: str | None = None  # an empty answer asked again with special tokens shown (vLLM)


@record
class Comparison:
    """A figure vLLM reported beside the static prediction for it."""

    name: str  # weights_gib | kv_cache_gib | kv_cache_tokens | max_concurrency
    measured: float
    predicted: float
    unit: str
    disagrees: bool

    @property
    def ratio(self) -> float | None:
        return self.measured / self.predicted if self.predicted else None


@record
class SmokeObservation:
    """Everything one smoke run saw; the SMK rules turn it into findings."""

    engine: str  # "vllm" | "llama.cpp" | "" when none
    command: tuple[str, ...] = ()
    unavailable: str | None = None  # why no engine could run this model (SMK013)
    host_memory: tuple[int, int] | None = None  # (bytes needed, bytes available) when it cannot fit (SMK014)
    started: bool = False
    ready: bool = False
    timed_out: bool = False
    timeout_s: float = 0.0
    exit_code: int | None = None  # set when the server exited by itself before or while serving
    log: LogFacts = field(default_factory=LogFacts)
    log_path: str | None = None
    log_tail: tuple[str, ...] = ()
    cases: tuple[CaseResult, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    model: str = ""


@record
class SmokeResult:
    passed: bool
    answers: tuple[CaseResult, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = ()
    findings: tuple[Finding, ...] = ()
    log_path: str | None = None
    skipped_reason: str | None = None
    command: tuple[str, ...] = ()
    engine: str = ""
    observation: SmokeObservation | None = None  # what the run saw: the SMK rules judge it


def with_findings(result: SmokeResult, findings: tuple[Finding, ...]) -> SmokeResult:
    """The result with the SMK rules' verdict: it passed only if the server answered and no SMK error."""
    passed = result.passed and not any(f.severity == Severity.ERROR for f in findings)
    return replace(result, findings=findings, passed=passed)
