"""Image references as users write them, and resolving --image/--chip/--instance/--gpu into a Target."""

from __future__ import annotations

import pytest

from modelcheck import gpu_local
from modelcheck.catalog import load
from modelcheck.errors import UsageError
from modelcheck.model import GPU, ImageRef, Instance
from modelcheck.target import normalize_chip, parse_image, resolve

SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def cat():
    return load()


# ref, engine, version, chip, chip_from, variant, registry, region, known
# fmt: off
CASES = [
    # no version: the newest release the catalog knows (images.yaml latest_known)
    ("vllm", "vllm", "0.33.0", "GPU", "default", None, None, None, True),
    ("vllm-gpu", "vllm", "0.33.0", "GPU", "tag", None, None, None, True),
    ("vllm:latest", "vllm", "0.33.0", "GPU", "default", None, None, None, True),
    ("vllm/vllm-openai:latest", "vllm", "0.33.0", "GPU", "default", None, None, None, True),
    ("lmsysorg/sglang:latest", "sglang", "0.5.8", "GPU", "default", None, None, None, True),
    ("vllm:0.14.0-gpu", "vllm", "0.14.0", "GPU", "tag", None, None, None, True),
    ("vllm:0.14.0-xpu", "vllm", "0.14.0", "XPU", "tag", None, None, None, True),
    ("vllm:0.13.0rc2.a8ec486.20260305pai-gpu", "vllm", "0.13.0rc2", "GPU", "tag", "a8ec486.20260305pai", None, None, True),
    ("vllm:v0.9.1-modelgallery", "vllm", "0.9.1", "GPU", "default", "modelgallery", None, None, True),
    ("eas-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai-eas/vllm:0.14.0-gpu", "vllm", "0.14.0", "GPU", "tag", None,
     "eas-registry-vpc.cn-hangzhou.cr.aliyuncs.com", "cn-hangzhou", True),
    ("eas-registry-vpc.ap-southeast-1.cr.aliyuncs.com/pai-eas/sglang:0.5.8-gpu", "sglang", "0.5.8", "GPU", "tag", None,
     "eas-registry-vpc.ap-southeast-1.cr.aliyuncs.com", "ap-southeast-1", True),
    ("vllm/vllm-openai:v0.8.4", "vllm", "0.8.4", "GPU", "default", None, None, None, True),
    ("lmsysorg/sglang:v0.4.6-cu124", "sglang", "0.4.6", "GPU", "tag", "cu124", None, None, True),
    ("ghcr.io/ggml-org/llama.cpp:server-cuda", "llama.cpp", None, "GPU", "tag", "server-cuda", "ghcr.io", None, True),
    ("ghcr.io/ggml-org/llama.cpp:server", "llama.cpp", None, "CPU", "tag", "server", "ghcr.io", None, True),
    ("ghcr.io/ggml-org/llama.cpp:server-vulkan", "llama.cpp", None, None, None, "server-vulkan", "ghcr.io", None, True),
    ("llama.cpp", "llama.cpp", None, "CPU", "default", None, None, None, True),
    ("sglang:0.5.8-acclep1.2.1-gpu", "sglang", "0.5.8", "GPU", "tag", "acclep1.2.1", None, None, True),
    ("comfyui:2.2", "comfyui", "2.2", "GPU", "default", None, None, None, True),
    ("comfyui:2.2-api", "comfyui", "2.2", "GPU", "default", "api", None, None, True),
    ("stable-diffusion-webui:4.2", "sd-webui", "4.2", "GPU", "default", None, None, None, True),
    ("stable-diffusion-webui:4.2-cluster-webui", "sd-webui", "4.2", "GPU", "default", "cluster-webui", None, None, True),
    ("sd-webui", "sd-webui", None, "GPU", "default", None, None, None, True),
    ("cosyvoice:3.0.6", "cosyvoice", "3.0.6", "GPU", "default", None, None, None, True),
    ("pytorch:2.7.1", "pytorch", "2.7.1", None, None, None, None, None, True),
    ("pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime", "pytorch", "2.7.1", "GPU", "tag", "cuda12.6-cudnn9-runtime", None, None, True),
    ("triton", "triton", None, "GPU", "default", None, None, None, True),
    ("tritonserver:25.03", "triton", "25.03", "GPU", "default", None, None, None, True),
    ("nvcr.io/nvidia/tritonserver:24.08-py3", "triton", "24.08", "GPU", "default", "py3", "nvcr.io", None, True),
    ("pai-rag:0.1-gpu", "pai-rag", "0.1", "GPU", "tag", None, None, None, True),
    ("pai-rag:0.1-nginx", "pai-rag", "0.1", "CPU", "default", "nginx", None, None, True),
    ("tensorflow-serving:2.18.1", "tensorflow-serving", "2.18.1", None, None, None, None, None, True),
    ("tensorflow/serving:2.18.1-gpu", "tensorflow-serving", "2.18.1", "GPU", "tag", None, None, None, True),
    ("python-inference:py39-ubuntu2004", "python-inference", None, None, None, "py39-ubuntu2004", None, None, True),
    ("VLLM:0.14.0-GPU", "vllm", "0.14.0", "GPU", "tag", None, None, None, True),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:0.9.0-gpu", "vllm", "0.9.0", "GPU", "tag", None,
     "123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", True),
    ("localhost:5000/team/vllm:0.10.0", "vllm", "0.10.0", "GPU", "default", None, "localhost:5000", None, True),
    # engines we do not know: not an error, known=False (an engine named inside a custom name is still recognised)
    ("my-vllm-server:1.0", "vllm", "1.0", "GPU", "default", None, None, None, False),
    ("acme/inference-box:3.1-gpu", "inference-box", "3.1", "GPU", "tag", None, None, None, False),
]
# fmt: on


