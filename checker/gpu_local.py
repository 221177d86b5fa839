"""``--instance local``: describe this machine's NVIDIA GPUs through NVML (nvidia-ml-py, imported lazily).

NVML is the driver's management library, the same source nvidia-smi reads. It works without torch or a
CUDA toolkit, and costs nothing when ``--instance local`` is not used. Without a driver or GPU we stop
with a UsageError ("no NVIDIA GPU found: ...", exit 2), never a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from modelcheck.errors import UsageError
from modelcheck.model import GPU, Instance

__all__ = ["arch_for_cc", "detect"]

_ARCH_BY_MAJOR = {6: "Pascal", 7: "Volta", 8: "Ampere", 9: "Hopper", 10: "Blackwell", 12: "Blackwell"}


def arch_for_cc(major: int, minor: int) -> str | None:
    if (major, minor) == (7, 5):
        return "Turing"
    if (major, minor) == (8, 9):
        return "Ada Lovelace"
    return _ARCH_BY_MAJOR.get(major)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _visible(pynvml: Any, count: int) -> list[int]:
    """Indices CUDA (and so vLLM) will see: CUDA_VISIBLE_DEVICES as integers or GPU UUIDs."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    wanted = [w.strip() for w in env.split(",") if w.strip()]
    if not wanted or wanted[0].startswith("-"):
        return []
    out: list[int] = []
    uuids: dict[str, int] | None = None
    for w in wanted:
        if w.isdigit():
            if int(w) >= count:
                break  # CUDA stops at the first invalid entry
            out.append(int(w))
            continue
        if uuids is None:
            uuids = {
                _text(pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))).lower(): i
                for i in range(count)
            }
        match = [i for u, i in uuids.items() if u.startswith(w.lower())]
        if len(match) != 1:
            break
        out.append(match[0])
    return out


def _device(pynvml: Any, index: int) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(pynvml.nvmlDeviceGetName(handle))
    reserved = 0
    try:
        # v2 reports the memory the driver/firmware keeps for itself; CUDA's total excludes it.
        info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        reserved = int(getattr(info, "reserved", 0) or 0)
    except (pynvml.NVMLError, TypeError, AttributeError):
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    total = int(info.total)
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    return {
        "index": index,
        "name": name,
        "total": total,
        "reserved": reserved if 0 < reserved < total else 0,
        "cc": (int(major), int(minor)),
    }


def _host() -> tuple[int | None, float | None]:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = None
    return os.cpu_count(), (round(mem, 1) if mem else None)


def detect(catalog: Any = None) -> Instance:
    """This machine as an Instance(name="local", cloud="local"), GPU facts read from NVML.

    ``memory_bytes`` is NVML's total minus the driver-reserved part (NVML memory v2), the figure closest
    to what CUDA (and so vLLM) reports as total; the compute capability comes from the device itself.
    With mixed GPUs the one with the least memory describes the instance (tensor parallelism is bound by
    the smallest card). ``catalog`` (optional) maps the NVML name to our canonical name and architecture.
    """
    try:
        import pynvml
    except ImportError as exc:
        raise UsageError(
            f"no NVIDIA GPU found: NVML bindings are not installed (pip install nvidia-ml-py): {exc}"
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise UsageError(
            f"no NVIDIA GPU found: NVML could not start ({exc}); is the NVIDIA driver installed?"
        ) from None
    except OSError as exc:  # some bindings surface a missing libnvidia-ml.so this way
        raise UsageError(f"no NVIDIA GPU found: {exc}") from None
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        indices = _visible(pynvml, count)
        devices = [_device(pynvml, i) for i in indices]
    except pynvml.NVMLError as exc:
        raise UsageError(f"no NVIDIA GPU found: NVML could not read the devices ({exc})") from None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    if not devices:
        why = "CUDA_VISIBLE_DEVICES hides every device" if count else "NVML reports 0 devices"
        raise UsageError(f"no NVIDIA GPU found: {why}")

    dev = min(devices, key=lambda d: d["total"] - d["reserved"])
    major, minor = dev["cc"]
    known = catalog.find_gpu(dev["name"]) if catalog is not None else None
    usable = dev["total"] - dev["reserved"]
    names = sorted({d["name"] for d in devices})
    source = (
        f"NVML on this machine: {len(devices)}x {dev['name']}, total {dev['total'] // 2**20} MiB, "
        f"driver-reserved {dev['reserved'] // 2**20} MiB"
    )
    if len(names) > 1:
        source += f"; mixed GPUs ({', '.join(names)}): planning with the smallest"
    gpu = GPU(
        name=known.name if known else dev["name"],
        memory_bytes=usable,
        nominal_gb=known.nominal_gb if known else round(dev["total"] / 1e9, 1),
        compute_capability=f"{major}.{minor}",
        bf16=major >= 8,
        fp8=(major, minor) >= (8, 9),
        fp4=major >= 10,
        arch=(known.arch if known else None) or arch_for_cc(major, minor),
        source=source,
        memory_source="nvml",
    )
    vcpu, mem_gib = _host()
    return Instance(
        name="local",
        cloud="local",
        chip="GPU",
        gpu=gpu,
        gpu_count=len(devices),
        vcpu=vcpu,
        mem_gib=mem_gib,
        family=None,
        source=source,
    )
