"""Pickle security scan: read the opcodes of pickles (raw, torch zip/legacy/tar, numpy, joblib), never unpickle.

A small symbolic pickle machine walks the opcode stream with its own bounded loop. It keeps just enough
of the stack and memo to name every global the unpickler would import (GLOBAL, INST, STACK_GLOBAL with
operands from string pushes or memo gets) and to follow joblib's raw array data that sits between
opcodes. Each global gets a verdict, with allowlist semantics as ``torch.load(weights_only=True)`` has:

* ``safe``: on the reviewed allowlist of reconstruction globals (tensors, storages, dtypes, numpy arrays,
  joblib's array wrapper, plain containers);
* ``unknown``: a reviewed training-state class (``transformers.training_args.TrainingArguments``...):
  a warning, the file is not weights;
* ``dangerous``: on the denylist (runs code, spawns processes, touches files or the network, unpickles
  again, rewrites the unpickler's name resolution): the denylist only names the danger;
* ``unlisted``: anything else. An error like ``dangerous``: the unpickler imports and calls it.

Containers are recognised by content, never by name (modelcheck.facts.scan decides which files to read):
zip (torch, npz, TorchScript), tar (torch legacy tar, .nemo), gzip/bz2/xz/lzma/zlib (joblib), ``.npy``
and raw pickle streams. Every limit is fixed here or in the per-run :class:`Budget`; anything odd becomes
a ``FactError(kind="pickle")`` and never an exception.
"""

from __future__ import annotations

import io
import mmap
import os
import re
import stat
import struct
import zlib
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

from modelcheck.model import FactError, PickleGlobal, PickleScan
from modelcheck.record import field, record

# Suffixes whose files claim to be pickles: a stream there that does not parse is an error, not "no pickle".
CLAIM_SUFFIXES = (".pkl", ".pickle", ".pk", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".dill", ".sav")
PICKLE_SUFFIXES = (".bin", *CLAIM_SUFFIXES, ".npz", ".dat", ".tar", ".nemo", ".zip", ".gz")  # for callers

MAX_BLOB_BYTES = 32 * 1024 * 1024  # one decompressed stream / archive member held in memory
MAX_STACK = 200_000  # pickle batches APPENDS/SETITEMS by 1000: real streams stay shallow
MAX_MEMO = 200_000
MAX_LINE = 1 << 16  # text-protocol argument lines
MAX_KEEP_BYTES = 16 * 1024 * 1024  # bytes literals kept for nested scans (torch _load_from_bytes)
MAX_PICKLES_PER_STREAM = 16
MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_CENTRAL_DIR = 32 * 1024 * 1024
MAX_MEMBERS_SNIFFED = 4096  # archive members looked at (a torch zip has one per tensor)
MAX_NESTED_DEPTH = 3
MAX_NPY_HEADER = 1 << 16
MAX_SEARCH_BYTES = 8 * 1024 * 1024  # byte search past a cap
HEAD_BYTES = 4096  # content sniffing reads this much first
MAX_INT_DIGITS = 4300  # CPython's int() string limit (sys.int_info.default_max_str_digits)

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_OPCODES = 1_200_000  # per run (Budget): ~1 s of the pure-Python walk on a slow core, all files together


@record(frozen=False)
class Budget:
    """One budget per run (modelcheck.facts.scan makes it): opcodes walked and bytes decompressed or read
    into memory, over every file. When it runs out, what is left is reported as not scanned."""

    opcodes: int = MAX_OPCODES
    bytes: int = 96 * 1024 * 1024  # decompressed / archive-member bytes, all files together
    opcodes_used: int = 0
    bytes_used: int = 0

    @property
    def opcodes_left(self) -> int:
        return max(0, self.opcodes - self.opcodes_used)

    @property
    def bytes_left(self) -> int:
        return max(0, self.bytes - self.bytes_used)

    @property
    def exhausted(self) -> bool:
        return self.opcodes_left <= 0 or self.bytes_left <= 0

    def describe(self) -> str:
        return (f"the per-run scan budget ({self.opcodes:,} pickle opcodes, {self.bytes >> 20} MiB decompressed) "
                f"is used up")


# ---------------------------------------------------------------------------------------------
# Verdicts

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
    "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2", "strided", "sparse_coo", "sparse_csr", "sparse_csc",
    "sparse_bsr", "sparse_bsc", "_mkldnn", "contiguous_format", "channels_last", "channels_last_3d",
    "preserve_format", "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams",
}
# torch/_weights_only_unpickler.py@2.5.1 _tensor_rebuild_functions()
_TORCH_REBUILD = {
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_nested_tensor", "_rebuild_qtensor",
    "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy",
}
_NUMPY_SCALARS = {
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
    "float64", "longdouble", "complex64", "complex128", "clongdouble", "intc", "uintc", "longlong",
    "ulonglong", "half", "single", "double", "str_", "bytes_", "void", "datetime64", "timedelta64",
}

# The allowlist. torch/_weights_only_unpickler.py@2.5.1 _get_allowed_globals(): OrderedDict, Counter,
# nn.Parameter, serialization._get_layout, Size, Tensor, device, _codecs.encode, builtins.bytearray, dtypes,
# tensor and storage classes, qschemes, _utils rebuild functions, _tensor._rebuild_from_type_v2; plus the
# reconstruction globals numpy (ndarray.__reduce__: multiarray._reconstruct, ndarray, dtype, scalar) and
# joblib (numpy_pickle.NumpyArrayWrapper) write, and a few inert value classes.
_SAFE: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict", "Counter", "defaultdict", "deque"}),
    "builtins": frozenset({"set", "frozenset", "bytearray", "bytes", "slice", "complex", "range", "str", "int",
                           "float", "bool", "list", "dict", "tuple", "object", "Ellipsis", "NotImplemented"}),
    "copyreg": frozenset({"_reconstructor"}),
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
}
# Reviewed training-state classes (HF Trainer's training_args.bin): not weights, a warning (SEC002).
_TRAINING_STATE_MODULES = frozenset({
    "transformers.training_args", "transformers.training_args_seq2seq", "transformers.trainer_utils",
    "transformers.trainer_pt_utils", "transformers.debug_utils", "transformers.utils.generic",
    "accelerate.state", "accelerate.utils.dataclasses",
})

