"""The repository a model folder lives in: computed once per run (modelcheck.api), so config discovery and
the SARIF / GitHub path mapping agree and the formatters do no filesystem work."""

from __future__ import annotations

import os


def git_root(start: str) -> str | None:
    """The nearest folder at or above ``start`` holding ``.git`` (a folder, or a file in a worktree)."""
    cur = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(cur, ".git")):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def source_root(start: str | None = None) -> str:
    """The root for report paths: the repository of ``start`` (default: the current directory), else
    ``start`` itself."""
    here = os.path.abspath(start or os.getcwd())
    return git_root(here) or here


def root_for(report_path: str, default_root: str) -> str:
    """The root a model's paths are relative to: the current directory's repository (``default_root``)
    when the model lies inside it, else the model's own repository (``check /src/repo/models/qwen`` run
    from elsewhere), else ``default_root`` (relative to it, or absolute when outside it)."""
    if report_path.startswith("hf://"):
        return default_root
    absolute = os.path.abspath(report_path)
    inside = absolute == default_root or absolute.startswith(default_root.rstrip(os.sep) + os.sep)
    if inside and git_root(default_root) == default_root:
        return default_root  # also when the model folder is a nested clone with its own .git
    return git_root(absolute) or default_root