@pytest.mark.parametrize("ref, engine, version, chip, chip_from, variant, registry, region, known", CASES)
def test_parse_image_forms(cat, ref, engine, version, chip, chip_from, variant, registry, region, known):
    img = parse_image(ref, cat)
    assert isinstance(img, ImageRef)
    assert (
        img.raw,
        img.engine,
        img.version,
        img.chip,
        img.chip_from,
        img.variant,
        img.registry,
        img.region,
        img.known,
    ) == (ref, engine, version, chip, chip_from, variant, registry, region, known)


def test_parse_image_category_and_repository(cat):
    img = parse_image("eas-registry-vpc.cn-shanghai.cr.aliyuncs.com/pai-eas/comfyui:2.2-api", cat)
    assert (img.category, img.repository, img.tag) == ("image-generation", "pai-eas/comfyui", "2.2-api")
    assert parse_image("cosyvoice", cat).category == "tts"
    assert parse_image("pai-rag", cat).category == "rag"
    assert parse_image("acme/thing:1", cat).category == "other"
    assert parse_image("vllm:0.13.0rc2.a8ec486.20260305pai-gpu", cat).version_tuple == (0, 13, 0)


def test_parse_image_digests(cat):
    img = parse_image(f"vllm@{SHA}", cat)
    assert (img.engine, img.version, img.version_from, img.tag, img.digest) == ("vllm", "0.33.0", "newest-known", None, SHA)
    img = parse_image(f"eas-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai-eas/vllm:0.14.0-gpu@{SHA}", cat)
    assert (img.engine, img.version, img.chip, img.region, img.digest) == (
        "vllm",
        "0.14.0",
        "GPU",
        "cn-hangzhou",
        SHA,
    )


@pytest.mark.parametrize(
    "ref, message",
    [
        ("", "empty --image; give an image such as vllm:0.14.0-gpu"),
        ("   ", "empty --image; give an image such as vllm:0.14.0-gpu"),
        ("vllm 0.14", "invalid image reference 'vllm 0.14': contains whitespace"),
        (
            "https://hub.docker.com/r/vllm/vllm-openai",
            "invalid image reference 'https://hub.docker.com/r/vllm/vllm-openai': a URL, not an image reference (write registry/name:tag)",
        ),
        ("vllm:", "invalid image reference 'vllm:': tag '' is empty or has characters a tag cannot have"),
        (
            "!!!",
            "invalid image reference '!!!': the name must be lowercase letters, digits and . _ - separated by /",
        ),
        (
            "vllm@sha256:xyz",
            "invalid image reference 'vllm@sha256:xyz': digest 'sha256:xyz' is not algorithm:hex (e.g. sha256:<64 hex digits>)",
        ),
    ],
)
def test_parse_image_rejects_garbage(cat, ref, message):
    with pytest.raises(UsageError) as exc:
        parse_image(ref, cat)
    assert str(exc.value) == message


def test_normalize_chip():
    assert normalize_chip("gpu") == "GPU"
    assert normalize_chip(" Ppu ") == "PPU"
    with pytest.raises(UsageError, match=r"^unknown chip 'tpu'; use one of GPU, CPU, PPU, XPU$"):
        normalize_chip("tpu")


