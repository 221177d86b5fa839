"""Pickle security scan: read the opcodes of pickles (raw, torch zip/legacy, numpy, joblib), never unpickle.

A small symbolic pickle machine walks the opcode stream with its own bounded loop. It keeps just enough
of the stack and memo to name every global the unpickler would import (GLOBAL, INST, STACK_GLOBAL with
operands from string pushes or memo gets) and to follow joblib's raw array data that sits between
opcodes. Each global gets a verdict: ``safe`` (what weight loaders need), ``dangerous`` (runs code,
touches files or the network) or ``unknown``. Every limit is fixed here; anything odd becomes a
``FactError(kind="pickle")`` and never an exception.

Entry point: :func:`scan_file`, called by ``checker.facts.gather`` for files with :data:`PICKLE_SUFFIXES`.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from checker.model import FactError, PickleGlobal, PickleScan

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".pk", ".dat")

MAX_PICKLE_BYTES = 64 * 1024 * 1024  # pickle stream bytes read or decompressed per file
MAX_OPCODES = 2_000_000  # ~1-2 s of pure Python; torch data.pkl of a 70B model is ~100k opcodes
MAX_STACK = 200_000  # pickle batches APPENDS/SETITEMS by 1000: real streams stay shallow
MAX_MEMO = 200_000
MAX_LINE = 1 << 16  # text-protocol argument lines
MAX_KEEP_BYTES = 16 * 1024 * 1024  # bytes literals kept for nested scans (torch _load_from_bytes)
MAX_PICKLES_PER_STREAM = 16
MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_CENTRAL_DIR = 32 * 1024 * 1024
MAX_ZIP_MEMBERS_SCANNED = 64
MAX_NESTED_DEPTH = 3
MAX_NPY_HEADER = 1 << 16

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# ---------------------------------------------------------------------------------------------
# Verdicts

# Python 2 names the unpickler maps (fix_imports) before importing.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "exceptions": "builtins", "cPickle": "pickle",
                "commands": "subprocess", "urllib2": "urllib", "httplib": "http", "Tkinter": "tkinter"}

_TORCH_STORAGES = {
    f"{t}Storage"
    for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
              "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4", "Untyped",
              "Float8_e4m3fn", "Float8_e5m2", "Float8_e4m3fnuz", "Float8_e5m2fnuz", "UInt16", "UInt32", "UInt64")
}
_TORCH_DTYPES = {
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "complex32", "complex64",
    "complex128", "cfloat", "cdouble", "chalf", "uint8", "uint16", "uint32", "uint64", "int8", "int16",
    "short", "int32", "int", "int64", "long", "bool", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
    "bits8", "bits16", "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
    "_mkldnn", "contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
    "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric",
    "per_channel_affine_float_qparams",
}
_TORCH_REBUILD = {
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_nested_tensor", "_rebuild_qtensor",
    "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_xla_tensor", "_rebuild_mps_tensor",
}
_NUMPY_SCALARS = {
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
    "float64", "longdouble", "complex64", "complex128", "clongdouble", "intc", "uintc", "longlong",
    "ulonglong", "half", "single", "double", "str_", "bytes_", "void", "datetime64", "timedelta64",
}

_SAFE: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "deque"}),
    "builtins": frozenset({"set", "frozenset", "bytearray", "bytes", "slice", "complex", "range", "str", "int",
                           "float", "bool", "list", "dict", "tuple", "object", "Ellipsis", "NotImplemented"}),
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "_codecs": frozenset({"encode"}),
    "torch._utils": frozenset(_TORCH_REBUILD),
    "torch": frozenset(_TORCH_STORAGES | _TORCH_DTYPES | {"Size", "device", "Tensor", "dtype", "layout",
                                                          "memory_format", "qscheme", "finfo", "iinfo"}
                       | {f"{t[:-7]}Tensor" for t in _TORCH_STORAGES}),
    "torch.storage": frozenset({"UntypedStorage", "TypedStorage", "_StorageBase"}),
    "torch.cuda": frozenset(_TORCH_STORAGES),
    "torch._tensor": frozenset({"_rebuild_from_type_v2", "Tensor"}),
    "torch.nn.parameter": frozenset({"Parameter", "Buffer"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "numpy": frozenset({"ndarray", "dtype", "matrix", "recarray"} | _NUMPY_SCALARS),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.ma.core": frozenset({"_mareconstruct", "MaskedArray"}),
    "numpy.random._pickle": frozenset({"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"}),
    "joblib.numpy_pickle": frozenset({"NumpyArrayWrapper"}),
    "datetime": frozenset({"datetime", "date", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID"}),
    "argparse": frozenset({"Namespace"}),
    "pathlib": frozenset({"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"}),
}

# Whole module trees that run code, spawn processes, touch files/network or unpickle again.
_DANGEROUS_ROOTS = frozenset({
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "socket", "_socket", "shutil", "runpy",
    "webbrowser", "importlib", "imp", "pty", "ctypes", "_ctypes", "marshal", "pickle", "_pickle", "dill",
    "cloudpickle", "shelve", "code", "codeop", "popen2", "platform", "multiprocessing", "asyncio", "signal",
    "types", "operator", "_operator", "functools", "_functools", "io", "_io", "pip", "setuptools",
    "distutils", "ensurepip", "venv", "pydoc", "site", "pkgutil", "zipimport", "bdb", "pdb", "trace",
    "timeit", "cProfile", "profile", "doctest", "idlelib", "xmlrpc", "http", "urllib", "requests", "ftplib",
    "smtplib", "telnetlib", "paramiko", "aiohttp", "httpx", "_thread", "threading", "_winapi", "msvcrt",
    "winreg", "tempfile", "glob", "fileinput", "linecache", "tkinter", "turtle", "antigravity", "this",
    "jsonpickle", "yaml", "inspect", "gc", "builtins_", "sysconfig", "posixpath", "ntpath", "mmap",
    "select", "selectors", "ssl", "ssh", "fcntl", "resource", "zipfile", "tarfile", "shlex",
    "cmd", "readline", "rlcompleter", "lib2to3", "uu", "compileall", "py_compile", "builtins_exec",
})
_DANGEROUS_MODULES = frozenset({
    "torch.hub", "torch.jit", "torch._inductor", "torch.utils.cpp_extension", "torch.fx", "torch._dynamo",
    "torch.package", "torch.ops", "torch.distributed", "torch._ops", "torch.compiler", "torch.testing",
    "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "numpy.lib.npyio", "numpy.lib.format",
    "keras.src.saving", "tensorflow.python.ops.script_ops", "joblib.parallel", "joblib.externals",
})
_DANGEROUS_NAMES = frozenset({
    ("torch", "load"), ("torch", "save"), ("torch", "compile"), ("torch.serialization", "load"),
    ("torch.serialization", "save"), ("torch", "from_file"), ("numpy", "load"), ("numpy", "loadtxt"),
    ("numpy", "fromfile"), ("numpy", "save"), ("numpy", "savez"), ("numpy", "savetxt"), ("numpy", "genfromtxt"),
    ("numpy", "memmap"), ("numpy", "fromregex"), ("joblib", "load"), ("joblib", "dump"),
    ("pandas", "read_pickle"), ("pandas.io.pickle", "read_pickle"), ("codecs", "open"),
    ("torch.storage", "_load_from_bytes"),  # only when its bytes cannot be scanned (see _reduce)
})
# Attribute names that are code execution wherever they live (also inside dotted protocol-4 names).
_DANGEROUS_ATTRS = frozenset({
    "system", "popen", "popen2", "popen3", "popen4", "eval", "exec", "execfile", "compile", "__import__",
    "getattr", "setattr", "delattr", "spawn", "spawnl", "spawnlp", "spawnv", "spawnve", "spawnvp", "execl",
    "execle", "execlp", "execv", "execve", "execvp", "execvpe", "check_output", "check_call", "Popen",
    "run_path", "run_module", "load_source", "import_module", "breakpoint", "globals", "locals", "vars",
    "open", "input", "startfile", "loads", "load_module", "exec_module", "unsafe_load", "full_load",
})
_SAFE_DUNDERS = frozenset({"__newobj__", "__newobj_ex__", "__randomstate_ctor", "__bit_generator_ctor",
                           "__generator_ctor"})


def classify(module: str, name: str) -> str:
    """'safe', 'dangerous' or 'unknown' for the global ``module.name`` a pickle imports."""
    mod = _PY2_MODULES.get(module, module)
    safe = _SAFE.get(mod)
    if safe is not None and name in safe:
        return "safe"
    if mod == "numpy.dtypes" and name.endswith("DType") and "." not in name:
        return "safe"
    parts = name.split(".")
    if any(p in _DANGEROUS_ATTRS for p in parts):
        return "dangerous"
    if any(p.startswith("__") and p.endswith("__") and p not in _SAFE_DUNDERS for p in parts):
        return "dangerous"
    if mod == "builtins":  # only the plain containers above are harmless
        return "dangerous"
    root = mod.split(".", 1)[0]
    if root in _DANGEROUS_ROOTS or (mod, name) in _DANGEROUS_NAMES:
        return "dangerous"
    if any(mod == m or mod.startswith(m + ".") for m in _DANGEROUS_MODULES):
        return "dangerous"
    if not mod or not name or not _IDENT_PATH.match(mod) or not _IDENT_PATH.match(name):
        return "dangerous"  # the unpickler would still try to import it; no legitimate writer emits this
    return "unknown"


_IDENT_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


# ---------------------------------------------------------------------------------------------
# The symbolic machine


class _Malformed(Exception):
    """The stream is not a well-formed pickle at this point."""


class _Capped(Exception):
    """A fixed limit was reached; what was seen so far stands."""


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "?"


_UNK = _Unknown()


class _Mark:
    __slots__ = ()


@dataclass(slots=True, eq=False)
class _Global:
    module: str
    name: str


@dataclass(slots=True, eq=False)
class _Obj:
    """Result of REDUCE/NEWOBJ/INST/OBJ: a call of ``func`` with ``args``; ``state`` after BUILD."""

    func: object
    args: object
    state: object = None


@dataclass(slots=True)
class _Result:
    globals: list[PickleGlobal] = field(default_factory=list)
    opcodes: int = 0
    notes: list[str] = field(default_factory=list)  # why the scan stopped early (one line each)
    joblib: bool = False
    values: list[object] = field(default_factory=list)  # top-level values of complete pickles


class _Machine:
    """Decodes pickles in ``data`` from ``pos``. One instance per file; memo/stack reset per pickle."""

    def __init__(self, data: bytes, result: _Result, depth: int = 0) -> None:
        self.data = data
        self.result = result
        self.depth = depth
        self._seen: set[tuple[str, str]] = set()
        self.cap_pos = 0  # where a limit stopped the walk (the byte search goes on from there)

    # -- helpers ---------------------------------------------------------------------------------
    def _need(self, pos: int, n: int) -> None:
        if n < 0 or pos + n > len(self.data):
            raise _Malformed(f"truncated: an argument at byte {pos} needs {n} bytes")

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self.data.find(b"\n", pos, pos + MAX_LINE)
        if end < 0:
            raise _Malformed(f"unterminated text argument at byte {pos}")
        return self.data[pos:end], end + 1

    def _add_global(self, module: str, name: str) -> _Global:
        key = (module, name)
        if key not in self._seen:
            self._seen.add(key)
            self.result.globals.append(PickleGlobal(module, name, classify(module, name)))
        return _Global(module, name)

    def _flag(self, module: str, name: str, verdict: str) -> None:
        key = (module, name)
        if key not in self._seen:
            self._seen.add(key)
            self.result.globals.append(PickleGlobal(module, name, verdict))

    # -- one pickle --------------------------------------------------------------------------------
    def run(self, pos: int) -> tuple[int, object]:
        """Decode one pickle starting at ``pos``; return (position after STOP, top value)."""
        data = self.data
        n = len(data)
        stack: list[object] = []
        metastack: list[list[object]] = []
        memo: dict[int, object] = {}
        res = self.result
        unpack = struct.unpack_from

        def pop_mark() -> list[object]:
            nonlocal stack
            if not metastack:
                raise _Malformed(f"no MARK before byte {pos}")
            items = stack
            stack = metastack.pop()
            return items

        def pop() -> object:
            if not stack:
                raise _Malformed(f"stack underflow at byte {pos}")
            return stack.pop()

        def put(idx: int, value: object) -> None:
            if len(memo) < MAX_MEMO or idx in memo:
                memo[idx] = value

        def get(idx: int) -> object:
            return memo.get(idx, _UNK)

        while True:
            if pos >= n:
                raise _Malformed(f"ends without STOP at byte {pos}")
            res.opcodes += 1
            if res.opcodes > MAX_OPCODES:
                self.cap_pos = pos
                raise _Capped(f"stopped after {MAX_OPCODES:,} opcodes")
            if len(stack) > MAX_STACK or len(metastack) > MAX_STACK:
                self.cap_pos = pos
                raise _Capped(f"stack deeper than {MAX_STACK:,} at byte {pos}")
            op = data[pos]
            at = pos
            pos += 1
            # Frequent opcodes first.
            if op == 0x94:  # MEMOIZE
                if not stack:
                    raise _Malformed(f"MEMOIZE on empty stack at byte {at}")
                put(len(memo), stack[-1])
            elif op == 0x71:  # BINPUT
                self._need(pos, 1)
                if not stack:
                    raise _Malformed(f"BINPUT on empty stack at byte {at}")
                put(data[pos], stack[-1])
                pos += 1
            elif op == 0x72:  # LONG_BINPUT
                self._need(pos, 4)
                if not stack:
                    raise _Malformed(f"LONG_BINPUT on empty stack at byte {at}")
                put(unpack("<I", data, pos)[0], stack[-1])
                pos += 4
            elif op == 0x68:  # BINGET
                self._need(pos, 1)
                stack.append(get(data[pos]))
                pos += 1
            elif op == 0x6A:  # LONG_BINGET
                self._need(pos, 4)
                stack.append(get(unpack("<I", data, pos)[0]))
                pos += 4
            elif op == 0x8C:  # SHORT_BINUNICODE
                self._need(pos, 1)
                ln = data[pos]
                self._need(pos + 1, ln)
                stack.append(data[pos + 1 : pos + 1 + ln].decode("utf-8", "surrogatepass"))
                pos += 1 + ln
            elif op == 0x58 or op == 0x8D:  # BINUNICODE / BINUNICODE8
                w = 4 if op == 0x58 else 8
                self._need(pos, w)
                ln = unpack("<I" if w == 4 else "<Q", data, pos)[0]
                pos += w
                self._need(pos, ln)
                stack.append(data[pos : pos + ln].decode("utf-8", "surrogatepass") if ln <= MAX_LINE else _UNK)
                pos += ln
            elif op == 0x4B:  # BININT1
                self._need(pos, 1)
                stack.append(data[pos])
                pos += 1
            elif op == 0x4D:  # BININT2
                self._need(pos, 2)
                stack.append(unpack("<H", data, pos)[0])
                pos += 2
            elif op == 0x4A:  # BININT
                self._need(pos, 4)
                stack.append(unpack("<i", data, pos)[0])
                pos += 4
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op == 0x74:  # TUPLE
                items = pop_mark()  # rebinds `stack`: never inline it into stack.append(...)
                stack.append(tuple(items))
            elif op == 0x85:  # TUPLE1
                stack.append((pop(),))
            elif op == 0x86:  # TUPLE2
                b = pop()
                stack.append((pop(), b))
            elif op == 0x87:  # TUPLE3
                c = pop()
                b = pop()
                stack.append((pop(), b, c))
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x52:  # REDUCE
                args = pop()
                func = pop()
                stack.append(self._reduce(func, args))
            elif op == 0x81:  # NEWOBJ
                args = pop()
                cls = pop()
                stack.append(_Obj(cls, args))
            elif op == 0x92:  # NEWOBJ_EX
                pop()
                args = pop()
                cls = pop()
                stack.append(_Obj(cls, args))
            elif op == 0x62:  # BUILD
                state = pop()
                if not stack:
                    raise _Malformed(f"BUILD on empty stack at byte {at}")
                inst = stack[-1]
                if isinstance(inst, _Obj):
                    inst.state = state
                    if self._is_joblib_wrapper(inst):
                        pos = self._skip_joblib_array(inst, pos)
            elif op == 0x93:  # STACK_GLOBAL
                name = pop()
                module = pop()
                if isinstance(module, str) and isinstance(name, str):
                    stack.append(self._add_global(module, name))
                else:
                    # Real writers always push literal strings; computed operands hide the target.
                    self._flag(repr(module)[:80], repr(name)[:80], "dangerous")
                    stack.append(_UNK)
            elif op == 0x63:  # GLOBAL
                mod, pos = self._line(pos)
                nm, pos = self._line(pos)
                stack.append(self._add_global(mod.decode("utf-8", "replace"), nm.decode("utf-8", "replace")))
            elif op == 0x69:  # INST
                mod, pos = self._line(pos)
                nm, pos = self._line(pos)
                cls = self._add_global(mod.decode("utf-8", "replace"), nm.decode("utf-8", "replace"))
                items = pop_mark()
                stack.append(_Obj(cls, tuple(items)))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Malformed(f"OBJ without class at byte {at}")
                stack.append(_Obj(items[0], tuple(items[1:])))
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x8F:  # EMPTY_SET
                stack.append(_UNK)
            elif op == 0x73:  # SETITEM
                v = pop()
                k = pop()
                if not stack:
                    raise _Malformed(f"SETITEM on empty stack at byte {at}")
                self._setitems(stack[-1], [k, v])
            elif op == 0x75:  # SETITEMS
                items = pop_mark()
                if not stack:
                    raise _Malformed(f"SETITEMS on empty stack at byte {at}")
                self._setitems(stack[-1], items)
            elif op == 0x61:  # APPEND
                v = pop()
                if not stack:
                    raise _Malformed(f"APPEND on empty stack at byte {at}")
                if isinstance(stack[-1], list):
                    stack[-1].append(v)
            elif op == 0x65:  # APPENDS
                items = pop_mark()
                if not stack:
                    raise _Malformed(f"APPENDS on empty stack at byte {at}")
                if isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif op == 0x90:  # ADDITEMS
                pop_mark()
                if not stack:
                    raise _Malformed(f"ADDITEMS on empty stack at byte {at}")
            elif op == 0x64:  # DICT
                items = pop_mark()
                d: dict[object, object] = {}
                self._setitems(d, items)
                stack.append(d)
            elif op == 0x6C:  # LIST
                items = pop_mark()
                stack.append(items)
            elif op == 0x91:  # FROZENSET
                pop_mark()
                stack.append(_UNK)
            elif op == 0x51:  # BINPERSID
                pop()
                stack.append(_UNK)
            elif op == 0x50:  # PERSID
                _, pos = self._line(pos)
                stack.append(_UNK)
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x47:  # BINFLOAT
                self._need(pos, 8)
                stack.append(unpack(">d", data, pos)[0])
                pos += 8
            elif op == 0x8A or op == 0x8B:  # LONG1 / LONG4
                w = 1 if op == 0x8A else 4
                self._need(pos, w)
                ln = data[pos] if w == 1 else unpack("<i", data, pos)[0]
                pos += w
                if ln < 0:
                    raise _Malformed(f"negative LONG4 length at byte {at}")
                self._need(pos, ln)
                stack.append(int.from_bytes(data[pos : pos + ln], "little", signed=True) if ln <= 64 else _UNK)
                pos += ln
            elif op == 0x43 or op == 0x42 or op == 0x8E or op == 0x96:  # (SHORT_)BINBYTES(8), BYTEARRAY8
                w = {0x43: 1, 0x42: 4, 0x8E: 8, 0x96: 8}[op]
                self._need(pos, w)
                ln = data[pos] if w == 1 else unpack("<I" if w == 4 else "<Q", data, pos)[0]
                pos += w
                self._need(pos, ln)
                stack.append(data[pos : pos + ln] if ln <= MAX_KEEP_BYTES else _UNK)
                pos += ln
            elif op == 0x54 or op == 0x55:  # BINSTRING / SHORT_BINSTRING
                w = 4 if op == 0x54 else 1
                self._need(pos, w)
                ln = data[pos] if w == 1 else unpack("<i", data, pos)[0]
                pos += w
                if ln < 0:
                    raise _Malformed(f"negative BINSTRING length at byte {at}")
                self._need(pos, ln)
                # Python 2 str: the unpickler decodes it (ASCII by default) and STACK_GLOBAL accepts it.
                stack.append(data[pos : pos + ln].decode("latin-1") if ln <= MAX_LINE else _UNK)
                pos += ln
            elif op == 0x53:  # STRING
                raw, pos = self._line(pos)
                stack.append(_string_literal(raw))
            elif op == 0x56:  # UNICODE
                raw, pos = self._line(pos)
                stack.append(raw.decode("raw-unicode-escape", "replace"))
            elif op == 0x49 or op == 0x4C:  # INT / LONG (text)
                raw, pos = self._line(pos)
                stack.append(_text_int(raw))
            elif op == 0x46:  # FLOAT (text)
                _, pos = self._line(pos)
                stack.append(_UNK)
            elif op == 0x67:  # GET
                raw, pos = self._line(pos)
                stack.append(get(_text_int(raw, at)))
            elif op == 0x70:  # PUT
                raw, pos = self._line(pos)
                if not stack:
                    raise _Malformed(f"PUT on empty stack at byte {at}")
                put(_text_int(raw, at), stack[-1])
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                if not stack:
                    raise _Malformed(f"DUP on empty stack at byte {at}")
                stack.append(stack[-1])
            elif op == 0x80:  # PROTO
                self._need(pos, 1)
                if data[pos] > 5:
                    raise _Malformed(f"unsupported pickle protocol {data[pos]} at byte {at}")
                pos += 1
            elif op == 0x95:  # FRAME: framing only, the opcodes inside read as one stream
                self._need(pos, 8)
                pos += 8
            elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1/2/4: copyreg extension registry
                w = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                self._need(pos, w)
                code = int.from_bytes(data[pos : pos + w], "little")
                pos += w
                self._flag("copyreg", f"extension:{code}", "unknown")
                stack.append(_UNK)
            elif op == 0x97:  # NEXT_BUFFER (out-of-band; a file cannot carry one)
                stack.append(_UNK)
            elif op == 0x98:  # READONLY_BUFFER
                if not stack:
                    raise _Malformed(f"READONLY_BUFFER on empty stack at byte {at}")
            elif op == 0x2E:  # STOP
                top = pop()
                return pos, top
            else:
                raise _Malformed(f"invalid opcode 0x{op:02x} at byte {at}")

    # -- semantics we need -------------------------------------------------------------------------
    @staticmethod
    def _setitems(target: object, items: list[object]) -> None:
        if len(items) % 2:
            raise _Malformed("odd number of items for SETITEMS")
        if isinstance(target, dict):
            for i in range(0, len(items), 2):
                k = items[i]
                if isinstance(k, (str, int)):
                    target[k] = items[i + 1]

    def _reduce(self, func: object, args: object) -> object:
        if isinstance(func, _Global) and (func.module, func.name) == ("torch.storage", "_load_from_bytes"):
            # torch pickles storages as a nested torch.save blob; scan the blob instead of trusting it.
            blob = _as_bytes(args[0]) if isinstance(args, tuple) and args else None
            if blob is not None and self.depth < MAX_NESTED_DEPTH:
                nested = _scan_bytes(blob, "<nested>", self.depth + 1)
                for scan in nested[0]:
                    for g in scan.globals:
                        self._flag(g.module, g.name, g.verdict)
                if not nested[1] and not any(scan.dangerous for scan in nested[0]):
                    self._demote_load_from_bytes()
                else:
                    self.result.notes.append("a nested torch blob (_load_from_bytes) could not be scanned")
        return _Obj(func, args)

    def _demote_load_from_bytes(self) -> None:
        # The blob scanned clean: _load_from_bytes itself is then as safe as torch.load of that blob.
        g = self.result.globals
        for i, pg in enumerate(g):
            if (pg.module, pg.name) == ("torch.storage", "_load_from_bytes") and pg.verdict == "dangerous":
                g[i] = PickleGlobal(pg.module, pg.name, "safe")

    @staticmethod
    def _is_joblib_wrapper(obj: _Obj) -> bool:
        f = obj.func
        return isinstance(f, _Global) and f.name == "NumpyArrayWrapper" and f.module.startswith("joblib")

    def _skip_joblib_array(self, obj: _Obj, pos: int) -> int:
        """joblib writes the array's raw bytes (or a nested pickle) right after the wrapper's BUILD."""
        self.result.joblib = True
        state = obj.state
        if not isinstance(state, dict):
            raise _Capped("joblib array wrapper without readable state; data after it was not scanned")
        shape, dtype = state.get("shape"), state.get("dtype")
        info = _dtype_info(dtype)
        if info is None or not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
            raise _Capped("joblib array with unreadable shape/dtype; data after it was not scanned")
        is_object, itemsize = info
        if is_object:
            if self.depth >= MAX_NESTED_DEPTH:
                raise _Capped("joblib object arrays nested too deep")
            inner = _Machine(self.data, self.result, self.depth + 1)
            end, _ = inner.run(pos)
            for key in inner._seen:
                self._seen.add(key)
            return end
        if state.get("numpy_array_alignment_bytes") is not None:
            self._need(pos, 1)
            pos += 1 + self.data[pos]
        count = 1
        for x in shape:
            count *= x
        nbytes = count * itemsize
        self._need(pos, nbytes)
        return pos + nbytes


def _as_bytes(value: object) -> bytes | None:
    """A bytes literal, also as protocol-2 writes it: ``_codecs.encode('<latin-1 text>', 'latin1')``."""
    if isinstance(value, bytes):
        return value
    if (isinstance(value, _Obj) and isinstance(value.func, _Global)
            and (value.func.module, value.func.name) == ("_codecs", "encode")
            and isinstance(value.args, tuple) and len(value.args) == 2 and isinstance(value.args[0], str)
            and value.args[1] in ("latin1", "latin-1")):
        try:
            return value.args[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def _dtype_info(dtype: object) -> tuple[bool, int] | None:
    """(is_object, itemsize) of a pickled ``numpy.dtype(str, ...)`` call, or None if unreadable."""
    if not isinstance(dtype, _Obj) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None
    spec = dtype.args[0]
    if not isinstance(spec, str):
        return None
    m = re.fullmatch(r"[<>|=]?([a-zA-Z])(\d*)", spec)
    if not m:
        return None
    kind, digits = m.group(1), m.group(2)
    if kind == "O":
        return True, 8
    state = dtype.state
    if isinstance(state, tuple) and len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        return False, state[5]  # structured/void: elsize is in the state
    if not digits:
        return None
    size = int(digits)
    return False, size * 4 if kind == "U" else size


def _string_literal(raw: bytes) -> object:
    raw = raw.strip()
    if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"'):
        try:
            return raw[1:-1].decode("unicode_escape")
        except UnicodeDecodeError:
            return _UNK
    raise _Malformed("STRING argument is not quoted")


def _text_int(raw: bytes, at: int | None = None) -> object:
    raw = raw.strip().rstrip(b"L")
    if raw in (b"00", b"01"):
        return raw == b"01"
    if len(raw) > 64 or not re.fullmatch(rb"[+-]?\d+", raw):
        if at is not None:
            raise _Malformed(f"bad integer argument at byte {at}")
        return _UNK
    return int(raw)


# ---------------------------------------------------------------------------------------------
# Containers


def _scan_stream(data: bytes, label: str, fmt: str, depth: int = 0, legacy_ok: bool = True,
                 offset: int = 0) -> tuple[PickleScan | None, list[str]]:
    """Scan consecutive pickles in ``data`` from ``offset``; (scan or None if not a pickle, notes)."""
    result = _Result()
    machine = _Machine(data, result, depth)
    pos = offset
    notes: list[str] = []
    try:
        pos, top = machine.run(pos)
    except _Capped as exc:
        notes.append(str(exc))
        _search_rest(machine, max(machine.cap_pos, offset), notes)
        return _make_scan(label, fmt, result), notes
    except _Malformed as exc:
        if not result.globals:  # without a global nothing can run: treat as not a pickle at all
            return None, [f"not a pickle: {exc}"]
        notes.append(f"malformed pickle: {exc}")
        return _make_scan(label, fmt, result), notes
    # torch legacy format: magic, protocol, sys_info, the object, storage keys; then raw storage bytes.
    legacy = legacy_ok and top == _TORCH_LEGACY_MAGIC
    if legacy:
        fmt = "torch-legacy"
    limit = 5 if legacy else MAX_PICKLES_PER_STREAM
    count = 1
    while count < limit and pos < len(data):
        if not legacy and not (data[pos] == 0x80 and pos + 1 < len(data) and data[pos + 1] <= 5):
            break
        saved = (list(result.globals), result.opcodes, set(machine._seen))
        try:
            pos, _ = machine.run(pos)
        except _Capped as exc:
            notes.append(str(exc))
            _search_rest(machine, max(machine.cap_pos, pos), notes)
            break
        except _Malformed as exc:
            if legacy:
                notes.append(f"malformed pickle #{count + 1} of the legacy torch file: {exc}")
            else:  # trailing bytes that merely look like a pickle: the loader reads only the first one
                result.globals, result.opcodes, machine._seen = saved
            break
        count += 1
    notes.extend(result.notes)
    if result.joblib and fmt == "pickle":
        fmt = "joblib"
    return _make_scan(label, fmt, result), notes


# Byte search for what the walk could not reach: padding a pickle with millions of cheap opcodes must not
# hide a payload behind the opcode cap. GLOBAL/INST lines, and STACK_GLOBAL fed by two adjacent short
# string pushes (memo opcodes allowed in between), naming a dangerous global are flagged.
_LINE_GLOBAL = re.compile(rb"[ci]([A-Za-z_][A-Za-z0-9_.]{0,127})\n([A-Za-z_][A-Za-z0-9_.]{0,127})\n")
_SHORT_STR = re.compile(rb"\x8c([\x01-\x80])|X([\x01-\x80])\x00\x00\x00|U([\x01-\x80])")
_MEMO_OPS = re.compile(rb"(?:\x94|q[\x00-\xff]|r[\x00-\xff]{4}|0|h[\x00-\xff]|j[\x00-\xff]{4})*")
MAX_SEARCH_HITS = 1_000_000


def _search_rest(machine: _Machine, start: int, notes: list[str]) -> None:
    data = machine.data
    found: list[tuple[str, str]] = []
    for m in _LINE_GLOBAL.finditer(data, start):
        found.append((m.group(1).decode(), m.group(2).decode()))
    prev: tuple[int, str] | None = None  # (end, text) of the previous identifier push
    for hits, m in enumerate(_SHORT_STR.finditer(data, start)):
        if hits > MAX_SEARCH_HITS:
            break
        n = ord(m.group(1) or m.group(2) or m.group(3))
        raw = data[m.end() : m.end() + n]
        text = raw.decode("latin-1")
        if len(raw) != n or not _IDENT_PATH.match(text):
            prev = None
            continue
        if prev is not None and _MEMO_OPS.match(data, prev[0]).end() >= m.start():
            after = _MEMO_OPS.match(data, m.end() + n).end()
            if data[after : after + 1] == b"\x93":
                found.append((prev[1], text))
        prev = (m.end() + n, text)
    flagged = []
    for mod, name in dict.fromkeys(found):
        if classify(mod, name) == "dangerous":
            machine._flag(mod, name, "dangerous")
            flagged.append(f"{mod}.{name}")
    if flagged:
        notes.append(f"a byte search past that point found {', '.join(flagged[:5])}")


def _make_scan(label: str, fmt: str, result: _Result) -> PickleScan:
    if result.joblib and fmt == "pickle":
        fmt = "joblib"
    return PickleScan(path=label, format=fmt, globals=tuple(result.globals), opcodes_seen=result.opcodes)


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"]\x00\x00", "lzma"), (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"), (b"\x78\x9c", "zlib"), (b"\x78\xda", "zlib"),
)


def _decompress(data: bytes, kind: str) -> tuple[bytes, bool]:
    """Decompress at most MAX_PICKLE_BYTES; (bytes, capped)."""
    if kind in ("gzip", "zlib"):
        d = zlib.decompressobj(31 if kind == "gzip" else 15)
        out = d.decompress(data, MAX_PICKLE_BYTES + 1)
    elif kind == "bz2":
        out = bz2.BZ2Decompressor().decompress(data, MAX_PICKLE_BYTES + 1)
    else:
        fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
        out = lzma.LZMADecompressor(format=fmt).decompress(data, MAX_PICKLE_BYTES + 1)
    return out[:MAX_PICKLE_BYTES], len(out) > MAX_PICKLE_BYTES


def _npy_pickle_offset(data: bytes) -> tuple[int | None, str | None]:
    """For .npy bytes: (offset of the pickle if the dtype is object, else None), or an error."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        return None, "not a .npy file (bad magic)"
    major = data[6]
    if major == 1:
        hlen, start = struct.unpack_from("<H", data, 8)[0], 10
    elif major in (2, 3):
        if len(data) < 12:
            return None, "truncated .npy header"
        hlen, start = struct.unpack_from("<I", data, 8)[0], 12
    else:
        return None, f"unsupported .npy format version {major}"
    if hlen > MAX_NPY_HEADER or start + hlen > len(data):
        return None, f".npy header claims {hlen} bytes (file has {len(data) - start})"
    header = data[start : start + hlen].decode("latin-1")
    m = re.search(r"""['"]descr['"]\s*:\s*(.+?)\s*,\s*['"](fortran_order|shape)['"]""", header, re.DOTALL)
    if not m:
        return None, ".npy header has no readable 'descr'"
    # Object dtypes appear as '|O' or as an 'O' field inside a structured descr.
    if re.search(r"""['"][|<>=]?O\d*['"]""", m.group(1)):
        return start + hlen, None
    return None, None


