"""CHP rules: image chip vs instance chip vs --chip, with instances and images from the real catalog."""

from __future__ import annotations

import modelcheck.record as _record

from modelcheck import catalog
from modelcheck.model import Instance
from modelcheck.rule import Severity
from modelcheck.testing import make_facts, make_target, run_rule
from modelcheck_rules import chip as chp

CAT = catalog.load()
FACTS = make_facts(config={"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"})


def run(func, **target):
    return run_rule(func, FACTS, make_target(**target), catalog=CAT)


def test_xpu_image_on_nvidia_instance():
    [f] = run(chp.image_chip_mismatch, image="vllm:0.14.0-xpu", instance="ecs.gn7i-c8g1.2xlarge")
    assert f.rule == "CHP001" and f.severity == Severity.ERROR
    assert "built for XPU but ecs.gn7i-c8g1.2xlarge is a GPU instance" in f.message
    assert "vllm:0.14.0-gpu" in f.hint  # the family has a GPU build
    assert f.data == {
        "image_chip": "XPU",
        "instance_chip": "GPU",
        "instance": "ecs.gn7i-c8g1.2xlarge",
        "image": "vllm:0.14.0-xpu",
    }


def test_gpu_image_on_cpu_and_ppu_instances():
    [f] = run(chp.image_chip_mismatch, image="vllm:0.14.0-gpu", instance="ecs.c7.xlarge")
    assert f.rule == "CHP001" and f.severity == Severity.ERROR and f.data["instance_chip"] == "CPU"
    assert "ecs.gn" in f.hint and "ecs.c7.xlarge is a CPU instance" in f.message and "finds no GPU" in f.message
    [p] = run(chp.image_chip_mismatch, image="vllm:0.14.0-gpu", instance="ecs.ebmppu.16xlarge")
    assert p.rule == "CHP001" and p.data["instance_chip"] == "PPU" and "vllm:0.14.0-ppu" in p.hint
    assert p.severity == Severity.ERROR and "ecs.ebmppu.16xlarge is a PPU instance" in p.message


def test_cpu_image_on_gpu_instance_is_a_warning():
    [f] = run(chp.image_chip_mismatch, image="vllm:0.14.0-cpu", instance="ecs.gn7i-c8g1.2xlarge")
    assert f.severity == Severity.WARNING and "1x A10" in f.message and "sits idle" in f.message
    assert f.rule == "CHP001" and "vllm:0.14.0-gpu" in f.hint
    assert f.data == {
        "image_chip": "CPU",
        "instance_chip": "GPU",
        "instance": "ecs.gn7i-c8g1.2xlarge",
        "image": "vllm:0.14.0-cpu",
    }


def test_matching_chips_pass():
    assert run(chp.image_chip_mismatch, image="vllm:0.14.0-gpu", instance="ecs.gn7i-c8g1.2xlarge") == []
    assert run(chp.image_chip_mismatch, image="vllm:0.14.0-xpu", instance="ecs.egs.8xlarge") == []
    # an untagged image's default chip is CHP003's business
    assert run(chp.image_chip_mismatch, image="vllm/vllm-openai:v0.14.0", instance="ecs.c7.xlarge") == []


def test_chip_flag_contradicts_image_tag_or_instance():
    [f] = run(chp.chip_flag_contradicts, image="vllm:0.14.0-gpu", chip="XPU")
    assert (
        f.rule == "CHP002" and f.message == "--chip XPU contradicts the image tag vllm:0.14.0-gpu (GPU build)"
    )
    assert f.severity == Severity.ERROR and f.hint == "drop --chip, or use the XPU build of the image"
    assert f.data == {"chip": "XPU", "image_chip": "GPU"}
    [g] = run(
        chp.chip_flag_contradicts,
        image="vllm/vllm-openai:v0.14.0",
        instance="ecs.gn7i-c8g1.2xlarge",
        chip="PPU",
    )
    assert "contradicts the instance ecs.gn7i-c8g1.2xlarge" in g.message and g.data["instance_chip"] == "GPU"
    assert g.rule == "CHP002" and g.data["chip"] == "PPU" and "instance with PPU chips" in g.hint
    assert run(chp.chip_flag_contradicts, image="vllm:0.14.0-gpu", chip="GPU") == []
    assert run(chp.chip_flag_contradicts, image="vllm:0.14.0-gpu", instance="ecs.gn7i-c8g1.2xlarge") == []


def test_gpu_engine_on_cpu_instance():
    [f] = run(chp.engine_needs_accelerator, image="lmsysorg/sglang:v0.4.6", instance="ecs.c7.xlarge")
    assert (
        f.rule == "CHP003"
        and "built for GPU/PPU" in f.message
        and "ecs.c7.xlarge is a CPU instance" in f.message
    )
    assert "llama.cpp" in f.hint and f.data["engine_chips"] == ["GPU", "PPU"]
    assert f.severity == Severity.ERROR and f.data["engine"] == "sglang" and f.data["instance_chip"] == "CPU"
    assert (
        run(chp.engine_needs_accelerator, image="lmsysorg/sglang:v0.4.6", instance="ecs.gn7i-c8g1.2xlarge")
        == []
    )
    # llama.cpp has CPU builds
    assert run(chp.engine_needs_accelerator, image="llama.cpp", instance="ecs.c7.xlarge") == []


def test_gpu_image_on_instance_without_gpus():
    base = make_target(image="vllm:0.14.0-gpu", instance="ecs.gn7i-c8g1.2xlarge")
    zero = _record.replace(
        base, instance=Instance(name="my-gpu-box", cloud="user", chip="GPU", gpu=None, gpu_count=0)
    )
    [f] = run_rule(chp.gpu_image_without_gpus, FACTS, zero, catalog=CAT)
    assert (
        f.rule == "CHP004"
        and f.message
        == "my-gpu-box has 0 GPUs but the image vllm:0.14.0-gpu needs a GPU: the container fails at start-up"
    )
    assert f.severity == Severity.ERROR and "request at least one GPU" in f.hint
    assert f.data == {"instance": "my-gpu-box", "gpu_count": 0, "image_chip": "GPU"}
    assert run_rule(chp.gpu_image_without_gpus, FACTS, base, catalog=CAT) == []
