"""The pre-commit hook: changed files -> their model folders -> one ``check`` run.

    # .pre-commit-config.yaml of a repository holding model folders
    - repo: https://github.com/modelcheck/modelcheck
      rev: v0.2.0
      hooks:
        - id: modelcheck

pre-commit passes the changed file names (after any ``args``). Each file maps to its model folder: the
folder matched by a ``models = [...]`` glob of the config, else the outermost ancestor holding a
``model_index.json`` (a diffusers pipeline: its parts have their own config.json), else the nearest
ancestor holding a model marker (config.json, adapter_config.json, Modelfile, config.pbtxt, a .gguf
file). A changed config file re-checks every folder its ``models`` globs name, or without them every
model folder below it. The target comes from
the config (``[tool.modelcheck]``), so the hook needs no flags; options in ``args`` pass through to
``check``.
"""

from __future__ import annotations

import glob
import os
import sys

from modelcheck import config as config_mod
from modelcheck.repo import git_root

# Files that make a folder a model folder.
_MARKERS = ("config.json", "model_index.json", "adapter_config.json", "Modelfile", "config.pbtxt")


def _has_marker(folder: str) -> bool:
    if any(os.path.isfile(os.path.join(folder, m)) for m in _MARKERS):
        return True
    try:
        with os.scandir(folder) as entries:
            return any(e.name.lower().endswith(".gguf") and e.is_file() for e in entries)
    except OSError:
        return False


def _configured_folders(config: config_mod.Config) -> list[str]:
    out = []
    for pattern in config_mod.model_globs(config):
        pattern = pattern.strip().removeprefix("./").rstrip("/")
        out.extend(p for p in sorted(glob.glob(os.path.join(config.root, pattern))) if os.path.isdir(p))
    return out


_SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}
_MAX_DEPTH = 4  # models/org/name is the deepest layout seen in model repositories; bounds the walk
_MAX_FOLDERS = 500


def discover_folders(top: str) -> list[str]:
    """Model folders under ``top`` (bounded walk, hidden folders skipped). A folder with a model marker
    (``model_index.json`` included: a diffusers pipeline's parts are not separate models) is one model
    and is not descended into; a ``top`` that is itself a model folder is the only one."""
    top = os.path.abspath(top)
    if _has_marker(top):
        return [top]
    found: list[str] = []
    base_depth = top.rstrip(os.sep).count(os.sep)
    for cur, dirs, _files in os.walk(top):
        if cur != top and _has_marker(cur):
            found.append(cur)
            dirs[:] = []
            if len(found) >= _MAX_FOLDERS:
                break
            continue
        if cur.count(os.sep) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
    return sorted(found)


def model_folder(filename: str, root: str | None = None) -> str | None:
    """The model folder a changed file belongs to, or None when it belongs to none."""
    absf = os.path.abspath(filename)
    start = absf if os.path.isdir(absf) else os.path.dirname(absf)
    root = os.path.abspath(root or git_root(start) or os.getcwd())
    config = config_mod.discover(start)
    if config is not None:
        for folder in _configured_folders(config):
            if absf == folder or absf.startswith(folder.rstrip(os.sep) + os.sep):
                return folder
    chain = []
    cur = start
    while True:
        chain.append(cur)
        if cur == root or os.path.dirname(cur) == cur:
            break
        cur = os.path.dirname(cur)
    pipelines = [d for d in chain if os.path.isfile(os.path.join(d, "model_index.json"))]
    if pipelines:
        return pipelines[-1]
    for d in chain:
        if _has_marker(d):
            return d
    return None


def model_folders(filenames: list[str], root: str | None = None) -> list[str]:
    """Deduplicated model folders for the changed files, relative to the current directory, in order."""
    seen: dict[str, None] = {}
    for name in filenames:
        folders: list[str] = []
        if os.path.basename(name) in config_mod.CONFIG_NAMES:
            try:
                cfg = config_mod.load_file(name, required=False)
            except config_mod.ConfigError:
                cfg = None  # an invalid config is reported when the check reads it
            if cfg is not None:
                # the target changed: re-check every model it governs (the ``models`` globs, else
                # every model folder below the config file)
                folders = _configured_folders(cfg) or discover_folders(cfg.root)
        if not folders:
            folder = model_folder(name, root)
            folders = [folder] if folder else []
        for folder in folders:
            rel = os.path.relpath(folder)
            seen.setdefault(rel if not rel.startswith("..") else folder, None)
    return list(seen)


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """pre-commit appends file names after the hook's ``args``: options first, existing paths last."""
    files: list[str] = []
    i = len(argv)
    while i > 0 and not argv[i - 1].startswith("-") and os.path.lexists(argv[i - 1]):
        i -= 1
    files = argv[i:]
    options = argv[:i]
    if "--" in options:  # explicit separator
        cut = options.index("--")
        files = options[cut + 1 :] + files
        options = options[:cut]
    return options, files


def _list(argv: list[str]) -> int:
    """``--list-folders FILE...``: the model folders of changed files; ``--discover DIR...``: every model
    folder below each DIR. One per line, nothing checked (the GitHub Action builds its run from them)."""
    mode, names = argv[0], argv[1:]
    try:
        if mode == "--list-folders":
            folders = model_folders([n for n in names if os.path.lexists(n)])
        else:
            seen: dict[str, None] = {}
            for top in names or ["."]:
                for folder in discover_folders(top):
                    rel = os.path.relpath(folder)
                    seen.setdefault(rel if not rel.startswith("..") else folder, None)
            folders = list(seen)
    except config_mod.ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    for folder in folders:
        print(folder)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--list-folders", "--discover"):
        return _list(argv)
    options, files = split_args(argv)
    try:
        folders = model_folders(files)
    except config_mod.ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if not folders:
        return 0  # nothing model-shaped changed
    from modelcheck import cli

    try:
        cli.main(["run", *options, *folders], prog_name="modelcheck", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