# The denylist names the danger only; everything off the allowlist is an error anyway.
# Whole module trees that run code, spawn processes, touch files/network, unpickle again or change how
# the unpickler resolves names.
_DANGEROUS_ROOTS = frozenset({
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "socket", "_socket", "shutil", "runpy",
    "webbrowser", "importlib", "imp", "pty", "ctypes", "_ctypes", "marshal", "pickle", "_pickle", "dill",
    "cloudpickle", "shelve", "code", "codeop", "popen2", "platform", "multiprocessing", "asyncio", "signal",
    "types", "operator", "_operator", "functools", "_functools", "io", "_io", "pip", "setuptools",
    "distutils", "ensurepip", "venv", "pydoc", "site", "pkgutil", "zipimport", "bdb", "pdb", "trace",
    "timeit", "cProfile", "profile", "doctest", "idlelib", "xmlrpc", "http", "urllib", "requests", "ftplib",
    "smtplib", "telnetlib", "paramiko", "aiohttp", "httpx", "_thread", "threading", "_winapi", "msvcrt",
    "winreg", "tempfile", "glob", "fileinput", "linecache", "tkinter", "turtle", "antigravity", "this",
    "jsonpickle", "yaml", "inspect", "gc", "sysconfig", "posixpath", "ntpath", "mmap",
    "select", "selectors", "ssl", "fcntl", "resource", "zipfile", "tarfile", "shlex",
    "cmd", "readline", "rlcompleter", "lib2to3", "uu", "compileall", "py_compile", "_compat_pickle",
    "copyreg", "copy_reg", "_osx_support", "_aix_support", "imaplib", "poplib", "nntplib", "logging",
    "_xxsubinterpreters", "_interpreters", "interpreters", "concurrent", "uuid", "sympy", "numexpr",
    "pandas", "cffi", "test", "unittest", "builtins", "__builtin__", "__main__", "_imp",
    "subprocess32", "sh", "plumbum", "pexpect", "fabric", "invoke", "docker", "keras", "tensorflow", "jax",
    "_bootlocale", "encodings", "codecs", "zipapp", "smtpd", "socketserver", "wsgiref", "sqlite3", "dbm",
    "bz2", "lzma", "gzip", "csv", "configparser", "netrc", "mailcap", "pyexpat",
})
_DANGEROUS_MODULES = frozenset({
    "torch.hub", "torch.jit", "torch._inductor", "torch.utils", "torch.fx", "torch._dynamo",
    "torch.package", "torch.ops", "torch.distributed", "torch._ops", "torch.compiler", "torch.testing",
    "torch._C", "torch.cuda._utils", "torch.backends", "torch.multiprocessing", "torch.onnx", "torch.export",
    "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "numpy.lib.npyio", "numpy.lib.format",
    "numpy.lib._npyio_impl", "numpy.lib._format_impl", "numpy.lib.utils", "numpy.lib._utils_impl",
    "joblib", "transformers.dynamic_module_utils", "transformers.utils.hub", "huggingface_hub",
    "keras.src.saving", "tensorflow.python.ops.script_ops", "sklearn.utils._testing",
})
_DANGEROUS_NAMES = frozenset({
    ("torch", "load"), ("torch", "save"), ("torch", "compile"), ("torch.serialization", "load"),
    ("torch.serialization", "save"), ("torch", "from_file"), ("numpy", "load"), ("numpy", "loadtxt"),
    ("numpy", "fromfile"), ("numpy", "save"), ("numpy", "savez"), ("numpy", "savetxt"), ("numpy", "genfromtxt"),
    ("numpy", "memmap"), ("numpy", "fromregex"), ("numpy", "fromstring"), ("numpy", "frompyfunc"),
    ("numpy", "vectorize"), ("numpy", "lookfor"), ("numpy", "source"), ("numpy", "info"),
    ("torch.storage", "_load_from_bytes"),  # only when its bytes cannot be scanned (see _reduce)
})
# Attribute names that are code execution wherever they live (also inside dotted protocol-4 names).
_DANGEROUS_ATTRS = frozenset({
    "system", "popen", "popen2", "popen3", "popen4", "eval", "exec", "execfile", "compile", "__import__",
    "getattr", "setattr", "delattr", "spawn", "spawnl", "spawnlp", "spawnv", "spawnve", "spawnvp", "execl",
    "execle", "execlp", "execv", "execve", "execvp", "execvpe", "check_output", "check_call", "Popen",
    "run_path", "run_module", "load_source", "import_module", "breakpoint", "globals", "locals", "vars",
    "open", "input", "startfile", "loads", "load", "load_module", "exec_module", "unsafe_load", "full_load",
    "sympify", "dictConfig", "fileConfig", "listen", "IMAP4_stream", "_get_command_stdout", "_read_output",
    "_read_cmd_output", "run_string", "run_func", "call", "getoutput", "getstatusoutput", "pipepager",
    "tempfilepager", "main", "add_extension", "get_class_from_dynamic_module", "get_class_in_module",
})
_SAFE_DUNDERS = frozenset({"__newobj__", "__newobj_ex__", "__randomstate_ctor", "__bit_generator_ctor",
                           "__generator_ctor"})


def is_identifier_path(text: str) -> bool:
    """Whether ``text`` is a dotted path of identifiers: anything else cannot be imported (find_class fails)."""
    return bool(text) and all(p.isidentifier() for p in text.split("."))


