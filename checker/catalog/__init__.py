"""The catalogs: GPUs, instance types and serving images, as package data plus optional user files.

``load()`` reads the built-in ``gpus.yaml``, ``instances.yaml`` and ``images.yaml`` (cached: every run
pays for it) and, when given, user catalog files that add or override entries by name. User files are
validated against ``schema.json``; a bad one raises :class:`modelcheck.errors.CatalogError` naming the file
and the key path. Lookups forgive case, dashes, spaces and vendor words ("NVIDIA A10G", "Tesla T4",
"h100-80gb"), and unknown names raise :class:`modelcheck.errors.UsageError` with a "did you mean".
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import modelcheck.record as _record
from modelcheck.errors import CatalogError, UsageError
from modelcheck.model import GPU, ImageFamily, Instance
from modelcheck.record import record

__all__ = ["BUILTIN_FILES", "CHIPS", "Catalog", "load", "normalize_gpu_name", "schema", "validate"]

BUILTIN_FILES = ("gpus.yaml", "instances.yaml", "images.yaml")
CHIPS = ("GPU", "CPU", "PPU", "XPU")

_MAX_USER_FILE = 8 * 1024 * 1024  # a catalog is text; refuse to slurp anything bigger

# Vendor and product-line words users add or leave out ("NVIDIA GeForce RTX 4090", "Tesla T4").
_GPU_NOISE = re.compile(r"\b(nvidia|geforce|tesla|gpu)\b")
_SIZE_VCPU = re.compile(r"^(\d*)xlarge$")


@functools.lru_cache(maxsize=1024)  # 240 catalog instances name ~35 GPUs
def normalize_gpu_name(name: str) -> str:
    """'NVIDIA A10G' -> 'a10g'; 'Tesla T4' -> 't4'; 'h100-80gb' -> 'h10080gb'."""
    s = _GPU_NOISE.sub(" ", name.lower().replace("_", " "))
    return re.sub(r"[^a-z0-9]", "", s)


def _norm_key(name: str) -> str:
    return name.strip().lower()


def _keypath(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema every catalog file (built-in or user) must satisfy."""
    # a plain path next to this module: importlib.resources would pull tempfile & co. into every run
    return json.loads((Path(__file__).resolve().parent / "schema.json").read_text(encoding="utf-8"))


def validate(doc: Any, origin: str) -> None:
    """Raise CatalogError naming ``origin`` and the key path of the first schema violation."""
    import jsonschema  # lazy: ~0.1 s to import, only paid when a user catalog is given (or in tests)

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors)
    path = list(err.absolute_path)
    where = _keypath(path)
    name = _entry_name(doc, path)
    msg = err.message
    if err.validator == "anyOf" and path and path[0] == "gpus":
        msg = "a GPU needs memory_bytes or memory_gib"
    elif err.validator == "additionalProperties":
        msg = msg.replace("Additional properties are not allowed", "unknown key")
    raise CatalogError(f"invalid catalog file {origin}: {where}{name}: {msg}")


def _entry_name(doc: Any, path: list[Any]) -> str:
    if len(path) >= 2 and isinstance(doc, dict) and isinstance(path[1], int):
        items = doc.get(path[0])
        if isinstance(items, list) and path[1] < len(items) and isinstance(items[path[1]], dict):
            name = items[path[1]].get("name") or items[path[1]].get("pattern")
            if isinstance(name, str):
                return f" ({name})"
    return ""


def _read_builtin(name: str) -> dict[str, Any]:
    # compiled JSON twin (modelcheck.datafile): parsing the YAML on every run would cost ~0.1 s
    from modelcheck import datafile

    return datafile.load(name)