def test_resolve_instance_and_image(cat):
    t = resolve(
        cat,
        image="vllm:0.14.0-gpu",
        instance="ecs.gn7i-c8g1.2xlarge",
        engine_args={"gpu_memory_utilization": 0.9},
    )
    assert (t.engine, t.chip, t.gpu.name, t.gpu_count) == ("vllm", "GPU", "A10", 1)
    assert t.engine_args == {"gpu_memory_utilization": 0.9}
    assert t.instance.source == "Alibaba ecs_gpu_families_en"


def test_resolve_unknown_instance(cat):
    with pytest.raises(UsageError) as exc:
        resolve(cat, instance="ecs.gn7i-foo")
    assert str(exc.value).startswith("unknown instance 'ecs.gn7i-foo'; did you mean ecs.gn7i-c8g1.2xlarge")


def test_resolve_gpu_synthesises_instance(cat):
    t = resolve(cat, gpu="h100-80gb", gpu_count=4)
    assert t.instance == Instance(
        name="4x H100 SXM",
        cloud="user",
        chip="GPU",
        gpu=cat.gpu("H100 SXM"),
        gpu_count=4,
        source="--gpu/--gpu-count",
    )
    assert resolve(cat, gpu="t4").instance.name == "1x Tesla T4"
    assert resolve(cat, gpu="a10", gpu_count="2").gpu_count == 2


def test_resolve_unknown_gpu(cat):
    with pytest.raises(UsageError, match=r"^unknown GPU 'h1000'; did you mean "):
        resolve(cat, gpu="h1000")


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5, True])
def test_resolve_bad_gpu_count(cat, bad):
    with pytest.raises(UsageError, match=r"^--gpu-count must be a whole number >= 1"):
        resolve(cat, gpu="a10", gpu_count=bad)


def test_resolve_gpu_and_instance_must_agree(cat):
    t = resolve(cat, instance="ecs.gn7i-c8g1.2xlarge", gpu="nvidia-a10")
    assert t.gpu.name == "A10"
    with pytest.raises(UsageError) as exc:
        resolve(cat, instance="ecs.gn7i-c8g1.2xlarge", gpu="a100")
    assert str(exc.value) == (
        "--gpu a100 (A100 40GB) conflicts with --instance ecs.gn7i-c8g1.2xlarge (1x A10); give only one of them"
    )
    with pytest.raises(UsageError, match=r"has no NVIDIA GPU \(CPU\)"):
        resolve(cat, instance="ecs.c7a.large", gpu="a10")


def test_resolve_gpu_count_with_instance(cat):
    assert resolve(cat, instance="ecs.gn7i-4x.8xlarge", gpu_count=2).gpu_count == 2  # use 2 of its 4 GPUs
    with pytest.raises(
        UsageError, match=r"^--gpu-count 8 but --instance ecs.gn7i-4x.8xlarge has 4 NVIDIA GPU\(s\)$"
    ):
        resolve(cat, instance="ecs.gn7i-4x.8xlarge", gpu_count=8)
    with pytest.raises(UsageError, match=r"^--gpu-count needs --gpu NAME or --instance$"):
        resolve(cat, gpu_count=2)


def test_effective_chip_precedence(cat):
    # flag > instance > image tag
    assert resolve(cat, image="vllm:0.14.0-gpu", instance="ecs.c7a.large").chip == "CPU"
    assert resolve(cat, image="vllm:0.14.0-gpu", instance="ecs.c7a.large", chip="xpu").chip == "XPU"
    assert resolve(cat, image="vllm:0.14.0-xpu").chip == "XPU"
    assert resolve(cat, image="pytorch:2.7.1").chip is None
    assert resolve(cat, image="pytorch:2.7.1", instance="ecs.ebmppu.16xlarge").chip == "PPU"
    with pytest.raises(UsageError, match=r"^unknown chip 'npu'"):
        resolve(cat, chip="npu")


def test_resolve_nothing(cat):
    t = resolve(cat)
    assert (t.image, t.instance, t.chip, t.engine_args) == (None, None, None, {})


def test_resolve_accepts_parsed_image(cat):
    img = parse_image("sglang:0.5.8-gpu", cat)
    assert resolve(cat, image=img).image is img


def test_resolve_local_uses_nvml(cat, monkeypatch):
    fake = Instance(
        name="local",
        cloud="local",
        chip="GPU",
        gpu=GPU("A10", 22 * 2**30, 24.0, "8.6", True, False, memory_source="nvml"),
        gpu_count=1,
    )
    seen = []
    monkeypatch.setattr(gpu_local, "detect", lambda catalog=None: seen.append(catalog) or fake)
    t = resolve(cat, instance="LOCAL", image="vllm")
    assert t.instance is fake and seen == [cat] and t.chip == "GPU"