def py3_name(module: str, name: str) -> tuple[str, str]:
    """The name the unpickler imports for protocols < 3 (``fix_imports``), as Lib/_compat_pickle.py maps it."""
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def _denied(module: str, name: str) -> bool:
    parts = name.split(".")
    if any(p in _DANGEROUS_ATTRS for p in parts):
        return True
    if any(p.startswith("__") and p.endswith("__") and p not in _SAFE_DUNDERS for p in parts):
        return True
    root = module.split(".", 1)[0]
    if root in _DANGEROUS_ROOTS or (module, name) in _DANGEROUS_NAMES:
        return True
    return any(module == m or module.startswith(m + ".") for m in _DANGEROUS_MODULES)


def classify(module: str, name: str) -> str:
    """'safe', 'unknown', 'dangerous' or 'unlisted' for the global ``module.name`` a pickle imports."""
    mod3, name3 = py3_name(module, name)  # applied whatever the protocol: the stricter reading wins below
    safe = _SAFE.get(mod3)
    if safe is not None and name3 in safe:
        return "safe"
    if mod3 in ("numpy.dtypes",) and name3.endswith("DType") and name3.isidentifier():
        return "safe"
    if _denied(module, name) or _denied(mod3, name3):
        return "dangerous"
    if mod3 in _TRAINING_STATE_MODULES and name3.isidentifier() and not name3.startswith("_"):
        return "unknown"
    return "unlisted"


ERROR_VERDICTS = ("dangerous", "unlisted")


# ---------------------------------------------------------------------------------------------
# The symbolic machine


class _Malformed(Exception):
    """The stream is not a well-formed pickle at this point."""


class _Truncated(_Malformed):
    """The stream runs past the end of the bytes at hand (a head read may need the whole file)."""


class _Capped(Exception):
    """A fixed limit was reached; what was seen so far stands."""


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "?"


_UNK = _Unknown()


class _Mark:
    __slots__ = ()


@record(frozen=False, eq=False)
class _Global:
    module: str
    name: str
    bad: bool = False  # verdict dangerous/unlisted: calling it runs code


@record(frozen=False, eq=False)
class _Obj:
    """Result of REDUCE/NEWOBJ/INST/OBJ: a call of ``func`` with ``args``; ``state`` after BUILD."""

    func: object
    args: object
    state: object = None


@record(frozen=False)
class _Result:
    globals: list[PickleGlobal] = field(default_factory=list)
    opcodes: int = 0
    notes: list[str] = field(default_factory=list)  # why the scan stopped early (one line each)
    joblib: bool = False
    values: list[object] = field(default_factory=list)  # top-level values of complete pickles
    imported_denied: bool = False  # a denylisted global was imported (importing alone can run code)
    called_bad: bool = False  # a dangerous/unlisted global was called (REDUCE, NEWOBJ, INST, OBJ)
    limit: int = -1  # opcodes this stream may walk (set from the budget by the first machine)
    charged: int = 0  # opcodes already counted against the budget


class _Machine:
    """Decodes pickles in ``data`` from ``pos``. One instance per file; memo/stack reset per pickle."""

    def __init__(self, data: bytes, result: _Result, depth: int = 0, budget: Budget | None = None) -> None:
        self.data = data
        self.result = result
        self.depth = depth
        self.budget = budget if budget is not None else Budget()
        if result.limit < 0:
            result.limit = self.budget.opcodes_left
        self._seen: set[tuple[str, str]] = set()
        self.cap_pos = 0  # where a limit stopped the walk (the byte search goes on from there)

    def charge(self) -> None:
        """Count the opcodes walked so far against the per-run budget (before and after nested scans)."""
        res = self.result
        self.budget.opcodes_used += res.opcodes - res.charged
        res.charged = res.opcodes
        res.limit = res.opcodes + self.budget.opcodes_left

    # -- helpers ---------------------------------------------------------------------------------
    def _need(self, pos: int, n: int) -> None:
        if n < 0 or pos + n > len(self.data):
            raise _Truncated(f"truncated: an argument at byte {pos} needs {n} bytes")

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self.data.find(b"\n", pos, pos + MAX_LINE)
        if end < 0:
            if pos + MAX_LINE >= len(self.data):
                raise _Truncated(f"unterminated text argument at byte {pos}")
            raise _Malformed(f"unterminated text argument at byte {pos}")
        return self.data[pos:end], end + 1

    def _add_global(self, module: str, name: str) -> _Global:
        if not is_identifier_path(module) or not is_identifier_path(name):
            # find_class cannot import it (the load fails there): no code runs, nothing to report.
            return _Global(module, name)
        verdict = classify(module, name)
        key = (module, name)
        if key not in self._seen:
            self._seen.add(key)
            self.result.globals.append(PickleGlobal(module, name, verdict))
        if verdict == "dangerous":
            self.result.imported_denied = True
        return _Global(module, name, verdict in ERROR_VERDICTS)

    def _flag(self, module: str, name: str, verdict: str) -> None:
        key = (module, name)
        if key not in self._seen:
            self._seen.add(key)
            self.result.globals.append(PickleGlobal(module, name, verdict))
        if verdict == "dangerous":
            self.result.imported_denied = True

    def _call(self, func: object) -> None:
        if isinstance(func, _Global) and func.bad:
            self.result.called_bad = True

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
                raise _Truncated(f"ends without STOP at byte {pos}")
            res.opcodes += 1
            if res.opcodes > res.limit:
                self.cap_pos = pos
                raise _Capped(f"stopped after {res.opcodes - 1:,} opcodes: {self.budget.describe()}")
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
                self._call(func)
                stack.append(self._reduce(func, args))
            elif op == 0x81:  # NEWOBJ
                args = pop()
                cls = pop()
                self._call(cls)
                stack.append(_Obj(cls, args))
            elif op == 0x92:  # NEWOBJ_EX
                pop()
                args = pop()
                cls = pop()
                self._call(cls)
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
                    stack.append(_Global("?", "?", True))
            elif op == 0x63:  # GLOBAL
                mod, pos = self._line(pos)
                nm, pos = self._line(pos)
                stack.append(self._add_global(mod.decode("utf-8", "replace"), nm.decode("utf-8", "replace")))
            elif op == 0x69:  # INST
                mod, pos = self._line(pos)
                nm, pos = self._line(pos)
                cls = self._add_global(mod.decode("utf-8", "replace"), nm.decode("utf-8", "replace"))
                items = pop_mark()
                self._call(cls)
                stack.append(_Obj(cls, tuple(items)))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Malformed(f"OBJ without class at byte {at}")
                self._call(items[0])
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
                stack.append(int.from_bytes(data[pos : pos + ln], "little", signed=True) if ln <= 512 else _UNK)
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
                # The extension registry maps the code to any (module, name), os.system included, once
                # something called copyreg.add_extension: the global it resolves to is not in the file.
                key = ("copyreg", f"extension code {code}")
                if key not in self._seen:  # recorded, but not an import: an unregistered code fails the load
                    self._seen.add(key)
                    self.result.globals.append(PickleGlobal(*key, "dangerous"))
                stack.append(_Global("copyreg", f"extension code {code}", True))
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
                self.charge()
                nested = _scan_nested(blob, self.depth + 1, self.budget)
                self.charge()
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
            inner = _Machine(self.data, self.result, self.depth + 1, self.budget)
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


