"""Built-in data files (YAML, human-edited) with compiled JSON twins so a run never parses YAML.

PyYAML takes ~0.1-1 s for our catalogs; JSON takes a few ms. ``load(name)`` returns the JSON twin in
``checker/catalog/_compiled/`` when its recorded CRC-32 matches the YAML, else parses the YAML (so an
edited catalog still works, only slower). ``python -m modelcheck.datafile`` regenerates the twins; a test
fails when one is stale.
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path
from typing import Any

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
COMPILED_DIR = CATALOG_DIR / "_compiled"


def _digest(raw: bytes) -> str:
    # staleness detection, not security: CRC-32 from binascii (built in) spares importing hashlib / OpenSSL
    return f"{binascii.crc32(raw):08x}"


def _twin(yaml_path: Path) -> Path:
    return COMPILED_DIR / (yaml_path.stem + ".json")


def _parse_yaml(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - safe loader


def load(name: str) -> Any:
    """Parsed content of ``checker/catalog/<name>`` (a .yaml file), a fresh object on every call
    (callers may mutate it; the JSON parse costs about a millisecond)."""
    path = CATALOG_DIR / name
    raw = path.read_bytes()
    digest = _digest(raw)
    twin = _twin(path)
    try:
        compiled = json.loads(twin.read_text(encoding="utf-8"))
        if compiled.get("crc32") == digest:
            return compiled["data"]
    except (OSError, ValueError):
        pass
    return _parse_yaml(raw.decode("utf-8"))


def stale() -> list[str]:
    """YAML files whose JSON twin is missing or out of date."""
    out = []
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        twin = _twin(path)
        digest = _digest(path.read_bytes())
        try:
            ok = json.loads(twin.read_text(encoding="utf-8")).get("crc32") == digest
        except (OSError, ValueError):
            ok = False
        if not ok:
            out.append(path.name)
    return out


def compile_all() -> list[str]:
    COMPILED_DIR.mkdir(exist_ok=True)
    written = []
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        raw = path.read_bytes()
        data = _parse_yaml(raw.decode("utf-8"))
        doc = {"source": f"checker/catalog/{path.name}", "crc32": _digest(raw), "data": data}
        _twin(path).write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str) + "\n", encoding="utf-8")
        written.append(path.name)
    return written


if __name__ == "__main__":
    for name in compile_all():
        print(f"compiled checker/catalog/{name}")
