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

import mmap
import os
import stat

from modelcheck.model import FactError

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
    """Walks the protobuf in a memory map by index: no per-byte reads, only the bytes visited are touched."""

    def __init__(self, buf, budget=None) -> None:
        self.buf, self.pos, self.messages = buf, 0, 0
        self.budget = budget
        self.max_messages = MAX_MESSAGES if budget is None else min(MAX_MESSAGES, budget.opcodes_left)
        self.locations: list[str] = []

    def varint(self, end: int) -> int:
        buf, pos = self.buf, self.pos
        result = shift = 0
        while True:
            if pos >= end:
                raise _Bad("varint runs past the end of its message")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 63:
                raise _Bad("varint longer than 10 bytes")

    def message(self, kind: str, end: int, depth: int) -> dict[int, bytes] | None:
        """Walk one message up to ``end``; for 'entry' return its string fields."""
        self.messages += 1
        if self.messages > self.max_messages:
            raise _Bad(f"more than {self.max_messages:,} protobuf messages (per-run scan budget)")
        if depth > MAX_DEPTH:
            raise _Bad(f"messages nested deeper than {MAX_DEPTH}")
        children = _CHILDREN[kind]
        strings: dict[int, bytes] = {}
        while self.pos < end:
            key = self.varint(end)
            field, wire = key >> 3, key & 7
            if field == 0:
                raise _Bad("field number 0")
            if wire == 0:
                self.varint(end)
            elif wire == 1 or wire == 5:
                n = 8 if wire == 1 else 4
                if self.pos + n > end:
                    raise _Bad("fixed-width field runs past the end of its message")
                self.pos += n
            elif wire == 2:
                length = self.varint(end)
                start = self.pos
                if start + length > end:
                    raise _Bad(f"field {field} claims {length:,} bytes, past the end of its message")
                child = children.get(field)
                if child is not None:
                    self.message(child, start + length, depth + 1)
                elif kind == "entry" and field in (1, 2) and length <= MAX_STRING:
                    strings[field] = bytes(self.buf[start : start + length])
                self.pos = start + length
            elif wire in (3, 4):  # deprecated groups: ONNX never writes them
                raise _Bad(f"unsupported protobuf wire type {wire}")
            else:
                raise _Bad(f"invalid protobuf wire type {wire}")
        if (kind == "entry" and strings.get(1) == b"location" and 2 in strings
                and len(self.locations) < MAX_LOCATIONS):
            self.locations.append(strings[2].decode("utf-8", "replace"))
        return strings


def external_locations(abs_path: str, size: int = 0, budget=None) -> tuple[tuple[str, ...], tuple[FactError, ...]]:
    """External-data locations named by the ONNX model at ``abs_path`` (unique, in file order).

    Never raises: a file that is not a readable ONNX protobuf gives one ``FactError(kind="onnx")``
    whose path is the file name (the caller may replace it with the relative path). Messages walked
    count against ``budget`` (modelcheck.facts.pickle.Budget) when one is given.
    """
    rel = os.path.basename(abs_path)
    try:
        fd = os.open(abs_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return (), (FactError("onnx", rel, f"could not be opened: {exc.strerror or exc}"),)
    reader = None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return (), (FactError("onnx", rel, "not a regular file"),)
        if st.st_size == 0:
            return (), (FactError("onnx", rel, "not a readable ONNX model: the file is empty"),)
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
            reader = _Reader(buf, budget)
            try:
                reader.message("model", st.st_size, 0)
            except _Bad as exc:
                found = tuple(dict.fromkeys(reader.locations))
                return found, (FactError("onnx", rel, f"not a readable ONNX model: {exc}"),)
            return tuple(dict.fromkeys(reader.locations)), ()
    except RecursionError:
        return (), (FactError("onnx", rel, "not a readable ONNX model: nested too deep"),)
    except Exception as exc:  # noqa: BLE001 - fail closed with one line
        return (), (FactError("onnx", rel, f"could not be read: {type(exc).__name__}: {exc}"[:200]),)
    finally:
        os.close(fd)
        if reader is not None and budget is not None:
            budget.opcodes_used += reader.messages
