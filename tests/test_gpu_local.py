"""``--instance local``: NVML detection, real when a driver is present, and its failure paths."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import pytest

from modelcheck import gpu_local
from modelcheck.catalog import load
from modelcheck.errors import UsageError

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")

MIB = 2**20


def _nvml_available() -> str | None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return str(exc)
    try:
        if pynvml.nvmlDeviceGetCount() == 0:
            return "NVML reports 0 devices"
    finally:
        pynvml.nvmlShutdown()
    return None


@pytest.mark.gpu
def test_detect_real_gpu(monkeypatch):
    why = _nvml_available()
    if why:
        pytest.skip(f"no NVIDIA driver/GPU: {why}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    inst = gpu_local.detect(load())
    assert (inst.name, inst.cloud, inst.chip) == ("local", "local", "GPU")
    assert inst.gpu_count >= 1
    assert re.fullmatch(r"\d+\.\d", inst.gpu.compute_capability)
    assert inst.gpu.memory_source == "nvml"
    pynvml.nvmlInit()
    try:
        totals = [
            pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total
            for i in range(pynvml.nvmlDeviceGetCount())
        ]
    finally:
        pynvml.nvmlShutdown()
    assert 0.9 * min(totals) < inst.gpu.memory_bytes <= min(totals)


def test_detect_without_driver_is_a_usage_error(monkeypatch):
    def fail():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    with pytest.raises(UsageError) as exc:
        gpu_local.detect()
    msg = str(exc.value)
    assert msg.startswith("no NVIDIA GPU found: NVML could not start (")
    assert msg.endswith("); is the NVIDIA driver installed?")
    assert "\n" not in msg and exc.value.exit_code == 2


def test_detect_without_bindings_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    with pytest.raises(
        UsageError,
        match=r"^no NVIDIA GPU found: NVML bindings are not installed \(pip install nvidia-ml-py\)",
    ):
        gpu_local.detect()


class _FakeNVML:
    """Stands in for the driver: two devices as NVML would describe them (memory v2 with a reserved part)."""

    def __init__(self, devices):
        self.devices = devices
        self.shutdown = 0

    def install(self, monkeypatch):
        for name in (
            "nvmlInit",
            "nvmlShutdown",
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
            "nvmlDeviceGetName",
            "nvmlDeviceGetMemoryInfo",
            "nvmlDeviceGetCudaComputeCapability",
            "nvmlDeviceGetUUID",
        ):
            monkeypatch.setattr(pynvml, name, getattr(self, name))

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shutdown += 1

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return self.devices[h]["name"]

    def nvmlDeviceGetUUID(self, h):
        return self.devices[h]["uuid"]

    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        d = self.devices[h]
        return SimpleNamespace(total=d["total"], reserved=d["reserved"] if version else 0)

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self.devices[h]["cc"]


H200 = {"name": "NVIDIA H200", "total": 143771 * MIB, "reserved": 617 * MIB, "cc": (9, 0), "uuid": "GPU-aaaa"}
A10 = {"name": b"NVIDIA A10", "total": 23028 * MIB, "reserved": 439 * MIB, "cc": (8, 6), "uuid": "GPU-bbbb"}


def test_detect_reads_name_memory_and_cc(monkeypatch):
    fake = _FakeNVML([H200, dict(H200, uuid="GPU-cccc")])
    fake.install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    inst = gpu_local.detect(load())
    g = inst.gpu
    assert (inst.gpu_count, g.name, g.compute_capability, g.arch, g.bf16, g.fp8, g.fp4) == (
        2,
        "H200",
        "9.0",
        "Hopper",
        True,
        True,
        False,
    )
    assert g.memory_bytes == (143771 - 617) * MIB  # NVML total minus driver-reserved
    assert g.memory_source == "nvml"
    assert inst.source == "NVML on this machine: 2x NVIDIA H200, total 143771 MiB, driver-reserved 617 MiB"
    assert fake.shutdown == 1


def test_detect_mixed_gpus_plans_with_the_smallest(monkeypatch):
    _FakeNVML([H200, A10]).install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    inst = gpu_local.detect(load())
    assert (inst.gpu_count, inst.gpu.name, inst.gpu.compute_capability) == (2, "A10", "8.6")
    assert "mixed GPUs (NVIDIA A10, NVIDIA H200)" in inst.source


def test_detect_unknown_name_without_catalog(monkeypatch):
    _FakeNVML([dict(A10, name="NVIDIA Future 9000", cc=(12, 0))]).install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    g = gpu_local.detect().gpu
    assert (g.name, g.arch, g.fp4, g.nominal_gb) == ("NVIDIA Future 9000", "Blackwell", True, 24.1)


def test_detect_respects_cuda_visible_devices(monkeypatch):
    _FakeNVML([H200, A10]).install(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu_local.detect(load()).gpu.name == "A10"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa")
    inst = gpu_local.detect(load())
    assert (inst.gpu_count, inst.gpu.name) == (1, "H200")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(UsageError, match=r"^no NVIDIA GPU found: CUDA_VISIBLE_DEVICES hides every device$"):
        gpu_local.detect()


def test_detect_zero_devices(monkeypatch):
    _FakeNVML([]).install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(UsageError, match=r"^no NVIDIA GPU found: NVML reports 0 devices$"):
        gpu_local.detect()
