"""CHP: does the image's chip (GPU / CPU / PPU / XPU) match the instance it is deployed on?

Instance chips come from the instance catalog (Instance.chip), image chips from the tag (ImageRef.chip)
or the image family's catalog entry (chip_types, default_chip): nothing here names an instance family.

Codes: CHP001, CHP002, CHP003, CHP004, CHP005.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import image_family

ACCELERATORS = ("GPU", "PPU", "XPU")


def tag_chip(img) -> str | None:
    """The chip the image tag states (vllm:0.14.0-xpu); None when the chip is only the family default."""
    if img is None or getattr(img, "chip_from", None) == "default":
        return None
    return img.chip


def _gpu_instances_that_fit(ctx: Context, n: int) -> list[str]:
    """The smallest GPU instances where the model starts on the image's engine (Context.alternatives)."""
    return [r.instance for r in ctx.alternatives if r.gpu_count > 0][:n]


def _instances_with(ctx: Context, chip: str, n: int = 3) -> list[str]:
    cat = ctx.catalog
    cloud = ctx.target.instance.cloud if ctx.target.instance else None
    if chip == "GPU":
        # the cheapest GPU instance is often a P4/P100 no current engine runs: name ones the model fits on
        fits = _gpu_instances_that_fit(ctx, n)
        if fits:
            return fits
    if cat is None:
        return []
    found = cat.instances(cloud=cloud, chip=chip) or cat.instances(chip=chip)
    # the smallest first: the cheapest way to get the chip
    found = sorted(found, key=lambda i: (i.gpu_count, i.vcpu or 0, i.name))
    names = [i.name for i in found if chip != "GPU" or i.gpu_count > 0]
    return names[:n]


def _instance_hint(ctx: Context, chip: str) -> str:
    names = _instances_with(ctx, chip)
    return f"an instance with {chip} chips" + (f" (e.g. {', '.join(names)})" if names else "")


def _image_build_hint(ctx: Context, chip: str) -> str | None:
    """'use the -xpu build' when the image family is built for the instance's chip."""
    img = ctx.target.image
    fam = image_family(ctx)
    chips = fam.chip_types if fam is not None else ()
    if img is None or chip not in chips:
        return None
    tag = f"{img.engine}:{img.version}-{chip.lower()}" if img.version else f"the {chip} build of {img.engine}"
    return f"the {chip} build of the image ({tag})"


@rule("CHP001", severity=Severity.ERROR, needs={"image", "instance"})
def image_chip_mismatch(ctx: Context) -> Iterator[Finding]:
    """The image is built for a different chip than the instance has (XPU image on NVIDIA, GPU image on CPU).

    ## Why it matters
    A GPU image needs the NVIDIA driver and devices; an XPU or PPU build needs those chips and their
    runtime. On the wrong instance the container crashes at start-up (no device, missing driver
    libraries). A CPU image on a GPU instance runs, but pays for GPUs it never uses.

    ## How to fix
    Pick an instance whose chip matches the image tag, or the image build for the instance's chip.
    """
    img, inst = ctx.target.image, ctx.target.instance
    chip = tag_chip(img)
    if img is None or inst is None or not chip or not inst.chip or chip == inst.chip:
        return
    data = {"image_chip": chip, "instance_chip": inst.chip, "instance": inst.name, "image": img.raw}
    build = _image_build_hint(ctx, inst.chip)
    if chip == "CPU":
        yield Finding(
            f"the image {img.raw} is a CPU build but {inst.name} is a {inst.chip} instance"
            + (f" ({inst.gpu_count}x {inst.gpu.name})" if inst.gpu and inst.gpu_count else "")
            + f": it runs, but every {inst.chip} on it sits idle",
            severity=Severity.WARNING,
            hint=f"use {build or 'the ' + inst.chip + ' build of the image'}, or a CPU instance to save cost",
            data=data,
        )
        return
    yield Finding(
        f"the image {img.raw} is built for {chip} but {inst.name} is a {inst.chip} instance: the container "
        f"finds no {chip} and fails at start-up",
        hint=f"deploy on {_instance_hint(ctx, chip)}" + (f", or use {build}" if build else ""),
        data=data,
    )


@rule("CHP002", severity=Severity.ERROR)
def chip_flag_contradicts(ctx: Context) -> Iterator[Finding]:
    """The declared --chip contradicts the image tag or the instance.

    ## Why it matters
    The chip type decides which instances the platform schedules the service on and which runtime the
    container gets; a chip that disagrees with the image tag (vllm:...-gpu with --chip XPU) or with the
    instance means one of them is wrong and the service will not start.

    ## How to fix
    Drop --chip (it is taken from the image tag), or fix the image tag / instance to match it.
    """
    t = ctx.target
    chip = t.chip
    if not chip:
        return
    img_chip = tag_chip(t.image)
    inst_chip = t.instance.chip if t.instance else None
    if img_chip and img_chip != chip and inst_chip != chip:
        yield Finding(
            f"--chip {chip} contradicts the image tag {t.image.raw} ({img_chip} build)",
            hint=f"drop --chip, or use the {chip} build of the image",
            data={"chip": chip, "image_chip": img_chip},
        )
    elif not img_chip and inst_chip and inst_chip != chip:
        yield Finding(
            f"--chip {chip} contradicts the instance {t.instance.name}, which has {inst_chip} chips",
            hint=f"drop --chip, or deploy on {_instance_hint(ctx, chip)}",
            data={"chip": chip, "instance_chip": inst_chip, "instance": t.instance.name},
        )


