"""Regenerate checker/catalog/engine_flags.yaml from the engines' own release files.

Reads each release's Python sources (never imports them): every ``add_argument(...)`` the serving
command's parser runs, with the forms argparse derives from it.

- vLLM (``vllm serve`` and ``python -m vllm.entrypoints.openai.api_server``): vllm/engine/arg_utils.py
  (``EngineArgs.add_cli_args`` / ``AsyncEngineArgs.add_cli_args``), the module that defines the serve
  parser's ``make_arg_parser`` (vllm/entrypoints/openai/cli_args.py, later vllm/entrypoints/launchers/
  cli_args.py) and vllm/entrypoints/cli/serve.py. Newer releases generate flags from dataclass fields
  (``get_kwargs(ModelConfig)`` + ``add_argument("--x", **model_kwargs["x"])``, or a loop over
  ``get_kwargs(FrontendArgs)``): the field's annotation decides ``BooleanOptionalAction`` (``--no-x``)
  the way that release's ``get_kwargs`` does.
- SGLang (``python -m sglang.launch_server``): sglang/srt/server_args.py ``ServerArgs.add_cli_args``.

Sources come from ``/work/src/get.sh PKG VERSION`` (the wheel's .py files under /work/src/PKG-VERSION)
or any folder given with --src. Usage::

    python tools/extract_engine_flags.py --write            # all releases listed in RELEASES
    python tools/extract_engine_flags.py vllm 0.14.0         # print one release's flags
    python tools/extract_engine_flags.py --runtime-check     # compare with an installed vllm's parser

- llama-server: common/arg.cpp of the llama.cpp vendored in llama_cpp_python sdists
  (``pip download llama_cpp_python==V --no-deps --no-binary :all:``), read as text (add_opt(common_arg(...))).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "checker" / "catalog" / "engine_flags.yaml"
SRC = Path("/work/src")

# Releases covered: every vLLM version named in checker/catalog/images.yaml (0.7.0 .. 0.14.0, 0.9.1,
# 0.13.0rc2 -> 0.13.0) and the releases sampled in vllm_support.yaml from 0.6.0 on, plus the newest ones.
RELEASES = {
    "vllm": [
        "0.6.0", "0.6.3", "0.6.6", "0.7.0", "0.7.3", "0.8.0", "0.8.4", "0.8.5", "0.9.0", "0.9.1",
        "0.10.0", "0.10.1", "0.10.2", "0.11.0", "0.11.2", "0.12.0", "0.13.0", "0.14.0", "0.15.0",
        "0.16.0", "0.17.0", "0.18.0", "0.19.0", "0.20.0", "0.21.0", "0.24.0", "0.28.0", "0.32.0", "0.33.0",
    ],
    "sglang": ["0.4.6.post5", "0.5.2", "0.5.8"],
}


def fetch(pkg: str, version: str, src: Path = SRC) -> Path:
    d = src / f"{pkg}-{version}"
    if not d.is_dir():
        subprocess.run([str(src / "get.sh"), pkg, version], check=True, stdout=subprocess.DEVNULL)
    return d


# -- AST helpers ---------------------------------------------------------------------------------


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _class_index(pkg_root: Path) -> dict[str, list[ast.ClassDef]]:
    index: dict[str, list[ast.ClassDef]] = {}
    for path in sorted(pkg_root.rglob("*.py")):
        rel = path.relative_to(pkg_root).as_posix()
        if not (rel.startswith(("config", "engine/", "entrypoints/", "utils"))):
            continue
        try:
            tree = _parse(path)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                index.setdefault(node.name, []).append(node)
    return index


def _fields(cls: ast.ClassDef, index: dict[str, list[ast.ClassDef]], seen: set[str] | None = None) -> dict[str, str]:
    """Dataclass fields (name -> annotation source), base classes first."""
    seen = seen or set()
    out: dict[str, str] = {}
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
        if name and name in index and name not in seen:
            out.update(_fields(index[name][0], index, seen | {name}))
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            ann = ast.unparse(stmt.annotation)
            if "ClassVar" in ann or "InitVar" in ann:
                continue
            out[stmt.target.id] = ann
    return out


def _bool_rule(arg_utils_src: str):
    """How this release's get_kwargs turns a bool-typed field into an argparse action."""
    special_bool_str = "{bool, str, type(None)}" in arg_utils_src  # 'Optional-valued flag' (0.2x on)

    def is_boolean_optional(annotation: str) -> bool:
        words = set(re.findall(r"[A-Za-z_]+", annotation))
        # bool | str | None is an optional-valued flag (nargs="?"), not BooleanOptionalAction
        optional_valued = special_bool_str and ({"bool", "str", "None"} <= words or {"bool", "str", "Optional"} <= words)
        return "bool" in words and not optional_valued

    return is_boolean_optional


