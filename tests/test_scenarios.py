"""Scenario matrix: what users will run, through the real CLI, with the outcome a real deployment has.

Each case builds a realistic model folder (real config.json files from fixtures/configs, sparse weights
written in the formats' real layouts), runs ``check PATH --format json`` with a declared image /
instance / flags, and asserts the exit code, the kind, the exact set of rule codes that fire (so a false
positive fails as surely as a miss) and that every error says what to do. The expected outcomes are
worked out from what vLLM / llama.cpp / ComfyUI do at start-up (comments give the arithmetic or the
engine behaviour). Folders are built once per module; every run is read-only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelcheck.cli import main
from fixtures import builders as b

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHAT = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
# words a fix starts from: a flag, a command, or an imperative naming the action
ACTION = re.compile(
    r"(--[a-z]|`|\b(use|deploy|download|run|add|set|delete|serve|pass|drop|mount|convert|copy|remove|"
    r"merge|move|lower|raise|choose|pick|review|fix|keep|re-download|check|put|install|request|point)\b)",
    re.IGNORECASE,
)

# instances (catalog names) by GPU
T4 = ("--instance", "ecs.gn6i-c4g1.xlarge")  # 1x Tesla T4 16 GB, cc 7.5
V100 = ("--instance", "ecs.gn6v-c8g1.2xlarge")  # 1x V100 16 GB, cc 7.0
A10 = ("--instance", "ecs.gn7i-c8g1.2xlarge")  # 1x A10 24 GB, cc 8.6
A10X2 = ("--instance", "ecs.gn7i-2x.8xlarge")
A10X4 = ("--instance", "ecs.gn7i-4x.8xlarge")
A100 = ("--instance", "ecs.gn7-c12g1.3xlarge")  # 1x A100 40 GB
L20 = ("--instance", "ecs.gn8is.2xlarge")  # 1x L20 48 GB, cc 8.9
H20 = ("--instance", "ecs.gn8v.4xlarge")  # 1x H20 96 GB, cc 9.0
H20X4 = ("--instance", "ecs.gn8v-4x.8xlarge")
CPU = ("--instance", "ecs.c7a.large")
VLLM = ("--image", "vllm:0.14.0-gpu")


# -- builders on top of fixtures.builders -------------------------------------------------------------


def tokenizer_files(d: Path, chat: bool = True) -> Path:
    """tokenizer.json in the tokenizers library's format + tokenizer_config.json (with a chat template
    for instruct models, without one for base models)."""
    vocab = {"<unk>": 0, "<|endoftext|>": 1, "<|im_end|>": 2, "hello": 3}
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
           "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}
    (d / "tokenizer.json").write_text(json.dumps(doc))
    tc = d / "tokenizer_config.json"
    cfg = json.loads(tc.read_text()) if tc.exists() else {}
    if chat:
        cfg.setdefault("chat_template", CHAT)
    else:
        cfg.pop("chat_template", None)
    tc.write_text(json.dumps(cfg))
    return d


def llm(d: Path, name: str, shards: int = 1, chat: bool = True, **kw: Any) -> Path:
    return tokenizer_files(b.make_hf_llm(d, name, shards=shards, **kw), chat=chat)


def quantized_tensors(cfg: dict[str, Any], method: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensor layout AutoAWQ / AutoGPTQ / FP8 (block) checkpoints store for each linear layer."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, (dt, shape) in b.llm_tensors(cfg, "BF16" if method == "fp8" else "F16").items():
        if not (name.endswith(".weight") and any(f".{p}." in name for p in LINEAR)):
            out[name] = (dt, shape)
            continue
        o, i = shape
        base, g = name[: -len(".weight")], 128
        if method == "awq":  # qweight packs 8 int4 along the output dim
            out[base + ".qweight"] = ("I32", (i, o // 8))
            out[base + ".qzeros"] = ("I32", (i // g, o // 8))
            out[base + ".scales"] = ("F16", (i // g, o))
        elif method == "gptq":  # qweight packs 8 int4 along the input dim
            out[base + ".qweight"] = ("I32", (i // 8, o))
            out[base + ".qzeros"] = ("I32", (i // g, o // 8))
            out[base + ".scales"] = ("F16", (i // g, o))
            out[base + ".g_idx"] = ("I32", (i,))
        else:  # fp8 with 128x128 block scales (Qwen3-*-FP8, DeepSeek-V3 style)
            out[name] = ("F8_E4M3", (o, i))
            out[base + ".weight_scale_inv"] = ("F32", (-(-o // 128), -(-i // 128)))
    return out


def write_sharded(d: Path, cfg: dict[str, Any], tensors: dict[str, Any], shards: int) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    (d / "tokenizer_config.json").write_text(json.dumps(b._tokenizer_config(cfg)))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": cfg.get("eos_token_id")}))
    names = list(tensors)
    per = -(-len(names) // shards)
    weight_map = {}
    for s in range(shards):
        part = {n: tensors[n] for n in names[s * per : (s + 1) * per]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        weight_map.update({n: fname for n in part})
        b.write_safetensors_sparse(d / fname, part, {"format": "pt"})
    index = {"metadata": {"total_size": b.tensor_bytes(tensors)}, "weight_map": dict(sorted(weight_map.items()))}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return tokenizer_files(d)


def make_quantized(d: Path, name: str, method: str, shards: int = 2) -> Path:
    cfg = b.load_config(name)
    return write_sharded(d, cfg, quantized_tensors(cfg, method), shards)


def make_chatglm3(d: Path) -> Path:
    """THUDM/chatglm3-6b: its own tensor names, remote code for config, model and tokenizer."""
    cfg = b.load_config("chatglm3-6b")
    h, layers, vocab = cfg["hidden_size"], cfg["num_layers"], cfg["padded_vocab_size"]
    ffn, kvc, groups = cfg["ffn_hidden_size"], cfg["kv_channels"], cfg["multi_query_group_num"]
    qkv = h + 2 * groups * kvc
    t: dict[str, tuple[str, tuple[int, ...]]] = {
        "transformer.embedding.word_embeddings.weight": ("F16", (vocab, h)),
        "transformer.encoder.final_layernorm.weight": ("F16", (h,)),
        "transformer.output_layer.weight": ("F16", (vocab, h)),
    }
    for i in range(layers):
        p = f"transformer.encoder.layers.{i}."
        t[p + "input_layernorm.weight"] = ("F16", (h,))
        t[p + "post_attention_layernorm.weight"] = ("F16", (h,))
        t[p + "self_attention.query_key_value.weight"] = ("F16", (qkv, h))
        t[p + "self_attention.query_key_value.bias"] = ("F16", (qkv,))
        t[p + "self_attention.dense.weight"] = ("F16", (h, h))
        t[p + "mlp.dense_h_to_4h.weight"] = ("F16", (2 * ffn, h))
        t[p + "mlp.dense_4h_to_h.weight"] = ("F16", (h, ffn))
    write_sharded(d, cfg, t, 7)
    for f in ("configuration_chatglm.py", "modeling_chatglm.py", "tokenization_chatglm.py", "quantization.py"):
        (d / f).write_text("# code shipped with the model\n")
    (d / "tokenizer.json").unlink()
    (d / "tokenizer.model").write_bytes(b"\x0a\x0bsentencepiece model stand-in")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]},
        "tokenizer_class": "ChatGLMTokenizer", "chat_template": CHAT}))
    return d


def with_code(d: Path, *files: str) -> Path:
    for f in files:
        (d / f).write_text("# code shipped with the model\n")
    return d


# -- the model library (built once) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scenarios")
    m: dict[str, Path] = {}

    def add(key: str, path: Path) -> None:
        m[key] = path

    add("qwen7b", llm(root / "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct", shards=4))
    add("qwen05b", llm(root / "Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct"))
    add("llama31", llm(root / "Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct", shards=4))
    add("llama2", llm(root / "Llama-2-7b-hf", "Llama-2-7b-hf", shards=2, chat=False, dtype="F16"))
    add("mistral", llm(root / "Mistral-7B-Instruct-v0.3", "Mistral-7B-Instruct-v0.3", shards=3))
    add("qwen3", llm(root / "Qwen3-8B", "Qwen3-8B", shards=5))
    add("r1distill", llm(root / "DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B", shards=2))
    add("qwen2vl", llm(root / "Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct", shards=5))
    add("qwen25vl", llm(root / "Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL-7B-Instruct", shards=5))
    add("gemma2", llm(root / "gemma-2-9b-it", "gemma-2-9b-it", shards=4))
    add("gemma3", llm(root / "gemma-3-1b-it", "gemma-3-1b-it"))
    add("phi3", with_code(llm(root / "Phi-3-mini-4k-instruct", "Phi-3-mini-4k-instruct", shards=2),
                          "configuration_phi3.py", "modeling_phi3.py"))
    add("baichuan", with_code(llm(root / "Baichuan2-7B-Chat", "Baichuan2-7B-Chat", shards=2),
                              "configuration_baichuan.py", "modeling_baichuan.py", "tokenization_baichuan.py"))
    add("chatglm", make_chatglm3(root / "chatglm3-6b"))
    add("dsv2lite", with_code(llm(root / "DeepSeek-V2-Lite-Chat", "DeepSeek-V2-Lite", shards=4),
                              "configuration_deepseek.py", "modeling_deepseek.py"))
    add("mixtral", llm(root / "Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instruct-v0.1", shards=19))
    add("awq", make_quantized(root / "Qwen2.5-7B-Instruct-AWQ", "Qwen2.5-7B-Instruct-AWQ", "awq"))
    add("gptq", make_quantized(root / "Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen2.5-7B-Instruct-GPTQ-Int4", "gptq"))
    add("fp8", make_quantized(root / "Qwen3-8B-FP8", "Qwen3-8B-FP8", "fp8", shards=2))
    # broken downloads
    add("truncated", llm(root / "qwen7b-truncated", "Qwen2.5-7B-Instruct", shards=4, truncate_shard=2))
    add("missing_shard", llm(root / "qwen7b-missing", "Qwen2.5-7B-Instruct", shards=4, missing_shard=3))
    lfs = llm(root / "qwen7b-lfs", "Qwen2.5-7B-Instruct", shards=4)
    b.make_lfs_pointer(lfs / "model-00002-of-00004.safetensors", 3864726320)
    add("lfs", lfs)
    inc = llm(root / "qwen05b-incomplete", "Qwen2.5-0.5B-Instruct")
    (inc / "model.safetensors").rename(inc / "model.safetensors.incomplete")
    add("incomplete", inc)
    dup = llm(root / "qwen05b-dup", "Qwen2.5-0.5B-Instruct")
    b.write_torch_zip(dup / "pytorch_model.bin", {"model.embed_tokens.weight": [151936, 896]})
    add("dup", dup)
    notok = b.make_hf_llm(root / "qwen05b-notokenizer", "Qwen2.5-0.5B-Instruct", tokenizer=False)
    add("notokenizer", notok)
    noconf = llm(root / "qwen05b-noconfig", "Qwen2.5-0.5B-Instruct")
    (noconf / "config.json").unlink()
    add("noconfig", noconf)
    badjson = llm(root / "qwen05b-badjson", "Qwen2.5-0.5B-Instruct")
    (badjson / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896,')
    add("badjson", badjson)
    add("misnamed", llm(root / "sdxl-turbo", "Qwen2.5-0.5B-Instruct"))
    (root / "empty").mkdir()
    add("empty", root / "empty")
    junk = root / "random-files"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model\n")
    (junk / "data.csv").write_text("a,b\n1,2\n")
    add("junk", junk)
    # other formats
    gg = root / "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"
    b.make_gguf(gg, arch="llama", n_layers=32, hidden=4096, ffn=14336, vocab=128256, quant="Q4_K",
                name="Meta-Llama-3.1-8B-Instruct", context_length=131072)
    add("gguf", gg)
    add("sdxl", root / "sd_xl_base_1.0.safetensors")
    b.make_sd_checkpoint(m["sdxl"], "sdxl")
    add("flux", root / "flux1-dev.safetensors")
    b.make_sd_checkpoint(m["flux"], "flux")
    add("diffusers", b.make_diffusers(root / "stable-diffusion-xl-base-1.0"))
    add("cosyvoice", b.make_cosyvoice(root / "CosyVoice2-0.5B"))
    add("adapter", b.make_adapter(root / "qwen2.5-7b-lora-sql"))
    add("ollama", b.make_ollama_store(root / "ollama-models"))
    add("hfcache_repo", b.make_hf_cache(root / "hub"))
    add("hfcache", m["hfcache_repo"] / "snapshots" / "7ae557604adf67be50417f59c2c2f167def9a775")
    # EAS service files next to the model
    specs = Path(b.__file__).parent / "specs"
    for f in specs.glob("eas_*.json"):
        (root / f.name).write_text(f.read_text())
    m["_root"] = root
    return m


# -- running the CLI -----------------------------------------------------------------------------------


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    doc: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return self.result.get("kind")

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self.result.get("findings", [])

    @property
    def codes(self) -> dict[str, str]:
        """code -> severity (the most severe when a rule fires twice)."""
        order = {"info": 0, "warning": 1, "error": 2}
        out: dict[str, str] = {}
        for f in self.findings:
            if f["rule"] not in out or order[f["severity"]] > order[out[f["rule"]]]:
                out[f["rule"]] = f["severity"]
        return out

    def finding(self, code: str) -> dict[str, Any]:
        [f] = [f for f in self.findings if f["rule"] == code]
        return f


def check(*args: Any) -> Run:
    r = CliRunner().invoke(main, [str(a) for a in args] + ["--format", "json"], catch_exceptions=False)
    run = Run(r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.output
    if r.exit_code in (0, 1):
        run.doc = json.loads(r.stdout)
        [run.result] = run.doc["results"]
    return run


def assert_actionable(run: Run) -> None:
    """Every error and warning names a file/field or the target, and its hint says what to do."""
    messages = [f["message"] for f in run.findings]
    assert len(messages) == len(set(messages)), f"duplicated finding text: {messages}"
    for f in run.findings:
        assert f["message"] and f["message"][0] not in " :", f
        assert "None" not in f["message"].split(), f"'None' leaks into a message: {f['message']}"
        if f["severity"] in ("error", "warning"):
            assert f["hint"], f"{f['rule']} has no hint: {f['message']}"
            assert ACTION.search(f["hint"]), f"{f['rule']} hint names no action: {f['hint']}"
            assert f["hint"].strip() != f["message"].strip()


# -- the scenario table ----------------------------------------------------------------------------------
# (id, model key, args, exit code, kind, exact codes that fire {code: severity})
S = pytest.param
SCENARIOS = [
    # --- healthy deployments: nothing at all, or only the info a user should see
    # Qwen2.5-7B on A10: weights 14.2 GiB, usable 22.06 x 0.9 = 19.85 GiB, KV 28 layers x 4 kv heads x 128 x
    # 2 x 2 B = 57344 B/token -> ~75K tokens >= 32768 default: starts
    S("qwen7b-a10-vllm014", "qwen7b", (*VLLM, *A10), 0, "hf-llm", {}, id="qwen7b-a10-vllm014"),
    S("qwen7b-a10-8k", "qwen7b", (*VLLM, *A10, "--max-model-len", "8192"), 0, "hf-llm", {}, id="qwen7b-a10-8k"),
    S("qwen7b-a10-32k-suffix", "qwen7b", (*VLLM, *A10, "--max-model-len", "32k"), 0, "hf-llm", {}, id="qwen7b-32k"),
    S("qwen7b-2xa10-tp2", "qwen7b", (*VLLM, *A10X2, "-tp", "2"), 0, "hf-llm", {}, id="qwen7b-2xa10-tp2"),
    S("qwen7b-gmu095", "qwen7b", (*VLLM, *A10, "--gpu-memory-utilization", "0.95"), 0, "hf-llm", {},
      id="qwen7b-gmu095"),
    S("qwen7b-l20-vllm0101", "qwen7b", ("--image", "vllm/vllm-openai:v0.10.1", *L20), 0, "hf-llm", {},
      id="qwen7b-l20-upstream-image"),
    S("qwen7b-vllm033-a10", "qwen7b", ("--image", "vllm:0.33.0", *A10, "--max-model-len", "16384"), 0,
      "hf-llm", {}, id="qwen7b-vllm033"),
    S("qwen7b-no-target", "qwen7b", (), 0, "hf-llm", {}, id="qwen7b-no-target"),
    S("llama31-a10-8k", "llama31", ("--image", "vllm/vllm-openai:v0.10.1", "--instance", "g5.xlarge",
                                    "--max-model-len", "8192"), 0, "hf-llm", {}, id="llama31-g5-8k"),
    S("llama31-h100x2", "llama31", (*VLLM, "--gpu", "h100", "--gpu-count", "2", "-tp", "2"), 0, "hf-llm", {},
      id="llama31-gpu-h100x2"),
    S("mistral-a10-16k", "mistral", (*VLLM, *A10, "--max-model-len", "16384"), 0, "hf-llm", {},
      id="mistral-a10-16k"),
    S("qwen3-vllm084-8k", "qwen3", ("--image", "vllm:0.8.4", *L20, "--max-model-len", "8192"), 0, "hf-llm", {},
      id="qwen3-vllm084-8k"),
    S("qwen2vl-vllm061-8k", "qwen2vl", ("--image", "vllm:0.6.1", *A10, "--max-model-len", "8192"), 0, "hf-llm",
      {}, id="qwen2vl-vllm061-8k"),
    S("qwen25vl-l20", "qwen25vl", (*VLLM, *L20, "--max-model-len", "32768"), 0, "hf-llm", {}, id="qwen25vl-l20"),
    S("mixtral-4xh20", "mixtral", (*VLLM, *H20X4, "-tp", "4"), 0, "hf-llm", {}, id="mixtral-4xh20-tp4"),
    S("mixtral-p4d", "mixtral", ("--image", "vllm/vllm-openai:v0.10.1", "--instance", "p4d.24xlarge", "-tp", "8"),
      0, "hf-llm", {}, id="mixtral-p4d-tp8"),
    S("awq-t4", "awq", (*VLLM, *T4), 0, "hf-llm", {}, id="awq-t4"),  # AWQ needs cc 7.5: T4 is 7.5
    S("awq-a10-bf16", "awq", (*VLLM, *A10, "--dtype", "bfloat16"), 0, "hf-llm", {}, id="awq-a10-bf16-marlin"),
    S("awq-a10-awq-marlin", "awq", (*VLLM, *A10, "--quantization", "awq_marlin"), 0, "hf-llm", {},
      id="awq-a10-flag-awq-marlin"),
    S("gptq-v100", "gptq", (*VLLM, *V100), 0, "hf-llm", {}, id="gptq-v100"),  # GPTQ min cc 6.0
    S("fp8-h20", "fp8", (*VLLM, *H20), 0, "hf-llm", {}, id="fp8-h20-native"),
    # newest llama-server: -c defaults to the GGUF's 131072 and --fit trims it to fit the A10 (engines/llamacpp.py)
    S("gguf-llamacpp", "gguf", ("--image", "llama.cpp:server-cuda", *A10), 0, "gguf", {"MEM003": "warning"},
      id="gguf-llamacpp"),
    S("sdxl-comfyui", "sdxl", ("--image", "comfyui:2.2", *A10), 0, "diffusion", {}, id="sdxl-comfyui"),
    S("flux-comfyui", "flux", ("--image", "comfyui:2.2", *L20), 0, "diffusion", {}, id="flux-comfyui-l20"),
    S("cosyvoice-ok", "cosyvoice", ("--image", "cosyvoice:latest", *A10), 0, "tts", {"SEC009": "info"},
      id="cosyvoice-on-cosyvoice"),
    S("ollama-on-ollama", "ollama", ("--image", "ollama:latest", *A10), 0, "ollama", {}, id="ollama-on-ollama"),
    # --- memory
    # bf16 7B on T4: 15.2 GB weights > 14.74 GiB x 0.9 = 13.27 GiB; vLLM 0.14 falls back to fp16 by itself
    S("qwen7b-t4", "qwen7b", (*VLLM, *T4), 1, "hf-llm", {"MEM001": "error", "ENG003": "info"}, id="qwen7b-t4"),
    S("qwen7b-v100-half", "qwen7b", (*VLLM, *V100, "--dtype", "half", "--max-model-len", "8192"), 1, "hf-llm",
      {"MEM001": "error"}, id="qwen7b-v100-16gb"),
    # Llama-3.1-8B: 131072 default context, KV 32 x 8 x 128 x 2 x 2 = 131072 B/token -> ~28K tokens on A10
    S("llama31-a10-default", "llama31", (*VLLM, *A10), 1, "hf-llm", {"MEM003": "error"}, id="llama31-a10-128k"),
    S("llama31-a10-kvfp8", "llama31", (*VLLM, *A10, "--kv-cache-dtype", "fp8"), 1, "hf-llm",
      {"MEM003": "error"}, id="llama31-a10-kv-fp8-still-short"),
    S("r1distill-a10", "r1distill", (*VLLM, *A10), 1, "hf-llm", {"MEM003": "error"}, id="r1-distill-a10-128k"),
    S("qwen3-a10-default", "qwen3", (*VLLM, *A10), 1, "hf-llm", {"MEM003": "error"}, id="qwen3-a10-40k"),
    S("fp8-a10", "fp8", (*VLLM, *A10), 0, "hf-llm", {"ENG008": "info", "MEM004": "warning"}, id="fp8-a10-weight-only"),
    S("qwen05b-oversized", "qwen05b", (*VLLM, *H20X4), 0, "hf-llm", {"MEM005": "info"}, id="qwen05b-4xh20-oversized"),
    S("mixtral-a100", "mixtral", (*VLLM, *A100), 1, "hf-llm", {"MEM001": "error"}, id="mixtral-1xa100"),
    S("gemma2-a10", "gemma2", (*VLLM, *A10, "--max-model-len", "4096"), 1, "hf-llm", {"MEM003": "error"},
      id="gemma2-a10-tight"),
    S("gemma2-l20", "gemma2", (*VLLM, *L20), 0, "hf-llm", {}, id="gemma2-l20"),
    # --- engine version vs architecture
    S("qwen2vl-vllm060", "qwen2vl", ("--image", "vllm:0.6.0", *A10, "--max-model-len", "8192"), 1, "hf-llm",
      {"ENG001": "error"}, id="qwen2vl-vllm060"),
    S("qwen25vl-vllm063", "qwen25vl", ("--image", "vllm:0.6.3", *A10, "--max-model-len", "8192"), 1, "hf-llm",
      {"ENG001": "error"}, id="qwen25vl-vllm063"),
    S("qwen3-vllm083", "qwen3", ("--image", "vllm:0.8.3", *L20, "--max-model-len", "8192"), 1, "hf-llm",
      {"ENG001": "error"}, id="qwen3-vllm083"),
    S("gemma3-vllm073", "gemma3", ("--image", "vllm:0.7.3", *A10), 1, "hf-llm", {"ENG001": "error"},
      id="gemma3-vllm073"),
    S("baichuan-vllm033", "baichuan", ("--image", "vllm:0.33.0", *A10, "--trust-remote-code"), 1, "hf-llm",
      {"ENG001": "error", "SEC004": "warning"}, id="baichuan-vllm033-removed"),
    S("baichuan-vllm014", "baichuan", (*VLLM, *A10, "--trust-remote-code"), 0, "hf-llm", {"SEC004": "warning"},
      id="baichuan-vllm014-trc"),
    # --- GPU vs engine / dtype / quantization
    # 0.20 defaults to util 0.92: 14.2 GiB of weights fit in 14.5 GiB, nothing is left for the KV cache
    S("v100-vllm020", "qwen7b", ("--image", "vllm:0.20.0", *V100, "--dtype", "half", "--max-model-len", "4096"),
      1, "hf-llm", {"ENG002": "error", "MEM002": "error"}, id="v100-vllm020"),
    S("bf16-flag-t4", "gptq", (*VLLM, *T4, "--dtype", "bfloat16"), 1, "hf-llm", {"ENG003": "error"},
      id="dtype-bf16-on-t4"),
    S("gemma2-t4-half", "gemma2", (*VLLM, *T4, "--dtype", "half"), 1, "hf-llm",
      {"ENG004": "error", "MEM001": "error"}, id="gemma2-t4-half"),
    S("gemma3-t4-half", "gemma3", (*VLLM, *T4, "--dtype", "half"), 1, "hf-llm", {"ENG004": "error"},
      id="gemma3-t4-half"),
    S("gemma3-t4-auto", "gemma3", (*VLLM, *T4), 0, "hf-llm", {"ENG003": "warning"}, id="gemma3-t4-auto-fp32"),
    S("awq-v100", "awq", (*VLLM, *V100), 1, "hf-llm", {"ENG005": "error"}, id="awq-v100"),
    S("fp8-block-vllm084", "fp8", ("--image", "vllm:0.8.4", *A10, "--max-model-len", "8192"), 1, "hf-llm",
      {"ENG008": "error"}, id="fp8-block-vllm084-a10"),
    S("awq-flag-gptq", "awq", (*VLLM, *A10, "--quantization", "gptq"), 1, "hf-llm", {"ENG009": "error"},
      id="awq-checkpoint-flag-gptq"),
    S("bf16-flag-awq", "qwen7b", (*VLLM, *A10, "--quantization", "awq"), 1, "hf-llm", {"ENG009": "error"},
      id="bf16-checkpoint-flag-awq"),
    S("gptq-flag-bf16-a10", "gptq", (*VLLM, *A10, "--quantization", "gptq", "--dtype", "bfloat16"), 1, "hf-llm",
      {"ENG007": "error"}, id="gptq-forced-bf16"),
    S("bad-dtype", "qwen7b", (*VLLM, *A10, "--dtype", "fp16"), 1, "hf-llm", {"ENG010": "error"}, id="dtype-fp16"),
    S("bad-kv-dtype", "llama31", (*VLLM, *A10, "--kv-cache-dtype", "int4", "--max-model-len", "8192"), 1,
      "hf-llm", {"ENG010": "error"}, id="kv-cache-dtype-int4"),
    # --- flags vs model / instance
    S("mml-200k", "qwen7b", (*VLLM, *A10, "--max-model-len", "200000"), 1, "hf-llm",
      {"ENG011": "error", "MEM003": "error"}, id="max-model-len-200k"),
    S("tp3", "qwen7b", (*VLLM, *A10X4, "-tp", "3"), 1, "hf-llm", {"ENG012": "error"}, id="tp3-28-heads"),
    S("tp4-1gpu", "qwen7b", (*VLLM, *A10, "-tp", "4"), 1, "hf-llm", {"ENG013": "error"}, id="tp4-on-1-gpu"),
    S("gmu-90", "qwen7b", (*VLLM, *A10, "--gpu-memory-utilization", "90"), 1, "hf-llm", {"ENG014": "error"},
      id="gmu-90-percent"),
    S("gmu-1.2", "qwen7b", (*VLLM, *A10, "--gpu-memory-utilization", "1.2"), 1, "hf-llm", {"ENG014": "error"},
      id="gmu-1.2"),
    S("chatglm-no-trc", "chatglm", (*VLLM, *A10), 1, "hf-llm", {"ENG015": "error", "SEC004": "warning"},
      id="chatglm3-without-trust-remote-code"),
    S("chatglm-trc", "chatglm", (*VLLM, *A10, "--trust-remote-code"), 0, "hf-llm", {"SEC004": "warning"},
      id="chatglm3-with-trust-remote-code"),
    S("phi3-no-trc", "phi3", (*VLLM, *A10), 0, "hf-llm", {"SEC004": "info"}, id="phi3-native-no-trc-needed"),
    S("dsv2-trc-l20", "dsv2lite", (*VLLM, *L20, "--trust-remote-code", "--max-model-len", "32768"), 0, "hf-llm",
      {"SEC004": "warning"}, id="deepseek-v2-lite-mla-l20"),
    S("dsv2-no-trc-a10", "dsv2lite", (*VLLM, *A10), 1, "hf-llm",
      {"ENG015": "error", "MEM001": "error", "SEC004": "warning"}, id="deepseek-v2-lite-a10"),
    S("trc-unneeded", "qwen7b", (*VLLM, *A10, "--trust-remote-code"), 0, "hf-llm", {"ENG016": "info"},
      id="trust-remote-code-unneeded"),
    S("llama2-base-no-template", "llama2", (*VLLM, *A10), 0, "hf-llm", {"ENG017": "warning"},
      id="llama2-base-no-chat-template"),
    # --- chip / instance
    S("xpu-on-gn7i", "qwen7b", ("--image", "vllm:0.14.0-xpu", *A10), 1, "hf-llm", {"CHP001": "error"},
      id="xpu-image-on-a10"),
    S("gpu-image-on-cpu", "qwen7b", (*VLLM, *CPU), 1, "hf-llm", {"CHP001": "error"}, id="gpu-image-on-c7a"),
    S("vllm-on-cpu", "qwen7b", ("--image", "vllm:0.14.0", *CPU), 1, "hf-llm", {"CHP003": "error"},
      id="vllm-untagged-on-c7a"),
    S("g4dn-t4-vllm0101", "qwen05b", ("--image", "vllm/vllm-openai:v0.10.1", "--instance", "g4dn.xlarge"), 0,
      "hf-llm", {"ENG003": "info"}, id="qwen05b-g4dn-vllm0101"),  # 0.9.0+ falls back to fp16 itself
    # --- image vs kind / format
    # vLLM takes the GGUF's 131072 context: 131072 B/token x 131072 does not fit a 24 GB A10
    S("gguf-vllm014-128k", "gguf", (*VLLM, *A10), 1, "gguf", {"IMG002": "warning", "MEM003": "error"},
      id="gguf-on-vllm014-128k"),
    S("gguf-vllm014", "gguf", (*VLLM, *A10, "--max-model-len", "8192"), 0, "gguf", {"IMG002": "warning"},
      id="gguf-on-vllm014"),
    S("gguf-vllm033", "gguf", ("--image", "vllm:0.33.0", *A10, "--max-model-len", "8192"), 1, "gguf",
      {"IMG002": "error"}, id="gguf-on-vllm033-plugin"),
    S("gguf-sglang", "gguf", ("--image", "sglang:0.5.8-gpu", *A10), 1, "gguf", {"IMG002": "error"},
      id="gguf-on-sglang"),
    S("hf-on-llamacpp", "qwen05b", ("--image", "llama.cpp:server-cuda", *A10), 1, "hf-llm", {"IMG003": "error"},
      id="hf-folder-on-llamacpp"),
    S("sdxl-vllm", "sdxl", (*VLLM, *A10), 1, "diffusion", {"IMG001": "error"}, id="sdxl-on-vllm"),
    S("diffusers-vllm", "diffusers", (*VLLM, *A10), 1, "diffusion", {"IMG001": "error"}, id="diffusers-on-vllm"),
    S("diffusers-comfyui", "diffusers", ("--image", "comfyui:2.2", *A10), 0, "diffusion", {"IMG004": "warning"},
      id="diffusers-on-comfyui"),
    S("cosyvoice-vllm", "cosyvoice", (*VLLM, *A10), 1, "tts", {"IMG001": "error", "SEC009": "info"},
      id="cosyvoice-on-vllm"),
    S("llm-on-comfyui", "qwen05b", ("--image", "comfyui:2.2", *A10), 1, "hf-llm", {"IMG001": "error"},
      id="llm-on-comfyui"),
    S("unknown-image", "qwen05b", ("--image", "registry.example.com/team/my-server:1.0", *A10), 0, "hf-llm",
      {"IMG006": "warning"}, id="unknown-image"),
    # --- kinds
    S("adapter", "adapter", (*VLLM, *A10), 1, "adapter", {"KND004": "error"}, id="lora-adapter-alone"),
    S("ollama-vllm", "ollama", (*VLLM, *A10), 1, "ollama", {"KND005": "error"}, id="ollama-store-on-vllm"),
    S("ollama-no-image", "ollama", (), 0, "ollama", {"KND005": "warning"}, id="ollama-store-no-image"),
    S("misnamed", "misnamed", (*VLLM, *A10), 0, "hf-llm", {"KND003": "warning"}, id="sdxl-turbo-holds-qwen"),
    S("empty", "empty", (*VLLM, *A10), 1, "unknown", {"KND002": "error"}, id="empty-folder"),
    S("junk", "junk", (*VLLM, *A10), 1, "unknown", {"KND001": "error"}, id="folder-of-non-model-files"),
    S("hfcache-snapshot", "hfcache", (*VLLM, *A10), 0, "hf-llm", {}, id="hf-cache-snapshot"),
    S("hfcache-repo", "hfcache_repo", (*VLLM, *A10), 0, "hf-llm", {}, id="hf-cache-models--org--name"),
    # --- broken files
    S("truncated", "truncated", (*VLLM, *A10), 1, "hf-llm", {"FIL004": "error"}, id="truncated-shard"),
    S("missing-shard", "missing_shard", (*VLLM, *A10), 1, "hf-llm", {"FIL003": "error"}, id="missing-shard"),
    S("lfs", "lfs", (*VLLM, *A10), 1, "hf-llm", {"FIL005": "error"}, id="git-lfs-pointer"),
    S("incomplete", "incomplete", (*VLLM, *A10), 1, "hf-llm", {"FIL007": "error"}, id="incomplete-download"),
    S("dup", "dup", (*VLLM, *A10), 0, "hf-llm", {"FIL008": "warning", "SEC009": "info"},
      id="bin-and-safetensors"),
    S("notokenizer", "notokenizer", (*VLLM, *A10), 1, "hf-llm", {"FIL002": "error"},
      id="no-tokenizer"),
    S("noconfig", "noconfig", (*VLLM, *A10), 1, None, {"FIL001": "error"}, id="no-config-json"),
    S("badjson", "badjson", (*VLLM, *A10), 1, None, {"FIL012": "error"}, id="config-json-cut-off"),
]


@pytest.mark.parametrize(("name", "model", "args", "rc", "kind", "codes"), SCENARIOS)
def test_scenario(lib: dict[str, Path], name: str, model: str, args: tuple[str, ...], rc: int,
                  kind: str | None, codes: dict[str, str]) -> None:
    run = check(lib[model], *args)
    assert run.rc == rc, (name, run.codes, run.stderr, [f["message"] for f in run.findings])
    if kind is not None:
        assert run.kind == kind, (name, run.result.get("kind_evidence"))
    assert run.codes == codes, (name, [(f["rule"], f["severity"], f["message"]) for f in run.findings])
    assert_actionable(run)
    assert run.doc["summary"]["exit_code"] == rc


# -- scenarios whose messages and figures matter ------------------------------------------------------------


def test_t4_bf16_names_dtype_half_and_fitting_instances(lib):
    run = check(lib["qwen7b"], *VLLM, *T4)
    mem = run.finding("MEM001")
    assert "14.22 GiB per GPU" in mem["message"] and "13.27 GiB" in mem["message"] and "Tesla T4" in mem["message"]
    assert mem["path"] == "model.safetensors.index.json"  # the model, not one innocent shard
    assert "ecs.gn7i-c8g1.2xlarge" in mem["hint"]
    assert "--dtype half" in run.finding("ENG003")["hint"]


def test_a10_kv_arithmetic_matches_hand_computation(lib):
    mem = check(lib["qwen7b"], *VLLM, *A10).result["memory"]
    assert mem["kv_cache_bytes_per_token"] == 28 * 4 * 128 * 2 * 2 == 57344
    assert 60_000 < mem["kv_cache_tokens"] < 90_000 and mem["max_model_len"] == 32768
    assert mem["gpu_memory_utilization"] == 0.9


def test_llama_128k_on_a10_hint_is_a_length_that_fits(lib):
    run = check(lib["llama31"], *VLLM, *A10)
    f = run.finding("MEM003")
    fit = int(re.search(r"--max-model-len (\d+)", f["hint"]).group(1))
    assert 8192 <= fit <= run.result["memory"]["kv_cache_tokens"]
    assert check(lib["llama31"], *VLLM, *A10, "--max-model-len", str(fit)).rc == 0


def test_memory_hints_never_offer_the_same_instance_or_a_useless_length(lib):
    low = check(lib["fp8"], *VLLM, *A10).finding("MEM004")
    assert "ecs.gn7i-c8g1.2xlarge (" not in low["hint"]  # the instance the user already has
    tight = check(lib["gemma2"], *VLLM, *A10, "--max-model-len", "4096").finding("MEM003")
    assert not re.search(r"--max-model-len \d{1,3}\b", tight["hint"]), tight["hint"]
    assert "--kv-cache-dtype fp8" not in tight["hint"]  # doubling ~80 tokens fixes nothing
    over = check(lib["qwen7b"], *VLLM, *A10, "--max-model-len", "200000").finding("MEM003")
    assert "--max-model-len 32768" in over["hint"]  # capped at the model's limit, as ENG011 says


def test_gemma2_float32_config_keeps_a_16bit_kv_cache(lib):
    # config.json says float32; vLLM --dtype auto runs it in bf16: 42 layers x 8 x 256 x 2 x 2 B per token
    mem = check(lib["gemma2"], *VLLM, *L20).result["memory"]
    assert mem["kv_cache_bytes_per_token"] == 42 * 8 * 256 * 2 * 2


def test_gmu_percent_is_not_estimated_as_90x_memory(lib):
    run = check(lib["qwen7b"], *VLLM, *A10, "--gpu-memory-utilization", "90")
    assert "--gpu-memory-utilization 0.9" in run.finding("ENG014")["hint"]
    assert run.result["memory"]["gpu_memory_utilization"] == 0.9
    assert "0.012" not in check(lib["qwen7b"], *VLLM, *A10, "--gpu-memory-utilization", "1.2").finding("ENG014")["hint"]


def test_misc_messages_name_cause_and_fix(lib):
    assert "0.6.1" in check(lib["qwen2vl"], "--image", "vllm:0.6.0", *A10).finding("ENG001")["hint"]
    assert "0.8.4" in check(lib["qwen3"], "--image", "vllm:0.8.3", *A10).finding("ENG001")["hint"]
    eng4 = check(lib["gemma2"], *VLLM, *T4, "--dtype", "half").finding("ENG004")
    assert "float32" in eng4["hint"] and "gemma2" in eng4["message"]
    eng5 = check(lib["awq"], *VLLM, *V100).finding("ENG005")
    assert "7.5" in eng5["message"] and "7.0" in eng5["message"]
    assert "[1, 2, 4]" in check(lib["qwen7b"], *VLLM, *A10X4, "-tp", "3").finding("ENG012")["hint"]
    tp = check(lib["qwen7b"], *VLLM, *A10, "-tp", "4").finding("ENG013")
    assert "or fewer" not in tp["hint"] and "4 GPUs" in tp["hint"]
    trc = check(lib["chatglm"], *VLLM, *A10).finding("ENG015")
    assert "--trust-remote-code" in trc["hint"]
    adapter = check(lib["adapter"], *VLLM, *A10).finding("KND004")
    assert "Qwen/Qwen2.5-7B-Instruct" in adapter["message"] and "--enable-lora" in adapter["hint"]
    lfs = check(lib["lfs"], *VLLM, *A10).finding("FIL005")
    assert "3864726320" in lfs["message"] and "git lfs pull" in lfs["hint"]
    oll = check(lib["ollama"], *VLLM, *A10).finding("KND005")
    assert "blobs/sha256-" in oll["message"] and oll["path"].startswith("blobs/sha256-")
    assert "vllm cannot start" in oll["message"]
    ch = check(lib["qwen7b"], *VLLM, *CPU).finding("CHP001")
    assert "ecs.gn5" not in ch["hint"]  # P4/P100 instances no vLLM runs on
    gg = check(lib["gguf"], "--image", "sglang:0.5.8-gpu", *A10).finding("IMG002")
    assert "llama-server -m" in gg["hint"]
    hf = check(lib["qwen05b"], "--image", "llama.cpp:server-cuda", *A10).finding("IMG003")
    assert "convert_hf_to_gguf.py" in hf["hint"]
    gemma3 = check(lib["gemma3"], *VLLM, *T4).finding("ENG003")
    assert gemma3["hint"].count("bfloat16") == 1, gemma3["hint"]  # no repeated clause


def test_eas_service_files(lib):
    root = lib["_root"]
    good = check(lib["qwen7b"], "--service", root / "eas_vllm_good.json")
    assert good.rc == 0 and good.codes == {"ENG016": "info"}  # the spec passes --trust-remote-code needlessly
    assert good.result["memory"]["max_model_len"] == 8192  # taken from the start command
    bad = check(lib["qwen7b"], "--service", root / "eas_bad_mount.json")
    assert bad.rc == 1
    assert bad.codes == {"DEP001": "error", "DEP002": "error", "DEP003": "error", "DEP008": "error",
                         "DEP010": "error", "ENG013": "error"}
    assert "/models/qwen" in bad.finding("DEP001")["message"]
    assert_actionable(bad)
    sg = check(lib["qwen7b"], "--service", root / "eas_sglang_default_port.json")
    # the CPU instance is reported once (CHP001), not again as DEP007
    assert sg.rc == 1 and sg.codes == {"CHP001": "error", "DEP004": "error", "DEP006": "error"}
    assert_actionable(sg)
    inv = check(lib["qwen7b"], "--service", root / "eas_invalid_port.json")
    assert inv.rc == 2 and inv.stdout == "" and inv.stderr.count("\n") == 1
    assert "containers[0].port" in inv.stderr


def test_usage_errors_exit_2_with_one_line(lib, tmp_path):
    missing = check(tmp_path / "no-such-model", *VLLM, *A10)
    assert missing.rc == 2 and missing.stdout == "" and missing.stderr.startswith("error: path does not exist")
    inst = check(lib["qwen05b"], *VLLM, "--instance", "ecs.gn7i-c8g1.2xlage")
    assert inst.rc == 2 and inst.stderr.count("\n") == 1 and "did you mean ecs.gn7i-c8g1.2xlarge" in inst.stderr
    gpu = check(lib["qwen05b"], *VLLM, "--gpu", "a10x")
    assert gpu.rc == 2 and inst.stderr.count("\n") == 1 and "unknown GPU 'a10x'" in gpu.stderr
    assert "did you mean A10" in gpu.stderr
    arg = check(lib["qwen05b"], *VLLM, *A10, "--max-model-len", "lots")
    assert arg.rc == 2 and arg.stderr.count("\n") == 1 and "--max-model-len" in arg.stderr


def test_text_output_does_not_repeat_the_path(lib):
    r = CliRunner().invoke(main, [str(lib["truncated"]), *VLLM, *A10, "--no-color"])
    lines = [ln for ln in r.stdout.splitlines() if "FIL004" in ln]
    assert lines and all(ln.count("model-00002-of-00004.safetensors") == 1 for ln in lines), lines


def test_vllm084_sampler_warmup_hint_lowers_max_num_seqs(lib):
    # vLLM 0.8.x `vllm serve` warms the sampler up with max_num_seqs=1024 rows of 151936 logits: on a 24 GB
    # A10 nothing is left for the KV cache; vLLM itself says "try lowering max_num_seqs"
    run = check(lib["qwen3"], "--image", "vllm:0.8.4", *A10, "--max-model-len", "8192")
    assert run.rc == 1 and run.codes == {"MEM002": "error"}
    assert "--max-num-seqs 256" in run.finding("MEM002")["hint"]
    assert check(lib["qwen3"], "--image", "vllm:0.8.4", *A10, "--max-model-len", "8192",
                 "--max-num-seqs", "256").rc == 0


def test_gguf_memory_finding_points_at_the_gguf_not_a_config(lib):
    f = check(lib["gguf"], *VLLM, *A10).finding("MEM003")
    assert f["path"] == "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"
