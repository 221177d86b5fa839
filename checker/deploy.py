"""Deployment specs as input: a PAI-EAS service JSON, a modelcheck deploy YAML, or a bare start command.

``load()`` turns any of them into the target fields (image, instance, GPU), the engine arguments the
start command passes, and a ``deployment`` dict the DEP rules read (mounts, ports, argv, env, model
reference). Invalid files raise ``ConfigError`` naming the key path (exit 2). Nothing here runs the
command; ``parse_serve_command`` only tokenises it with shlex.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from importlib import resources
from typing import Any

from modelcheck import engine_args
from modelcheck.errors import ConfigError
from modelcheck.facts.source import classify_ref as classify_model_ref
from modelcheck.facts.source import hub_id
from modelcheck.model import Deployment, Mount
from modelcheck.record import replace

# -- start-command parsing ---------------------------------------------------------------------

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = {"exec", "nohup", "time", "sudo", "stdbuf", "nice", "numactl", "taskset", "uv", "conda"}
_SEPARATORS = {"&&", "||", ";", "|", "&", ";;"}


def _split(cmd: str) -> list[str]:
    cmd = cmd.replace("\\\r\n", " ").replace("\\\n", " ")
    lex = shlex.shlex(cmd, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        return list(lex)
    except ValueError as exc:  # unbalanced quotes
        raise ConfigError(f"start command: cannot be split like a shell would: {exc}") from None


def _segments(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for tok in tokens:
        if tok in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


def _strip_prefix(seg: list[str], env: dict[str, str]) -> list[str]:
    i = 0
    while i < len(seg):
        tok = seg[i]
        if _ENV_RE.match(tok):
            k, _, v = tok.partition("=")
            env[k] = v
        elif os.path.basename(tok) == "env" or tok in _WRAPPERS:
            if tok == "uv" and i + 1 < len(seg) and seg[i + 1] == "run":
                i += 1
        elif tok.startswith("-") and i > 0 and os.path.basename(seg[i - 1]) in ("env", "nohup", "numactl", "taskset"):
            pass
        else:
            break
        i += 1
    return seg[i:]


def _launcher(seg: list[str]) -> tuple[str | None, list[str], str | None]:
    """(engine, remaining args, positional model) for one command segment."""
    if not seg:
        return None, [], None
    head = os.path.basename(seg[0])
    rest = seg[1:]
    if head == "vllm" and rest[:1] == ["serve"]:
        args = rest[1:]
        if args and not args[0].startswith("-"):
            return "vllm", args[1:], args[0]
        return "vllm", args, None
    if head == "sglang" and rest[:1] in (["serve"], ["launch_server"]):
        return "sglang", rest[1:], None
    if head in ("llama-server", "server", "llama-cpp-server") or head.endswith("llama-server"):
        if head == "server" and "llama" not in seg[0]:
            return None, [], None
        return "llama.cpp", rest, None
    if re.match(r"^python(\d(\.\d+)?)?$", head):
        args = rest
        while args and args[0].startswith("-") and args[0] != "-m":
            args = args[1:]  # python -u -O ...
        if args[:1] == ["-m"] and len(args) > 1:
            module, margs = args[1], args[2:]
            if module.startswith("vllm.entrypoints"):
                if margs[:1] == ["serve"]:
                    margs = margs[1:]
                    if margs and not margs[0].startswith("-"):
                        return "vllm", margs[1:], margs[0]
                return "vllm", margs, None
            if module.startswith("sglang.launch_server") or module == "sglang":
                return "sglang", margs, None
            if module.startswith("llama_cpp.server"):
                return "llama.cpp", margs, None
    return None, [], None


def _parse_args(engine: str, args: list[str], where: str) -> engine_args.ParsedArgs:
    """Flags -> typed engine arguments, with the engine's own spellings (modelcheck.engine_args)."""
    return engine_args.from_argv(engine, args, where, ConfigError)