def _read_user(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise CatalogError(f"invalid catalog file {path}: not a regular file")
        if size > _MAX_USER_FILE:
            raise CatalogError(f"invalid catalog file {path}: {size} bytes is too large for a catalog")
        text = p.read_text(encoding="utf-8")
    except CatalogError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc.__class__.__name__}: {exc}") from None
    import yaml
    from modelcheck.facts.jsonfile import load_yaml_bounded, yaml_error_at

    try:
        doc = load_yaml_bounded(text)  # safe loader; alias bombs are refused
    except RecursionError:
        raise CatalogError(f"invalid catalog file {path}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        pos, problem = yaml_error_at(exc)
        at = f" (line {pos[0]}, column {pos[1]})" if pos else ""
        raise CatalogError(f"invalid catalog file {path}: not valid YAML{at}: {problem}") from None
    if doc is None:
        doc = {}
    # Chips are labels users type in any case ("gpu"); accept that before the schema insists on GPU.
    if isinstance(doc, dict):
        for section in ("instances", "instance_patterns"):
            for item in doc.get(section) or ():
                if isinstance(item, dict) and isinstance(item.get("chip"), str):
                    item["chip"] = item["chip"].upper()
    validate(doc, path)
    return doc


@record(frozen=False)
class _Pattern:
    regex: re.Pattern[str]
    chip: str
    cloud: str
    family: str | None
    source: str | None


class Catalog:
    """GPUs, instances and image families; build with :func:`load`. Read-only after construction."""

    __slots__ = (
        "_families",
        "_gpu_index",
        "_gpu_raw",
        "_gpus",
        "_image_index",
        "_images",
        "_inst_origin",
        "_inst_raw",
        "_instances",
        "_patterns",
        "files",
        "sources",
    )

    def __init__(self) -> None:
        self._gpus: dict[str, GPU] = {}
        self._gpu_raw: dict[str, dict[str, Any]] = {}
        self._gpu_index: dict[str, str] = {}  # normalised name/alias -> canonical name
        # lower-case name -> Instance, built on first use (a check looks up one of ~240 types)
        self._instances: dict[str, Instance] = {}
        self._inst_raw: dict[str, dict[str, Any]] = {}
        self._inst_origin: dict[str, tuple[str, int]] = {}
        self._patterns: list[_Pattern] = []
        self._families: dict[str, list[Instance]] | None = None  # lower-case family -> its types (on first use)
        self._images: dict[str, dict[str, Any]] = {}
        self._image_index: dict[str, str] = {}  # lower-case alias -> family
        self.sources: dict[str, str] = {}
        self.files: tuple[str, ...] = ()

    # -- GPUs ------------------------------------------------------------------------------------
    def find_gpu(self, name: str) -> GPU | None:
        canonical = self._gpu_index.get(normalize_gpu_name(name)) if name else None
        return self._gpus[canonical] if canonical else None

    def gpu(self, name: str) -> GPU:
        """The GPU called ``name`` (any alias, any case); UsageError with suggestions when unknown."""
        found = self.find_gpu(name)
        if found is None:
            raise UsageError(_unknown("GPU", name, self.suggest("gpu", name)))
        return found

    def gpu_info(self, name: str) -> dict[str, Any]:
        """The catalog entry behind ``gpu(name)``: nvml_total_mib, memory_source, memory_note, confidence..."""
        return copy.deepcopy(self._gpu_raw[self.gpu(name).name])

    def gpus(self) -> list[GPU]:
        return sorted(self._gpus.values(), key=lambda g: g.name)

    # -- instances -------------------------------------------------------------------------------
    def find_instance(self, name: str) -> Instance | None:
        if not name:
            return None
        key = _norm_key(name)
        inst = self._instance(key)
        if inst is not None:
            return inst
        inferred = self._from_family(name.strip(), key)
        if inferred is not None:
            return inferred[0]
        for pat in self._patterns:
            if pat.regex.match(key):
                return self._from_pattern(name.strip(), key, pat)
        return None

    def instance(self, name: str) -> Instance:
        """The instance type ``name``; UsageError "unknown instance ...; did you mean ...?" when unknown."""
        found = self.find_instance(name)
        if found is None:
            raise UsageError(_unknown("instance", name, self.suggest("instance", name)))
        return found

    def instance_info(self, name: str) -> dict[str, Any]:
        """The raw catalog entry (confidence, illustrative, gpu_fraction, note...); {} for pattern matches;
        for a type resolved from its family: inferred_from="family", family, gpus_from, members, confidence."""
        key = _norm_key(name)
        if key in self._inst_raw:
            return copy.deepcopy(self._inst_raw[key])
        inferred = self._from_family(name.strip(), key)
        return inferred[1] if inferred is not None else {}

    def instance_family(self, name: str) -> str | None:
        """The catalog family an instance type name belongs to ('ecs.gn7i-c4g1.xlarge' -> 'gn7i'), or None."""
        key = _norm_key(name)
        if key in self._inst_raw:
            return self._instance(key).family  # type: ignore[union-attr]
        fam = _family_in_name(key, self._family_index())
        return fam

    def _instance(self, key: str) -> Instance | None:
        """The catalog type ``key`` (lower-case name), built from its entry on first use."""
        inst = self._instances.get(key)
        if inst is None and key in self._inst_raw:
            origin, i = self._inst_origin[key]
            inst = self._instances[key] = _instance_from(self, self._inst_raw[key], origin, i)
        return inst

    def _all_instances(self) -> list[Instance]:
        return [self._instance(key) for key in self._inst_raw]  # type: ignore[misc]

    def _family_index(self) -> dict[str, list[Instance]]:
        """Family -> its catalog types; families resolve unlisted sizes, only where the type name carries the
        family (ecs.gn7i-..., g5.x)."""
        if self._families is None:
            families: dict[str, list[Instance]] = {}
            for key in self._inst_raw:
                inst = self._instance(key)
                if inst.family and _family_in_name(key, {inst.family.lower(): []}) == inst.family.lower():  # type: ignore[union-attr]
                    families.setdefault(inst.family.lower(), []).append(inst)  # type: ignore[union-attr]
            self._families = families
        return self._families

    def _from_family(self, name: str, key: str) -> tuple[Instance, dict[str, Any]] | None:
        """An instance type we do not list whose family we do: GPU model and chip from the family's types,
        GPU count from the name (Alibaba '-4x' multiplier, or 'c<vCPU per GPU>g1' with the size's vCPUs),
        else the family's smallest count. (Alibaba ECS naming, instances_alibaba.yaml; ecs_gpu_families_en.)"""
        families = self._family_index()
        fam = _family_in_name(key, families)
        if fam is None:
            return None
        members = families[fam]
        gpus = {m.gpu.name if m.gpu else None for m in members}
        chips = {m.chip for m in members}
        if len(gpus) != 1 or len(chips) != 1:
            return None  # vGPU slices or mixed families: the name does not say which
        gpu = members[0].gpu
        chip = members[0].chip
        vcpu = _size_vcpu(key)
        count, how = 0, "no GPU"
        if gpu is not None:
            middle = key.split(".")[1] if key.startswith(("ecs.", "ml.")) else key.split(".")[0]
            mult = re.search(r"-(\d+)x$", middle)
            per = re.search(r"-c(\d+)g1$", middle)
            if mult:
                count, how = int(mult.group(1)), f"the '-{mult.group(1)}x' multiplier in the name"
            elif per and vcpu and vcpu % int(per.group(1)) == 0 and vcpu >= int(per.group(1)):
                count = vcpu // int(per.group(1))
                how = f"{vcpu} vCPUs at {per.group(1)} vCPUs per GPU ('c{per.group(1)}g1' in the name)"
            else:
                count = min(m.gpu_count for m in members)
                how = f"assumed: the smallest {fam} type has {count}"
        cloud = members[0].cloud
        shown = ", ".join(m.name for m in sorted(members, key=lambda m: (m.gpu_count, m.vcpu or 0))[:3])
        gpu_words = f"{count}x {gpu.name}" if gpu is not None else chip
        inst = Instance(
            name=name,
            cloud=cloud,
            chip=chip,
            gpu=gpu,
            gpu_count=count,
            vcpu=vcpu,
            mem_gib=None,
            family=fam,
            source=f"not a catalog entry: {gpu_words} inferred from the {fam} family ({shown})"
            + (f"; GPU count from {how}" if gpu is not None else ""),
        )
        info = {
            "inferred_from": "family",
            "family": fam,
            "gpu": gpu.name if gpu is not None else None,
            "gpus": count,
            "gpus_from": how,
            "members": [m.name for m in members],
            "confidence": "low",
        }
        return inst, info

    def instances(self, cloud: str | None = None, chip: str | None = None) -> list[Instance]:
        out = [
            i
            for i in self._all_instances()
            if (cloud is None or i.cloud == cloud.lower()) and (chip is None or i.chip == chip.upper())
        ]
        return sorted(out, key=lambda i: i.name)

    @staticmethod
    def _from_pattern(name: str, key: str, pat: _Pattern) -> Instance:
        parts = key.split(".")
        vcpu = None
        if len(parts) == 3:
            if parts[2] == "large":
                vcpu = 2
            elif m := _SIZE_VCPU.match(parts[2]):
                vcpu = 4 * int(m.group(1) or 1)
        family = pat.family or (parts[1] if len(parts) >= 2 else None)
        source = f"{pat.source} (matched by name pattern; not a catalog entry)" if pat.source else None
        return Instance(
            name=name,
            cloud=pat.cloud,
            chip=pat.chip,
            gpu=None,
            gpu_count=0,
            vcpu=vcpu,
            family=family,
            source=source,
        )

    # -- images ----------------------------------------------------------------------------------
    def image_family_name(self, name: str) -> str | None:
        """Canonical family for an engine name or repository alias ('vllm/vllm-openai' -> 'vllm')."""
        return self._image_index.get(_norm_key(name)) if name else None

    def find_image_family(self, name: str) -> dict[str, Any] | None:
        family = self.image_family_name(name)
        if family is None:
            return None
        return {"name": family, **copy.deepcopy(self._images[family])}

    def image_family(self, engine: str) -> dict[str, Any]:
        """The family entry (a copy, with its "name"); UsageError with suggestions when unknown."""
        found = self.find_image_family(engine)
        if found is None:
            raise UsageError(_unknown("image", engine, self.suggest("image", engine)))
        return found

    def image_families(self) -> list[str]:
        return sorted(self._images)

    def find_family(self, name: str) -> ImageFamily | None:
        """The family an engine name or repository alias belongs to, typed for the rules (None: unknown)."""
        family = self.image_family_name(name)
        if family is None:
            return None
        e = self._images[family]

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in e.get(key) or ())

        return ImageFamily(
            name=family, category=str(e.get("category") or "other"), chip_types=strings("chip_types"),
            default_chip=e.get("default_chip"),
            accepts_kinds=strings("accepts_kinds") if "accepts_kinds" in e else None,
            accepts_kinds_experimental=strings("accepts_kinds_experimental"),
            accepts_formats=strings("accepts_formats"),
            latest_known=str(e["latest_known"]) if e.get("latest_known") else None,
            versions=strings("versions"), confidence=e.get("confidence"),
        )

    def families(self) -> list[ImageFamily]:
        return [f for name in self.image_families() if (f := self.find_family(name)) is not None]

    def newest_version(self, family: str) -> str | None:
        """The newest release the catalog knows for an image family (``latest_known``), or None."""
        name = self.image_family_name(family)
        entry = self._images.get(name) if name else None
        return str(entry["latest_known"]) if entry and entry.get("latest_known") else None

    def close_image_name(self, name: str, cutoff: float = 0.8) -> str | None:
        """A known engine name or repository alias ``name`` is a likely typo of ('vlm' -> 'vllm'), or None."""
        import difflib  # only for names we do not know

        key = _norm_key(name)
        if len(key) < 3 or key in self._image_index:
            return None
        for hit in difflib.get_close_matches(key, list(self._image_index), n=3, cutoff=cutoff):
            # a slip (vlm, sgalng, olama), not another name that shares letters (serving / tfserving, llm / vllm)
            if key not in hit and hit not in key and _edit_distance(key, hit) <= 2:
                return hit
        return None

    # -- suggestions -----------------------------------------------------------------------------
    def suggest(self, kind: str, name: str, n: int = 3) -> list[str]:
        """'did you mean' candidates for kind "gpu", "instance" or "image" (canonical names)."""
        import difflib  # only when a name is unknown: keeps it off the default path

        name = (name or "").strip()
        if kind == "gpu":
            key = normalize_gpu_name(name)
            hits = difflib.get_close_matches(key, list(self._gpu_index), n=n * 4, cutoff=0.6)
            return _dedup((self._gpu_index[h] for h in hits), n)
        if kind == "instance":
            key = name.lower()
            names = list(self._inst_raw)
            family = _instance_family(key)
            same = [k for k in names if family and _instance_family(k) == family]
            ratio = {k: difflib.SequenceMatcher(None, key, k).ratio() for k in (same or names)}
            if same and max(ratio.values()) < 0.85:
                # Not a near-typo of one size: offer the family's sizes in catalog order (smallest first).
                hits = same
            else:
                hits = sorted(
                    (k for k in ratio if ratio[k] >= (0.0 if same else 0.6)), key=lambda k: -ratio[k]
                )
            return _dedup((self._inst_raw[h]["name"] for h in hits), n)
        if kind == "image":
            hits = difflib.get_close_matches(name.lower(), list(self._image_index), n=n * 4, cutoff=0.6)
            return _dedup((self._image_index[h] for h in hits), n)
        raise ValueError(f"unknown suggestion kind {kind!r} (gpu, instance, image)")


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _family_in_name(key: str, families: dict[str, list[Instance]]) -> str | None:
    """The longest catalog family the type name is built on: 'ecs.gn8v-tee-8x.16xlarge' -> 'gn8v-tee'."""
    parts = key.split(".")
    if len(parts) < 2:
        return None
    middle = parts[1] if parts[0] in ("ecs", "ml") and len(parts) >= 3 else parts[0]
    best = None
    for fam in families:
        if (middle == fam or middle.startswith(fam + "-")) and (best is None or len(fam) > len(best)):
            best = fam
    if best is None or not _well_formed(parts, middle[len(best) :]):
        return None  # a slip in the size ("2xlarg") is a typo to report, not a new size to infer
    return best