def _zip_precheck(fd: int, size: int) -> str | None:
    """Refuse zips whose central directory would cost too much memory to load."""
    tail = min(size, 65536 + 22)
    os.lseek(fd, size - tail, os.SEEK_SET)
    buf = _read_fd(fd, tail)
    i = buf.rfind(b"PK\x05\x06")
    if i < 0 or i + 22 > len(buf):
        return "zip archive without an end-of-central-directory record"
    entries, cd_size = struct.unpack_from("<HI", buf, i + 10)
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the real figures are in the zip64 record
        j = buf.rfind(b"PK\x06\x06", 0, i)
        if j >= 0 and j + 56 <= len(buf):
            entries, cd_size = struct.unpack_from("<QQ", buf, j + 32)
    if entries > MAX_ZIP_ENTRIES or cd_size > MAX_ZIP_CENTRAL_DIR or cd_size > size:
        return f"zip archive claims {entries:,} entries / {cd_size:,}-byte directory (limit {MAX_ZIP_ENTRIES:,})"
    return None


def _scan_zip(path_or_file: object, rel_path: str, size: int, depth: int) -> tuple[list[PickleScan], list[FactError]]:
    scans: list[PickleScan] = []
    errors: list[FactError] = []
    budget = MAX_PICKLE_BYTES
    with zipfile.ZipFile(path_or_file) as zf:  # type: ignore[arg-type]
        infos = zf.infolist()
        pkl = [i for i in infos if i.filename.endswith(".pkl")]
        npy = [i for i in infos if i.filename.endswith(".npy")]
        fmt = "torch-zip" if pkl else "numpy"
        if len(pkl) + len(npy) > MAX_ZIP_MEMBERS_SCANNED:
            errors.append(FactError("pickle", rel_path, f"only the first {MAX_ZIP_MEMBERS_SCANNED} of "
                                    f"{len(pkl) + len(npy)} pickle/npy members were scanned"))
        for info in (pkl + npy)[:MAX_ZIP_MEMBERS_SCANNED]:
            label = f"{rel_path}:{info.filename}"
            if info.filename.endswith(".npy"):
                want = min(MAX_NPY_HEADER + 16, budget)  # header first; the pickle only for object dtypes
            else:
                want = budget
            if want <= 0:
                errors.append(FactError("pickle", label, f"not scanned: {MAX_PICKLE_BYTES >> 20} MiB read limit"))
                continue
            try:
                with zf.open(info) as member:
                    data = member.read(want + 1)
                    if info.filename.endswith(".npy"):
                        off, err = _npy_pickle_offset(data)
                        if err:
                            errors.append(FactError("pickle", label, err))
                            continue
                        if off is None:
                            continue
                        data += member.read(max(0, budget - len(data)) + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                    zlib.error, lzma.LZMAError, ValueError) as exc:
                errors.append(FactError("pickle", label, f"could not read archive member: {_one_line(exc)}"))
                continue
            capped = len(data) > budget
            data = data[:budget]
            budget -= len(data)
            if info.filename.endswith(".npy"):
                off, _ = _npy_pickle_offset(data)
                scan, notes = _scan_stream(data, label, "numpy", depth, legacy_ok=False, offset=off or 0)
            else:
                scan, notes = _scan_stream(data, label, fmt, depth, legacy_ok=False)
            if capped:
                notes.append(f"member larger than the {MAX_PICKLE_BYTES >> 20} MiB scan limit")
            if scan is not None:
                scans.append(scan)
            errors.extend(FactError("pickle", label, n) for n in notes)
    return scans, errors