def parse_serve_command(cmd: str, where: str = "start command") -> dict[str, Any]:
    """Parse a start command into ``{launcher, model, engine_args, env, port, host, argv, segment}``.

    Handles ``vllm serve PATH``, ``python -m vllm.entrypoints.openai.api_server --model``,
    ``python -m sglang.launch_server --model-path`` / ``sglang serve``, ``llama-server -m``, env prefixes
    (``VAR=1 vllm serve``), ``bash -c "..."`` and ``&&`` / ``;`` chains. Unknown flags are kept in
    ``unknown`` (and every flag as written in ``flags``: rule ENG020 checks them against the engine release's
    own parser). ``launcher`` is None when no engine command is recognised.
    """
    env: dict[str, str] = {}
    tokens = _split(cmd)
    result: dict[str, Any] = {"launcher": None, "model": None, "engine_args": {}, "env": env, "port": None,
                              "host": None, "argv": tokens, "segment": [], "raw": cmd, "flags": (), "unknown": {}}
    for seg in _segments(tokens):
        seg = _strip_prefix(seg, env)
        if not seg:
            continue
        head = os.path.basename(seg[0])
        if head in ("bash", "sh", "zsh", "dash") and "-c" in seg[1:]:
            idx = seg.index("-c")
            if idx + 1 < len(seg):
                inner = parse_serve_command(seg[idx + 1], where)
                env.update(inner["env"])
                if inner["launcher"]:
                    inner["env"] = env
                    inner["argv"] = tokens
                    inner["raw"] = cmd
                    return inner
            continue
        engine, args, positional = _launcher(seg)
        if engine is None:
            continue
        parsed = _parse_args(engine, args, where)
        engine_args = dict(parsed.args)
        model = engine_args.pop("model", None)
        if positional is not None:
            model = positional
        if engine == "llama.cpp" and model is None and engine_args.get("hf_repo"):
            model = engine_args["hf_repo"]
        port = engine_args.pop("port", None)
        host = engine_args.pop("host", None)
        result.update(launcher=engine, model=model, engine_args=engine_args, port=port, host=host, segment=seg,
                      flags=parsed.flags, unknown=parsed.unknown)
        return result
    return result


# -- model references: one heuristic, in modelcheck.facts.source ------------------------------------



# -- schema validation -------------------------------------------------------------------------

_SERVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "instance": {"type": "integer", "minimum": 0},
                "gpu": {"type": "integer", "minimum": 0},
                "cpu": {"type": "integer", "minimum": 0},
                "memory": {"type": "integer", "minimum": 0},
                "gpu_memory": {"type": "integer", "minimum": 0},
                "resource": {"type": "string"},
            },
        },
        "cloud": {
            "type": "object",
            "properties": {
                "computing": {
                    "type": "object",
                    "properties": {
                        "instance_type": {"type": "string"},
                        "instances": {"type": ["array", "null"],
                                      "items": {"type": "object", "properties": {"type": {"type": "string"}},
                                                "required": ["type"]}},
                    },
                },
                "networking": {"type": "object"},
            },
        },
        "containers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "minLength": 1},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "script": {"type": "string"},
                    "command": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "env": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                       "properties": {"name": {"type": "string"}}}},
                },
            },
        },
        "storage": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["mount_path"],
                "properties": {
                    "mount_path": {"type": "string", "minLength": 1},
                    "oss": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"},
                                                                                 "readOnly": {"type": "boolean"}}},
                    "nfs": {"type": "object", "properties": {"server": {"type": "string"}, "path": {"type": "string"}}},
                },
            },
        },
    },
    "required": ["metadata"],
}


