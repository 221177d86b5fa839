"""``@record``: a slotted, by default frozen, data class that is cheap to define.

Why not ``@dataclass(frozen=True, slots=True)``: on Python 3.11 ``dataclasses`` compiles each generated method in
its own ``exec`` (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) and builds
the class twice: about 1 ms a class, and importing ``dataclasses`` imports ``inspect`` (ast, dis, tokenize: ~8 ms).
The default check defines ~60 data classes before it reads a byte: that was ~55 ms of a ~200 ms run (issue 10,
"start-up stays light"; measured by wrapping ``dataclasses._process_class`` under ``bench/speed.py``'s 405B
check). ``record`` compiles only ``__init__`` (one ``exec`` per class, on its first instance) and shares the other
methods, written once below: defining a class costs ~0.05 ms.

The same contract as the dataclass it replaces: ``field(default=...)`` / ``field(default_factory=...)``
declare defaults; ``replace``, ``fields`` and ``is_record`` stand for their ``dataclasses`` namesakes; frozen
instances raise :class:`FrozenInstanceError` (an AttributeError) on assignment, compare and hash by value, and
pickle (``-j`` sends reports between processes); ``repr`` is ``Name(field=value, ...)``. What ``record`` refuses
(loudly, at import): base classes with fields, ``ClassVar`` / ``InitVar`` annotations and mutable defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


class FrozenInstanceError(AttributeError):
    """Assigning to (or deleting) a field of a frozen record."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "no default" (a default of None is a default)
_HAS_FACTORY = object()  # the default of an __init__ parameter whose real default comes from a factory


class Field:
    """One field of a record: its name, annotation (a string under ``from __future__ import annotations``)
    and default or default factory (``MISSING`` when there is none)."""

    __slots__ = ("default", "default_factory", "name", "type")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("a field cannot have both a default and a default_factory")
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


def field(*, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A field's default, as in ``dataclasses.field``: ``tags: list = field(default_factory=list)``."""
    return Field(default, default_factory)


def fields(obj_or_cls: Any) -> tuple[Field, ...]:
    """The record's fields in declaration order."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    try:
        return tuple(cls.__record_fields__.values())
    except AttributeError:
        raise TypeError(f"{cls.__qualname__} is not a record") from None


def is_record(obj_or_cls: Any) -> bool:
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return hasattr(cls, "__record_fields__")


def replace(obj: Any, /, **changes: Any) -> Any:
    """A copy of ``obj`` with ``changes`` (through ``__init__``, as ``dataclasses.replace`` does)."""
    declared = type(obj).__record_fields__
    unknown = [name for name in changes if name not in declared]
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {unknown[0]!r}")
    for name in declared:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


def record(cls: T | None = None, /, *, frozen: bool = True, eq: bool = True) -> Any:
    """Make ``cls`` a record: ``@record`` (frozen, compared by value) or ``@record(frozen=False, eq=...)``."""

    def wrap(c: T) -> T:
        return _build(c, frozen=frozen, eq=eq)

    return wrap if cls is None else wrap(cls)


def _build(cls: type, *, frozen: bool, eq: bool) -> Any:
    if any(hasattr(base, "__record_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"@record {cls.__qualname__}: inheriting fields is not supported")
    declared = _fields(cls)
    names = tuple(declared)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in declared and k not in ("__dict__", "__weakref__")}
    namespace["__slots__"] = names
    namespace["__match_args__"] = names
    namespace["__record_fields__"] = declared
    namespace["__record_values__"] = _values_getter(names)
    namespace["__init__"] = _deferred_init(declared, frozen)
    namespace.setdefault("__repr__", _repr)
    if eq:
        namespace.setdefault("__eq__", _eq)
        # what dataclasses does: frozen + eq hashes by value; mutable + eq is unhashable
        if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
            namespace["__hash__"] = _hash if frozen else None
    # pickled as "call the class with the field values": through the compiled __init__, twice as fast to load
    # as a per-field __setstate__ (-j sends every report, with its tensor records, back to the parent)
    namespace["__reduce__"] = _reduce
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    new.__qualname__ = cls.__qualname__
    new.__init__.__record_class__ = new  # type: ignore[attr-defined]
    return new


def _fields(cls: type) -> dict[str, Field]:
    declared: dict[str, Field] = {}
    seen_default = False
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if text.startswith(("ClassVar", "typing.ClassVar", "InitVar", "dataclasses.InitVar")):
            raise TypeError(f"@record {cls.__qualname__}.{name}: ClassVar/InitVar fields are not supported")
        if name == "self":
            raise TypeError(f"@record {cls.__qualname__}: a field may not be called 'self'")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        if f.default is not MISSING and type(f.default).__hash__ is None:
            raise ValueError(f"@record {cls.__qualname__}.{name}: mutable default {type(f.default).__name__}; "
                             "use field(default_factory=...)")
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"@record {cls.__qualname__}: non-default field {name!r} follows a default field")
        seen_default = seen_default or has_default
        f.name, f.type = name, annotation
        declared[name] = f
    return declared


def _deferred_init(declared: dict[str, Field], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one on the first instance and replaces itself: a class the run
    never instantiates (most of them, on a given path) never pays for the ``exec``."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls = __init__.__record_class__  # type: ignore[attr-defined]
        if cls.__dict__["__init__"] is __init__:
            cls.__init__ = _init(cls, declared, frozen)
        cls.__init__(self, *args, **kwargs)

    return __init__


def _init(cls: type, declared: dict[str, Field], frozen: bool) -> Callable[..., None]:
    """Compile ``__init__`` in one ``exec``: the code ``dataclasses`` would generate."""
    scope: dict[str, Any] = {"_set": object.__setattr__, "_HAS_FACTORY": _HAS_FACTORY}
    params, body = [], []
    for name, f in declared.items():
        value = name
        if f.default is not MISSING:
            scope[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not MISSING:
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
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _values_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    if len(names) >= 2:
        return attrgetter(*names)  # a C function returning the tuple of field values
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


# The shared methods. ``__record_values__`` is a C attrgetter stored on the class (not a descriptor, so it is
# called with the instance explicitly).
def _repr(self: Any) -> str:
    values = type(self).__record_values__(self)
    inner = ", ".join(f"{name}={value!r}" for name, value in zip(self.__record_fields__, values))
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


def _reduce(self: Any) -> tuple:
    return type(self), type(self).__record_values__(self)


__all__ = ["MISSING", "Field", "FrozenInstanceError", "field", "fields", "is_record", "record", "replace"]
