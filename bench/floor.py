"""The floor for a header-only check: a bare Python process that stats every file of a model folder, parses
every safetensors header (8-byte length + JSON), every GGUF magic/version and every JSON config. Nothing
else: no classification, no rules, no catalog. bench/speed.py times `check` against it side by side.

    python bench/floor.py MODEL_FOLDER_OR_FILE
"""

from __future__ import annotations

import json
import os
import struct
import sys


def read(path: str) -> int:
    n = 0
    if path.endswith(".safetensors"):
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            n += len(json.loads(fh.read(size)))
    elif path.endswith(".gguf"):
        with open(path, "rb") as fh:
            n += fh.read(8)[:4] == b"GGUF"
    elif path.endswith(".json"):
        with open(path, "rb") as fh:
            n += bool(json.loads(fh.read()))
    return n


def main(root: str) -> None:
    count = 0
    if os.path.isfile(root):
        os.stat(root)
        count += read(root)
    else:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                os.stat(path)
                count += read(path)
    print(count)


if __name__ == "__main__":
    main(sys.argv[1])