def _key_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _validate(doc: Any, schema: dict[str, Any], name: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    # oneOf/anyOf errors: the most specific sub-error names the key better
    if err.context:
        err = min(err.context, key=lambda e: -len(list(e.absolute_path)))  # deepest; first on a tie
    msg = err.message
    if err.validator == "additionalProperties":
        msg = msg.replace("Additional properties are not allowed", "unknown key(s)")
    if err.validator == "not" and "instance" in str(err.instance):
        msg = "give either instance or gpu, not both"
    raise ConfigError(f"{name}: {_key_path(err.absolute_path)}: {msg}")


def deploy_schema() -> dict[str, Any]:
    """The published JSON Schema for deploy YAML files."""
    return json.loads(resources.files("modelcheck").joinpath("schemas/deploy.schema.json").read_text(encoding="utf-8"))


# -- loaders -----------------------------------------------------------------------------------


def _read(path: str, what: str) -> str:
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or device would block or never end
            raise ConfigError(f"{what} {path}: not a regular file")
        with open(path, encoding="utf-8") as fh:
            return fh.read(4 * 1024 * 1024)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc}") from None


def _mount_type(entry: dict[str, Any]) -> tuple[str, str | None, bool | None]:
    for kind in ("oss", "nfs", "dataset", "git", "image", "empty_dir", "pvc", "host", "s3"):
        val = entry.get(kind)
        if val is not None:
            if isinstance(val, dict):
                src = val.get("path") or val.get("id") or val.get("repo") or val.get("image")
                if kind == "nfs" and val.get("server"):
                    src = f"{val.get('server')}:{val.get('path') or '/'}"
                ro = val.get("readOnly", val.get("read_only"))
                return kind, (str(src) if src is not None else None), (bool(ro) if ro is not None else None)
            return kind, str(val), None
    return "other", None, None


def _model_fields(ref: str | None) -> dict[str, Any]:
    kind = classify_model_ref(ref)
    return {"model_ref": ref, "model_ref_kind": kind, "is_hub_id": kind in ("hub", "hf"), "hub_id": hub_id(ref)}