# numpy's itemsize per type character (numpy/_core/src/multiarray/arraytypes: sizeof of the C type on
# LP64); 'S', 'U', 'V', 'a' are flexible: their size is in the string or in the pickled state.
_NP_ITEMSIZE = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
                "p": 8, "P": 8, "n": 8, "N": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32,
                "M": 8, "m": 8, "O": 8, "c": 1}
_NP_NAMES = {"bool": "?", "bool_": "?", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
             "uint32": "I", "int64": "q", "uint64": "Q", "float16": "e", "float32": "f", "float64": "d",
             "complex64": "F", "complex128": "D", "longdouble": "g", "clongdouble": "G", "half": "e",
             "single": "f", "double": "d", "float": "d", "int": "l", "intp": "p", "uintp": "P",
             "object": "O", "object_": "O", "datetime64": "M", "timedelta64": "m", "bytes": "S", "str": "U",
             "void": "V", "byte": "b", "ubyte": "B", "short": "h", "ushort": "H", "intc": "i", "uintc": "I",
             "long": "l", "ulong": "L", "longlong": "q", "ulonglong": "Q", "csingle": "F", "cdouble": "D"}
# kind size for the "<kind><count>" spelling (i4, f8, U10 counts characters of 4 bytes)
_NP_KIND_UNIT = {"b": 1, "i": 1, "u": 1, "f": 1, "c": 1, "S": 1, "a": 1, "V": 1, "U": 4, "M": 1, "m": 1, "O": 1}


def _dtype_info(dtype: object) -> tuple[bool, int] | None:
    """(has_object, itemsize) of a pickled ``numpy.dtype(spec, align, copy)`` call + BUILD state, derived
    as numpy does it (the spec decides; only flexible types take ``elsize`` from the state), or None."""
    if not isinstance(dtype, _Obj) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None
    spec = dtype.args[0]
    if not isinstance(spec, str):
        return None
    state = dtype.state
    elsize = state[5] if isinstance(state, tuple) and len(state) >= 6 and isinstance(state[5], int) else None
    fields = state[4] if isinstance(state, tuple) and len(state) >= 5 else None
    m = re.fullmatch(r"[<>|=]?([A-Za-z?])(\d*)(?:\[\w+]*\])?", spec.strip())
    if m is None:
        code = _NP_NAMES.get(spec.strip())
        if code is None:
            return None
        kind, digits = code, ""
    else:
        kind, digits = m.group(1), m.group(2)
    if kind == "O":
        return True, 8
    if fields is not None:  # structured: any object field means joblib pickles the array
        if not isinstance(fields, dict):
            return None
        for value in fields.values():
            sub = value[0] if isinstance(value, tuple) and value else None
            info = _dtype_info(sub)
            if info is None or info[0]:
                return info if info is None else (True, 8)
    if kind in ("S", "U", "V", "a"):  # flexible: numpy's __setstate__ takes elsize from the state
        if elsize is not None and elsize >= 0:
            return False, elsize
        if digits:
            return False, int(digits) * _NP_KIND_UNIT[kind]
        return None
    if digits and kind in _NP_KIND_UNIT:
        size = int(digits) * _NP_KIND_UNIT[kind]
        return (False, size) if size > 0 else None
    if kind in _NP_ITEMSIZE and not digits:
        return False, _NP_ITEMSIZE[kind]
    return None


def _string_literal(raw: bytes) -> object:
    raw = raw.strip()
    if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"'):
        try:
            return raw[1:-1].decode("unicode_escape")
        except UnicodeDecodeError:
            return _UNK
    raise _Malformed("STRING argument is not quoted")


def _text_int(raw: bytes, at: int | None = None) -> object:
    """INT/LONG/GET/PUT text arguments as CPython reads them: ``int(text, 0)`` (0x.., underscores, a
    trailing L), ``00``/``01`` as booleans."""
    raw = raw.strip()
    if raw in (b"00", b"01"):
        return raw == b"01"
    if raw.endswith(b"L"):
        raw = raw[:-1]
    if len(raw) > MAX_INT_DIGITS:
        if at is not None:
            raise _Malformed(f"integer argument longer than {MAX_INT_DIGITS} digits at byte {at}")
        return _UNK
    text = raw.decode("ascii", "replace")
    for base in (0, 10):
        try:
            return int(text, base)
        except ValueError:
            continue
    if at is not None:
        raise _Malformed(f"bad integer argument at byte {at}")
    raise _Malformed("bad integer argument")


# ---------------------------------------------------------------------------------------------
# Containers: recognised by content, never by name


class _NeedMore(Exception):
    """A head read ran out before the stream decided; read the whole member and try again."""


@record(frozen=False)
class FileScan:
    """What one file held: pickle scans, read problems, TorchScript archives (file or member names)."""

    scans: list[PickleScan] = field(default_factory=list)
    errors: list[FactError] = field(default_factory=list)
    torchscript: list[str] = field(default_factory=list)
    magic: bytes = b""  # the file's first 8 bytes, as this scan read them (HDF5 files are told by them)


