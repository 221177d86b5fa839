"""DEP rules on deployment specs (PAI-EAS service JSON, deploy YAML, start commands), through the real linter."""

from __future__ import annotations

import json
from pathlib import Path

from modelcheck import deploy
from modelcheck.testing import make_facts, make_target, run_rule
from modelcheck_rules import deploy as dep_rules
from modelcheck_rules import deploy_runtime

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "fixtures" / "specs"


FACTS = make_facts(config={"architectures": ["Qwen2ForCausalLM"], "num_attention_heads": 28})


def _target(path: str, **kw):
    spec = deploy.load(service=str(SPECS / path), **kw)
    return make_target(image=spec["image"], instance=spec["instance"], engine_args=spec["engine_args"],
                       deployment=spec["deployment"])


GOOD = "eas_vllm_good.json"
BAD = "eas_bad_mount.json"


def test_dep001_model_path_not_mounted():
    assert run_rule(dep_rules.model_path_not_mounted, FACTS, _target(GOOD)) == []
    (f,) = run_rule(dep_rules.model_path_not_mounted, FACTS, _target(BAD))
    assert f.rule == "DEP001" and "/models/qwen" in f.message and "/model_dir" in f.message
    assert f.path == "eas_bad_mount.json:containers[0].command" and "/model_dir" in f.hint
    assert f.severity.label == "error" and "under none of the mounts (/model_dir, /model_dir/cache, /usr)" in f.message
    assert f.data == {"model_path": "/models/qwen", "mounts": ["/model_dir", "/model_dir/cache", "/usr"]}
    assert f.hint == "serve /model_dir in the command, or mount the model storage at /models/qwen"


def test_dep002_dep003_mounts():
    assert run_rule(dep_rules.mounts_overlap, FACTS, _target(GOOD)) == []
    (f,) = run_rule(dep_rules.mounts_overlap, FACTS, _target(BAD))
    assert f.data["mounts"] == ["/model_dir", "/model_dir/cache"]
    assert f.rule == "DEP002" and f.severity.label == "error" and f.path == "eas_bad_mount.json:storage[1].mount_path"
    assert "storage[0] (/model_dir) and storage[1] (/model_dir/cache) overlap" in f.message
    assert run_rule(dep_rules.mount_on_system_path, FACTS, _target(GOOD)) == []
    (f,) = run_rule(dep_rules.mount_on_system_path, FACTS, _target(BAD))
    assert f.path.endswith("storage[2].mount_path") and "/usr" in f.message
    assert f.rule == "DEP003" and f.severity.label == "error" and "a system path (/usr)" in f.message
    assert f.data == {"mount_path": "/usr", "system_path": "/usr"} and "/model_dir" in f.hint


def test_dep004_dep006_dep007_dep011_sglang_spec():
    t = _target("eas_sglang_default_port.json")
    (f,) = run_rule(dep_rules.oss_url_passed_to_engine, FACTS, t)
    assert f.data == {"url": "oss://examplebucket/qwen/", "oss_mounts": []}
    assert f.rule == "DEP004" and f.severity.label == "error"
    assert f.path == "eas_sglang_default_port.json:containers[0].command"
    assert "engines cannot read oss:// URLs" in f.message and "mount_path: /model_dir" in f.hint
    (f,) = run_rule(deploy_runtime.engine_port_mismatch, FACTS, t)
    assert f.data == {"engine_port": 30000, "container_port": 8000, "explicit": False} and "--port 8000" in f.hint
    assert f.rule == "DEP006" and f.severity.label == "error"
    assert f.message == "the sglang command listens on port 30000 (its default) but the spec routes to 8000"
    # the CPU instance type is reported once, by CHP001/CHP003 (chip family), not again here
    assert run_rule(deploy_runtime.gpu_image_on_cpu_spec, FACTS, t) == []
    for r in (dep_rules.oss_url_passed_to_engine, deploy_runtime.engine_port_mismatch, deploy_runtime.gpu_image_on_cpu_spec,
              deploy_runtime.launcher_differs_from_image):
        assert run_rule(r, FACTS, _target(GOOD)) == []