def _pick_container(containers: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    parsed = []
    for i, c in enumerate(containers):
        cmd = c.get("command") or c.get("script") or ""
        if c.get("args"):
            cmd = " ".join([cmd, *map(shlex.quote, c["args"])]).strip()
        p = parse_serve_command(cmd, f"containers[{i}].{'command' if c.get('command') else 'script'}") if cmd else \
            parse_serve_command("", "")
        parsed.append((i, c, p))
    for i, c, p in parsed:
        if p["launcher"]:
            return i, c, p
    for i, c, p in parsed:
        if re.search(r"/(vllm|sglang|llama[.-]?cpp)[^/]*:", str(c.get("image", ""))):
            return i, c, p
    return parsed[0]


def _load_service(path: str, online: bool) -> dict[str, Any]:
    name = os.path.basename(path)
    text = _read(path, "service")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{name}: (top level): invalid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: (top level): expected a JSON object")
    _validate(doc, _SERVICE_SCHEMA, name)
    containers = doc.get("containers") or []
    if not containers:
        where = "processor" if doc.get("processor") else "containers"
        raise ConfigError(f"{name}: containers: no container with an image (processor-based services are not "
                          f"checked; got '{where}')")
    idx, cont, cmd = _pick_container(containers)
    meta = doc.get("metadata") or {}
    computing = ((doc.get("cloud") or {}).get("computing") or {})
    instance_types = []
    if computing.get("instance_type"):
        instance_types.append(computing["instance_type"])
    for inst in computing.get("instances") or ():
        if inst.get("type") and inst["type"] not in instance_types:
            instance_types.append(inst["type"])
    env = {e["name"]: e.get("value") for e in cont.get("env") or () if isinstance(e, dict) and "name" in e}
    env.update(cmd["env"])
    mounts = []
    for i, s in enumerate(doc.get("storage") or ()):
        kind, src, ro = _mount_type(s)
        mounts.append(Mount(s["mount_path"], kind, src, ro, f"storage[{i}]"))
    cmd_key = f"containers[{idx}].{'command' if cont.get('command') else 'script'}"
    deployment = {
        "source": name,
        "source_kind": "eas-service",
        "launcher": cmd["launcher"],
        "command": cmd["raw"],
        "command_key": cmd_key,
        "argv": cmd["argv"],
        "engine_flags": tuple(cmd["flags"]),
        "container_index": idx,
        "container_count": len(containers),
        "container_port": cont.get("port"),
        "container_port_key": f"containers[{idx}].port",
        "engine_port": cmd["port"],
        "mounts": mounts,
        "env": env,
        "metadata_gpu": meta.get("gpu"),
        "resource_group": meta.get("resource"),
        "instance_types": instance_types,
        "networking": dict((doc.get("cloud") or {}).get("networking") or {}),
        "hf_token_set": any(k in env for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")),
        **_model_fields(cmd["model"]),
    }
    deployment = _confirm_online(_deployment(deployment), online)
    local = cmd["model"] if cmd["model"] and os.path.isdir(cmd["model"]) else None
    return {
        "image": cont.get("image"),
        "instance": instance_types[0] if instance_types else None,
        "gpu": None,
        "gpu_count": None,
        "chip": None,
        "engine_args": cmd["engine_args"],
        "model_path": local,
        "deployment": deployment,
    }


def _load_deploy(path: str, online: bool) -> dict[str, Any]:
    import yaml

    name = os.path.basename(path)
    text = _read(path, "deploy file")
    from modelcheck.facts.jsonfile import load_yaml_bounded, yaml_error_at

    try:
        doc = load_yaml_bounded(text, yaml.SafeLoader)  # bounded: alias bombs are refused
    except RecursionError:
        raise ConfigError(f"{name}: (top level): invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        pos, problem = yaml_error_at(exc)
        where = f"line {pos[0]} column {pos[1]}" if pos else "(top level)"
        raise ConfigError(f"{name}: {where}: invalid YAML: {problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: (top level): expected a mapping")
    _validate(doc, deploy_schema(), name)
    cmd = parse_serve_command(doc["command"], f"{name}: command") if doc.get("command") else parse_serve_command("")
    engine_args = {**cmd["engine_args"], **(doc.get("engine_args") or {})}
    model = doc.get("model")
    model_ref = model.get("path") if isinstance(model, dict) else model
    model_ref = model_ref or cmd["model"]
    local = model.get("local") if isinstance(model, dict) else None
    if local and not os.path.isabs(local):
        local = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), local))
    if local is None and model_ref and os.path.isdir(model_ref):
        local = model_ref
    env = {str(k): v for k, v in (doc.get("env") or {}).items()}
    env.update(cmd["env"])
    mounts = []
    for i, m in enumerate(doc.get("mounts") or ()):
        src = m.get("source")
        kind = m.get("type") or (src.split("://", 1)[0] if src and "://" in src else "other")
        mounts.append(Mount(m["path"], kind, src, m.get("read_only"), f"mounts[{i}]"))
    deployment = {
        "source": name,
        "source_kind": "deploy-yaml",
        "launcher": cmd["launcher"],
        "command": cmd["raw"] or None,
        "command_key": "command",
        "argv": cmd["argv"],
        "engine_flags": tuple(cmd["flags"]),
        "container_port": doc.get("port"),
        "container_port_key": "port",
        "engine_port": cmd["port"],
        "mounts": mounts,
        "mounts_declared": "mounts" in doc,
        "env": env,
        "metadata_gpu": None,
        "hf_token_set": any(k in env for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")),
        **_model_fields(model_ref),
    }
    deployment = _confirm_online(_deployment(deployment), online)
    return {
        "image": doc.get("image"),
        "instance": doc.get("instance"),
        "gpu": doc.get("gpu"),
        "gpu_count": doc.get("gpu_count"),
        "chip": doc.get("chip"),
        "engine_args": engine_args,
        "model_path": local,
        "deployment": deployment,
    }


def _load_cmd(serve_cmd: str, online: bool) -> dict[str, Any]:
    cmd = parse_serve_command(serve_cmd, "--serve-cmd")
    if cmd["launcher"] is None:
        raise ConfigError(f"--serve-cmd: no vllm / sglang / llama-server command found in {serve_cmd!r}")
    env = dict(cmd["env"])
    # the command runs here: the local environment counts for the hub token
    token_here = any(os.environ.get(k) for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"))
    deployment = {
        "source": "--serve-cmd",
        "source_kind": "serve-cmd",
        "launcher": cmd["launcher"],
        "command": serve_cmd,
        "command_key": "--serve-cmd",
        "argv": cmd["argv"],
        "engine_flags": tuple(cmd["flags"]),
        "container_port": None,
        "engine_port": cmd["port"],
        "mounts": [],
        "env": env,
        "metadata_gpu": None,
        "hf_token_set": token_here or any(k in env for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")),
        **_model_fields(cmd["model"]),
    }
    deployment = _confirm_online(_deployment(deployment), online)
    local = cmd["model"] if cmd["model"] and os.path.isdir(cmd["model"]) else None
    return {"image": None, "instance": None, "gpu": None, "gpu_count": None, "chip": None,
            "engine_args": cmd["engine_args"], "model_path": local, "deployment": deployment}


def _deployment(fields: dict[str, Any]) -> Deployment:
    seqs = {k: tuple(v) for k, v in fields.items() if k in ("argv", "mounts", "instance_types") and v is not None}
    return Deployment(**{**fields, **seqs})


def _confirm_online(deployment: Deployment, online: bool) -> Deployment:
    """With --online, ask the hub (metadata only) whether the repo is gated."""
    repo = deployment.hub_id
    if not online or not repo:
        return deployment
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo, timeout=10)
        return replace(deployment, hub_gated=info.gated or False)  # False | "auto" | "manual"
    except Exception as exc:  # noqa: BLE001 - offline, 404, gated listing... recorded, never fatal
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        return replace(deployment, hub_error=why)


def load(service: str | None = None, deploy: str | None = None, serve_cmd: str | None = None,
         online: bool = False) -> dict[str, Any]:
    """Read one deployment spec. Keys: image, instance, gpu, gpu_count, chip (any may be None),
    engine_args (underscored vLLM names), model_path (local folder, when it can be known) and deployment
    (for Target.deployment). Several sources: the service JSON wins, then the deploy file; --serve-cmd
    overrides their command."""
    given = [x for x in (service, deploy, serve_cmd) if x]
    if not given:
        raise ConfigError("no deployment spec given")
    spec: dict[str, Any] | None = None
    if service:
        spec = _load_service(service, online)
    if deploy:
        other = _load_deploy(deploy, online)
        spec = other if spec is None else _merge(spec, other)
    if serve_cmd:
        other = _load_cmd(serve_cmd, online)
        if spec is None:
            spec = other
        else:
            cmd: Deployment = other["deployment"]
            dep = replace(
                spec["deployment"], launcher=cmd.launcher, command=cmd.command, command_key=cmd.command_key,
                argv=cmd.argv, engine_flags=cmd.engine_flags, engine_port=cmd.engine_port, model_ref=cmd.model_ref,
                model_ref_kind=cmd.model_ref_kind, is_hub_id=cmd.is_hub_id, hub_id=cmd.hub_id,
                env={**spec["deployment"].env, **cmd.env},
            )
            spec = {**spec, "engine_args": {**spec["engine_args"], **other["engine_args"]}, "deployment": dep,
                    "model_path": other["model_path"] or spec.get("model_path")}
    assert spec is not None
    return spec


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, val in extra.items():
        if key == "engine_args":
            out[key] = {**val, **base[key]}
        elif key == "deployment":
            out[key] = base[key]  # the service JSON describes the deployment; the deploy file adds flags
        elif out.get(key) is None:
            out[key] = val
    return out


__all__ = ["classify_model_ref", "deploy_schema", "hub_id", "load", "parse_serve_command"]
