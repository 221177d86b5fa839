"""`@record` keeps the contract of the `@dataclass(frozen=True, slots=True)` it replaced, side by side with one."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys

import pytest

from modelcheck.model import FileEntry, TensorInfo
from modelcheck.record import MISSING, FrozenInstanceError, field, fields, is_record, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class PointDC:
    x: int
    y: int = 0
    tags: list = dataclasses.field(default_factory=list)


@record(frozen=False)
class Box:
    size: int


@record(frozen=False, eq=False)
class Handle:
    name: str


def test_same_observable_behaviour_as_a_frozen_slots_dataclass():
    ours, theirs = Point(1), PointDC(1)
    assert repr(ours) == repr(theirs).replace("PointDC", "Point") == "Point(x=1, y=0, tags=[])"
    assert ours == Point(1, 0, []) and ours != Point(2) and ours != theirs
    assert [f.name for f in fields(ours)] == [f.name for f in dataclasses.fields(theirs)] == ["x", "y", "tags"]
    assert [(f.default, f.default_factory) for f in fields(Point)] == [(MISSING, MISSING), (0, MISSING),
                                                                         (MISSING, list)]
    assert is_record(ours) and is_record(Point) and not is_record(theirs)
    assert replace(ours, y=5) == Point(1, 5) and dataclasses.replace(theirs, y=5) == PointDC(1, 5)
    assert Point.__slots__ == ("x", "y", "tags") and not hasattr(ours, "__dict__")
    assert Point.__match_args__ == PointDC.__match_args__
    assert Point(1).tags is not Point(1).tags  # a factory default is a new object per instance
    with pytest.raises(TypeError, match="no field 'z'"):
        replace(ours, z=1)


def test_frozen_and_hashable_by_value():
    p = TensorInfo("w", "BF16", (2, 3), 12)
    with pytest.raises(FrozenInstanceError):
        p.name = "v"  # type: ignore[misc]
    with pytest.raises(AttributeError):  # as dataclasses' FrozenInstanceError is
        del p.name  # type: ignore[misc]
    assert hash(p) == hash(TensorInfo("w", "BF16", (2, 3), 12))
    assert len({p, TensorInfo("w", "BF16", (2, 3), 12)}) == 1
    assert p.numel == 6  # methods and properties of the class body survive


def test_pickles_and_copies():
    # -j sends reports between processes
    entry = FileEntry("model.safetensors", 10, lfs_pointer=True)
    for clone in (pickle.loads(pickle.dumps(entry)), copy.copy(entry), copy.deepcopy(entry)):
        assert clone == entry and clone is not entry


def test_mutable_records():
    b = Box(1)
    b.size = 2
    assert b == Box(2) and Box.__hash__ is None  # mutable + eq: unhashable, as dataclasses makes it
    h = Handle("a")
    assert h != Handle("a") and hash(h) == hash(h)  # eq=False: identity


def test_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match="mutable default"):
        record(type("Bad", (), {"__annotations__": {"x": "list"}, "x": []}))
    with pytest.raises(TypeError, match="non-default field"):
        record(type("Bad", (), {"__annotations__": {"x": "int", "y": "int"}, "x": 1}))
    with pytest.raises(TypeError, match="ClassVar"):
        record(type("Bad", (), {"__annotations__": {"x": "ClassVar[int]"}}))
    with pytest.raises(TypeError, match="inheriting"):
        record(type("Sub", (Point,), {"__annotations__": {"z": "int"}, "z": 0}))
    with pytest.raises(ValueError, match="both"):
        field(default=1, default_factory=list)


def test_missing_argument_is_a_normal_type_error():
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_init_is_compiled_on_first_instance_with_the_real_signature():
    @record
    class Late:
        a: int
        b: str = "x"

    deferred = Late.__dict__["__init__"]
    assert Late(1) == Late(a=1, b="x")
    compiled = Late.__dict__["__init__"]
    assert compiled is not deferred and compiled.__qualname__.endswith("Late.__init__")
    assert list(inspect.signature(Late).parameters) == ["a", "b"]
    with pytest.raises(TypeError):
        Late(1, "x", 3)  # type: ignore[call-arg]


def test_the_check_imports_neither_dataclasses_nor_inspect():
    # what the record saves at start-up would come back with either import (inspect pulls ast, dis, tokenize)
    code = ("import sys, modelcheck.api, modelcheck.facts, modelcheck.estimate, modelcheck.plan, "
            "modelcheck.formatters, modelcheck.registry as r; r.load(); "
            "print(sorted(m for m in ('dataclasses', 'inspect') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