@record(frozen=False)
class _Ctx:
    file: str  # relative path of the file on disk: every scan and error names it, never a member
    budget: Budget
    out: FileScan

    def error(self, member: str | None, message: str) -> None:
        self.out.errors.append(FactError("pickle", self.file, f"member {member}: {message}" if member else message))

    def take(self, n: int) -> int:
        """Bytes that may still be read into memory (decompressed, archive members), at most ``n``."""
        grant = max(0, min(n, self.budget.bytes_left))
        self.budget.bytes_used += grant
        return grant


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
    end = min(len(data), start + MAX_SEARCH_BYTES)
    for m in _LINE_GLOBAL.finditer(data, start, end):
        found.append((m.group(1).decode(), m.group(2).decode()))
    prev: tuple[int, str] | None = None  # (end, text) of the previous identifier push
    for hits, m in enumerate(_SHORT_STR.finditer(data, start, end)):
        if hits > MAX_SEARCH_HITS:
            break
        n = ord(m.group(1) or m.group(2) or m.group(3))
        raw = data[m.end() : m.end() + n]
        text = raw.decode("latin-1")
        if len(raw) != n or not is_identifier_path(text):
            prev = None
            continue
        if prev is not None and _MEMO_OPS.match(data, prev[0]).end() >= m.start():
            after = _MEMO_OPS.match(data, m.end() + n).end()
            if data[after : after + 1] == b"\x93":
                found.append((prev[1], text))
        prev = (m.end() + n, text)
    flagged = []
    for mod, name in dict.fromkeys(found):
        if classify(mod, name) in ERROR_VERDICTS:
            machine._flag(mod, name, "dangerous")
            flagged.append(f"{mod}.{name}")
    if flagged:
        notes.append(f"a byte search past that point found {', '.join(flagged[:5])}")


def _kind(head: bytes) -> str:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:2] == b"ZF" and head[21:22] == b"\x78":  # joblib < 0.10 zfile: 'ZF' + 19-char hex length + zlib
        return "zfile"
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            return kind
    return "pickle"


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"]\x00\x00", "lzma"), (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"), (b"\x78\x9c", "zlib"), (b"\x78\xda", "zlib"), (b"\x04\x22\x4d\x18", "lz4"),
)


def _decompress(ctx: _Ctx, data, kind: str, start: int = 0) -> tuple[bytearray, bool]:
    """Stream-decompress ``data[start:]`` within the per-run byte budget and MAX_BLOB_BYTES, feeding 1 MiB
    of input at a time (a big compressed file is never copied whole); (bytes, capped)."""
    want = min(MAX_BLOB_BYTES, ctx.budget.bytes_left)
    if kind in ("gzip", "zlib"):
        d = zlib.decompressobj(31 if kind == "gzip" else 15)
    elif kind == "bz2":
        import bz2

        d = bz2.BZ2Decompressor()
    elif kind in ("xz", "lzma"):
        import lzma

        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE, memlimit=256 << 20)
    else:
        raise ValueError(f"{kind} compression is not supported by this scanner")
    out = bytearray()
    pos, step = start, 1 << 20
    while len(out) <= want and not d.eof:
        room = want + 1 - len(out)
        if kind in ("gzip", "zlib"):
            feed = d.unconsumed_tail
            if not feed:
                if pos >= len(data):
                    break
                feed, pos = data[pos : pos + step], pos + step
            out += d.decompress(feed, room)
        else:
            if d.needs_input:
                if pos >= len(data):
                    break
                feed, pos = data[pos : pos + step], pos + step
            else:
                feed = b""
            out += d.decompress(feed, room)
    capped = len(out) > want
    del out[want:]
    ctx.take(len(out))
    return out, capped


def _sniff(ctx: _Ctx, data, member: str | None, depth: int, claims: bool, fileobj=None) -> None:
    """Scan ``data`` (bytes or mmap: the whole content) by what it is, not by its name."""
    kind = _kind(bytes(data[:512]))
    if kind == "zip":
        import zipfile  # containers are rare: their modules load when one is met

        try:
            _scan_zip(ctx, fileobj if fileobj is not None else io.BytesIO(data), len(data), member, depth)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, KeyError) as exc:
            ctx.error(member, f"bad zip archive: {_one_line(exc)}")
        return
    if kind == "tar":
        import tarfile

        try:
            _scan_tar(ctx, fileobj if fileobj is not None else io.BytesIO(data), member, depth)
        except (tarfile.TarError, ValueError, EOFError, OSError) as exc:
            ctx.error(member, f"bad tar archive: {_one_line(exc)}")
        return
    if kind == "npy":
        _scan_npy(ctx, data, member, depth)
        return
    if kind != "pickle":
        if depth >= MAX_NESTED_DEPTH:
            ctx.error(member, "compressed data nested too deep; not scanned")
            return
        if ctx.budget.bytes_left <= 0:
            ctx.error(member, f"not scanned: {ctx.budget.describe()}")
            return
        import lzma

        try:
            inner, capped = _decompress(ctx, data, "zlib" if kind == "zfile" else kind, 21 if kind == "zfile" else 0)
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, MemoryError) as exc:
            if claims:
                ctx.error(member, f"compressed ({kind}) but unreadable: {_one_line(exc)}")
                return
            inner = None  # e.g. raw tensor bytes that happen to start like zlib: try them as a pickle
        if inner is not None:
            if capped:
                ctx.error(member, f"only the first {len(inner) >> 20} MiB of the {kind} data were scanned "
                          f"({MAX_BLOB_BYTES >> 20} MiB per stream / per-run budget)")
            before = len(ctx.out.scans)
            _sniff(ctx, inner, member, depth + 1, claims=claims or kind != "zlib" or len(inner) > 0)
            for i in range(before, len(ctx.out.scans)):
                if ctx.out.scans[i].format == "pickle":
                    ctx.out.scans[i] = _with_format(ctx.out.scans[i], "joblib")
            return
    _scan_stream(ctx, data, member, "pickle", depth, claims)