@rule("CHP003", severity=Severity.ERROR, needs={"image", "instance"})
def engine_needs_accelerator(ctx: Context) -> Iterator[Finding]:
    """The engine has no build for the instance's chip (vLLM GPU builds or SGLang on a CPU instance).

    ## Why it matters
    vLLM's standard images and SGLang are CUDA builds: on a CPU-only instance they stop at start-up
    ("no CUDA GPUs are available" / device errors). Applies when the image tag names no chip: the
    family's builds (catalog chip_types) decide; a chip in the tag is checked by CHP001.

    ## How to fix
    Deploy on an instance with the chip the engine is built for, or use an engine with a CPU build
    (llama.cpp for GGUF, the vLLM CPU image).
    """
    img, inst = ctx.target.image, ctx.target.instance
    fam = image_family(ctx)
    chips = list(fam.chip_types) if fam is not None else []
    if img is None or inst is None or tag_chip(img) or not chips or not inst.chip or inst.chip in chips:
        return
    want = next((c for c in ACCELERATORS if c in chips), chips[0])
    yield Finding(
        f"{img.engine} is built for {'/'.join(chips)} but {inst.name} is a {inst.chip} instance: "
        f"the engine fails at start-up without a {want}",
        hint=f"deploy on {_instance_hint(ctx, want)}"
        + (", or serve a GGUF build of the model with llama.cpp on CPU" if inst.chip == "CPU" else ""),
        data={"engine": img.engine, "engine_chips": chips, "instance_chip": inst.chip, "instance": inst.name},
    )


@rule("CHP004", severity=Severity.ERROR, needs={"image", "instance"})
def gpu_image_without_gpus(ctx: Context) -> Iterator[Finding]:
    """A GPU image is deployed on an instance with 0 GPUs.

    ## Why it matters
    A GPU instance type listed (or declared with --gpu-count 0) without GPUs gives the container no
    device: a GPU image fails at start-up.

    ## How to fix
    Request at least one GPU (`--gpu-count 1`, the service's `metadata.gpu`), or pick an instance type
    that has GPUs.
    """
    img, inst = ctx.target.image, ctx.target.instance
    if img is None or inst is None or inst.chip != "GPU" or inst.gpu_count > 0:
        return
    fam = image_family(ctx)
    img_chip = img.chip or (fam.default_chip if fam is not None else None)
    if img_chip != "GPU":
        return
    yield Finding(
        f"{inst.name} has 0 GPUs but the image {img.raw} needs a GPU: the container fails at start-up",
        hint=f"request at least one GPU, or deploy on {_instance_hint(ctx, 'GPU')}",
        data={"instance": inst.name, "gpu_count": inst.gpu_count, "image_chip": img_chip},
    )


@rule("CHP005", severity=Severity.WARNING, needs={"instance"})
def instance_from_family(ctx: Context) -> Iterator[Finding]:
    """The instance type is not in the catalog: its GPU model, count and memory were inferred from its family.

    ## Why it matters
    modelcheck knows the family (the GPU model every listed type of it carries, and the chip) but not this
    size: the GPU count comes from the type name (Alibaba's `-4x` multiplier, or `c<vCPUs per GPU>g1` with
    the size's vCPUs) or, failing that, the family's smallest type. Memory checks use those figures.

    ## How to fix
    Confirm the type with the cloud (`aliyun eas describe-machine-spec` / `aws ec2 describe-instance-types`)
    and pass the answer with `--instance-spec FILE`, or add the type to a `--catalog` file.
    """
    inst = ctx.target.instance
    if inst is None or ctx.catalog is None:
        return
    info = ctx.catalog.instance_info(inst.name)
    if not isinstance(info, dict) or info.get("inferred_from") != "family":
        return
    if inst.source != getattr(ctx.catalog.find_instance(inst.name), "source", None):
        return  # described by the cloud's own answer (--instance-spec), not inferred
    what = f"{inst.gpu_count}x {inst.gpu.name}" if inst.gpu and inst.gpu_count else f"a {inst.chip} instance"
    how = f"; GPU count from {info.get('gpus_from')}" if inst.gpu else ""
    members = ", ".join((info.get("members") or [])[:3])
    yield Finding(
        f"{inst.name} is not in the instance catalog: taken as {what} from the {info.get('family')} family "
        f"({members}){how}",
        hint="confirm it with the cloud's answer (--instance-spec FILE from `aliyun eas describe-machine-spec` "
        "or `aws ec2 describe-instance-types`) or add it to a --catalog file",
        data={"instance": inst.name, "family": info.get("family"), "gpu": info.get("gpu"),
              "gpus": info.get("gpus"), "gpus_from": info.get("gpus_from")},
    )
