"""Catalog data and loader: schema validation of the built-ins, tolerant lookups, suggestions, user files."""

from __future__ import annotations

import textwrap
from importlib import resources

import pytest
import yaml

import modelcheck.catalog as catalog_mod
from modelcheck.catalog import BUILTIN_FILES, load, normalize_gpu_name, validate
from modelcheck.errors import CatalogError, UsageError
from modelcheck.model import GPU, Instance

GIB = 2**30


@pytest.fixture(scope="module")
def cat():
    return load()


@pytest.mark.parametrize("name", BUILTIN_FILES)
def test_builtin_files_are_valid_against_schema(name):
    doc = yaml.safe_load(resources.files("modelcheck.catalog").joinpath(name).read_text(encoding="utf-8"))
    validate(doc, name)  # raises CatalogError with the key path on any violation
    assert doc["schema_version"] == 1
    assert doc["sources"], f"{name} must keep its sources"


def test_every_builtin_entry_keeps_a_source():
    for name in BUILTIN_FILES:
        doc = yaml.safe_load(resources.files("modelcheck.catalog").joinpath(name).read_text(encoding="utf-8"))
        for section in ("gpus", "instances", "instance_patterns"):
            for entry in doc.get(section) or ():
                assert entry.get("source"), f"{name}:{section}:{entry.get('name') or entry.get('pattern')}"
        for family, entry in (doc.get("images") or {}).items():
            assert entry.get("source"), f"{name}:images.{family}"


def test_load_is_cached_for_builtins():
    assert load() is load()


