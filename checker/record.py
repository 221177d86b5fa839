"""``@record``: a slotted, by default frozen, data class that is cheap to define.

Why not ``@dataclass(frozen=True, slots=True)``: on Python 3.11 ``dataclasses`` compiles each generated method in
its own ``exec`` (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) and builds
the class twice: about 1 ms a class. The default check defines ~60 data classes before it reads a byte, and
that was ~55 ms of a ~200 ms run (issue 10, "start-up stays light"; measured by wrapping
``dataclasses._process_class`` under ``bench/speed.py``'s 405B check). ``record`` compiles only ``__init__``
(one ``exec`` per class) and shares the other methods, written once below.

What stays the same: the result is a dataclass as far as the standard library can tell (``__dataclass_fields__``
holds real ``dataclasses.Field`` objects), so ``dataclasses.fields``, ``replace``, ``is_dataclass`` and ``asdict``
work; ``field(default=...)`` and ``field(default_factory=...)`` declare defaults; frozen instances raise
``dataclasses.FrozenInstanceError`` on assignment, compare and hash by value, and pickle (``-j`` sends reports
between processes). What ``record`` refuses (loudly, at import): base classes with fields, ``ClassVar`` /
``InitVar`` annotations, ``field(init=False)``, ``kw_only`` and mutable defaults.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)

FrozenInstanceError = dataclasses.FrozenInstanceError
_MISSING = dataclasses.MISSING
# The marker dataclasses.fields()/replace() read to tell a real field from a ClassVar/InitVar pseudo-field.
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_HAS_FACTORY = object()  # the default of an __init__ parameter whose real default comes from a factory


def record(cls: T | None = None, /, *, frozen: bool = True, eq: bool = True) -> Any:
    """Make ``cls`` a record: ``@record`` (frozen, compared by value) or ``@record(frozen=False, eq=...)``."""

    def wrap(c: T) -> T:
        return _build(c, frozen=frozen, eq=eq)

    return wrap if cls is None else wrap(cls)


def _build(cls: type, *, frozen: bool, eq: bool) -> Any:
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"@record {cls.__qualname__}: inheriting fields is not supported")
    fields = _fields(cls)
    names = tuple(fields)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in fields and k not in ("__dict__", "__weakref__")}
    namespace["__slots__"] = names
    namespace["__match_args__"] = names
    namespace["__dataclass_fields__"] = fields
    namespace["__dataclass_params__"] = _Params(frozen=frozen, eq=eq)
    namespace["__record_values__"] = _values_getter(names)
    namespace["__init__"] = _init(cls, fields, frozen)
    namespace.setdefault("__repr__", _repr)
    if eq:
        namespace.setdefault("__eq__", _eq)
        # what dataclasses does: frozen + eq hashes by value; mutable + eq is unhashable
        if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
            namespace["__hash__"] = _hash if frozen else None
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
        namespace["__getstate__"] = _getstate
        namespace["__setstate__"] = _setstate
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    new.__qualname__ = cls.__qualname__
    new.__init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return new


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    fields: dict[str, dataclasses.Field] = {}
    seen_default = False
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if text.startswith(("ClassVar", "typing.ClassVar", "InitVar", "dataclasses.InitVar")):
            raise TypeError(f"@record {cls.__qualname__}.{name}: ClassVar/InitVar fields are not supported")
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, dataclasses.Field) else dataclasses.field(default=value)
        if not f.init or f.kw_only is True:
            raise TypeError(f"@record {cls.__qualname__}.{name}: init=False / kw_only fields are not supported")
        if f.default is not _MISSING and type(f.default).__hash__ is None:
            raise ValueError(f"@record {cls.__qualname__}.{name}: mutable default {type(f.default).__name__}; "
                             "use field(default_factory=...)")
        has_default = f.default is not _MISSING or f.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"@record {cls.__qualname__}: non-default field {name!r} follows a default field")
        seen_default = seen_default or has_default
        f.name, f.type, f._field_type = name, annotation, _FIELD  # type: ignore[attr-defined]
        fields[name] = f
    return fields


def _init(cls: type, fields: dict[str, dataclasses.Field], frozen: bool) -> Callable[..., None]:
    """Compile ``__init__`` in one ``exec``: the same code ``dataclasses`` would generate."""
    scope: dict[str, Any] = {"_set": object.__setattr__, "_HAS_FACTORY": _HAS_FACTORY}
    params, body = [], []
    for name, f in fields.items():
        if name == "self":
            raise TypeError(f"@record {cls.__qualname__}: a field may not be called 'self'")
        value = name
        if f.default is not _MISSING:
            scope[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not _MISSING:
            scope[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_HAS_FACTORY")
            value = f"_factory_{name}() if {name} is _HAS_FACTORY else {name}"
        else:
            params.append(name)
        body.append(f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n    " + ("\n    ".join(body) or "pass") + "\n"
    exec(source, scope)  # noqa: S102 - our own generated source, as dataclasses does
    return scope["__init__"]


def _values_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    if len(names) >= 2:
        return attrgetter(*names)  # a C function returning the tuple of field values
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


class _Params:
    """What ``__dataclass_params__`` answers (the parts anything outside dataclasses reads)."""

    __slots__ = ("init", "repr", "eq", "order", "unsafe_hash", "frozen")

    def __init__(self, *, frozen: bool, eq: bool) -> None:
        self.init, self.repr, self.eq, self.order, self.unsafe_hash, self.frozen = True, True, eq, False, False, frozen


# The shared methods. ``__record_values__`` is a C attrgetter stored on the class (not a descriptor, so it is
# called with the instance explicitly).
def _repr(self: Any) -> str:
    values = type(self).__record_values__(self)
    inner = ", ".join(f"{name}={value!r}" for name, value in zip(self.__dataclass_fields__, values))
    return f"{type(self).__qualname__}({inner})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        values = type(self).__record_values__
        return values(self) == values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(type(self).__record_values__(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> tuple:
    return type(self).__record_values__(self)


def _setstate(self: Any, state: tuple) -> None:
    for name, value in zip(self.__dataclass_fields__, state):
        object.__setattr__(self, name, value)