def _scan_bytes(data: bytes, rel_path: str, depth: int) -> tuple[list[PickleScan], list[FactError]]:
    """Scan an in-memory blob (nested torch blobs): zip or pickle stream."""
    import io

    if data[:4] == b"PK\x03\x04":
        try:
            return _scan_zip(io.BytesIO(data), rel_path, len(data), depth)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            return [], [FactError("pickle", rel_path, f"bad zip archive: {_one_line(exc)}")]
    scan, notes = _scan_stream(data, rel_path, "pickle", depth)
    return ([scan] if scan else []), [FactError("pickle", rel_path, n) for n in notes]


def _read_fd(fd: int, n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        b = os.read(fd, min(n, 1 << 24))
        if not b:
            break
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


_NOT_PICKLE_MAGIC = (b"GGUF", b"lmgg", b"ggjt", b"ggla", b"ggmf", b"ggml", b"\x89HDF")


def scan_file(abs_path: str, rel_path: str, size: int) -> tuple[tuple[PickleScan, ...], tuple[FactError, ...]]:
    """Opcode scan of one file that may hold pickles. Never unpickles, never raises.

    Returns the scans (one per pickle stream: the file, or each ``*.pkl``/object ``*.npy`` member of a
    zip) and FactErrors of kind ``"pickle"`` for anything that stopped a full scan. A ``.bin`` that is
    none of these formats (GGML, raw tensors) gives ``((), ())``.
    """
    try:
        return _scan_file(abs_path, rel_path)
    except MemoryError:
        return (), (FactError("pickle", rel_path, "could not be scanned: out of memory"),)
    except Exception as exc:  # noqa: BLE001 - fail closed with one line, never a traceback
        return (), (FactError("pickle", rel_path, f"could not be scanned: {_one_line(exc)}"),)


def _scan_file(abs_path: str, rel_path: str) -> tuple[tuple[PickleScan, ...], tuple[FactError, ...]]:
    suffix = rel_path[rel_path.rfind(".") :].lower() if "." in rel_path.rsplit("/", 1)[-1] else ""
    try:
        fd = os.open(abs_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return (), (FactError("pickle", rel_path, f"could not be opened: {exc.strerror or _one_line(exc)}"),)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return (), (FactError("pickle", rel_path, "not a regular file; not scanned"),)
        size = st.st_size
        head = _read_fd(fd, 8)
        if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
            err = _zip_precheck(fd, size)
            if err:
                return (), (FactError("pickle", rel_path, err),)
            os.lseek(fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as fh:
                try:
                    scans, errors = _scan_zip(fh, rel_path, size, 0)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
                    return (), (FactError("pickle", rel_path, f"bad zip archive: {_one_line(exc)}"),)
            return tuple(scans), tuple(errors)
        if any(head.startswith(m) for m in _NOT_PICKLE_MAGIC):
            return (), ()
        os.lseek(fd, 0, os.SEEK_SET)
        if head[:6] == b"\x93NUMPY":
            data = _read_fd(fd, MAX_NPY_HEADER + 16)
            off, err = _npy_pickle_offset(data)
            if err:
                return (), (FactError("pickle", rel_path, err),)
            if off is None:
                return (), ()  # plain numeric array: no pickle inside
            data += _read_fd(fd, MAX_PICKLE_BYTES + 1 - len(data))
            capped = len(data) > MAX_PICKLE_BYTES
            scan, notes = _scan_stream(data[:MAX_PICKLE_BYTES], rel_path, "numpy", legacy_ok=False, offset=off)
            if capped:
                notes.append(f"only the first {MAX_PICKLE_BYTES >> 20} MiB were scanned")
            return ((scan,) if scan else ()), tuple(FactError("pickle", rel_path, n) for n in notes)
        data = _read_fd(fd, MAX_PICKLE_BYTES + 1)
    finally:
        os.close(fd)
    fmt = "joblib" if suffix == ".joblib" else "pickle"
    capped = len(data) > MAX_PICKLE_BYTES
    for magic, kind in _COMPRESSED:
        if data.startswith(magic):
            try:
                data, capped = _decompress(data, kind)
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                return (), (FactError("pickle", rel_path, f"compressed ({kind}) but unreadable: {_one_line(exc)}"),)
            fmt = "joblib"
            break
    data = data[:MAX_PICKLE_BYTES]
    scan, notes = _scan_stream(data, rel_path, fmt)
    if scan is None:
        if suffix == ".bin" or not data:
            return (), ()  # raw tensors, GGML, empty: not ours to judge
        return (), (FactError("pickle", rel_path, f"could not be scanned: {notes[0]}"),)
    if capped:
        notes.append(f"only the first {MAX_PICKLE_BYTES >> 20} MiB were scanned")
    return (scan,), tuple(FactError("pickle", rel_path, n) for n in notes)
