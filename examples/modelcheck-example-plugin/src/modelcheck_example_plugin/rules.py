"""House rules for model folders, as a third-party modelcheck plugin.

Plugins use the same API as the built-in rules: pure generator functions over a ``Context`` that yield
``Finding``s and never touch the disk (the facts were gathered once, before any rule ran).
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule

CARD_NAMES = ("README.md", "README", "MODEL_CARD.md")


@rule("EXA001", severity=Severity.WARNING, kinds={"hf-llm", "diffusion", "tts", "adapter", "gguf"})
def missing_model_card(ctx: Context) -> Iterator[Finding]:
    """The model folder has no model card (README.md).

    ## Why it matters
    The model card carries the licence, the intended use and the evaluation: reviewers of a deployment
    need it, and our registry refuses models without one.

    ## How to fix
    Copy README.md from the upstream repository, or write one with at least the licence and the source.
    """
    if not any(ctx.facts.file(name) for name in CARD_NAMES):
        yield Finding(
            f"{ctx.facts.name} has no model card: none of {', '.join(CARD_NAMES)} is in the folder",
            hint="add README.md with the licence and the upstream source",
            data={"looked_for": list(CARD_NAMES)},
        )


@rule("EXA002", severity=Severity.INFO, options={"max_files": 200})
def too_many_files(ctx: Context) -> Iterator[Finding]:
    """The model folder holds more files than the team's limit.

    ## Why it matters
    Image builds copy the whole folder; stray checkpoints and logs make every deployment slower.

    ## How to fix
    Remove files the server does not need, or raise the limit with
    `[tool.modelcheck.rule-options.EXA002] max_files = N`.
    """
    limit = int(ctx.options["max_files"])
    count = sum(1 for f in ctx.facts.files if f.type == "file")
    if count > limit:
        yield Finding(
            f"{count} files in the folder, more than the limit of {limit}",
            hint="delete what the server does not load (optimizer states, logs, extra checkpoints)",
            data={"files": count, "max_files": limit},
        )
