"""Keras Lambda-layer detection in ``.keras`` archives and ``.h5`` files, bounded, without TensorFlow.

A Lambda layer stores Python bytecode (Keras 2: marshal'd code in the config; Keras 3: ``__lambda__``
with base64 code) that runs when the model is loaded. ``.keras`` is a zip whose ``config.json`` holds
the layer graph; ``.h5`` keeps the same JSON in the ``model_config`` attribute. We only search text:
the zip member (capped) or the first bytes of the HDF5 file in chunks.
"""

from __future__ import annotations

import json
import os
import re
import stat

from modelcheck.model import FactError

MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_H5_SCAN = 64 * 1024 * 1024
_CHUNK = 1 << 20
# A JSON "key": "value" pair whose key or value may be written with escapes (\u004cambda is "Lambda").
_PAIR = re.compile(rb'"((?:[^"\\\n]|\\.){1,64})"\s*:\s*"((?:[^"\\\n]|\\.){1,400})"')
_LAMBDA = ("Lambda", "__lambda__")


def _json_str(raw: bytes) -> str | None:
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    try:
        value = json.loads(b'"' + raw + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _names_from_json(doc: object, out: list[str]) -> None:
    stack = [doc]
    seen = 0
    while stack and seen < 1_000_000:
        seen += 1
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") in ("Lambda", "__lambda__"):
                cfg = node.get("config")
                name = cfg.get("name") if isinstance(cfg, dict) else None
                out.append(name if isinstance(name, str) else "Lambda")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _names_from_bytes(buf: bytes, out: list[str]) -> None:
    """Lambda layers in raw bytes (an HDF5 ``model_config`` attribute, a config too big to parse)."""
    pairs = list(_PAIR.finditer(buf))
    for i, m in enumerate(pairs):
        if _json_str(m.group(1)) != "class_name" or _json_str(m.group(2)) not in _LAMBDA:
            continue
        name = None
        for n in pairs[i + 1 : i + 8]:
            if n.start() - m.end() > 2000:
                break
            if _json_str(n.group(1)) == "name":
                name = _json_str(n.group(2))
                break
        out.append(name or "Lambda")


def lambda_layers(abs_path: str, size: int) -> tuple[tuple[str, ...], tuple[FactError, ...]]:
    """Names of Lambda layers in a ``.keras``/``.h5`` file. Never raises; errors are kind "keras"."""
    rel = os.path.basename(abs_path)
    found: list[str] = []
    try:
        st = os.stat(abs_path)
        if not stat.S_ISREG(st.st_mode):
            return (), (FactError("keras", rel, "not a regular file"),)
        with open(abs_path, "rb") as fh:
            head = fh.read(8)
            fh.seek(0)
            if head[:4] == b"PK\x03\x04":
                import zipfile

                with zipfile.ZipFile(fh) as zf:
                    if len(zf.infolist()) > 100_000:
                        return (), (FactError("keras", rel, "archive has too many entries"),)
                    for info in zf.infolist():
                        if info.filename.rsplit("/", 1)[-1] not in ("config.json", "model.json"):
                            continue
                        with zf.open(info) as member:
                            raw = member.read(MAX_CONFIG_BYTES + 1)
                        if len(raw) > MAX_CONFIG_BYTES:
                            _names_from_bytes(raw[:MAX_CONFIG_BYTES], found)
                            continue
                        try:
                            _names_from_json(json.loads(raw), found)
                        except (ValueError, RecursionError):
                            _names_from_bytes(raw, found)
            else:
                tail = b""
                read = 0
                while read < MAX_H5_SCAN:
                    chunk = fh.read(_CHUNK)
                    if not chunk:
                        break
                    read += len(chunk)
                    _names_from_bytes(tail + chunk, found)
                    tail = chunk[-1024:]  # a match straddling two chunks
                found = list(dict.fromkeys(found))
    except Exception as exc:  # noqa: BLE001 - fail closed with one line
        return (), (FactError("keras", rel, f"could not be read: {type(exc).__name__}: {exc}"[:200]),)
    return tuple(found), ()
