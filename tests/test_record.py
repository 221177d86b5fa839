"""`@record` behaves like `@dataclass(frozen=True, slots=True)` wherever our code or the standard library looks."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import field

import pytest

from modelcheck.model import FileEntry, TensorInfo
from modelcheck.record import record


@record
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class PointDC:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


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
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(theirs)]
    assert dataclasses.is_dataclass(ours) and dataclasses.is_dataclass(Point)
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs) == {"x": 1, "y": 0, "tags": []}
    assert dataclasses.replace(ours, y=5) == Point(1, 5)
    assert Point.__slots__ == ("x", "y", "tags") and not hasattr(ours, "__dict__")
    assert Point.__match_args__ == ("x", "y", "tags")
    # a factory default is a new object per instance
    assert Point(1).tags is not Point(1).tags


def test_frozen_and_hashable_by_value():
    p = TensorInfo("w", "BF16", (2, 3), 12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "v"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
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
    with pytest.raises(TypeError, match="init=False"):
        record(type("Bad", (), {"__annotations__": {"x": "int"}, "x": field(init=False, default=1)}))
    with pytest.raises(TypeError, match="inheriting"):
        record(type("Sub", (Point,), {"__annotations__": {"z": "int"}, "z": 0}))


def test_missing_argument_is_a_normal_type_error():
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
