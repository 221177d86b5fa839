"""A tiny progress bar for steps that can take more than a second (hub metadata, hashing, smoke).

Drawn on stderr only when stderr is a terminal (never on a pipe or a file, never when ``CI`` or
``MODELCHECK_NO_PROGRESS`` is set), and only once the work has run for ``delay`` seconds, so fast runs
print nothing. The line is erased when the work ends, before the report is written.

    with progress.bar("hub metadata", total=len(files)) as advance:
        for f in files:
            fetch(f)
            advance(1)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


def enabled(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("MODELCHECK_NO_PROGRESS") or os.environ.get("CI"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _human(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:.0f}"
    for u in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or u == "TiB":
            return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1024
    return f"{n:.1f}"


@contextmanager
def bar(
    label: str,
    total: float | None = None,
    *,
    unit: str = "",
    delay: float = 1.0,
    stream: TextIO | None = None,
) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(n)``; draws ``label [####    ] done/total`` after ``delay`` seconds on a tty."""
    stream = stream or sys.stderr
    active = enabled(stream)
    state = {"done": 0.0, "drawn": False}
    lock = threading.Lock()
    start = time.monotonic()

    def draw() -> None:
        width = 28
        done = state["done"]
        if total:
            filled = int(width * min(done / total, 1.0))
            figures = f"{_human(done, unit)}/{_human(total, unit)}"
            line = f"\r{label} [{'#' * filled}{' ' * (width - filled)}] {figures}"
        else:
            line = f"\r{label} ... {_human(done, unit)}"
        stream.write(line[:200])
        stream.flush()
        state["drawn"] = True

    def advance(n: float = 1) -> None:
        with lock:
            state["done"] += n
            if active and time.monotonic() - start >= delay:
                draw()

    try:
        yield advance
    finally:
        if active and state["drawn"]:
            stream.write("\r\033[K")  # clear the line: the report follows on a clean terminal
            stream.flush()
