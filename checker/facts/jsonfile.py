"""Bounded readers for the small text files of a model folder: JSON, YAML (incl. hyperpyyaml tags such
as CosyVoice's ``!new:``), README front matter. Size-capped; bad content becomes a FactError."""

from __future__ import annotations

import json
from typing import Any

from modelcheck.model import FactError

JSON_LIMIT = 16 * 1024 * 1024
TOKENIZER_PARSE_LIMIT = 1 * 1024 * 1024  # tokenizer.json is usually 7-20 MB: record it, parse only tiny ones
YAML_LIMIT = 2 * 1024 * 1024
TEXT_LIMIT = 256 * 1024
MAX_DEPTH = 64
# YAML aliases are shared by reference when loaded, but every reader that walks the result (depth check,
# schema validation, JSON output) pays for each use: "billion laughs" is 100 bytes that expand to 10^9 nodes.
MAX_YAML_NODES = 1_000_000

# Configs we always want, wherever they sit in the first folder level.
KNOWN_JSON = {
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "adapter_config.json",
    "model_index.json",
    "preprocessor_config.json",
    "processor_config.json",
    "quantize_config.json",
    "quant_config.json",
    "params.json",
    "scheduler_config.json",
    "added_tokens.json",
    "chat_template.json",
    "sentence_bert_config.json",
    "modules.json",
    "configuration.json",
    "hf_quant_config.json",
    "video_preprocessor_config.json",
}
TEXT_NAMES = {"config.pbtxt", "Modelfile", "chat_template.jinja", "MLmodel", "requirements.txt"}


def _depth_ok(value: Any) -> bool:
    """No container nested deeper than MAX_DEPTH (recursive readers downstream would hit the C stack).
    Only containers are visited: a 405B weight map's 1,100 file names cost nothing."""
    if not isinstance(value, (dict, list)):
        return True
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            return False
        for x in v.values() if isinstance(v, dict) else v:
            if isinstance(x, (dict, list)):
                stack.append((x, d + 1))
    return True


def _read(abs_path: str, rel: str, size: int, limit: int, kind: str) -> tuple[bytes | None, FactError | None]:
    if size > limit:
        return None, FactError(
            kind, rel, f"{size} bytes is larger than the {limit // (1024 * 1024)} MB read limit"
        )
    try:
        with open(abs_path, "rb") as f:
            return f.read(limit + 1), None
    except OSError as e:
        return None, FactError("unreadable", rel, f"cannot read: {e.strerror or e}")


def read_json(abs_path: str, rel: str, size: int, limit: int = JSON_LIMIT) -> tuple[Any, FactError | None]:
    data, err = _read(abs_path, rel, size, limit, "json")
    if err:
        return None, err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, FactError("json", rel, "not valid UTF-8")
    if not text.strip():
        return None, FactError("json", rel, "file is empty")
    try:
        value = json.loads(text)
    except RecursionError:
        return None, FactError("json", rel, f"nested deeper than {MAX_DEPTH} levels")
    except ValueError as e:
        return None, FactError("json", rel, f"invalid JSON: {e}")
    if not _depth_ok(value):
        return None, FactError("json", rel, f"nested deeper than {MAX_DEPTH} levels")
    return value, None


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that keeps unknown tags (hyperpyyaml ``!new:``, ``!name:``, ``!ref``) as data."""

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            value: Any = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node)
        return {"!tag": "!" + suffix, "value": value}

    Loader.add_multi_constructor("!", tagged)
    Loader.add_multi_constructor("tag:", tagged)
    return Loader


def _expanded_size_ok(root: Any, limit: int) -> bool:
    """Whether the composed YAML node graph stays under ``limit`` nodes with every alias expanded.

    Linear in the graph (sizes memoised per node); a node that refers to itself counts once."""
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [x for pair in node.value for x in pair]
        else:
            sizes[id(node)] = 1
            continue
        if done:
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            if total > limit:
                return False
            sizes[id(node)] = total
        elif id(node) not in sizes:
            sizes[id(node)] = 0  # in progress: a recursive alias adds nothing
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return True


def load_yaml_bounded(text: str, loader: Any = None, *, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.load`` with a bound on the alias-expanded size; raises ``yaml.YAMLError`` past it.

    Callers keep their own ``except yaml.YAMLError`` (and RecursionError for deep nesting)."""
    import yaml

    if loader is None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    ld = loader(text)
    try:
        node = ld.get_single_node()
        if node is None:
            return None
        if not _expanded_size_ok(node, max_nodes):
            raise yaml.YAMLError(f"aliases expand to more than {max_nodes:,} nodes (a YAML alias bomb?)")
        return ld.construct_document(node)
    finally:
        ld.dispose()


def read_yaml(abs_path: str, rel: str, size: int, limit: int = YAML_LIMIT) -> tuple[Any, FactError | None]:
    data, err = _read(abs_path, rel, size, limit, "yaml")
    if err:
        return None, err
    return parse_yaml_text(data.decode("utf-8", "replace"), rel)


def yaml_error_at(exc: Exception) -> tuple[tuple[int, int] | None, str]:
    """Where a ``yaml.YAMLError`` stopped the parser, as 1-based (line, column) or None, and its problem
    in one line: what catalog and deployment files show their users."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ((mark.line + 1, mark.column + 1) if mark else None), problem


def parse_yaml_text(text: str, rel: str) -> tuple[Any, FactError | None]:
    import yaml

    try:
        value = load_yaml_bounded(text, _yaml_loader())
    except RecursionError:
        return None, FactError("yaml", rel, "nested too deeply")
    except yaml.YAMLError as e:
        return None, FactError("yaml", rel, f"invalid YAML: {str(e).splitlines()[0][:160]}")
    if not _depth_ok(value):
        return None, FactError("yaml", rel, f"nested deeper than {MAX_DEPTH} levels")
    return value, None


def read_text(
    abs_path: str, rel: str, size: int, limit: int = TEXT_LIMIT
) -> tuple[str | None, FactError | None]:
    """First ``limit`` bytes of a text file (decoded with replacement)."""
    try:
        with open(abs_path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace"), None
    except OSError as e:
        return None, FactError("unreadable", rel, f"cannot read: {e.strerror or e}")


def front_matter(text: str) -> str | None:
    """The YAML block between the leading ``---`` lines of a model card, if any."""
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    return text[3:end].strip("\n") if end != -1 else None