def _with_format(scan: PickleScan, fmt: str) -> PickleScan:
    return PickleScan(scan.path, fmt, scan.globals, scan.opcodes_seen, scan.member)


def _sniff_member(ctx: _Ctx, head: bytes, read_all, member: str, depth: int, claims: bool, fmt: str) -> None:
    """Sniff an archive member from its first bytes; read all of it (within the budget) only when needed."""
    if _kind(head) == "pickle" and len(head) >= 1:
        try:
            _scan_stream(ctx, head, member, fmt, depth, claims, complete=False)
            return
        except _NeedMore:
            pass
    data = read_all()
    if data is None:
        return
    if _kind(head) == "pickle":
        _scan_stream(ctx, data, member, fmt, depth, claims)
    else:
        _sniff(ctx, data, member, depth + 1, claims)


def _scan_stream(ctx: _Ctx, data, member: str | None, fmt: str, depth: int, claims: bool, offset: int = 0,
                 complete: bool = True) -> None:
    """Scan consecutive pickles in ``data`` from ``offset``; record a PickleScan if it is a pickle.

    A stream that does not parse is "not a pickle" unless the file claims to be one, a denylisted global
    was imported or a non-allowlisted one called before the break (the loader runs those first).

    ``complete=False``: ``data`` is only the first bytes. The verdict is kept only where the whole content
    could not change it (the parse broke, or the pickle limit was reached, inside these bytes); anywhere the
    rest would matter (the data ran out, a cap's byte search, an exhausted budget) it raises ``_NeedMore``
    before recording anything.
    """
    if ctx.budget.opcodes_left <= 0 and not complete:
        raise _NeedMore
    if ctx.budget.opcodes_left <= 0:
        if claims:  # no walk left, but the bounded byte search still names a payload it can see
            result = _Result()
            notes = [f"not scanned: {ctx.budget.describe()}"]
            _search_rest(_Machine(data, result, depth, ctx.budget), offset, notes)
            if result.globals:
                _record(ctx, member, fmt, result, notes)
            else:
                ctx.error(member, notes[0])
        return
    result = _Result()
    machine = _Machine(data, result, depth, ctx.budget)
    notes: list[str] = []

    def run(at: int) -> tuple[int, object]:
        # the one place that knows a prefix cannot decide: it ran out, or a cap's byte search needs the rest
        try:
            return machine.run(at)
        except (_Capped, _Truncated):
            if not complete:
                raise _NeedMore from None
            raise

    try:
        try:
            pos, top = run(offset)
        except _Capped as exc:
            notes.append(str(exc))
            _search_rest(machine, max(machine.cap_pos, offset), notes)
            _record(ctx, member, fmt, result, notes)
            return
        except _Malformed as exc:
            if claims and not result.globals:
                ctx.error(member, f"could not be scanned: not a pickle: {exc}")
                return
            if claims or result.called_bad or result.imported_denied:
                notes.append(f"malformed pickle: {exc}")
                _record(ctx, member, fmt, result, notes)
            return
        # torch legacy format: magic, protocol, sys_info, the object, storage keys; then raw storage bytes.
        legacy = type(top) is int and top == _TORCH_LEGACY_MAGIC
        if legacy:
            fmt = "torch-legacy"
        limit = 5 if legacy else MAX_PICKLES_PER_STREAM
        count = 1
        while count < limit and (pos < len(data) or not complete):
            if pos >= len(data):
                raise _NeedMore  # the first bytes end exactly after a pickle: the rest may hold another
            saved = (len(result.globals), set(machine._seen), result.called_bad, result.imported_denied)
            try:
                pos, _ = run(pos)
            except _Capped as exc:
                notes.append(str(exc))
                _search_rest(machine, max(machine.cap_pos, pos), notes)
                break
            except _Malformed as exc:
                bad = (result.called_bad and not saved[2]) or (result.imported_denied and not saved[3])
                if legacy:
                    notes.append(f"malformed pickle #{count + 1} of the legacy torch file: {exc}")
                elif bad:
                    notes.append(f"malformed pickle #{count + 1}: {exc}")
                else:  # trailing bytes that merely look like a pickle: the loader reads only the first one
                    del result.globals[saved[0]:]
                    machine._seen = saved[1]
                    result.called_bad, result.imported_denied = saved[2], saved[3]
                break
            count += 1
        if not claims and not result.globals and fmt == "pickle":
            return  # bytes that parse as a pickle of plain values: nothing to import, nothing to report
        notes.extend(result.notes)
        _record(ctx, member, fmt, result, notes)
    finally:
        machine.charge()


def _record(ctx: _Ctx, member: str | None, fmt: str, result: _Result, notes: list[str]) -> None:
    if result.joblib and fmt == "pickle":
        fmt = "joblib"
    ctx.out.scans.append(PickleScan(path=ctx.file, format=fmt, globals=tuple(result.globals),
                                    opcodes_seen=result.opcodes, member=member))
    for n in dict.fromkeys(notes):
        ctx.error(member, n)


def _scan_nested(blob: bytes, depth: int, budget: Budget) -> tuple[list[PickleScan], list[FactError]]:
    """Scan an in-memory blob (torch ``_load_from_bytes``): zip or pickle stream, claimed."""
    ctx = _Ctx("<nested>", budget, FileScan())
    _sniff(ctx, blob, None, depth, claims=True)
    return ctx.out.scans, ctx.out.errors


# ---- .npy -------------------------------------------------------------------------------------------

_NP_NUMERIC = re.compile(r"[?bBhHiIlLqQpPnNefdgFDGcSUVaMmu]\d*(\[\w+\])?")
_NP_NUMERIC_NAME = re.compile(
    r"(u?int|float|complex|bool|str|bytes|void|datetime|timedelta|half|single|double|longdouble|byte|"
    r"ubyte|short|ushort|intc|uintc|long|ulong|longlong|ulonglong|intp|uintp|csingle|cdouble|clongdouble)"
    r"_?\d*(\[\w+\])?")