def test_dep011_launcher_differs(tmp_path):
    doc = json.loads((SPECS / GOOD).read_text())
    doc["containers"][0]["command"] = "python -m sglang.launch_server --model-path /model_dir --port 8000"
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    spec = deploy.load(service=str(p))
    t = make_target(image=spec["image"], instance=spec["instance"], deployment=spec["deployment"])
    (f,) = run_rule(deploy_runtime.launcher_differs_from_image, FACTS, t)
    assert f.data == {"launcher": "sglang", "image_engine": "vllm"}
    assert f.rule == "DEP011" and f.severity.label == "warning" and f.path == "s.json:containers[0].command"
    assert f.message.startswith("the command starts sglang but the image ") and f.message.endswith("is a vllm image")
    assert f.hint == "use a sglang image or a vllm command"


def test_dep005_no_port(tmp_path):
    doc = json.loads((SPECS / GOOD).read_text())
    del doc["containers"][0]["port"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    spec = deploy.load(service=str(p))
    (f,) = run_rule(deploy_runtime.no_service_port, FACTS, make_target(deployment=spec["deployment"]))
    assert f.rule == "DEP005" and '"port": 8000' in f.hint
    assert f.severity.label == "error" and f.path == "s.json:containers[0].port"
    assert "containers[0].port is missing" in f.message and f.data == {"engine_port": 8000}
    assert run_rule(deploy_runtime.no_service_port, FACTS, _target(GOOD)) == []


def test_dep008_gpu_count():
    (f,) = run_rule(deploy_runtime.gpu_count_below_parallel, FACTS, _target(BAD))
    assert f.data == {"metadata_gpu": 1, "tensor_parallel_size": 2, "pipeline_parallel_size": 1}
    assert f.rule == "DEP008" and f.severity.label == "error" and f.path == "eas_bad_mount.json:metadata.gpu"
    assert "metadata.gpu is 1 but the command needs 2 GPUs" in f.message
    assert f.hint == "set metadata.gpu to 2 or use --tensor-parallel-size 1"
    assert run_rule(deploy_runtime.gpu_count_below_parallel, FACTS, _target(GOOD)) == []


def test_dep009_gated(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    spec = deploy.load(serve_cmd="vllm serve meta-llama/Llama-3.1-8B-Instruct")
    (f,) = run_rule(deploy_runtime.hub_model_download, FACTS, make_target(deployment=spec["deployment"]))
    assert f.severity.label == "error" and "HF_TOKEN" in f.hint and f.data["gated"] is True
    assert f.rule == "DEP009" and "meta-llama/Llama-3.1-8B-Instruct is gated" in f.message
    assert f.data["repo"] == "meta-llama/Llama-3.1-8B-Instruct" and f.data["hf_token_set"] is False
    spec = deploy.load(serve_cmd="HF_TOKEN=hf_x vllm serve Qwen/Qwen2.5-7B-Instruct")
    (f,) = run_rule(deploy_runtime.hub_model_download, FACTS, make_target(deployment=spec["deployment"]))
    assert f.severity.label == "info" and f.data["gated"] is False
    assert f.rule == "DEP009" and "downloads Qwen/Qwen2.5-7B-Instruct from the hub" in f.message
    assert f.data["hf_token_set"] is True
    assert run_rule(deploy_runtime.hub_model_download, FACTS, _target(GOOD)) == []


def test_dep010_nas_without_vpc():
    (f,) = run_rule(dep_rules.nas_mount_without_vpc, FACTS, _target(BAD))
    assert "storage[1]" in f.message
    assert f.rule == "DEP010" and f.severity.label == "error" and f.path == "eas_bad_mount.json:storage[1].nfs"
    assert "cloud.networking has no vpc_id/vswitch_id" in f.message and "vpc_id" in f.hint
    assert f.data == {"mount_path": "/model_dir/cache"}
    assert run_rule(dep_rules.nas_mount_without_vpc, FACTS, _target(GOOD)) == []


# -- CLI end-to-end ---------------------------------------------------------------------------------
