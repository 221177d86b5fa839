"""The cloud's own answers as the target (checker/cloudspec.py); fixtures/cloudspec/PROVENANCE.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcheck.catalog import load
from modelcheck.cloudspec import MAX_SPEC_BYTES, find_in_spec, image_from_spec, instances_from_spec
from modelcheck.errors import UsageError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "cloudspec"


@pytest.fixture(scope="module")
def cat():
    return load()


def _rows(insts):
    return [(i.name, i.cloud, i.chip, i.gpu.name if i.gpu else None, i.gpu_count, i.vcpu, i.mem_gib) for i in insts]


def test_eas_describe_machine_spec(cat):
    insts = instances_from_spec(FIX / "eas_describe_machine_spec.json", cat)
    assert _rows(insts) == [
        ("ml.gu7i.c32m188.1-gu30", "alibaba", "GPU", "GU30", 1, 32, 188),
        ("ecs.gn7i-c12g1.3xlarge", "alibaba", "GPU", "A10", 1, 12, 46),
        ("ecs.c7a.large", "alibaba", "CPU", None, 0, 2, 4),
    ]
    assert insts[1].family == "gn7i"
    assert cat.find_instance("ecs.gn7i-c12g1.3xlarge").source.startswith("not a catalog entry")  # we do not list it


def test_aws_describe_instance_types(cat):
    insts = instances_from_spec(FIX / "aws_describe_instance_types.json", cat)
    assert _rows(insts) == [
        ("g5.4xlarge", "aws", "GPU", "A10G", 1, 16, 64.0),
        ("p4d.24xlarge", "aws", "GPU", "A100 40GB", 8, 96, 1152.0),
        ("m5.large", "aws", "CPU", None, 0, 2, 8.0),
    ]


def test_sdk_envelope_and_a_gpu_slice(cat, tmp_path):
    body = {"InstanceMetas": [{"InstanceType": "ecs.sgn7i-vws-m2.xlarge", "GPU": "A10", "GPUAmount": 1,
                               "GPUMemory": 2, "CPU": 4, "Memory": 15}]}
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"headers": {}, "statusCode": 200, "body": body}), encoding="utf-8")
    [inst] = instances_from_spec(p, cat)
    assert (inst.gpu.name, inst.gpu.memory_bytes, inst.gpu.compute_capability) == ("A10 vGPU 2GB", 2_000_000_000, "8.6")


def test_find_in_spec(cat):
    insts = instances_from_spec(FIX / "eas_describe_machine_spec.json", cat)
    assert find_in_spec(insts, "ECS.GN7I-C12G1.3XLARGE", "f").name == "ecs.gn7i-c12g1.3xlarge"
    assert find_in_spec(insts, "ecs.gn6i-c4g1.xlarge", "f") is None
    with pytest.raises(UsageError, match=r"--instance-spec f describes 3 types \(ml.gu7i.c32m188.1-gu30, "):
        find_in_spec(insts, None, "f")


@pytest.mark.parametrize(
    "name, spec, expected",
    [
        ("pai_get_image_xpu.json", "pai", ("registry.cn-hangzhou.aliyuncs.com/acme/llm-serving:2.3", "vLLM", "0.14.0", "XPU")),
        ("pai_list_image_labels.json", "pai", (None, "SGLang", "0.5.8", "GPU")),
        ("docker_inspect_vllm.json", "docker", ("registry.example.com/team/serving:1.4", "vllm", "0.10.2", "GPU")),
        ("skopeo_inspect_sglang.json", "skopeo", ("docker.io/lmsysorg/sglang:v0.5.8-cu129", None, None, "GPU")),
    ],
)
def test_image_specs(name, spec, expected):
    got = image_from_spec(FIX / name)
    assert (got["uri"], got["engine"], got["version"], got["chip"]) == expected
    assert got["format"] == spec and got["origin"].endswith(name)


def _write(tmp_path, doc, name="s.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "doc, message",
    [
        ("{", "not valid JSON (line 1, column 2): Expecting property name enclosed in double quotes"),
        ({"Foo": 1}, "neither a PAI-EAS describe-machine-spec answer (InstanceMetas) nor an AWS describe-instance-types answer (InstanceTypes); found Foo"),
        ({"InstanceMetas": {}}, "InstanceMetas: expected a list"),
        ({"InstanceMetas": []}, "the answer lists no instance types"),
        ({"InstanceMetas": [{"GPU": "A10"}]}, "InstanceMetas[0].InstanceType: missing"),
        ({"InstanceMetas": [{"InstanceType": "x", "GPUAmount": "two"}]}, "InstanceMetas[0].GPUAmount: expected a number, got \"two\""),
        ({"InstanceMetas": [{"InstanceType": "x", "GPUAmount": 2}]}, "InstanceMetas[0].GPU: missing for an instance type with GPUAmount 2"),
        ({"InstanceMetas": [{"InstanceType": "x", "GPUAmount": 1, "GPU": "Voodoo2"}]}, "InstanceMetas[0] (x): GPU 'Voodoo2' is not in the GPU catalog"),
        ({"InstanceTypes": [{"InstanceType": "inf2.xlarge", "GpuInfo": {"Gpus": []}}]}, "InstanceTypes[0].GpuInfo.Gpus: expected a non-empty list"),
        ({"InstanceTypes": [{"InstanceType": "g4ad.xlarge", "GpuInfo": {"Gpus": [{"Name": "Radeon Pro V520", "Manufacturer": "AMD", "Count": 1}]}}]},
         "AMD Radeon Pro V520 is not an NVIDIA GPU"),
    ],
)
def test_bad_instance_specs_are_one_line_errors(cat, tmp_path, doc, message):
    p = _write(tmp_path, doc)
    with pytest.raises(UsageError) as exc:
        instances_from_spec(p, cat)
    msg = str(exc.value)
    assert msg.startswith(f"--instance-spec {p}") and message in msg and "\n" not in msg


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "expected the inspect answer for one image, found 0 entries"),
        ({"ImageUri": "x:1", "Labels": {"a": 1, "system.chipType": "TPU"}}, "system.chipType 'TPU' is not GPU, CPU, PPU or XPU"),
        ({"ImageUri": "x:1", "Labels": [{"Value": "GPU"}]}, "Labels[0]: expected an object with Key and Value"),
        ({"Config": {"Env": "CUDA_VERSION=12"}}, "Config.Env: expected a list of NAME=value strings"),
        ({"Images": [{"Name": "a"}, {"Name": "b"}]}, "2 images (a, b...); name one with --image"),
        ({"Whatever": 1}, "not a PAI GetImage/ListImages/ListImageLabels answer"),
    ],
)
def test_bad_image_specs_are_one_line_errors(tmp_path, doc, message):
    p = _write(tmp_path, doc)
    with pytest.raises(UsageError) as exc:
        image_from_spec(p)
    assert str(exc.value).startswith(f"--image-spec {p}") and message in str(exc.value)


def test_reads_are_bounded_and_files_only(tmp_path, cat):
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(MAX_SPEC_BYTES + 10)  # sparse: a huge answer is refused before parsing
    with pytest.raises(UsageError, match="larger than 4 MiB"):
        instances_from_spec(big, cat)
    with pytest.raises(UsageError, match="no such file"):
        image_from_spec(tmp_path / "missing.json")
    with pytest.raises(UsageError, match="not a regular file"):
        image_from_spec(tmp_path)
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"ImageUri": "caf\xe9"}')
    with pytest.raises(UsageError, match="not UTF-8 text"):
        image_from_spec(bad)
    deep = _write(tmp_path, "[" * 100000 + "]" * 100000, "deep.json")
    with pytest.raises(UsageError, match="not valid JSON"):
        image_from_spec(deep)


# -- through the command line ---------------------------------------------------------------------


def _cli(*args):
    from click.testing import CliRunner

    from modelcheck.cli import main

    return CliRunner().invoke(main, [*args, "--no-config"], catch_exceptions=False)


def test_cli_image_spec_xpu_label_on_gpu_instance(qwen_example):
    r = _cli(str(qwen_example), "--image-spec", str(FIX / "pai_get_image_xpu.json"),
             "--instance", "ecs.gn7i-c8g1.2xlarge", "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    [chp] = [f for f in doc["results"][0]["findings"] if f["rule"] == "CHP001"]
    assert chp["data"]["image_chip"] == "XPU" and chp["data"]["instance_chip"] == "GPU"


def test_cli_instance_spec_resolves_an_unlisted_type(qwen_example):
    r = _cli(str(qwen_example), "--image", "vllm:0.14.0-gpu", "--instance", "ecs.gn7i-c12g1.3xlarge",
             "--instance-spec", str(FIX / "eas_describe_machine_spec.json"))
    assert r.exit_code == 0, r.output
    assert "instance ecs.gn7i-c12g1.3xlarge [GPU, 1x A10]" in r.output and "CHP005" not in r.output
    r = _cli(str(qwen_example), "--instance", "x", "--instance-spec", str(FIX / "nope.json"))
    assert r.exit_code == 2 and f"--instance-spec {FIX / 'nope.json'}: no such file" in r.output


def test_cli_engine_declares_a_private_image(qwen_example):
    r = _cli(str(qwen_example), "--image", "registry.example.com/team/serving:1.4", "--engine", "vllm:0.14.0",
             "--instance", "ecs.gn7i-c8g1.2xlarge")
    assert r.exit_code == 0 and "IMG006" not in r.output and "image vllm 0.14.0 (GPU)" in r.output
    r = _cli(str(qwen_example), "--image", "vlm:0.14.0-gpu")
    assert r.exit_code == 2 and "did you mean vllm:0.14.0-gpu?" in r.output
