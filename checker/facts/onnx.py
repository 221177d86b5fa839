"""Bounded ONNX protobuf walker: the external-data ``location`` of every tensor, without the onnx package.

An ONNX model is a protobuf ``ModelProto``. Tensors that keep their bytes in a side file carry
``external_data`` entries (key/value strings); the ``location`` value is a path relative to the model
file's folder that onnxruntime opens. We walk only the messages that can hold tensors and *seek past*
everything else (raw_data of internal initializers can be gigabytes), so memory and time stay small.

Field numbers (onnx/onnx.proto3): ModelProto.graph=7, training_info=20 (initialization=1, algorithm=2),
functions=25 (FunctionProto.node=7); GraphProto.node=1, initializer=5, sparse_initializer=15;
NodeProto.attribute=5; AttributeProto.t=5, g=6, tensors=10, graphs=11, sparse_tensor=22,
sparse_tensors=23; SparseTensorProto.values=1, indices=2; TensorProto.external_data=13;
StringStringEntryProto.key=1, value=2.
"""

from __future__ import annotations

import os
import stat

from checker.model import FactError

MAX_MESSAGES = 1_000_000
MAX_DEPTH = 24
MAX_LOCATIONS = 10_000
MAX_STRING = 4096

# message type -> {field number: child message type}
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
    "entry": {},
}


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, fh, size: int) -> None:
        self.fh, self.size, self.messages = fh, size, 0
        self.locations: list[str] = []

    def varint(self, end: int) -> int:
        result = shift = 0
        while True:
            if self.fh.tell() >= end:
                raise _Bad("varint runs past the end of its message")
            b = self.fh.read(1)
            if not b:
                raise _Bad("truncated varint")
            result |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _Bad("varint longer than 10 bytes")

    def message(self, kind: str, end: int, depth: int) -> dict[int, bytes] | None:
        """Walk one message up to ``end``; for 'entry' return its string fields."""
        self.messages += 1
        if self.messages > MAX_MESSAGES:
            raise _Bad(f"more than {MAX_MESSAGES:,} protobuf messages")
        if depth > MAX_DEPTH:
            raise _Bad(f"messages nested deeper than {MAX_DEPTH}")
        children = _CHILDREN[kind]
        strings: dict[int, bytes] = {}
        while self.fh.tell() < end:
            key = self.varint(end)
            field, wire = key >> 3, key & 7
            if field == 0:
                raise _Bad("field number 0")
            if wire == 0:
                self.varint(end)
            elif wire == 1 or wire == 5:
                self._skip(8 if wire == 1 else 4, end)
            elif wire == 2:
                length = self.varint(end)
                start = self.fh.tell()
                if start + length > end:
                    raise _Bad(f"field {field} claims {length:,} bytes, past the end of its message")
                child = children.get(field)
                if child is not None:
                    self.message(child, start + length, depth + 1)
                    self.fh.seek(start + length)
                elif kind == "entry" and field in (1, 2) and length <= MAX_STRING:
                    strings[field] = self.fh.read(length)
                else:
                    self.fh.seek(start + length)
            elif wire in (3, 4):  # deprecated groups: ONNX never writes them
                raise _Bad(f"unsupported protobuf wire type {wire}")
            else:
                raise _Bad(f"invalid protobuf wire type {wire}")
        if (kind == "entry" and strings.get(1) == b"location" and 2 in strings
                and len(self.locations) < MAX_LOCATIONS):
            self.locations.append(strings[2].decode("utf-8", "replace"))
        return strings

    def _skip(self, n: int, end: int) -> None:
        if self.fh.tell() + n > end:
            raise _Bad("fixed-width field runs past the end of its message")
        self.fh.seek(n, os.SEEK_CUR)


def external_locations(abs_path: str, size: int) -> tuple[tuple[str, ...], tuple[FactError, ...]]:
    """External-data locations named by the ONNX model at ``abs_path`` (unique, in file order).

    Never raises: a file that is not a readable ONNX protobuf gives one ``FactError(kind="onnx")``
    whose path is the file name (the caller may replace it with the relative path).
    """
    rel = os.path.basename(abs_path)
    try:
        fd = os.open(abs_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return (), (FactError("onnx", rel, f"could not be opened: {exc.strerror or exc}"),)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return (), (FactError("onnx", rel, "not a regular file"),)
        with os.fdopen(fd, "rb", buffering=1 << 16) as fh:
            reader = _Reader(fh, st.st_size)
            try:
                reader.message("model", st.st_size, 0)
            except _Bad as exc:
                found = tuple(dict.fromkeys(reader.locations))
                return found, (FactError("onnx", rel, f"not a readable ONNX model: {exc}"),)
            return tuple(dict.fromkeys(reader.locations)), ()
    except Exception as exc:  # noqa: BLE001 - fail closed with one line
        return (), (FactError("onnx", rel, f"could not be read: {type(exc).__name__}: {exc}"[:200]),)