_ECS_SUFFIX = re.compile(r"^(-c\d+g1|-\d+x)?$")
_SIZE = re.compile(r"^(large|\d*xlarge|metal(-\d+xl)?)$")
_ML_SIZE = re.compile(r"^(c\d+m\d+\.\d+-[a-z]+\d+|\d*xlarge-[a-z]+\d+)$")


def _well_formed(parts: list[str], suffix: str) -> bool:
    """A type name shaped like its cloud's names: ecs.<family>[-c<N>g1|-<N>x].<size>, <family>.<size>,
    ml.<family>.c<vCPU>m<GiB>.<n>-<gpu> (Alibaba ECS / PAI naming, instances_alibaba.yaml; EC2 naming)."""
    if parts[0] == "ecs":
        return len(parts) == 3 and bool(_ECS_SUFFIX.match(suffix)) and bool(_SIZE.match(parts[2]))
    if parts[0] == "ml":
        return not suffix and bool(_ML_SIZE.match(".".join(parts[2:])))
    return len(parts) == 2 and not suffix and bool(_SIZE.match(parts[1]))


def _size_vcpu(key: str) -> int | None:
    size = key.rsplit(".", 1)[-1]
    if size == "large":
        return 2
    m = _SIZE_VCPU.match(size)
    return 4 * int(m.group(1) or 1) if m else None