def descr_has_object(descr: object, depth: int = 0) -> bool | None:
    """Whether a .npy ``descr`` (numpy/lib/format.py descr_to_dtype: a dtype string, ``(descr, shape)``
    or a list of ``(name, descr[, shape])`` fields) holds Python objects; None if it cannot be told."""
    if depth > 32:
        return None
    if isinstance(descr, str):
        verdict: bool | None = False
        for part in descr.split(","):
            core = re.sub(r"^\s*\([\d,\s]*\)\s*", "", part).strip().lstrip("<>|=!")
            if core[:1] == "O" or core.lower().startswith("object"):
                return True
            if not (_NP_NUMERIC.fullmatch(core) or _NP_NUMERIC_NAME.fullmatch(core)):
                verdict = None
        return verdict
    if isinstance(descr, tuple) and descr:
        return descr_has_object(descr[0], depth + 1)
    if isinstance(descr, list):
        verdict = False
        for fld in descr:
            if not isinstance(fld, (tuple, list)) or len(fld) < 2:
                return None
            sub = descr_has_object(fld[1], depth + 1)
            if sub:
                return True
            if sub is None:
                verdict = None
        return verdict
    return None


def _npy_header(data) -> tuple[int, object] | str:
    """(offset of the array data, descr) of .npy bytes, or an error (numpy/lib/format.py _read_array_header)."""
    major = data[6] if len(data) > 6 else -1
    if major == 1:
        if len(data) < 10:
            return "truncated .npy header"
        hlen, start, enc = struct.unpack_from("<H", data, 8)[0], 10, "latin1"
    elif major in (2, 3):
        if len(data) < 12:
            return "truncated .npy header"
        hlen, start = struct.unpack_from("<I", data, 8)[0], 12
        enc = "utf8" if major == 3 else "latin1"
    else:
        return f"unsupported .npy format version {major}"
    if hlen > MAX_NPY_HEADER or start + hlen > len(data):
        return f".npy header claims {hlen} bytes (file has {len(data) - start})"
    try:
        import ast  # only for .npy headers: ast costs ~2 ms to import

        header = ast.literal_eval(bytes(data[start : start + hlen]).decode(enc))  # what numpy's safe_eval does
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError) as exc:
        return f".npy header is not a Python literal: {_one_line(exc)}"
    if not isinstance(header, dict) or "descr" not in header:
        return ".npy header has no 'descr'"
    return start + hlen, header["descr"]


def _scan_npy(ctx: _Ctx, data, member: str | None, depth: int) -> None:
    parsed = _npy_header(data)
    if isinstance(parsed, str):
        ctx.error(member, parsed)
        return
    offset, descr = parsed
    has_object = descr_has_object(descr)
    # numpy pickles the array data only for object dtypes; a spelling we cannot read is sniffed anyway.
    _scan_stream(ctx, data, member, "numpy", depth, claims=bool(has_object), offset=offset)


# ---- zip / tar -------------------------------------------------------------------------------------


def _zip_precheck(fh, size: int) -> str | None:
    """Refuse zips whose central directory would cost too much memory to load."""
    tail = min(size, 65536 + 22)
    fh.seek(size - tail)
    buf = fh.read(tail)
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
    fh.seek(0)
    return None


def _inner(member: str | None, name: str) -> str:
    return f"{member}/{name}" if member else name


def _scan_zip(ctx: _Ctx, fh, size: int, member: str | None, depth: int) -> None:
    import lzma
    import zipfile

    err = _zip_precheck(fh, size)
    if err:
        ctx.error(member, err)
        return
    with zipfile.ZipFile(fh) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = [i.filename for i in infos]
        # torch/serialization.py@2.5.1 _is_torchscript_zip: "constants.pkl" among the records (names after
        # the archive's top folder); torch.load then hands the file to torch.jit.load, which runs its code.
        if any(n.rsplit("/", 1)[-1].lower() == "constants.pkl" for n in names):
            ctx.out.torchscript.append(member or ctx.file)
        # torch's zip reader (miniz) finds "<top>/data.pkl" ignoring case: every *.pkl is claimed.
        is_torch = any(n.lower().endswith(".pkl") for n in names)
        if len(infos) > MAX_MEMBERS_SNIFFED:
            ctx.error(member, f"archive has {len(infos):,} members; only the first {MAX_MEMBERS_SNIFFED:,} were "
                      "scanned for pickles")
        # pickles first, so a budget running out hits the raw storage members, not data.pkl
        order = sorted(infos[:MAX_MEMBERS_SNIFFED], key=lambda i: not i.filename.lower().endswith((".pkl", ".pickle")))
        for info in order:
            name = _inner(member, info.filename)
            lower = info.filename.lower()
            claims = lower.endswith((".pkl", ".pickle"))
            fmt = "torch-zip" if is_torch and claims else "pickle"
            if ctx.budget.bytes_left <= 0 or ctx.budget.opcodes_left <= 0:
                if claims or info.file_size > 0:
                    ctx.error(name, f"not scanned: {ctx.budget.describe()}")
                continue
            try:
                with zf.open(info) as fobj:
                    head = fobj.read(ctx.take(HEAD_BYTES))
                    if not head:
                        if claims and info.file_size:
                            ctx.error(name, f"not scanned: {ctx.budget.describe()}")
                        continue

                    def read_all(fobj=fobj, head=head, name=name, size=info.file_size):
                        want = min(MAX_BLOB_BYTES, size) - len(head)
                        grant = ctx.take(max(0, want))
                        rest = fobj.read(grant + 1) if grant else b""
                        if len(rest) > grant or (want > grant):
                            ctx.error(name, f"only the first {(len(head) + grant) >> 20} MiB were scanned "
                                      f"({MAX_BLOB_BYTES >> 20} MiB per member / per-run budget)")
                        return head + rest[:grant]

                    _sniff_member(ctx, head, read_all, name, depth, claims, fmt)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                    zlib.error, lzma.LZMAError, ValueError) as exc:
                ctx.error(name, f"could not read archive member: {_one_line(exc)}")


