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

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from checker.errors import UsageError
from checker.model import ImageRef, Instance, Target

__all__ = ["CHIPS", "normalize_chip", "parse_image", "resolve"]

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


def parse_image(ref: str, catalog: Any) -> ImageRef:
    """Parse any image reference users write into an ImageRef (engine, version, chip, registry, region)."""
    if ref is None or not str(ref).strip():
        raise UsageError("empty --image; give an image such as vllm:0.14.0-gpu")
    raw = str(ref)
    registry, parts, tag, digest = _split_ref(raw)
    family_name, name_chip, exact = _engine(catalog, parts)
    family = catalog.find_image_family(family_name) if family_name else None

    version = variant = None
    chip = name_chip
    chip_from = "tag" if name_chip else None
    if tag:
        version, tag_chip, variant, other_accel = _parse_tag(tag, family)
        if other_accel and tag_chip is None:
            # A ROCm/Vulkan/... build: not the family's default chip, and no EAS chip label either.
            chip, chip_from = None, None
        elif tag_chip:
            chip, chip_from = tag_chip, "tag"
        elif chip is None and family and family.get("default_chip"):
            chip, chip_from = family["default_chip"], "default"
    elif chip is None and family and family.get("default_chip"):
        chip, chip_from = family["default_chip"], "default"

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
    )


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
) -> Target:
    """Build the Target from CLI-style inputs; every bad or conflicting input is a one-line UsageError."""
    image_ref = parse_image(image, catalog) if isinstance(image, str) else image
    chip_flag = normalize_chip(chip) if chip is not None and str(chip).strip() else None
    count = _gpu_count(gpu_count) if gpu_count is not None else None

    inst: Instance | None = None
    if instance is not None and str(instance).strip():
        name = str(instance).strip()
        if name.lower() == "local":
            from checker import gpu_local  # lazy: NVML only when asked for

            inst = gpu_local.detect(catalog)
        else:
            inst = catalog.instance(name)

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
        inst = dataclasses.replace(inst, gpu_count=count)  # "use N of the instance's GPUs"

    effective = chip_flag or (inst.chip if inst else None) or (image_ref.chip if image_ref else None)
    return Target(
        image=image_ref,
        instance=inst,
        chip=effective,
        engine_args=dict(engine_args or {}),
        deployment=deployment or None,
    )