def _instance_family(key: str) -> str | None:
    parts = key.split(".")
    if len(parts) >= 2 and parts[0] in ("ecs", "ml"):
        return parts[1].split("-")[0] or None
    return parts[0].split("-")[0] if len(parts) > 1 else None


def _dedup(items: Iterable[str], n: int) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
        if len(out) == n:
            break
    return out


def _unknown(what: str, name: str, suggestions: list[str]) -> str:
    return f"unknown {what} {name!r}{_did_you_mean(suggestions)}"


def _did_you_mean(suggestions: list[str]) -> str:
    if not suggestions:
        return ""
    head = ", ".join(suggestions[:-1])
    return f"; did you mean {head + ' or ' if head else ''}{suggestions[-1]}?"


# -- building ------------------------------------------------------------------------------------


def _build(docs: list[tuple[str, dict[str, Any]]]) -> Catalog:
    cat = Catalog()
    gpu_raw: dict[str, tuple[str, int, dict[str, Any]]] = {}
    inst_raw: dict[str, tuple[str, int, dict[str, Any]]] = {}
    user_patterns: list[_Pattern] = []
    builtin_patterns: list[_Pattern] = []
    for origin, doc in docs:
        cat.sources.update(doc.get("sources") or {})
        for i, g in enumerate(doc.get("gpus") or ()):
            gpu_raw[g["name"]] = (origin, i, g)
        for i, inst in enumerate(doc.get("instances") or ()):
            inst_raw[_norm_key(inst["name"])] = (origin, i, inst)
        for i, p in enumerate(doc.get("instance_patterns") or ()):
            try:
                regex = re.compile(p["pattern"], re.IGNORECASE)
            except re.error as exc:
                raise CatalogError(
                    f"invalid catalog file {origin}: instance_patterns[{i}].pattern: {exc}"
                ) from None
            pat = _Pattern(regex, p["chip"], p.get("cloud", "user"), p.get("family"), p.get("source"))
            (builtin_patterns if origin in BUILTIN_FILES else user_patterns).append(pat)
        for family, entry in (doc.get("images") or {}).items():
            merged = {**cat._images.get(family, {}), **entry}  # user entries refine a family key by key
            cat._images[family] = merged

    for name, (_origin, _i, g) in gpu_raw.items():
        cat._gpus[name] = _gpu_from(g)
        cat._gpu_raw[name] = g
    # Canonical names win over aliases; later files win over earlier ones.
    for name, (_origin, _i, g) in gpu_raw.items():
        for alias in g.get("aliases") or ():
            cat._gpu_index[normalize_gpu_name(alias)] = name
    for name in gpu_raw:
        cat._gpu_index[normalize_gpu_name(name)] = name

    for key, (origin, i, e) in inst_raw.items():
        cat._inst_raw[key] = e
        cat._inst_origin[key] = (origin, i)
        if origin not in BUILTIN_FILES:
            cat._instance(key)  # a user's entry is checked now (unknown GPU...); built-ins by tests/test_catalog.py
    cat._patterns = user_patterns + builtin_patterns  # a user's pattern may claim a family first

    for family, entry in cat._images.items():
        for alias in (family, *(entry.get("aliases") or ())):
            cat._image_index.setdefault(_norm_key(alias), family)
    cat.files = tuple(origin for origin, _ in docs)
    return cat