def _scan_tar(ctx: _Ctx, fh, member: str | None, depth: int) -> None:
    # torch/serialization.py@2.5.1 _legacy_load: tar members sys_info, pickle, storages, tensors are pickles
    import tarfile

    with tarfile.open(fileobj=fh, mode="r:") as tf:
        seen = 0
        for info in tf:
            if not info.isreg():
                continue
            seen += 1
            name = _inner(member, info.name)
            if seen > MAX_MEMBERS_SNIFFED:
                ctx.error(member, f"archive has more than {MAX_MEMBERS_SNIFFED:,} members; the rest were not scanned")
                return
            if ctx.budget.bytes_left <= 0 or ctx.budget.opcodes_left <= 0:
                ctx.error(name, f"not scanned: {ctx.budget.describe()}")
                continue
            fobj = tf.extractfile(info)
            if fobj is None:
                continue
            base = info.name.rsplit("/", 1)[-1]
            claims = base in ("sys_info", "pickle") or base.lower().endswith(CLAIM_SUFFIXES)
            head = fobj.read(ctx.take(HEAD_BYTES))

            def read_all(fobj=fobj, head=head, name=name, size=info.size):
                want = min(MAX_BLOB_BYTES, size) - len(head)
                grant = ctx.take(max(0, want))
                rest = fobj.read(grant) if grant else b""
                if want > grant:
                    ctx.error(name, f"only the first {(len(head) + grant) >> 20} MiB were scanned")
                return head + rest

            _sniff_member(ctx, head, read_all, name, depth + 1, claims, "torch-legacy" if claims else "pickle")


# ---- files -----------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def claims_pickle(rel_path: str) -> bool:
    """Whether the file's name says it is a pickle (``.pkl``, ``.pt``, ``.pth.tar``, ``.pkl.gz``...)."""
    name = rel_path.rsplit("/", 1)[-1].lower()
    for outer in (".gz", ".tar", ".bz2", ".xz", ".zip"):
        if name.endswith(outer) and name[: -len(outer)].endswith(CLAIM_SUFFIXES):
            return True
    return name.endswith(CLAIM_SUFFIXES)


def scan_path(abs_path: str, rel_path: str, budget: Budget | None = None, claims: bool | None = None,
              head: bytes | None = None, size: int | None = None) -> FileScan:
    """Sniff one file by content for pickles (also inside zip/tar/compressed/npy). Never unpickles, never
    raises; errors are FactErrors of kind "pickle" whose path is ``rel_path``. ``head``/``size``: the file's
    first bytes and size when a reader already has them (the file is opened only if they do not decide)."""
    ctx = _Ctx(rel_path, budget if budget is not None else Budget(), FileScan())
    claimed = claims_pickle(rel_path) if claims is None else claims
    try:
        _scan_file(ctx, abs_path, claimed, head, size)
    except MemoryError:
        ctx.error(None, "could not be scanned: out of memory")
    except RecursionError:
        ctx.error(None, "could not be scanned: structure nested too deep")
    except Exception as exc:  # noqa: BLE001 - fail closed with one line, never a traceback
        ctx.error(None, f"could not be scanned: {_one_line(exc)}")
    return ctx.out


def scan_file(abs_path: str, rel_path: str, size: int = 0,
              budget: Budget | None = None) -> tuple[tuple[PickleScan, ...], tuple[FactError, ...]]:
    """(scans, errors) of :func:`scan_path`."""
    out = scan_path(abs_path, rel_path, budget)
    return tuple(out.scans), tuple(out.errors)


def _decided_by_head(ctx: _Ctx, head: bytes, size: int, claims: bool) -> bool:
    """Scan a file from its first bytes when they decide it: the whole file, or a stream whose verdict the
    rest cannot change (_scan_stream raises _NeedMore otherwise). Most files (every safetensors shard) are
    decided here, without mapping the whole file (a 191-shard folder: 14 -> 3 ms)."""
    if len(head) >= size:
        if head:
            _sniff(ctx, head[:size], None, 0, claims)
        elif claims:
            ctx.error(None, "could not be scanned: the file is empty")
        return True
    if _kind(head[:512]) == "pickle":
        used = ctx.budget.opcodes_used, ctx.budget.bytes_used
        try:
            _scan_stream(ctx, head, None, "pickle", 0, claims, complete=False)
            return True
        except _NeedMore:  # the whole file is walked next, and charged then: refund this try
            ctx.budget.opcodes_used, ctx.budget.bytes_used = used
    return False


def _scan_file(ctx: _Ctx, abs_path: str, claims: bool, head: bytes | None = None, size: int | None = None) -> None:
    if head is not None and size is not None and len(head) >= min(HEAD_BYTES, size):
        ctx.out.magic = head[:8]
        if _decided_by_head(ctx, head, size, claims):
            return  # the reader that already opened the file (safetensors headers) handed over its first bytes
    try:
        fd = os.open(abs_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        ctx.error(None, f"could not be opened: {exc.strerror or _one_line(exc)}")
        return
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        ctx.error(None, "not a regular file; not scanned")
        return
    try:
        head = os.read(fd, HEAD_BYTES) if st.st_size else b""
        ctx.out.magic = head[:8]
        if _decided_by_head(ctx, head, st.st_size, claims):
            os.close(fd)
            return
    except OSError as exc:
        os.close(fd)
        ctx.error(None, f"could not be read: {exc.strerror or _one_line(exc)}")
        return
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb", buffering=0) as fh:
        fh.seek(0)
        try:
            data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            data = fh.read(ctx.take(MAX_BLOB_BYTES))
        try:
            buffered = io.BufferedReader(fh, 1 << 16)
            _sniff(ctx, data, None, 0, claims, fileobj=buffered)
        finally:
            if isinstance(data, mmap.mmap):
                try:
                    data.close()
                except BufferError:  # a view still holds it; the GC closes it
                    pass
