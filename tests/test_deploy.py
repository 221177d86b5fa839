"""modelcheck.deploy: start-command parsing, EAS service JSON / deploy YAML loading, DEP rules, CLI end-to-end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelcheck import deploy
from modelcheck.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "fixtures" / "specs"


@pytest.mark.parametrize(
    ("cmd", "launcher", "model", "port", "args"),
    [
        ("vllm serve /model_dir --port 8000 --trust-remote-code", "vllm", "/model_dir", 8000, {"trust_remote_code": True}),
        ("python3 -m vllm.entrypoints.openai.api_server --model Qwen/Qwen2.5-7B-Instruct -tp 2 --max-model-len 32k",
         "vllm", "Qwen/Qwen2.5-7B-Instruct", None, {"tensor_parallel_size": 2, "max_model_len": 32768}),
        ("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve /m --gpu-memory-utilization=0.95 --no-enable-chunked-prefill",
         "vllm", "/m", None, {"gpu_memory_utilization": 0.95, "enable_chunked_prefill": False}),
        ("bash -c \"pip install x && python -m sglang.launch_server --model-path /m --tp 2 --context-length 65536 "
         "--mem-fraction-static 0.8 --port 8000\"", "sglang", "/m", 8000,
         {"tensor_parallel_size": 2, "context_length": 65536, "max_model_len": 65536, "mem_fraction_static": 0.8}),
        ("cd /app && ./llama-server -m /models/q.gguf -c 8192 -ngl 99 --port 8080", "llama.cpp", "/models/q.gguf", 8080,
         {"ctx_size": 8192, "n_gpu_layers": 99, "max_model_len": 8192}),
        ("sglang serve --model-path /m --dtype half", "sglang", "/m", None, {"dtype": "half"}),
        ("python app.py", None, None, None, {}),
    ],
)
def test_parse_serve_command_matrix(cmd, launcher, model, port, args):
    r = deploy.parse_serve_command(cmd)
    assert r["launcher"] == launcher
    assert r["model"] == model
    assert r["port"] == port
    for k, v in args.items():
        assert r["engine_args"][k] == v


def test_parse_keeps_unknown_flags_and_env():
    r = deploy.parse_serve_command("HF_TOKEN=x exec vllm serve /m --frobnicate 3 --weird-flag")
    assert r["env"] == {"HF_TOKEN": "x"}
    assert r["unknown"] == {"--frobnicate": "3", "--weird-flag": True} and "_unknown" not in r["engine_args"]
    assert "--frobnicate" in r["flags"] and "--weird-flag" in r["flags"]


def test_parse_bad_number_is_config_error():
    with pytest.raises(ConfigError, match="--max-model-len 'abc' is not a number"):
        deploy.parse_serve_command("vllm serve /m --max-model-len abc")


def _examples():
    # a copy of the reference data's example_service_configs kept in the project: never skipped
    data = yaml.safe_load((SPECS / "eas_examples.yaml").read_text())
    return [(e["name"], e["config"]) for e in data["example_service_configs"]]


# name -> (instance, launcher, metadata_gpu) that deploy.load must read from each public example
EXAMPLE_EXPECTED = {
    "official_minimal_cpu": ("ecs.c7a.large", None, None),
    "sd_webui_standard_with_oss": ("ml.gu7i.c16m60.1-gu30", None, None),
    "vllm_oss_public_resource": ("ecs.gn7i-c16g1.4xlarge", "vllm", None),
    "vllm_dedicated_resource_group": (None, "vllm", 1),
    "pai_rag_gpu_multi_container": ("ml.gu7i.c16m60.1-gu30", None, 1),
    "async_sd_api_with_queue": ("ml.gu7i.c16m60.1-gu30", None, None),
}


def test_eas_examples_are_all_covered():
    assert sorted(name for name, _ in _examples()) == sorted(EXAMPLE_EXPECTED)


@pytest.mark.parametrize(("name", "config"), _examples())
def test_every_eas_example_loads(tmp_path, name, config):
    p = tmp_path / "service.json"
    p.write_text(json.dumps(config))
    spec = deploy.load(service=str(p))
    assert spec["image"] == config["containers"][spec["deployment"].container_index]["image"]
    instance, launcher, metadata_gpu = EXAMPLE_EXPECTED[name]
    assert (spec["instance"], spec["deployment"].launcher, spec["deployment"].metadata_gpu) == (
        instance, launcher, metadata_gpu)
    assert spec["deployment"].source_kind == "eas-service"
    assert spec["deployment"].container_count == len(config["containers"])
    if name.startswith("vllm"):
        assert spec["deployment"].launcher == "vllm"
        assert spec["deployment"].model_ref == "/model_dir"
        assert spec["engine_args"]["trust_remote_code"] is True
        assert spec["deployment"].mounts[0].mount_path == "/model_dir"
    if name == "vllm_dedicated_resource_group":
        assert spec["deployment"].metadata_gpu == 1 and spec["instance"] is None
    if name == "official_minimal_cpu":
        assert spec["instance"] == "ecs.c7a.large" and spec["deployment"].launcher is None


def test_invalid_service_names_key_path():
    with pytest.raises(ConfigError) as e:
        deploy.load(service=str(SPECS / "eas_invalid_port.json"))
    assert str(e.value).startswith("eas_invalid_port.json: containers[0].port: '8000' is not of type 'integer'")


def test_invalid_json_and_deploy_yaml(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("{\"metadata\": ")
    with pytest.raises(ConfigError, match=r"s.json: line 1 column \d+: invalid JSON"):
        deploy.load(service=str(bad))
    with pytest.raises(ConfigError, match=r"deploy_invalid.yaml: (\(top level\)|engine_args.max_model_len): "):
        deploy.load(deploy=str(SPECS / "deploy_invalid.yaml"))


def test_deploy_yaml_loads_and_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(deploy.deploy_schema())
    spec = deploy.load(deploy=str(SPECS / "deploy_good.yaml"))
    assert spec["image"] == "vllm:0.14.0-gpu" and spec["gpu"] == "a10" and spec["gpu_count"] == 2
    assert spec["engine_args"] == {"tensor_parallel_size": 2, "max_model_len": 16384, "gpu_memory_utilization": 0.9}
    assert spec["deployment"].mounts[0].type == "nfs"
    assert spec["deployment"].env["HF_HUB_OFFLINE"] == "1"


def test_serve_cmd_needs_an_engine():
    with pytest.raises(ConfigError, match="no vllm / sglang / llama-server command"):
        deploy.load(serve_cmd="python app.py")


# -- DEP rules: pass + fail ------------------------------------------------------------------------

def _model(tmp_path: Path) -> Path:
    d = tmp_path / "Qwen2.5-7B-Instruct"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                               "num_attention_heads": 28, "max_position_embeddings": 32768,
                                               "torch_dtype": "bfloat16"}))
    (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    return d


BAD = "eas_bad_mount.json"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelcheck", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "NO_COLOR": "1"}, timeout=120)


def test_cli_service_bad_mount_exits_1(tmp_path):
    r = _cli(str(_model(tmp_path)), "--service", str(SPECS / BAD), "--select", "DEP", "--format", "json", "--no-config")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    codes = {f["rule"]: f for f in out["results"][0]["findings"]}
    assert "DEP001" in codes and "/models/qwen" in codes["DEP001"]["message"] and "/model_dir" in codes["DEP001"]["message"]
    assert codes["DEP001"]["severity"] == "error"
    assert codes["DEP001"]["path"] == "eas_bad_mount.json:containers[0].command"


def test_cli_invalid_service_exits_2(tmp_path):
    r = _cli(str(_model(tmp_path)), "--service", str(SPECS / "eas_invalid_port.json"), "--no-config")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: eas_invalid_port.json: containers[0].port: '8000' is not of type 'integer'"]
    assert r.stdout == ""
