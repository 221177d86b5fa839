"""What the model is deployed to: image references as users write them, instances, GPUs, the chip.

``parse_image`` understands bare engine names (``vllm``, ``sd-webui``), PAI-EAS tags (``vllm:0.14.0-gpu``,
``vllm:0.13.0rc2.a8ec486.20260305pai-gpu``, ``comfyui:2.2-api``), full registry URIs (registry and region
recorded), Docker Hub / GHCR / NGC names (``vllm/vllm-openai:v0.8.4``, ``nvcr.io/nvidia/tritonserver:24.08-py3``)
and ``@sha256:`` digests. An engine we do not know is not an error (``ImageRef(known=False)``; the IMG rules
warn); a reference that is not an image reference at all is a UsageError.

``resolve`` combines --image, --chip, --instance (or ``local``), --gpu / --gpu-count and engine args into a
``Target``. Decisions:

- ``--gpu`` together with ``--instance``: they must agree (same GPU model); a different model is a
  UsageError, because we cannot know which one the user means.
- ``--gpu-count`` with ``--instance``: at most the instance's count; fewer means "use N of its GPUs".
- effective chip: ``--chip`` > the instance's chip > the image tag's chip (or its family default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import modelcheck.record as _record
from modelcheck.errors import UsageError
from modelcheck.model import ImageRef, Instance, Target

__all__ = ["CHIPS", "normalize_chip", "parse_engine", "parse_image", "resolve"]

CHIPS = ("GPU", "CPU", "PPU", "XPU")
_CHIP_SUFFIX = {"gpu": "GPU", "cpu": "CPU", "ppu": "PPU", "xpu": "XPU"}
# Tag tokens that name a CUDA build; and accelerators that are neither NVIDIA GPU nor an EAS chip label.
_CUDA_TOKEN = re.compile(r"^(cu\d+|cuda[\d.]*|cudnn[\d.]*|cuda\d+\.\d+(\.\d+)?)$")
_OTHER_ACCEL = {
    "rocm",
    "vulkan",
    "musa",
    "sycl",
    "intel",
    "openvino",
    "cann",
    "ascend",
    "npu",
    "hpu",
    "neuron",
}
# Docker reference grammar, lower-cased and a little lenient (we accept uppercase input).
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_REGISTRY = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d+)?$")
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}$")
_REGION = re.compile(r"^(?:cn|ap|us|eu|me|sa|af|ca|il|mx|na|jp|ja|ko|in)-[a-z]+(?:-[a-z0-9]+)?$")
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)((?:rc|alpha|beta|post|dev|a|b)\d*)?([.+_].*)?$")


def normalize_chip(value: str) -> str:
    """'gpu' -> 'GPU'; anything other than GPU/CPU/PPU/XPU is a UsageError."""
    chip = str(value).strip().upper()
    if chip not in CHIPS:
        raise UsageError(f"unknown chip {value!r}; use one of GPU, CPU, PPU, XPU")
    return chip


def _bad(ref: str, why: str) -> UsageError:
    return UsageError(f"invalid image reference {ref!r}: {why}")


def _split_ref(ref: str) -> tuple[str | None, list[str], str | None, str | None]:
    """-> (registry, repository path components, tag, digest), validated, lower-case."""
    s = ref.strip()
    if s.lower().startswith("docker://"):
        s = s[len("docker://") :]
    if "://" in s:
        raise _bad(ref, "a URL, not an image reference (write registry/name:tag)")
    if any(c.isspace() for c in s):
        raise _bad(ref, "contains whitespace")
    s = s.lower()
    digest = None
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST.match(digest):
            raise _bad(ref, f"digest {digest!r} is not algorithm:hex (e.g. sha256:<64 hex digits>)")
    tag = None
    colon = s.rfind(":")
    if colon > s.rfind("/"):
        s, tag = s[:colon], s[colon + 1 :]
        if not _TAG.match(tag):
            raise _bad(ref, f"tag {tag!r} is empty or has characters a tag cannot have")
    parts = s.split("/")
    registry = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
        if not _REGISTRY.match(registry):
            raise _bad(ref, f"registry {registry!r} is not a host name")
    if not parts or not all(_REPO_COMPONENT.match(p) for p in parts):
        raise _bad(ref, "the name must be lowercase letters, digits and . _ - separated by /")
    return registry, parts, tag, digest


def _region(registry: str | None) -> str | None:
    if not registry:
        return None
    for label in registry.split(":")[0].split("."):
        if _REGION.match(label):
            return label
    return None


def _engine(catalog: Any, parts: list[str]) -> tuple[str | None, str | None, bool]:
    """-> (family, chip named in the image *name* like 'vllm-gpu', exact): exact=False if only a token matched."""
    repo = "/".join(parts)
    last = parts[-1]
    for cand in (repo, last):
        fam = catalog.image_family_name(cand)
        if fam:
            return fam, None, True
    head, _, suffix = last.rpartition("-")
    if head and suffix in _CHIP_SUFFIX:
        fam = catalog.image_family_name(head)
        if fam:
            return fam, _CHIP_SUFFIX[suffix], True
    # A custom image named after its engine ("my-vllm-server", "custom-sd-webui"): longest token run wins.
    tokens = [t for t in re.split(r"[-_]", last) if t]
    for size in range(len(tokens), 0, -1):
        for start in range(len(tokens) - size + 1):
            fam = catalog.image_family_name("-".join(tokens[start : start + size]))
            if fam:
                return fam, None, False
    return None, None, False


def _parse_tag(tag: str, family: dict[str, Any] | None) -> tuple[str | None, str | None, str | None, bool]:
    """-> (version, chip, variant, other_accelerator) from '0.13.0rc2.a8ec486.20260305pai-gpu', 'server-cuda'..."""
    tokens = tag.split("-")
    version = None
    rest: list[str] = []
    m = _VERSION.match(tokens[0])
    if m:
        version = m.group(1) + (m.group(2) or "")
        build = (m.group(3) or "").lstrip(".+_")
        if build:
            rest.append(build)
        tokens = tokens[1:]
    chip = None
    other_accel = False
    for t in tokens:
        if t in _CHIP_SUFFIX:
            chip = _CHIP_SUFFIX[t]
            continue
        rest.append(t)
        if _CUDA_TOKEN.match(t):
            chip = chip or "GPU"
        elif t in _OTHER_ACCEL:
            other_accel = True
    tag_chips = (family or {}).get("tag_chips") or {}
    joined = "-".join(t for t in tokens if t not in _CHIP_SUFFIX)
    if chip is None and joined in tag_chips:
        chip = tag_chips[joined]
    return version, chip, "-".join(rest) or None, other_accel


_ENGINE_DECL = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._/-]*?)\s*(?:(?:==|[:@=]|\s)\s*v?(\d[\w.+-]*))?\s*$")
_NO_VERSION_TAGS = {"latest", "nightly", "main"}


def parse_engine(value: str, catalog: Any) -> tuple[str, str | None]:
    """``--engine vllm:0.14.0`` (also ``vllm==0.14.0``, ``vllm@0.14.0``, ``vllm``) -> (family, version)."""
    m = _ENGINE_DECL.match(str(value or ""))
    if not m:
        raise UsageError(f"invalid --engine {value!r}: write ENGINE[:VERSION], e.g. vllm:0.14.0")
    name, version = m.group(1), m.group(2)
    family = catalog.image_family_name(name)
    if family is None:
        close = catalog.close_image_name(name, cutoff=0.6)
        hint = f"; did you mean {catalog.image_family_name(close)}?" if close else ""
        raise UsageError(f"unknown engine {name!r} in --engine {value!r}{hint}")
    if version is not None and _VERSION.match(version) is None:
        raise UsageError(f"invalid --engine {value!r}: {version!r} is not a version")
    return family, version


def _typo(raw: str, registry: str | None, parts: list[str], tag: str | None, digest: str | None, catalog: Any) -> None:
    """An image name one slip away from a known engine (vlm, sgalng, vllm-opnai) is a usage error."""
    last = parts[-1]
    head, _, suffix = last.rpartition("-")
    candidates = [(last, "")]
    if head and suffix in _CHIP_SUFFIX:
        candidates.append((head, "-" + suffix))
    for name, keep in candidates:
        alias = catalog.close_image_name(name)
        if alias is None:
            continue
        fixed = "/".join([*([registry] if registry else []), *parts[:-1], alias + keep])
        fixed += f":{tag}" if tag else ""
        fixed += f"@{digest}" if digest else ""
        family = catalog.image_family_name(alias)
        raise UsageError(
            f"unknown image {raw!r}: no engine is called {name!r}; did you mean {fixed}? "
            f"(for a private image built on {family}, declare it: --engine {family}:VERSION or --image-spec FILE)"
        )


def parse_image(ref: str, catalog: Any, *, engine: str | None = None) -> ImageRef:
    """Parse any image reference users write into an ImageRef (engine, version, chip, registry, region).

    ``engine`` (``--engine vllm:0.14.0``) declares the engine of a private image. An unknown name one slip
    away from a known engine is a UsageError with "did you mean". A known engine named without a version
    (``vllm-gpu``, ``:latest``) is taken as the newest release the catalog knows (``version_from``
    "newest-known")."""
    if ref is None or not str(ref).strip():
        raise UsageError("empty --image; give an image such as vllm:0.14.0-gpu")
    raw = str(ref)
    registry, parts, tag, digest = _split_ref(raw)
    family_name, name_chip, exact = _engine(catalog, parts)
    declared, declared_version = parse_engine(engine, catalog) if engine else (None, None)
    if declared and family_name and exact and declared != family_name:
        raise UsageError(f"--engine {engine} conflicts with --image {raw}, which is a {family_name} image")
    if declared:
        if family_name != declared:
            name_chip = None  # "my-vllm-gpu" named a chip for the engine we guessed, not the one declared
        family_name, exact = declared, True
    elif family_name is None or not exact:
        _typo(raw, registry, parts, tag, digest, catalog)  # 'vlm', 'sgalng', and 'vllm-opnai' (a token matched)
    family = catalog.find_image_family(family_name) if family_name else None

    version = variant = None
    chip = name_chip
    chip_from = "tag" if name_chip else None
    if tag and tag in _NO_VERSION_TAGS:
        tag_for_parse = None
    else:
        tag_for_parse = tag
    if tag_for_parse:
        version, tag_chip, variant, other_accel = _parse_tag(tag_for_parse, family)
        if other_accel and tag_chip is None:
            # A ROCm/Vulkan/... build: not the family's default chip, and no EAS chip label either.
            chip, chip_from = None, None
        elif tag_chip:
            chip, chip_from = tag_chip, "tag"
        elif chip is None and family and family.get("default_chip"):
            chip, chip_from = family["default_chip"], "default"
    elif chip is None and family and family.get("default_chip"):
        chip, chip_from = family["default_chip"], "default"

    version_from = "tag" if version else None
    if declared:
        if declared_version and version and not engine_named_by_image(family_name, parts, catalog):
            version = None  # a private image's own tag version says nothing about the engine's
        if declared_version:
            if version and _vt(version) != _vt(declared_version):
                raise UsageError(f"--engine {engine} conflicts with --image {raw}, which names version {version}")
            version, version_from = declared_version, "engine"
        elif version and not engine_named_by_image(family_name, parts, catalog):
            version, version_from = None, None
    if version is None and family_name and exact:
        newest = catalog.newest_version(family_name) if hasattr(catalog, "newest_version") else None
        if newest:
            version, version_from = newest, "newest-known"

    return ImageRef(
        raw=raw,
        engine=family_name or parts[-1],
        version=version,
        chip=chip,
        category=family["category"] if family else "other",
        variant=variant,
        registry=registry,
        region=_region(registry),
        known=bool(family_name) and exact,
        repository="/".join(parts),
        tag=tag,
        digest=digest,
        chip_from=chip_from,
        version_from=version_from,
        family=catalog.find_family(family_name) if family_name else None,
    )


def engine_named_by_image(family: str, parts: list[str], catalog: Any) -> bool:
    """Does the image's own name say ``family`` (so its tag is the engine's version)?"""
    fam, _chip, exact = _engine(catalog, parts)
    return fam == family and exact


def _vt(version: str) -> tuple[int, ...] | None:
    from modelcheck.model import version_tuple

    return version_tuple(version)


def _image_with_spec(image: str | ImageRef | None, spec: Mapping[str, Any], engine: str | None, catalog: Any) -> ImageRef:
    """--image-spec: the URI names the image when --image does not; the labels' engine/version declare
    the engine (unless --engine does) and the labels' chip wins over the tag's."""
    origin = spec.get("origin") or "the image spec"
    raw = image.raw if isinstance(image, ImageRef) else image
    raw = raw or spec.get("uri")
    decl = engine
    if decl is None and spec.get("engine"):
        fam = catalog.image_family_name(str(spec["engine"]))
        if fam:
            decl = f"{fam}:{spec['version']}" if spec.get("version") else fam
    if not raw:
        if decl is None:
            raise UsageError(f"--image-spec {origin}: names no image (ImageUri / RepoTags) and no engine; add --image or --engine")
        raw = decl  # "vllm:0.14.0" reads as an image reference
    ref = parse_image(str(raw), catalog, engine=decl)
    if decl is not None and engine is None and ref.version_from == "engine":
        ref = _record.replace(ref, version_from="spec")
    chip = spec.get("chip")
    if chip:
        if ref.chip_from == "tag" and ref.chip and ref.chip != chip:
            raise UsageError(f"--image {raw} names chip {ref.chip} but --image-spec {origin} says system.chipType {chip}")
        ref = _record.replace(ref, chip=chip, chip_from="spec")
    return ref


def _gpu_count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise UsageError(f"--gpu-count must be a whole number >= 1, not {value!r}")
    if n < 1:
        raise UsageError(f"--gpu-count must be a whole number >= 1, not {value!r}")
    return n


def _same_gpu(instance_gpu_name: str, gpu_name: str) -> bool:
    # vGPU slices are named "<card> vGPU <n>GB": the card is what --gpu names.
    return instance_gpu_name == gpu_name or instance_gpu_name.startswith(f"{gpu_name} vGPU ")


def resolve(
    catalog: Any,
    *,
    image: str | ImageRef | None = None,
    chip: str | None = None,
    instance: str | None = None,
    gpu: str | None = None,
    gpu_count: int | str | None = None,
    engine_args: Mapping[str, Any] | None = None,
    deployment: Any = None,
    engine: str | None = None,
    image_spec: Mapping[str, Any] | None = None,
    instance_spec: Sequence[Instance] | None = None,
) -> Target:
    """Build the Target from CLI-style inputs; every bad or conflicting input is a one-line UsageError.

    ``engine`` is ``--engine vllm:0.14.0`` (the engine of a private image); ``image_spec`` is what
    :func:`modelcheck.cloudspec.image_from_spec` read (URI, engine, version, chip from labels); ``instance_spec``
    the instance types :func:`modelcheck.cloudspec.instances_from_spec` read: the named ``--instance`` is
    looked up there first, then in the catalog."""
    if image_spec:
        image_ref = _image_with_spec(image, image_spec, engine, catalog)
    else:
        image_ref = parse_image(image, catalog, engine=engine) if isinstance(image, str) else image
    chip_flag = normalize_chip(chip) if chip is not None and str(chip).strip() else None
    count = _gpu_count(gpu_count) if gpu_count is not None else None

    inst: Instance | None = None
    named = str(instance).strip() if instance is not None and str(instance).strip() else None
    if instance_spec:
        from modelcheck.cloudspec import find_in_spec

        origin = (instance_spec[0].source or "").rsplit(" in ", 1)[-1]
        inst = find_in_spec(list(instance_spec), named, origin)
    if inst is None and named:
        if named.lower() == "local":
            from modelcheck import gpu_local  # lazy: NVML only when asked for

            inst = gpu_local.detect(catalog)
        else:
            inst = catalog.instance(named)

    if gpu is not None and str(gpu).strip():
        g = catalog.gpu(str(gpu))
        if inst is None:
            n = count or 1
            inst = Instance(
                name=f"{n}x {g.name}",
                cloud="user",
                chip="GPU",
                gpu=g,
                gpu_count=n,
                source="--gpu/--gpu-count",
            )
        elif inst.gpu is None:
            raise UsageError(
                f"--gpu {gpu} conflicts with --instance {inst.name}, which has no NVIDIA GPU ({inst.chip})"
            )
        elif not _same_gpu(inst.gpu.name, g.name):
            raise UsageError(
                f"--gpu {gpu} ({g.name}) conflicts with --instance {inst.name} ({inst.gpu_count}x {inst.gpu.name}); "
                "give only one of them"
            )
    elif count is not None and inst is None:
        raise UsageError("--gpu-count needs --gpu NAME or --instance")

    if count is not None and inst is not None and count != inst.gpu_count:
        if inst.gpu is None or count > inst.gpu_count:
            raise UsageError(
                f"--gpu-count {count} but --instance {inst.name} has {inst.gpu_count} NVIDIA GPU(s)"
            )
        inst = _record.replace(inst, gpu_count=count)  # "use N of the instance's GPUs"

    effective = chip_flag or (inst.chip if inst else None) or (image_ref.chip if image_ref else None)
    return Target(
        image=image_ref,
        instance=inst,
        chip=effective,
        engine_args=dict(engine_args or {}),
        deployment=deployment or None,
    )