# -- a gate that lets nothing unknown through (issue 13) ------------------------------------------


@pytest.mark.parametrize(
    "ref, suggestion",
    [
        ("vlm:0.14.0-gpu", "did you mean vllm:0.14.0-gpu?"),
        ("sgalng:0.5.8-gpu", "did you mean sglang:0.5.8-gpu?"),
        ("vllm-opnai:v0.8.4", "did you mean vllm-openai:v0.8.4?"),
        ("eas-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai-eas/vlm:0.14.0-gpu",
         "did you mean eas-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai-eas/vllm:0.14.0-gpu?"),
        ("olama", "did you mean ollama?"),
        ("comfyiu:2.2", "did you mean comfyui:2.2?"),
    ],
)
def test_typo_image_is_a_usage_error(cat, ref, suggestion):
    with pytest.raises(UsageError) as exc:
        parse_image(ref, cat)
    msg = str(exc.value)
    assert msg.startswith(f"unknown image {ref!r}: no engine is called") and suggestion in msg
    assert "--engine" in msg and "--image-spec" in msg


def test_private_image_needs_its_engine_declared(cat):
    img = parse_image("registry.example.com/team/serving:1.4", cat)
    assert (img.known, img.engine, img.version, img.version_from) == (False, "serving", "1.4", "tag")
    img = parse_image("registry.example.com/team/serving:1.4", cat, engine="vllm:0.14.0")
    assert (img.known, img.engine, img.version, img.version_from, img.chip, img.chip_from, img.category) == (
        True, "vllm", "0.14.0", "engine", "GPU", "default", "llm")
    # declared without a version: the newest release the catalog knows, not the private tag
    img = parse_image("registry.example.com/team/serving:1.4", cat, engine="sglang")
    assert (img.engine, img.version, img.version_from) == ("sglang", "0.5.8", "newest-known")
    # a typo'd name with a declared engine is the user's private name: no did-you-mean
    img = parse_image("vlm:2.0", cat, engine="vllm==0.10.2")
    assert (img.engine, img.version, img.known) == ("vllm", "0.10.2", True)


@pytest.mark.parametrize(
    "ref, engine, message",
    [
        ("vllm:0.14.0-gpu", "sglang:0.5.8", "--engine sglang:0.5.8 conflicts with --image vllm:0.14.0-gpu, which is a vllm image"),
        ("vllm:0.14.0-gpu", "vllm:0.13.0", "--engine vllm:0.13.0 conflicts with --image vllm:0.14.0-gpu, which names version 0.14.0"),
        ("acme/x:1", "vlm:0.14.0", "unknown engine 'vlm' in --engine 'vlm:0.14.0'; did you mean vllm?"),
        ("acme/x:1", "vllm:latest!", "invalid --engine 'vllm:latest!': write ENGINE[:VERSION], e.g. vllm:0.14.0"),
    ],
)
def test_engine_declaration_errors(cat, ref, engine, message):
    with pytest.raises(UsageError) as exc:
        parse_image(ref, cat, engine=engine)
    assert str(exc.value) == message


def test_no_version_means_newest_known(cat):
    for ref in ("vllm-gpu", "vllm:latest", "vllm/vllm-openai:latest", "vllm"):
        img = parse_image(ref, cat)
        assert (img.version, img.version_from) == ("0.33.0", "newest-known"), ref
    assert parse_image("vllm:0.14.0-gpu", cat).version_from == "tag"
    # families without a latest_known keep "no version"
    img = parse_image("llama.cpp:server-cuda", cat)
    assert (img.version, img.version_from) == (None, None)


def test_seed_guide_chip_example_resolves_from_the_family(cat):
    """`--image vllm:0.14.0-xpu --instance ecs.gn7-c12g1.12xlarge` (the seed guide's own example)."""
    t = resolve(cat, image="vllm:0.14.0-xpu", instance="ecs.gn7-c12g1.12xlarge")
    assert (t.instance.chip, t.instance.gpu.name, t.instance.gpu_count, t.instance.family) == (
        "GPU", "A100 40GB", 4, "gn7")
    assert t.image.chip == "XPU" and t.chip == "GPU"
    with pytest.raises(UsageError, match="unknown instance 'ecs.gnx9-c12g1.12xlarge'"):
        resolve(cat, instance="ecs.gnx9-c12g1.12xlarge")