@pytest.mark.parametrize(
    "typed, canonical",
    [
        ("A10", "A10"),
        ("a10", "A10"),
        ("nvidia-a10", "A10"),
        ("NVIDIA A10G", "A10G"),
        ("a10g", "A10G"),
        ("Tesla T4", "Tesla T4"),
        ("t4", "Tesla T4"),
        ("tesla-t4", "Tesla T4"),
        ("a100", "A100 40GB"),
        ("a100-40gb", "A100 40GB"),
        ("A100-80GB", "A100 80GB"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
        ("h100", "H100 SXM"),
        ("h100-80gb", "H100 SXM"),
        ("h100-sxm", "H100 SXM"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("h20", "H20"),
        ("h200", "H200"),
        ("l4", "L4"),
        ("l20", "L20"),
        ("L40S", "L40S"),
        ("v100", "Tesla V100 16GB"),
        ("v100-32gb", "Tesla V100 32GB"),
        ("rtx4090", "RTX 4090"),
        ("4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("rtx3090", "RTX 3090"),
        ("p4", "Tesla P4"),
        ("p100", "Tesla P100"),
        ("b200", "B200"),
    ],
)
def test_gpu_lookup_is_tolerant(cat, typed, canonical):
    assert cat.gpu(typed).name == canonical


@pytest.mark.parametrize(
    "name, cc, bf16, fp8, fp4",
    [
        ("t4", "7.5", False, False, False),
        ("v100", "7.0", False, False, False),
        ("p100", "6.0", False, False, False),
        ("a10", "8.6", True, False, False),
        ("a100", "8.0", True, False, False),
        ("l20", "8.9", True, True, False),
        ("4090", "8.9", True, True, False),
        ("h20", "9.0", True, True, False),
        ("b200", "10.0", True, True, True),
        ("rtx-pro-6000", "12.0", True, True, True),
    ],
)
def test_gpu_capabilities(cat, name, cc, bf16, fp8, fp4):
    g = cat.gpu(name)
    assert (g.compute_capability, g.bf16, g.fp8, g.fp4) == (cc, bf16, fp8, fp4)


@pytest.mark.parametrize(
    "name, gib, memory_source",
    [
        ("Tesla T4", 14.74, "vllm-observation"),  # vLLM printed 14.74 GiB on T4
        ("A10", 22.06, "vllm-observation"),
        ("RTX 3090", 23.57, "vllm-observation"),
        ("RTX 4090", 23.55, "vllm-observation"),
        ("A100 40GB", 39.39, "vllm-observation"),
        ("A100 80GB", 79.35, "torch-published"),
        ("L40S", 44.42, "vllm-observation"),
        ("Tesla V100 32GB", 31.74, "vllm-observation"),
        ("H200", 139.80, "torch-published"),
    ],
)
def test_gpu_memory_is_what_the_driver_reports(cat, name, gib, memory_source):
    g = cat.gpu(name)
    assert abs(g.memory_bytes / GIB - gib) < 0.001
    assert g.memory_source == memory_source
    assert g.memory_bytes % 2**20 == 0


def test_every_gpu_reports_less_than_nominal_and_nvml(cat):
    for g in cat.gpus():
        info = cat.gpu_info(g.name)
        # "40 GB" HBM is 40 GiB of chips (nvidia-smi 40960 MiB): the binary size is the upper bound.
        assert g.memory_bytes < g.nominal_gb * GIB, g.name
        if "nvml_total_mib" in info:
            assert g.memory_bytes <= info["nvml_total_mib"] * 2**20, g.name
        assert abs(g.memory_bytes - info["memory_gib"] * GIB) <= 2**20, g.name  # the two stated figures agree
        assert info["memory_source"] in {"vllm-observation", "torch-published", "estimate"}
        assert info["memory_note"]


def test_unknown_gpu_suggests(cat):
    with pytest.raises(UsageError) as exc:
        cat.gpu("a1000")
    assert str(exc.value) == "unknown GPU 'a1000'; did you mean A100 40GB, A100 80GB or RTX A6000?"


def test_instance_lookup(cat):
    inst = cat.instance("ecs.gn7i-c8g1.2xlarge")
    assert isinstance(inst, Instance)
    assert (inst.cloud, inst.chip, inst.gpu.name, inst.gpu_count, inst.vcpu, inst.mem_gib) == (
        "alibaba",
        "GPU",
        "A10",
        1,
        8,
        30.0,
    )
    assert cat.instance("ECS.GN7I-C8G1.2XLARGE").name == "ecs.gn7i-c8g1.2xlarge"
    assert cat.instance("ecs.gn6i-c4g1.xlarge").gpu.name == "Tesla T4"
    assert cat.instance("ecs.gn8v-8x.48xlarge").gpu_count == 8
    assert cat.instance("g5.12xlarge").gpu.name == "A10G"
    assert cat.instance("a3-highgpu-8g").gpu.name == "H100 SXM"
    assert cat.instance("Standard_NC24ads_A100_v4").gpu.name == "A100 80GB"
    pai = cat.instance("ml.gu7i.c16m60.1-gu30")
    assert (pai.cloud, pai.gpu.name, pai.gpu_count) == ("pai", "GU30", 1)


def test_vgpu_instance_carries_slice_memory(cat):
    inst = cat.instance("ecs.sgn7i-vws-m4.2xlarge")
    assert inst.gpu.name == "A10 vGPU 4GB"
    assert inst.gpu.memory_bytes == 4 * GIB
    assert inst.gpu.compute_capability == "8.6"


def test_cpu_and_chip_family_instances(cat):
    c7a = cat.instance("ecs.c7a.large")
    assert (c7a.chip, c7a.gpu, c7a.gpu_count, c7a.vcpu) == ("CPU", None, 0, 2)
    assert "illustrative" in c7a.source
    g7 = cat.instance("ecs.g7.16xlarge")  # not listed: matched by the CPU family pattern
    assert (g7.chip, g7.gpu_count, g7.vcpu, g7.family) == ("CPU", 0, 64, "g7")
    ppu = cat.instance("ecs.ebmppu.16xlarge")
    assert (ppu.chip, ppu.gpu, ppu.family) == ("PPU", None, "ebmppu")
    xpu = cat.instance("ecs.egs-a1.4xlarge")
    assert (xpu.chip, xpu.family) == ("XPU", "egs")


def test_unknown_instance_is_one_line_with_did_you_mean(cat):
    with pytest.raises(UsageError) as exc:
        cat.instance("ecs.gn7i-foo")
    assert str(exc.value) == (
        "unknown instance 'ecs.gn7i-foo'; did you mean ecs.gn7i-c8g1.2xlarge, ecs.gn7i-c16g1.4xlarge "
        "or ecs.gn7i-c32g1.8xlarge?"
    )
    assert "\n" not in str(exc.value)
    assert cat.suggest("instance", "g5.xlarg")[0] == "g5.xlarge"


def test_instances_filter(cat):
    aws = cat.instances(cloud="aws")
    assert {i.cloud for i in aws} == {"aws"}
    assert "p4d.24xlarge" in [i.name for i in aws]
    cpus = cat.instances(chip="cpu")
    assert cpus and all(i.chip == "CPU" and i.gpu is None for i in cpus)
    assert [i.name for i in aws] == sorted(i.name for i in aws)


def test_image_family(cat):
    fam = cat.image_family("vllm")
    assert fam["name"] == "vllm" and fam["category"] == "llm" and fam["default_port"] == 8000
    assert "hf-llm" in fam["accepts_kinds"] and "gguf" in fam["accepts_formats"]
    assert cat.image_family("stable-diffusion-webui")["name"] == "sd-webui"
    assert cat.image_family("tritonserver")["accepts_formats"][0] == "triton-repo"
    assert cat.image_family("cosyvoice")["category"] == "tts"
    fam["category"] = "mutated"
    assert cat.image_family("vllm")["category"] == "llm"  # callers get copies
    with pytest.raises(UsageError, match=r"unknown image 'vlm'; did you mean vllm\?"):
        cat.image_family("vlm")


def test_normalize_gpu_name():
    assert normalize_gpu_name("NVIDIA GeForce RTX 4090") == "rtx4090"
    assert normalize_gpu_name("Tesla T4") == "t4"
    assert normalize_gpu_name("h100-80gb") == "h10080gb"


def _write(tmp_path, text, name="my-catalog.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(p)


def test_user_catalog_adds_private_instance_and_gpu(tmp_path):
    path = _write(
        tmp_path,
        """
        schema_version: 1
        gpus:
          - {name: "Acme X1", aliases: [x1], compute_capability: "8.9", bf16: true, fp8: true,
             memory_gib: 40, source: "vendor sheet"}
        instances:
          - {name: onprem.a10x2, cloud: private, chip: gpu, gpu: a10, gpus: 2, vcpu: 32, mem_gib: 128, source: "our rack"}
          - {name: onprem.x1, chip: GPU, gpu: x1, gpus: 1}
          - {name: ecs.gn7i-c8g1.2xlarge, cloud: alibaba, chip: GPU, gpu: A10, gpus: 1, vcpu: 8, mem_gib: 32, source: "override"}
        images:
          vllm: {category: llm, versions: ["0.15.0"]}
          myengine: {category: llm, aliases: [acme/engine], accepts_kinds: [hf-llm], source: "ours"}
    """,
    )
    cat = load([path])
    inst = cat.instance("onprem.a10x2")
    assert (inst.cloud, inst.chip, inst.gpu.name, inst.gpu_count) == ("private", "GPU", "A10", 2)
    x1 = cat.instance("onprem.x1")
    assert isinstance(x1.gpu, GPU) and x1.gpu.name == "Acme X1" and x1.gpu.memory_bytes == 40 * GIB
    assert x1.cloud == "user"
    assert cat.instance("ecs.gn7i-c8g1.2xlarge").mem_gib == 32.0
    assert cat.image_family("vllm")["versions"] == ["0.15.0"]
    assert cat.image_family("vllm")["default_port"] == 8000  # merged key by key
    assert cat.image_family_name("acme/engine") == "myengine"
    assert load().instance("ecs.gn7i-c8g1.2xlarge").mem_gib == 30.0  # built-ins untouched
    assert load().find_instance("onprem.a10x2") is None


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "instances:\n  - {name: x, chip: TPU}\n",
            "invalid catalog file {p}: instances[0].chip (x): 'TPU' is not one of ['GPU', 'CPU', 'PPU', 'XPU']",
        ),
        (
            "instances:\n  - {name: x, chip: GPU, gpus: -1}\n",
            "invalid catalog file {p}: instances[0].gpus (x): -1 is less than the minimum of 0",
        ),
        (
            "gpus:\n  - {name: g, compute_capability: '8.0', bf16: true, fp8: false}\n",
            "invalid catalog file {p}: gpus[0] (g): a GPU needs memory_bytes or memory_gib",
        ),
        (
            "gpus:\n  - {name: g, compute_capability: '8.0', bf16: true, fp8: false, memory_gb: 80}\n",
            "invalid catalog file {p}: gpus[0] (g): unknown key ('memory_gb' was unexpected)",
        ),
        (
            "instance:\n  - {name: x, chip: GPU}\n",
            "invalid catalog file {p}: (top level): unknown key ('instance' was unexpected)",
        ),
        (
            "instances:\n  - {name: x, chip: GPU, gpu: a1000, gpus: 1}\n",
            "invalid catalog file {p}: instances[0].gpu (x): unknown GPU 'a1000'; did you mean A100 40GB, A100 80GB or RTX A6000?",
        ),
        (
            "images:\n  vllm: {category: llm, default_port: 99999}\n",
            "invalid catalog file {p}: images.vllm.default_port: 99999 is greater than the maximum of 65535",
        ),
        ("instances: [\n", "invalid catalog file {p}: not valid YAML (line 2, column 1): ..."),
        (
            "- just\n- a list\n",
            "invalid catalog file {p}: (top level): ['just', 'a list'] is not of type 'object'",
        ),
    ],
)
def test_invalid_user_catalog_names_file_and_key_path(tmp_path, text, message):
    path = _write(tmp_path, text, "bad.yaml")
    with pytest.raises(CatalogError) as exc:
        load([path])
    expected = message.format(p=path)
    if expected.endswith("..."):  # the parser's own wording differs between libyaml and pure Python
        assert str(exc.value).startswith(expected[:-3]) and "\n" not in str(exc.value)
    else:
        assert str(exc.value) == expected
    assert exc.value.exit_code == 2


def test_missing_user_catalog(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(CatalogError, match=r"cannot read catalog file .*nope.yaml: FileNotFoundError"):
        load([path])


def test_builtin_yaml_is_read_without_jsonschema_import_cost():
    # The default path must not pay for jsonschema; the built-ins are validated by the test above.
    catalog_mod._builtin_catalog.cache_clear()
    try:
        import sys

        before = "jsonschema" in sys.modules
        load()
        assert before or "jsonschema" not in sys.modules
    finally:
        load()


# -- instance families and image names (issue 13) -------------------------------------------------


@pytest.mark.parametrize(
    "name, chip, gpu, count, family, gpus_from",
    [
        # Alibaba ECS naming: c<vCPUs per GPU>g1 with the size's vCPUs, or the -Nx multiplier
        ("ecs.gn7-c12g1.12xlarge", "GPU", "A100 40GB", 4, "gn7", "48 vCPUs at 12 vCPUs per GPU ('c12g1' in the name)"),
        ("ecs.gn7i-16x.64xlarge", "GPU", "A10", 16, "gn7i", "the '-16x' multiplier in the name"),
        ("ecs.gn8v-tee-4x.16xlarge", "GPU", "H20", 4, "gn8v-tee", "the '-4x' multiplier in the name"),
        ("g5.3xlarge", "GPU", "A10G", 1, "g5", "assumed: the smallest g5 type has 1"),
        ("ecs.c7.16xlarge", "CPU", None, 0, "c7", "no GPU"),
    ],
)
def test_unlisted_instance_resolves_from_its_family(name, chip, gpu, count, family, gpus_from):
    cat = load()
    inst = cat.instance(name)
    assert (inst.chip, inst.gpu.name if inst.gpu else None, inst.gpu_count, inst.family) == (chip, gpu, count, family)
    info = cat.instance_info(name)
    assert (info["inferred_from"], info["family"], info["gpus_from"], info["confidence"]) == (
        "family", family, gpus_from, "low")
    assert inst.source.startswith("not a catalog entry: ")
    assert cat.instance_family(name) == family


def test_guide_prefixes_and_unknown_families():
    cat = load()
    assert cat.instance("ecs.ebmppu1.16xlarge").chip == "PPU"  # eas_chip_compat: ecs.ebmppu* -> PPU
    assert cat.instance("ecs.egs1.4xlarge").chip == "XPU"  # ecs.egs* -> XPU
    assert cat.instance_info("ecs.gn7i-c8g1.2xlarge")["gpus"] == 1  # a listed type: its own entry
    assert "inferred_from" not in cat.instance_info("ecs.gn7i-c8g1.2xlarge")
    with pytest.raises(UsageError, match="unknown instance 'ecs.gn99-c8g1.2xlarge'"):
        cat.instance("ecs.gn99-c8g1.2xlarge")
    # vGPU families mix slice sizes: a size we do not list is not guessed
    assert cat.find_instance("ecs.sgn7i-vws-m3.xlarge") is None


def test_newest_version_and_close_image_names():
    cat = load()
    assert (cat.newest_version("vllm"), cat.newest_version("vllm/vllm-openai"), cat.newest_version("sglang")) == (
        "0.33.0", "0.33.0", "0.5.8")
    assert cat.newest_version("comfyui") is None
    assert [cat.close_image_name(n) for n in ("vlm", "sgalng", "olama", "vllm-opnai")] == [
        "vllm", "sglang", "ollama", "vllm-openai"]
    # other names that merely share letters are not slips
    assert [cat.close_image_name(n) for n in ("serving", "llm", "comfy", "vllm", "my-server")] == [None] * 5
