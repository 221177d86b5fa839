"""SEC: links and references that make the server read files outside the model folder (symlinks,
weight_map entries, ONNX external data).

Codes: SEC005, SEC006, SEC007.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import weight_indexes


@rule("SEC005", severity=Severity.ERROR)
def symlink_escapes_root(ctx: Context) -> Iterator[Finding]:
    """A symlink in the model folder points outside it.

    ## Why it matters
    The server follows the link and reads (or serves) a file from elsewhere on the host: secrets such as
    ``/etc/shadow`` or ``~/.ssh`` can leak through tokenizer or config loading, and a copy of the folder
    into the image silently differs from what was checked.

    ## How to fix
    Replace the link with the real file, or a link that stays inside the model folder.
    """
    for f in ctx.facts.files:
        if f.escapes_root:
            yield Finding(
                f"{f.path} is a symlink to {f.symlink_target!r}, outside the model folder",
                path=f.path,
                hint="copy the target file into the folder instead of linking out of it",
                data={"target": f.symlink_target},
            )


def _escapes(base_dir: str, ref: str) -> bool:
    if not ref or ref.startswith(("/", "\\")) or "\\" in ref or (len(ref) > 1 and ref[1] == ":") or "\0" in ref:
        return True
    joined = posixpath.normpath(posixpath.join(base_dir, ref))
    return joined == ".." or joined.startswith(("../", "/"))


@rule("SEC006", severity=Severity.ERROR)
def weight_map_path_traversal(ctx: Context) -> Iterator[Finding]:
    """A sharded-weights index names a file outside the model folder.

    ## Why it matters
    Loaders join ``weight_map`` values to the folder and open them: ``../`` or absolute paths make the
    server read arbitrary host files as weights.

    ## How to fix
    Regenerate the ``*.index.json`` so every ``weight_map`` value is a plain file name in the folder.
    """
    for index in weight_indexes(ctx.facts):
        name, base = index.path, posixpath.dirname(index.path)
        bad = sorted({*(v for v in index.files if _escapes(base, v)), *index.not_names})
        if bad:
            yield Finding(
                f"{name} weight_map points outside the model folder: {', '.join(bad[:5])}",
                path=name,
                hint="make every weight_map value a shard file name inside the folder",
                data={"paths": bad},
            )


@rule("SEC007", severity=Severity.ERROR)
def onnx_external_data_escape(ctx: Context) -> Iterator[Finding]:
    """An ONNX model's external-data location points outside the model folder.

    ## Why it matters
    onnxruntime opens external-data files relative to the model file: ``../`` or absolute locations
    read arbitrary host files into tensors (and can leak them through outputs).

    ## How to fix
    Re-save the model with ``onnx.save_model(..., save_as_external_data=True, location="<file>")`` so the
    data file sits next to the model.
    """
    for rel, locations in sorted(ctx.facts.scan.onnx_external.items()):
        base = posixpath.dirname(rel)
        bad = sorted({loc for loc in (locations or ()) if isinstance(loc, str) and _escapes(base, loc)})
        if bad:
            yield Finding(
                f"{rel} reads external tensor data from outside the model folder: {', '.join(bad[:5])}",
                path=rel,
                hint="re-save the ONNX model with its external data file inside the folder",
                data={"locations": bad},
            )
