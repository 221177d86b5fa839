"""SGLang's own semantics (checker/engines/sglang.py), per release, on real public configs, and end to end:
the same model on an SGLang image is judged by SGLang's start-up, not vLLM's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from modelcheck.engines import sglang as S
from fixtures import builders

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realworld"
GIB = 1 << 30
A10 = ("--instance", "ecs.gn7i-c8g1.2xlarge")  # 1x A10 24 GB


def real(name: str) -> dict:
    return json.loads((REAL / name / "config.json").read_text())


# -- pure functions --------------------------------------------------------------------------------------


def test_native_registry_per_release() -> None:
    # srt/models/*.py EntryClass: Phi-3 native in every release read; gpt-oss from 0.5.2; VILA removed in 0.5.6
    assert S.arch_support("Phi3ForCausalLM", (0, 5, 8)).status == "native"
    assert S.arch_support("GptOssForCausalLM", (0, 4, 9)).status == "transformers-fallback"
    assert S.arch_support("GptOssForCausalLM", (0, 5, 2)).status == "native"
    assert "VILAForConditionalGeneration" in S.native_architectures((0, 5, 4))
    assert "VILAForConditionalGeneration" not in S.native_architectures((0, 5, 6))
    # no Transformers backend before 0.4.9: an architecture outside the registry cannot load at all
    assert S.arch_support("FalconForCausalLM", (0, 4, 6)).status == "unsupported"
    assert S.arch_support("FalconForCausalLM", (0, 5, 8)).status == "transformers-fallback"
    # versions not read are answered by the nearest release read below, and say so
    r = S.arch_support("Phi3ForCausalLM", (0, 5, 3))
    assert r.release == (0, 5, 2) and "0.5.3 was not read" in r.note
    assert S.release_read(None).note.startswith("SGLang version unknown")


def test_remote_code_phi3_auto_map_not_needed() -> None:
    need = S.remote_code(real("Phi-3.5-mini-instruct"), (0, 5, 8))
    assert not need.needed and not need.config_needs and not need.model_needs
    assert "Phi3ForCausalLM is implemented natively in SGLang 0.5.8" in need.reason
    # a model_type neither transformers 4.57.1 nor SGLang knows, with its AutoConfig in auto_map: needed
    qwen = {"architectures": ["QWenLMHeadModel"], "model_type": "qwen",
            "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                         "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"}}
    need = S.remote_code(qwen, (0, 5, 8))
    assert need.needed and need.config_needs and "transformers 4.57.1" in need.reason
    # chatglm: SGLang registers its own ChatGLMConfig (_CONFIG_REGISTRY), ChatGLMModel is native
    glm = {"architectures": ["ChatGLMModel"], "model_type": "chatglm",
           "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig", "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration"}}
    assert not S.remote_code(glm, (0, 4, 6)).needed
    assert S.config_class_builtin("qwen3_next", (0, 5, 2)) and not S.config_class_builtin("qwen3_next", (0, 4, 9))


@pytest.mark.parametrize(("case", "expected", "key"), [
    ("Phi-3.5-mini-instruct", 131072, "max_position_embeddings"),  # longrope: no factor; vLLM uses 4096
    ("llama-3.1-8b-instruct", 131072, "max_position_embeddings"),  # llama3 rope: factor ignored
    ("medgemma-27b-it", 1048576, "max_position_embeddings"),  # text_config 131072 x linear factor 8, no exception
    ("falcon-180B-chat", 2048, "max_position_embeddings"),  # transformers' FalconConfig class default
])
def test_context_length_on_real_configs(case: str, expected: int, key: str) -> None:
    cl = S.context_length(real(case), (0, 5, 8))
    assert cl.value == cl.derived == expected and cl.key == key and cl.error is None
    assert cl.from_class_default is (case == "falcon-180B-chat")


def test_context_length_requested_above_derived() -> None:
    cl = S.context_length(real("llama-3.1-8b-instruct"), (0, 5, 8), requested=200000)
    assert cl.value == 200000 and S.ALLOW_LONGER_CONTEXT_ENV in cl.error
    assert S.context_length(real("llama-3.1-8b-instruct"), (0, 5, 8), requested=200000, allow_longer=True).error is None
    assert S.context_length({}, None).value == 2048 and S.context_length(None) is None


@pytest.mark.parametrize(("version", "gib", "tp", "expected", "reserved"), [
    ((0, 5, 8), 22.06, 1, 0.834, 3760),  # (22589 - (512 + 2048 x 1.5 + 24 x 2 + 1/8 x 1024)) / 22589
    ((0, 5, 8), 79.19, 1, 0.834, 13440),  # (81091 - (512 + 8192 x 1.5 + 256 x 2 + 128)) / 81091
    ((0, 5, 4), 22.06, 1, 0.834, 3744),  # cuda_graph_max_bs 16 (not 24) below 35 GB in 0.5.4
    ((0, 5, 2), 79.19, 2, 0.867, 10752),  # (81091 - (9.5 + 2/2) x 1024) / 81091
    ((0, 4, 6), 79.19, 4, 0.85, None),  # the TP table
    ((0, 4, 6), 139.8, 1, 0.871, None),  # lifted above 96 GB: min(0.88 + 48 GiB x 0.12 / mem, (mem - 18 GiB) / mem)
])
def test_mem_fraction_static_defaults(version, gib, tp, expected, reserved) -> None:
    mf = S.mem_fraction_static(int(gib * GIB), version, tp)
    assert round(mf.value, 3) == expected and mf.release == version and mf.reserved_mib == reserved
    assert f"defaults to {mf.value:.3f}" in mf.note


def test_clamp_and_pool() -> None:
    assert S.max_req_len(131072, 24768) == 24767 and S.max_req_len(4096, 24768) == 4095
    # gpt-oss style hybrid pool: the same bytes hold 24/21.6 x more full-attention tokens (swa = 0.8 x full)
    assert S.pool_tokens(100 * 1024, 1024, 24, 12) == 111 and S.pool_tokens(0, 1024, 24) == 0
    from modelcheck.engine_args import spelling

    assert spelling("max_model_len", "sglang") == "--context-length"
    assert spelling("gpu_memory_utilization", "sglang") == "--mem-fraction-static"
    assert spelling("tensor_parallel_size", "sglang") == "--tp-size" and spelling("max_model_len", "vllm") == "--max-model-len"


# -- end to end: `check` with an SGLang image on real configs ------------------------------------------------


def check(path: Path, *args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, [str(path), *args, "--format", "json", "--no-config"], catch_exceptions=False)
    doc = json.loads(r.output)
    return r.exit_code, doc["results"][0]


def findings(res: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in res["findings"]}


@pytest.fixture(scope="module")
def phi35(tmp_path_factory) -> Path:
    return builders.make_hf_llm(tmp_path_factory.mktemp("m") / "Phi-3.5-mini-instruct", real("Phi-3.5-mini-instruct"))


@pytest.fixture(scope="module")
def llama31(tmp_path_factory) -> Path:
    return builders.make_hf_llm(tmp_path_factory.mktemp("m") / "Llama-3.1-8B-Instruct", real("llama-3.1-8b-instruct"),
                                shards=4)


def test_e2e_phi35_auto_map_on_sglang_needs_no_remote_code(phi35: Path) -> None:
    code, res = check(phi35, "--image", "sglang:0.5.8-gpu", *A10)
    f = findings(res)
    assert "ENG015" not in f, f.get("ENG015")
    assert res["memory"]["engine"] == "sglang" and res["memory"]["max_model_len"] == 131072
    # 131072 tokens x 384 KiB do not fit the A10's pool: SGLang clamps (warning), it does not refuse to start
    assert f["MEM003"]["severity"] == "warning" and "clamps the longest request to" in f["MEM003"]["message"]
    assert "--context-length" in f["MEM003"]["hint"] and "--max-model-len" not in f["MEM003"]["hint"]
    assert code == 0


def test_e2e_128k_model_small_gpu_warning_on_sglang_error_on_vllm(llama31: Path) -> None:
    code, res = check(llama31, "--image", "sglang:0.5.8-gpu", *A10)
    f = findings(res)
    mem = res["memory"]
    assert f["MEM003"]["severity"] == "warning" and mem["status"] == "ok"
    clamped = f["MEM003"]["data"]["clamped_max_req_len"]
    assert clamped == mem["kv_cache_tokens"] - 1
    assert f"clamps the longest request to {clamped} tokens" in f["MEM003"]["message"]
    assert code == 0
    code, res = check(llama31, "--image", "vllm:0.14.0-gpu", *A10)
    f = findings(res)
    assert f["MEM003"]["severity"] == "error" and "--max-model-len" in f["MEM003"]["hint"] and code == 1