def _is_boolopt(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "BooleanOptionalAction") or (
        isinstance(node, ast.Name) and node.id == "BooleanOptionalAction"
    )


def _no_forms(opts: list[str]) -> list[str]:
    # argparse.BooleanOptionalAction: every "--x" option string gets a "--no-x" twin
    return [f"--no-{o[2:]}" for o in opts if o.startswith("--")]


class _Collector(ast.NodeVisitor):
    """add_argument calls of one file, resolving get_kwargs(Class) dictionaries to dataclass fields."""

    def __init__(
        self,
        index: dict[str, list[ast.ClassDef]],
        is_bool,
        only_functions: set[str] | None = None,
        concrete: dict[str, str] | None = None,
        receivers: set[str] | None = None,
    ):
        self.receivers = receivers  # only x.add_argument(...) where x is one of these names
        self.index = index
        self.concrete = concrete or {}  # a base class whose classmethod calls get_kwargs(cls) -> the subclass used
        self.is_bool = is_bool
        self.only = only_functions
        self.flags: set[str] = set()
        self._kwargs_of: dict[str, str] = {}  # local name -> dataclass name (X_kwargs = get_kwargs(Cls))
        self._class_stack: list[str] = []
        self._loops: list[tuple[str, str]] = []  # (key variable, dataclass name)
        self._func_depth = 0

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._class_stack.append(node.name)
        self.generic_visit(node)
        self._class_stack.pop()

    def _visit_func(self, node: ast.AST) -> None:
        if self.only is not None and self._func_depth == 0 and getattr(node, "name", "") not in self.only:
            return
        self._func_depth += 1
        saved = dict(self._kwargs_of)
        self.generic_visit(node)
        self._kwargs_of = saved
        self._func_depth -= 1

    visit_FunctionDef = _visit_func
    visit_AsyncFunctionDef = _visit_func

    def visit_Assign(self, node: ast.Assign) -> None:
        v = node.value
        if (
            isinstance(v, ast.Call)
            and isinstance(v.func, (ast.Name, ast.Attribute))
            and (v.func.id if isinstance(v.func, ast.Name) else v.func.attr) == "get_kwargs"
            and v.args
        ):
            a = v.args[0]
            cls = a.id if isinstance(a, ast.Name) else None
            if cls == "cls" and self._class_stack:
                cls = self.concrete.get(self._class_stack[-1], self._class_stack[-1])
            if cls:
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self._kwargs_of[t.id] = cls
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        it = node.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr == "items"
            and isinstance(it.func.value, ast.Name)
            and it.func.value.id in self._kwargs_of
            and isinstance(node.target, ast.Tuple)
            and isinstance(node.target.elts[0], ast.Name)
        ):
            self._loops.append((node.target.elts[0].id, self._kwargs_of[it.func.value.id]))
            self.generic_visit(node)
            self._loops.pop()
            return
        self.generic_visit(node)

    def _cls_fields(self, cls: str) -> dict[str, str]:
        defs = self.index.get(cls)
        return _fields(defs[0], self.index) if defs else {}

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if not (isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            return
        if self.only is not None and self._func_depth == 0:
            return
        if self.receivers is not None and not (
            isinstance(node.func.value, ast.Name) and node.func.value.id in self.receivers
        ):
            return
        opts: list[str] = []
        loop_generated = False
        for a in node.args:
            if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-"):
                opts.append(a.value)
            elif isinstance(a, ast.JoinedStr) and self._loops:
                loop_generated = True
        boolopt = any(k.arg == "action" and _is_boolopt(k.value) for k in node.keywords)
        if loop_generated:
            _key, cls = self._loops[-1]
            for name, ann in self._cls_fields(cls).items():
                flag = "--" + name.replace("_", "-")
                self.flags.add(flag)
                if self.is_bool(ann):
                    self.flags.update(_no_forms([flag]))
            return
        if not opts:
            return
        self.flags.update(opts)
        subs = []
        for k in node.keywords:
            if k.arg is None:
                subs.append(k.value)
                if isinstance(k.value, ast.Dict):  # **{**cache_kwargs["x"], "default": None}
                    subs.extend(v for kk, v in zip(k.value.keys, k.value.values) if kk is None)
        for sub in subs:
            # **model_kwargs["enforce_eager"] -> the field's annotation decides BooleanOptionalAction
            if (
                isinstance(sub, ast.Subscript)
                and isinstance(sub.value, ast.Name)
                and sub.value.id in self._kwargs_of
                and isinstance(sub.slice, ast.Constant)
            ):
                ann = self._cls_fields(self._kwargs_of[sub.value.id]).get(sub.slice.value)
                if ann is not None and self.is_bool(ann) and not any(
                    kk.arg == "action" for kk in node.keywords if kk.arg
                ):
                    boolopt = True
        if boolopt:
            self.flags.update(_no_forms(opts))


def _serve_parser_module(pkg: Path) -> list[Path]:
    """Files whose add_argument calls make up the serve / api_server parser of this release."""
    files = [pkg / "engine" / "arg_utils.py"]
    serve = pkg / "entrypoints" / "cli" / "serve.py"
    if serve.is_file():  # the module `vllm serve` imports make_arg_parser from
        for node in ast.walk(_parse(serve)):
            if isinstance(node, ast.ImportFrom) and node.module and any(a.name == "make_arg_parser" for a in node.names):
                p = pkg.parent / (node.module.replace(".", "/") + ".py")
                if p.is_file():
                    files.append(p)
    if len(files) == 1:
        p = pkg / "entrypoints" / "openai" / "cli_args.py"  # 0.6 - 0.8: the api_server's parser
        if p.is_file():
            files.append(p)
    return files


def _concrete_classes(tree: ast.Module, index: dict[str, list[ast.ClassDef]]) -> dict[str, str]:
    """FrontendArgs.add_cli_args(parser) runs BaseFrontendArgs.add_cli_args with cls=FrontendArgs."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_cli_args"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in index
        ):
            name = node.func.value.id
            todo = [name]
            while todo:
                cur = todo.pop()
                out.setdefault(cur, name)
                for b in index[cur][0].bases:
                    if isinstance(b, ast.Name) and b.id in index:
                        todo.append(b.id)
    return out


def vllm_flags(root: Path) -> set[str]:
    pkg = root / "vllm"
    index = _class_index(pkg)
    arg_utils = (pkg / "engine" / "arg_utils.py").read_text(encoding="utf-8")
    is_bool = _bool_rule(arg_utils)
    flags: set[str] = {"-h", "--help"}
    for path in _serve_parser_module(pkg):
        col = _Collector(index, is_bool, concrete=_concrete_classes(_parse(path), index))
        col.visit(_parse(path))
        flags |= col.flags
    # `vllm serve` adds its own options (--config, model_tag) on serve_parser: vllm/scripts.py (0.6 - 0.8.4),
    # vllm/entrypoints/cli/serve.py later
    for serve in (pkg / "scripts.py", pkg / "entrypoints" / "cli" / "serve.py"):
        if serve.is_file():
            col = _Collector(index, is_bool, receivers={"serve_parser"})
            col.visit(_parse(serve))
            flags |= col.flags
    return flags


def sglang_flags(root: Path) -> set[str]:
    path = root / "sglang" / "srt" / "server_args.py"
    col = _Collector({}, lambda ann: False, only_functions={"add_cli_args"})
    col.visit(_parse(path))
    return col.flags | {"-h", "--help"}


def _matching(text: str, i: int) -> int:
    """Index of the bracket closing the one at text[i], skipping C++ string and char literals."""
    pairs = {"(": ")", "{": "}"}
    stack = [pairs[text[i]]]
    j = i + 1
    while stack:
        c = text[j]
        if text.startswith("//", j):
            j = text.index("\n", j)
            continue
        if text.startswith("/*", j):
            j = text.index("*/", j) + 2
            continue
        if c == '"' or c == "'":
            j += 1
            while text[j] != c:
                j += 2 if text[j] == "\\" else 1
        elif c in pairs:
            stack.append(pairs[c])
        elif c in ")}" and c != stack.pop():
            raise ValueError(f"unbalanced brackets at {j}")
        j += 1
    return j - 1


_CPP_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def llama_server_flags(arg_cpp: Path) -> set[str]:
    """llama-server's options in common/arg.cpp: every add_opt(common_arg({...}, ...)) whose examples
    include LLAMA_EXAMPLE_SERVER or LLAMA_EXAMPLE_COMMON (the default) and whose excludes do not
    name LLAMA_EXAMPLE_SERVER (common/arg.cpp common_params_parser_init)."""
    text = arg_cpp.read_text(encoding="utf-8", errors="replace")
    flags: set[str] = set()
    for m in re.finditer(r"add_opt\(\s*common_arg\(", text):
        call_open = m.end() - 1
        call_close = _matching(text, call_open)
        inner = text[call_open + 1 : call_close]
        opts: list[str] = []
        k = 0
        while k < len(inner):  # top-level {"-x", "--y"} groups: the option strings (and negative forms)
            if inner[k] == "{":
                end = _matching(inner, k)
                group = inner[k + 1 : end]
                strs = _CPP_STR.findall(group)
                if strs and all(x.startswith("-") for x in strs) and not re.sub(_CPP_STR, "", group).strip(" ,\n\t"):
                    opts.extend(strs)
                k = end + 1
            elif inner[k] == "[":  # the lambda: stop
                break
            elif inner[k] == '"':
                k = _CPP_STR.match(inner, k).end()
            else:
                k += 1
        add_close = _matching(text, m.start() + len("add_opt"))
        chain = text[call_close + 1 : add_close]
        ex = re.search(r"set_examples\(\{([^}]*)\}", chain)
        examples = set(re.findall(r"LLAMA_EXAMPLE_\w+", ex.group(1))) if ex else {"LLAMA_EXAMPLE_COMMON"}
        exc = re.search(r"set_excludes\(\{([^}]*)\}", chain)
        excludes = set(re.findall(r"LLAMA_EXAMPLE_\w+", exc.group(1))) if exc else set()
        if examples & {"LLAMA_EXAMPLE_SERVER", "LLAMA_EXAMPLE_COMMON"} and "LLAMA_EXAMPLE_SERVER" not in excludes:
            flags.update(opts)
    return flags


def fetch_llama_cpp(version: str, cache: Path) -> Path:
    """common/arg.cpp of the llama.cpp that llama_cpp_python VERSION vendors (its sdist)."""
    import tarfile

    out = cache / f"llama_cpp_python-{version}-arg.cpp"
    if out.is_file():
        return out
    sdist = cache / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"llama_cpp_python=={version}", "--no-deps",
             "--no-binary", ":all:", "-d", str(cache), "-q"],
            check=True,
        )
    with tarfile.open(sdist) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("vendor/llama.cpp/common/arg.cpp"))
        out.write_bytes(tf.extractfile(member).read())
    return out


EXTRACT = {"vllm": vllm_flags, "sglang": sglang_flags}
LLAMA_CPP_PYTHON = ["0.3.16", "0.3.36"]  # two vendored llama.cpp snapshots (llama-server)



def runtime_vllm_flags(python: str) -> set[str]:
    """The option strings of an installed vllm's serve parser (imports vllm: slow, needs its venv)."""
    code = (
        "import importlib, json\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "for m in ('vllm.entrypoints.launchers.cli_args', 'vllm.entrypoints.openai.cli_args'):\n"
        "    try:\n"
        "        make_arg_parser = importlib.import_module(m).make_arg_parser; break\n"
        "    except ImportError: pass\n"
        "p = make_arg_parser(FlexibleArgumentParser())\n"
        "print(json.dumps(sorted({o for a in p._actions for o in a.option_strings})))\n"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


# -- YAML ----------------------------------------------------------------------------------------


def _vkey(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.a-z]+", v) if x)


def compact(per_release: dict[str, set[str]]) -> dict:
    """base = the first release's flags; each later release lists what it added / removed."""
    versions = sorted(per_release, key=_vkey)
    base = sorted(per_release[versions[0]])
    releases = []
    prev = set(base)
    for v in versions[1:]:
        cur = per_release[v]
        entry = {"version": v}
        if cur - prev:
            entry["added"] = sorted(cur - prev)
        if prev - cur:
            entry["removed"] = sorted(prev - cur)
        releases.append(entry)
        prev = cur
    return {"base_version": versions[0], "base": base, "releases": releases}


def _flow(items: list[str], indent: int) -> str:
    lines, line = [], ""
    for it in items:
        piece = (", " if line else "") + it
        if len(line) + len(piece) > 110 - indent:
            lines.append(line + ",")
            line = it
        else:
            line += piece
    lines.append(line)
    pad = " " * indent
    return "[" + ("\n" + pad).join(lines) + "]"


def render(engines: dict[str, dict], header: str, tail: str) -> str:
    out = [header.rstrip(), "engines:"]
    for eng, body in engines.items():
        out.append(f"  {eng}:")
        for k in ("source", "parser", "underscores", "abbreviations", "dotted_keys"):
            if k in body:
                out.append(f"    {k}: {json.dumps(body[k])}")
        out.append(f"    base_version: {json.dumps(body['base_version'])}")
        out.append(f"    base: {_flow(body['base'], 10)}")
        out.append("    releases:")
        for r in body["releases"]:
            out.append(f"      - version: {json.dumps(r['version'])}")
            for k in ("added", "removed"):
                if k in r:
                    out.append(f"        {k}: {_flow(r[k], 16)}")
    return "\n".join(out) + "\n" + tail


HEADER = """\
# Engine command-line flags per release, extracted from each release's own sources by
# tools/extract_engine_flags.py (regenerate with `python tools/extract_engine_flags.py --write`, then
# `python -m modelcheck.datafile`). Do not edit the vllm / sglang sections by hand.
#
# Per engine: `base` is every option string of `base_version`; each later release lists the option
# strings it `added` / `removed` against the release before it (releases in order). Option strings
# include short aliases (-tp, -pp, -dp, -q, -O ...) and the --no-X twins of argparse.BooleanOptionalAction.
# `underscores`: the parser also accepts --max_model_len for --max-model-len (vLLM FlexibleArgumentParser).
# `abbreviations`: argparse's allow_abbrev (a unique prefix of a long option is accepted).
# `dotted_keys`: --json-arg.key value sets one key of a JSON/dataclass argument (vLLM >= dotted_since).
schema_version: 1
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine", nargs="?", choices=sorted(EXTRACT))
    ap.add_argument("version", nargs="?")
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--llama-cache", type=Path, default=Path("/tmp/llcpp"), help="where llama_cpp_python sdists go")
    ap.add_argument("--write", action="store_true", help=f"rewrite {OUT.relative_to(ROOT)}")
    ap.add_argument("--runtime-check", metavar="PYTHON", help="compare with the parser of the vllm installed for PYTHON")
    args = ap.parse_args(argv)
    if args.engine and args.version:
        flags = EXTRACT[args.engine](fetch(args.engine, args.version, args.src))
        print("\n".join(sorted(flags)))
        return 0
    if args.runtime_check:
        ver = subprocess.run(
            [args.runtime_check, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True, check=True
        ).stdout.strip().split("+")[0]
        static = vllm_flags(fetch("vllm", ver, args.src))
        runtime = runtime_vllm_flags(args.runtime_check)
        print(f"vllm {ver}: static {len(static)}, runtime {len(runtime)}")
        print("only static:", sorted(static - runtime))
        print("only runtime:", sorted(runtime - static))
        return 0 if static == runtime else 1
    if not args.write:
        ap.error("give ENGINE VERSION, --write or --runtime-check")
    text = OUT.read_text(encoding="utf-8") if OUT.is_file() else ""
    tail = text[text.index("# -- hand-kept") :] if "# -- hand-kept" in text else ""
    engines = {}
    meta = {
        "vllm": {
            "source": "vllm wheels (PyPI): vllm/engine/arg_utils.py add_cli_args + EngineArgs/config dataclass fields, "
            "vllm/entrypoints/openai/cli_args.py (later entrypoints/launchers/cli_args.py) make_arg_parser",
            "parser": "vllm serve / python -m vllm.entrypoints.openai.api_server",
            "underscores": True,
            "abbreviations": True,
            "dotted_keys": True,
        },
        "sglang": {
            "source": "sglang wheels (PyPI): sglang/srt/server_args.py ServerArgs.add_cli_args",
            "parser": "python -m sglang.launch_server",
            "underscores": False,
            "abbreviations": True,
            "dotted_keys": False,
        },
        "llama.cpp": {
            "source": "common/arg.cpp of the llama.cpp vendored in llama_cpp_python sdists (PyPI); versions are the "
            "llama_cpp_python releases; options whose examples include LLAMA_EXAMPLE_SERVER or COMMON",
            "parser": "llama-server",
            "underscores": False,
            "abbreviations": False,
            "dotted_keys": False,
        },
    }
    for eng, versions in RELEASES.items():
        per = {}
        for v in versions:
            per[v] = EXTRACT[eng](fetch(eng, v, args.src))
            print(f"{eng} {v}: {len(per[v])} option strings", file=sys.stderr)
        engines[eng] = {**meta[eng], **compact(per)}
    per = {}
    for v in LLAMA_CPP_PYTHON:
        per[v] = llama_server_flags(fetch_llama_cpp(v, args.llama_cache))
        print(f"llama.cpp (llama_cpp_python {v}): {len(per[v])} option strings", file=sys.stderr)
    engines["llama.cpp"] = {**meta["llama.cpp"], **compact(per)}
    OUT.write_text(render(engines, HEADER, tail), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