def _gpu_from(g: dict[str, Any]) -> GPU:
    mem = g.get("memory_bytes") or round(float(g["memory_gib"]) * 2**30)
    nominal = g.get("nominal_gb")
    return GPU(
        name=g["name"],
        memory_bytes=int(mem),
        nominal_gb=float(nominal) if nominal is not None else round(mem / 1e9, 1),
        compute_capability=g["compute_capability"],
        bf16=bool(g["bf16"]),
        fp8=bool(g["fp8"]),
        fp4=bool(g.get("fp4", False)),
        arch=g.get("arch"),
        source=g.get("source"),
        memory_source=g.get("memory_source"),
    )


def _instance_from(cat: Catalog, e: dict[str, Any], origin: str, i: int) -> Instance:
    gpu = None
    gpu_name = e.get("gpu")
    count = e.get("gpus")
    if gpu_name:
        gpu = cat.find_gpu(gpu_name)
        if gpu is None:
            hint = _did_you_mean(cat.suggest("gpu", gpu_name))
            raise CatalogError(
                f"invalid catalog file {origin}: instances[{i}].gpu ({e['name']}): unknown GPU {gpu_name!r}{hint}"
            )
        if count is None:
            count = 1
        if "gpu_memory_gib" in e:  # a vGPU slice: the card's capability, the slice's memory
            slice_gib = float(e["gpu_memory_gib"])
            gpu = _record.replace(
                gpu,
                name=f"{gpu.name} vGPU {slice_gib:g}GB",
                memory_bytes=int(slice_gib * 2**30),
                nominal_gb=slice_gib,
                memory_source="vgpu-slice",
            )
    if e["chip"] == "GPU" and gpu is not None and not count:
        raise CatalogError(
            f"invalid catalog file {origin}: instances[{i}].gpus ({e['name']}): a GPU instance needs gpus >= 1"
        )
    if e["chip"] != "GPU" and gpu is not None:
        raise CatalogError(
            f"invalid catalog file {origin}: instances[{i}].gpu ({e['name']}): chip {e['chip']} cannot carry an NVIDIA GPU"
        )
    source = e.get("source")
    if e.get("illustrative") and source:
        source = f"{source} (illustrative)"
    mem = e.get("mem_gib")
    return Instance(
        name=e["name"],
        cloud=e.get("cloud", "user"),
        chip=e["chip"],
        gpu=gpu,
        gpu_count=int(count or 0) if gpu is not None else 0,
        vcpu=e.get("vcpu"),
        mem_gib=float(mem) if mem is not None else None,
        family=e.get("family"),
        source=source,
    )


@functools.lru_cache(maxsize=1)
def _builtin_docs() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((name, _read_builtin(name)) for name in BUILTIN_FILES)


@functools.lru_cache(maxsize=1)
def _builtin_catalog() -> Catalog:
    # Built-ins are validated by tests/test_catalog.py, not on every run (jsonschema costs ~0.1 s).
    return _build(list(_builtin_docs()))


def load(user_files: Iterable[str] = ()) -> Catalog:
    """The built-in catalog (cached), extended and overridden by ``user_files`` in order."""
    files = tuple(str(f) for f in user_files)
    if not files:
        return _builtin_catalog()
    docs = list(copy.deepcopy(_builtin_docs())) + [(f, _read_user(f)) for f in files]
    return _build(docs)
