"""The cloud's own answers as the target: instance and image descriptions saved as JSON.

``--instance-spec FILE`` reads what the cloud says about instance types:

- PAI-EAS ``DescribeMachineSpec`` (``aliyun eas describe-machine-spec``): ``{"InstanceMetas": [{"InstanceType",
  "GPU", "GPUAmount", "GPUMemory" (GB), "CPU", "Memory" (GB), "IsAvailable", ...}], "Types": [...]}``
  (alibabacloud_eas20210701 DescribeMachineSpecResponseBody; the SDK's ``{"body": {...}}`` envelope too);
- AWS ``ec2 describe-instance-types``: ``{"InstanceTypes": [{"InstanceType", "VCpuInfo": {"DefaultVCpus"},
  "MemoryInfo": {"SizeInMiB"}, "GpuInfo": {"Gpus": [{"Name", "Manufacturer", "Count", "MemoryInfo":
  {"SizeInMiB"}}], "TotalGpuMemoryInMiB"}}]}`` (EC2 API reference: InstanceTypeInfo, GpuInfo, GpuDeviceInfo).

``--image-spec FILE`` reads what the registry says about an image:

- PAI AIWorkSpace ``GetImage`` (``ImageUri``, ``Name``, ``Labels: [{"Key", "Value"}]`` with keys such as
  ``system.chipType``, ``system.framework``, ``system.official``), ``ListImages`` (``Images: [...]``) and
  ``ListImageLabels`` (``Labels`` only);
- ``docker image inspect`` (a list of objects with ``RepoTags``, ``Config.Labels``, ``Config.Env``) and
  ``skopeo inspect`` (``Name``, ``RepoTags``, ``Labels``, ``Env``): the engine and version from labels and
  ``VLLM_VERSION`` / ``SGLANG_VERSION``-style environment variables, the chip from ``CUDA_VERSION``.

Every file is read bounded (4 MiB), parsed as JSON and checked for its shape; anything else is a one-line
:class:`modelcheck.errors.UsageError` naming the file and the key path. Nothing here talks to a cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcheck.errors import UsageError
from modelcheck.model import Instance
from modelcheck.record import replace

__all__ = ["MAX_SPEC_BYTES", "ImageSpec", "find_in_spec", "image_from_spec", "instances_from_spec"]

MAX_SPEC_BYTES = 4 * 1024 * 1024
_CHIPS = {"GPU", "CPU", "PPU", "XPU"}
# Environment variables official engine images set (docker image inspect .Config.Env)
_ENGINE_ENV = {"VLLM_VERSION": "vllm", "SGLANG_VERSION": "sglang", "LLAMA_CPP_VERSION": "llama.cpp",
               "TGI_VERSION": "tgi", "OLLAMA_VERSION": "ollama", "TRITON_SERVER_VERSION": "triton"}
_VERSION_TOKEN = re.compile(r"v?(\d+\.\d+(?:\.\d+)?(?:rc\d+|\.post\d+)?)", re.IGNORECASE)


def _read(path: str | Path, flag: str) -> Any:
    p = Path(path)
    where = f"{flag} {path}"
    try:
        if not p.exists():
            raise UsageError(f"{where}: no such file")
        if not p.is_file():
            raise UsageError(f"{where}: not a regular file")
        with p.open("rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise UsageError(f"{where}: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB; save only the API answer")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise UsageError(f"{where}: not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None


def _unwrap(doc: Any) -> Any:
    # SDK dumps wrap the answer: {"headers": ..., "statusCode": 200, "body": {...}}
    if isinstance(doc, dict) and isinstance(doc.get("body"), dict) and len(doc) <= 4:
        return doc["body"]
    return doc


def _num(item: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    val = item.get(key)
    if val is None:
        if required:
            raise UsageError(f"{where}.{key}: missing")
        return None
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        if isinstance(val, str) and re.fullmatch(r"\d+(\.\d+)?", val.strip()):
            return float(val)
        raise UsageError(f"{where}.{key}: expected a number, got {json.dumps(val)[:40]}")
    if val < 0:
        raise UsageError(f"{where}.{key}: negative ({val})")
    return float(val)


def _str(item: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    val = item.get(key)
    if val is None or (isinstance(val, str) and not val.strip()):
        if required:
            raise UsageError(f"{where}.{key}: missing")
        return None
    if not isinstance(val, str):
        raise UsageError(f"{where}.{key}: expected a string, got {json.dumps(val)[:40]}")
    return val.strip()


# -- instances -----------------------------------------------------------------------------------


def _chip_by_name(name: str) -> str:
    # the seed guide's chip matching by family prefix (instances_alibaba.yaml eas_chip_compat)
    n = name.lower()
    if n.startswith("ecs.ebmppu"):
        return "PPU"
    if n.startswith("ecs.egs"):
        return "XPU"
    return "CPU"


def _gpu_for(catalog: Any, gpu_name: str, per_gpu_gb: float | None, where: str, origin: str) -> Any:
    gpu = catalog.find_gpu(gpu_name)
    if gpu is None:
        hint = catalog.suggest("gpu", gpu_name)
        did = f"; did you mean {' or '.join(hint)}?" if hint else ""
        raise UsageError(
            f"{where}: GPU {gpu_name!r} is not in the GPU catalog{did} (its compute capability is unknown: "
            "describe it in a --catalog file)"
        )
    if per_gpu_gb and abs(per_gpu_gb - gpu.nominal_gb) > 0.12 * gpu.nominal_gb and per_gpu_gb < gpu.nominal_gb:
        # a slice of the card (vGPU / GPU sharing): the card's capability, the spec's memory
        gpu = replace(
            gpu,
            name=f"{gpu.name} vGPU {per_gpu_gb:g}GB",
            memory_bytes=int(per_gpu_gb * 1e9),
            nominal_gb=per_gpu_gb,
            memory_source=f"instance-spec ({origin})",
        )
    return gpu


def _eas_instances(metas: list[Any], catalog: Any, origin: str) -> list[Instance]:
    out = []
    for i, item in enumerate(metas):
        where = f"--instance-spec {origin}: InstanceMetas[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected an object")
        name = _str(item, "InstanceType", where, required=True)
        amount = int(_num(item, "GPUAmount", where) or 0)
        gpu_name = _str(item, "GPU", where)
        gpu_mem = _num(item, "GPUMemory", where)  # GB (DescribeMachineSpec: "GPU memory ... Unit: GB")
        cpu = _num(item, "CPU", where)
        mem = _num(item, "Memory", where)
        gpu = None
        if amount > 0:
            if not gpu_name:
                raise UsageError(f"{where}.GPU: missing for an instance type with GPUAmount {amount}")
            per = None
            if gpu_mem:
                # GPUMemory may be per card or for the whole type: take the reading that matches the card
                card = catalog.find_gpu(gpu_name)
                cands = [gpu_mem, gpu_mem / amount]
                if card is not None:
                    per = min(cands, key=lambda c: abs(c - card.nominal_gb))
                else:
                    per = gpu_mem / amount
            gpu = _gpu_for(catalog, gpu_name, per, f"{where} ({name})", origin)
        chip = "GPU" if gpu is not None else _chip_by_name(name)
        out.append(
            Instance(
                name=name,
                cloud="alibaba" if name.lower().startswith(("ecs.", "ml.")) else "pai",
                chip=chip,
                gpu=gpu,
                gpu_count=amount if gpu is not None else 0,
                vcpu=int(cpu) if cpu is not None else None,
                # Memory: the SDK says GB, the type names say GiB (ml.gu7i.c32m188 = 188 GiB): taken as GiB
                mem_gib=mem,
                family=catalog.instance_family(name) if hasattr(catalog, "instance_family") else None,
                source=f"PAI-EAS DescribeMachineSpec answer in {origin}",
            )
        )
    return out


def _aws_instances(types: list[Any], catalog: Any, origin: str) -> list[Instance]:
    out = []
    for i, item in enumerate(types):
        where = f"--instance-spec {origin}: InstanceTypes[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected an object")
        name = _str(item, "InstanceType", where, required=True)
        vcpu = _num(item.get("VCpuInfo") or {}, "DefaultVCpus", f"{where}.VCpuInfo")
        mem_mib = _num(item.get("MemoryInfo") or {}, "SizeInMiB", f"{where}.MemoryInfo")
        info = item.get("GpuInfo")
        gpu, count = None, 0
        if info is not None:
            if not isinstance(info, dict) or not isinstance(info.get("Gpus"), list) or not info["Gpus"]:
                raise UsageError(f"{where}.GpuInfo.Gpus: expected a non-empty list")
            if len(info["Gpus"]) > 1:
                raise UsageError(f"{where}.GpuInfo.Gpus: {len(info['Gpus'])} GPU kinds in one type; modelcheck takes one")
            dev = info["Gpus"][0]
            dwhere = f"{where}.GpuInfo.Gpus[0]"
            if not isinstance(dev, dict):
                raise UsageError(f"{dwhere}: expected an object")
            gname = _str(dev, "Name", dwhere, required=True)
            count = int(_num(dev, "Count", dwhere, required=True) or 0)
            per_mib = _num(dev.get("MemoryInfo") or {}, "SizeInMiB", f"{dwhere}.MemoryInfo")
            if per_mib is None:
                total = _num(info, "TotalGpuMemoryInMiB", f"{where}.GpuInfo")
                per_mib = total / count if total and count else None
            manufacturer = (_str(dev, "Manufacturer", dwhere) or "NVIDIA").upper()
            if manufacturer != "NVIDIA":
                raise UsageError(f"{dwhere}: {manufacturer} {gname} is not an NVIDIA GPU; modelcheck checks NVIDIA GPUs only")
            if count > 0:
                gpu = _gpu_for(catalog, gname, per_mib * 2**20 / 1e9 if per_mib else None, f"{where} ({name})", origin)
        out.append(
            Instance(
                name=name,
                cloud="aws",
                chip="GPU" if gpu is not None else "CPU",
                gpu=gpu,
                gpu_count=count if gpu is not None else 0,
                vcpu=int(vcpu) if vcpu is not None else None,
                mem_gib=round(mem_mib / 1024, 1) if mem_mib is not None else None,
                family=name.split(".")[0],
                source=f"AWS ec2 describe-instance-types answer in {origin}",
            )
        )
    return out


def instances_from_spec(path: str | Path, catalog: Any = None) -> list[Instance]:
    """Every instance type described in a saved DescribeMachineSpec or describe-instance-types answer."""
    if catalog is None:
        from modelcheck.catalog import load

        catalog = load()
    origin = str(path)
    doc = _unwrap(_read(path, "--instance-spec"))
    if isinstance(doc, dict) and "InstanceMetas" in doc:
        metas = doc["InstanceMetas"]
        if not isinstance(metas, list):
            raise UsageError(f"--instance-spec {origin}: InstanceMetas: expected a list")
        found = _eas_instances(metas, catalog, origin)
    elif isinstance(doc, dict) and "InstanceTypes" in doc:
        types = doc["InstanceTypes"]
        if not isinstance(types, list):
            raise UsageError(f"--instance-spec {origin}: InstanceTypes: expected a list")
        found = _aws_instances(types, catalog, origin)
    else:
        keys = ", ".join(sorted(doc)[:6]) if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(
            f"--instance-spec {origin}: neither a PAI-EAS describe-machine-spec answer (InstanceMetas) nor an "
            f"AWS describe-instance-types answer (InstanceTypes); found {keys or 'an empty object'}"
        )
    if not found:
        raise UsageError(f"--instance-spec {origin}: the answer lists no instance types")
    return found


def find_in_spec(instances: list[Instance], name: str | None, origin: str) -> Instance | None:
    """The instance ``name`` among a spec's types (case-insensitive), None when it is not there; the only
    one when no name is given (UsageError when there are several)."""
    if not name:
        if len(instances) == 1:
            return instances[0]
        names = ", ".join(i.name for i in instances[:5])
        raise UsageError(f"--instance-spec {origin} describes {len(instances)} types ({names}...); name one with --instance")
    for inst in instances:
        if inst.name.lower() == name.strip().lower():
            return inst
    return None  # the caller falls back to the catalog


# -- images --------------------------------------------------------------------------------------


class ImageSpec(dict):
    """What an image description says: uri, engine, version, chip, labels, format, origin (a plain dict)."""


def _labels_list(labels: Any, where: str) -> dict[str, str]:
    if labels is None:
        return {}
    if isinstance(labels, dict):  # docker / skopeo: {"key": "value"}
        return {str(k): str(v) for k, v in labels.items() if v is not None}
    if not isinstance(labels, list):
        raise UsageError(f"{where}.Labels: expected a list of {{Key, Value}} or an object")
    out = {}
    for i, item in enumerate(labels):
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise UsageError(f"{where}.Labels[{i}]: expected an object with Key and Value")
        out[item["Key"]] = str(item.get("Value", ""))
    return out


def _env(env: Any, where: str) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise UsageError(f"{where}.Env: expected a list of NAME=value strings")
    return dict(e.split("=", 1) for e in env if "=" in e)


def _engine_from(labels: dict[str, str], env: dict[str, str]) -> tuple[str | None, str | None]:
    fw = labels.get("system.framework")
    if fw:
        # "vLLM", "vllm 0.14.0", "SGLang:0.5.8"
        name = re.split(r"[\s:=@]+", fw.strip())[0]
        ver = labels.get("system.frameworkVersion") or labels.get("system.framework.version")
        m = _VERSION_TOKEN.search(fw[len(name) :]) if not ver else _VERSION_TOKEN.search(ver)
        return name, (m.group(1) if m else None)
    for var, engine in _ENGINE_ENV.items():
        if env.get(var):
            m = _VERSION_TOKEN.search(env[var])
            return engine, (m.group(1) if m else None)
    title = labels.get("org.opencontainers.image.title")
    if title:
        m = _VERSION_TOKEN.search(labels.get("org.opencontainers.image.version", ""))
        return title, (m.group(1) if m else None)
    return None, None


def _chip_from(labels: dict[str, str], env: dict[str, str], where: str) -> str | None:
    chip = labels.get("system.chipType")
    if chip:
        c = chip.strip().upper()
        if c not in _CHIPS:
            raise UsageError(f"{where}: system.chipType {chip!r} is not GPU, CPU, PPU or XPU")
        return c
    if env.get("CUDA_VERSION") or env.get("NVIDIA_REQUIRE_CUDA"):
        return "GPU"
    return None


def image_from_spec(path: str | Path, image: str | None = None) -> ImageSpec:
    """The engine, version, chip and URI a saved image description states (see the module doc).
    ``image`` picks one entry of a ListImages answer."""
    origin = str(path)
    where = f"--image-spec {origin}"
    doc = _unwrap(_read(path, "--image-spec"))
    fmt = None
    if isinstance(doc, list):  # docker image inspect
        if len(doc) != 1 or not isinstance(doc[0], dict):
            raise UsageError(f"{where}: expected the inspect answer for one image, found {len(doc)} entries")
        doc, fmt = doc[0], "docker"
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: expected a JSON object or a one-entry list")
    if isinstance(doc.get("Images"), list):  # ListImages
        imgs = doc["Images"]
        if not imgs:
            raise UsageError(f"{where}: Images: empty")
        if len(imgs) > 1:
            pick = [d for d in imgs if isinstance(d, dict) and image and image in (d.get("ImageUri"), d.get("Name"))]
            if len(pick) != 1:
                names = ", ".join(str(d.get("Name") or d.get("ImageUri")) for d in imgs[:4] if isinstance(d, dict))
                raise UsageError(f"{where}: {len(imgs)} images ({names}...); name one with --image")
            doc = pick[0]
        else:
            doc = imgs[0]
        if not isinstance(doc, dict):
            raise UsageError(f"{where}: Images[0]: expected an object")
        where += ": Images[]"
    if fmt == "docker" or isinstance(doc.get("Config"), dict):
        cfg = doc.get("Config") or {}
        labels = _labels_list(cfg.get("Labels"), f"{where}.Config")
        env = _env(cfg.get("Env"), f"{where}.Config")
        tags = doc.get("RepoTags") or []
        uri = tags[0] if isinstance(tags, list) and tags and isinstance(tags[0], str) else None
        fmt = "docker"
    elif "ImageUri" in doc or ("Labels" in doc and isinstance(doc.get("Labels"), list)):
        labels = _labels_list(doc.get("Labels"), where)
        env = {}
        uri = _str(doc, "ImageUri", where)
        fmt = "pai"
    elif "Name" in doc and ("Labels" in doc or "Env" in doc):  # skopeo inspect
        labels = _labels_list(doc.get("Labels"), where)
        env = _env(doc.get("Env"), where)
        name = _str(doc, "Name", where)
        tags = doc.get("RepoTags") or []
        tag = None
        if image and ":" in image.rsplit("/", 1)[-1]:
            tag = image.rsplit(":", 1)[1]
        elif isinstance(tags, list) and len(tags) == 1 and isinstance(tags[0], str):
            tag = tags[0]
        uri = f"{name.split('://', 1)[-1]}:{tag}" if name and tag else (name.split("://", 1)[-1] if name else None)
        fmt = "skopeo"
    else:
        keys = ", ".join(sorted(doc)[:6])
        raise UsageError(
            f"{where}: not a PAI GetImage/ListImages/ListImageLabels answer (ImageUri, Labels) nor docker/skopeo "
            f"inspect output (Config, Labels, Env); found {keys or 'an empty object'}"
        )
    engine, version = _engine_from(labels, env)
    return ImageSpec(
        uri=uri,
        engine=engine,
        version=version,
        chip=_chip_from(labels, env, where),
        labels=labels,
        format=fmt,
        origin=origin,
    )