def test_image_and_instance_from_cloud_answers(cat):
    from modelcheck.cloudspec import image_from_spec, instances_from_spec

    spec = image_from_spec("fixtures/cloudspec/pai_get_image_xpu.json")
    insts = instances_from_spec("fixtures/cloudspec/eas_describe_machine_spec.json", cat)
    t = resolve(cat, image_spec=spec, instance="ecs.gn7i-c12g1.3xlarge", instance_spec=insts)
    assert (t.image.raw, t.image.engine, t.image.version, t.image.version_from, t.image.chip, t.image.chip_from) == (
        "registry.cn-hangzhou.aliyuncs.com/acme/llm-serving:2.3", "vllm", "0.14.0", "spec", "XPU", "spec")
    assert (t.instance.name, t.instance.gpu.name, t.instance.gpu_count, t.instance.vcpu) == (
        "ecs.gn7i-c12g1.3xlarge", "A10", 1, 12)
    assert t.instance.source.startswith("PAI-EAS DescribeMachineSpec answer in fixtures/cloudspec/")
    # a type the answer does not list falls back to the catalog
    t = resolve(cat, instance="ecs.gn7i-c8g1.2xlarge", instance_spec=insts)
    assert t.instance.source == "Alibaba ecs_gpu_families_en"
    # the tag's chip and the label's chip disagree: the user must say which
    with pytest.raises(UsageError, match="names chip GPU but --image-spec .* says system.chipType XPU"):
        resolve(cat, image="registry.cn-hangzhou.aliyuncs.com/acme/llm-serving:2.3-gpu", image_spec=spec)
    with pytest.raises(UsageError, match="describes 3 types"):
        resolve(cat, instance_spec=insts)


# -- the rules these decisions feed ---------------------------------------------------------------


def _lint(path, **kw):
    from modelcheck.api import check

    r = check(path, **kw).results[0]
    return r, {f.rule: f for f in r.findings}


def test_design_card_form_passes_cleanly(qwen_example):
    r, found = _lint(qwen_example, image="vllm-gpu", instance="ecs.gn7i-c8g1.2xlarge")
    assert found == {}
    assert (r.target.image.version, r.target.image.version_from) == ("0.33.0", "newest-known")


def test_seed_guide_chip_example_is_a_chip_error(qwen_example):
    from modelcheck_rules.chip import instance_from_family

    _r, found = _lint(qwen_example, image="vllm:0.14.0-xpu", instance="ecs.gn7-c12g1.12xlarge")
    assert found["CHP001"].severity.name == "ERROR"
    assert "built for XPU but ecs.gn7-c12g1.12xlarge is a GPU instance" in found["CHP001"].message
    f = found["CHP005"]
    assert (f.severity.name, f.name) == ("WARNING", instance_from_family.__name__.replace("_", "-"))
    assert f.message.startswith("ecs.gn7-c12g1.12xlarge is not in the instance catalog: taken as 4x A100 40GB "
                                "from the gn7 family")
    assert f.data["gpus_from"] == "48 vCPUs at 12 vCPUs per GPU ('c12g1' in the name)"
    assert "--instance-spec" in f.hint


def test_image_spec_xpu_label_on_gpu_instance_is_a_chip_error(qwen_example):
    from modelcheck.cloudspec import image_from_spec
    from modelcheck.target import resolve as _resolve
    from modelcheck.testing import make_facts, run_rule
    from modelcheck_rules.chip import image_chip_mismatch

    t = _resolve(load(), image_spec=image_from_spec("fixtures/cloudspec/pai_get_image_xpu.json"),
                 instance="ecs.gn7i-c8g1.2xlarge")
    [f] = run_rule(image_chip_mismatch, make_facts(), t, catalog=load())
    assert f.rule == "CHP001" and f.data["image_chip"] == "XPU" and f.data["instance_chip"] == "GPU"


def test_newer_than_newest_known_is_named(qwen_example):
    from modelcheck_rules.image import image_newer_than_known

    _r, found = _lint(qwen_example, image="vllm:0.99.0-gpu", instance="ecs.gn7i-c8g1.2xlarge")
    f = found["IMG008"]
    assert (f.severity.name, f.name) == ("WARNING", image_newer_than_known.__name__.replace("_", "-"))
    assert f.message == ("vllm 0.99.0 (from vllm:0.99.0-gpu) is newer than 0.33.0, the newest vllm release "
                         "modelcheck knows: architecture support, quantization, engine flags and the memory "
                         "estimate were checked as 0.33.0")
    assert f.data == {"engine": "vllm", "version": "0.99.0", "newest_known": "0.33.0"}
    _r, found = _lint(qwen_example, image="vllm:0.33.0-gpu", instance="ecs.gn7i-c8g1.2xlarge")
    assert "IMG008" not in found
