"""The optional smoke stage: start the model in a real server (vLLM, or llama.cpp for GGUF) and prove it
answers. Opt-in (``check PATH --smoke``); runs only when the static checks found no error.

Public API: :func:`run_smoke`, :func:`smoke_engine_args`, :class:`SmokeOptions`, :class:`SmokeCase`,
:class:`SmokeResult`, :func:`options_from_cli`. Nothing heavy is imported: the server runs in its own interpreter.
"""

from __future__ import annotations

from modelcheck.smoke.runner import (
    compare,
    default_python,
    has_chat_template,
    options_from_cli,
    run_smoke,
    smoke_engine_args,
)
from modelcheck.smoke.types import (
    DEFAULT_EXPECT,
    DEFAULT_LAUNCH,
    DEFAULT_PROMPT,
    CaseResult,
    Comparison,
    SmokeCase,
    SmokeObservation,
    SmokeOptions,
    SmokeResult,
    with_findings,
)

__all__ = [
    "DEFAULT_EXPECT",
    "DEFAULT_LAUNCH",
    "DEFAULT_PROMPT",
    "CaseResult",
    "Comparison",
    "SmokeCase",
    "SmokeObservation",
    "SmokeOptions",
    "SmokeResult",
    "compare",
    "default_python",
    "has_chat_template",
    "options_from_cli",
    "run_smoke",
    "smoke_engine_args",
    "with_findings",
]
