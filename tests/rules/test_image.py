"""IMG rules against the real image catalog: failing and passing cases, then real folders."""

from __future__ import annotations

import modelcheck.record as _record

from modelcheck import catalog, facts, linter, registry
from modelcheck.model import GGUFInfo
from modelcheck.rule import Severity
from modelcheck.rule import Context
from modelcheck.model import Deployment
from modelcheck.testing import make_facts, make_target, run_rule
from fixtures import builders
from modelcheck_rules import _common as common
from modelcheck_rules import image as img
from modelcheck_rules import image_format

CAT = catalog.load()
QWEN = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}


def run(func, f, image: str, **kw):
    return run_rule(func, f, make_target(image=image, **kw), catalog=CAT)


def gguf_facts(split: int | None = None, n: int = 1):
    paths = (
        [f"qwen-Q4_K_M-0000{i + 1}-of-0000{n}.gguf" for i in range(n)]
        if split
        else ["qwen2.5-7b-Q4_K_M.gguf"]
    )
    gg = [
        GGUFInfo(p, 3, 0, 1, {"general.architecture": "qwen2"}, (), 100, 10, 100, split_count=split)
        for p in paths
    ]
    return make_facts(kind="gguf", name="qwen2.5-7b-gguf", gguf=gg)


def test_image_family_is_resolved_with_the_image():
    from modelcheck.rule import Context

    ctx = Context(facts=make_facts(), target=make_target(image="vllm:0.14.0-gpu"), catalog=CAT)
    fam = common.image_family(ctx)
    assert fam is ctx.target.image.family and fam.name == "vllm" and fam.accepts_kinds == ("hf-llm", "adapter")
    assert fam == CAT.find_family("vllm/vllm-openai")  # by alias too
    # the rules read the family from the ImageRef, not the catalog: no catalog on the Context changes nothing
    assert common.image_family(Context(facts=make_facts(), target=ctx.target)) == fam
    assert common.images_for(Context(facts=make_facts(), target=ctx.target), "diffusion") == []  # nothing to suggest
    assert "comfyui" in common.images_for(ctx, "diffusion") and "pytorch" not in common.images_for(ctx, "diffusion")
    unknown = make_target(image="registry.example.com/team/server:1.0")
    assert unknown.image.family is None and common.image_family(Context(facts=make_facts(), target=unknown)) is None


def test_kind_image_mismatch():
    sd = make_facts(
        kind="diffusion", subtype="sdxl", evidence=["sdxl.safetensors tensor 'conditioner.embedders.1.x'"]
    )
    [f] = run(img.kind_image_mismatch, sd, "vllm:0.14.0-gpu")
    assert f.rule == "IMG001" and "image-generation (diffusion) model" in f.message and "llm" in f.message
    assert f.severity == Severity.ERROR and f.data["suggested_images"] == ["comfyui", "easyanimate", "sd-webui"]
    assert f.data["kind"] == "diffusion" and f.data["accepts_kinds"] == ["adapter", "hf-llm"]
    assert f.hint == "deploy it on an image that serves diffusion: comfyui, easyanimate, sd-webui"
    llm = make_facts(config=QWEN)
    [g] = run(img.kind_image_mismatch, llm, "comfyui:2.2")
    assert g.data["kind"] == "hf-llm" and "vllm" in g.data["suggested_images"]
    assert g.rule == "IMG001" and "the image comfyui:2.2 is image-generation" in g.message
    assert "Hugging Face language model" in g.message and "vllm" in g.hint
    tts = make_facts(kind="tts", subtype="cosyvoice2")
    [t] = run(img.kind_image_mismatch, tts, "vllm:0.14.0-gpu")
    assert t.data["suggested_images"] == ["cosyvoice"]
    assert t.rule == "IMG001" and "text-to-speech model" in t.message and t.hint.endswith("tts: cosyvoice")
    [c] = run(img.kind_image_mismatch, sd, "cosyvoice:2.2.6")
    assert c.data["category"] == "tts"
    assert run(img.kind_image_mismatch, llm, "vllm:0.14.0-gpu") == []
    assert run(img.kind_image_mismatch, sd, "comfyui:2.2") == []
    assert run(img.kind_image_mismatch, llm, "pytorch:2.5.1") == []  # general image: IMG005 speaks


def test_gguf_on_vllm_versions_and_engines():
    # PATH is the .gguf file: what vLLM 0.6-0.23 loads (check_gguf_file), experimentally
    one = _record.replace(gguf_facts(), single_file="qwen2.5-7b-Q4_K_M.gguf")
    [w] = run(image_format.gguf_on_hf_engine, one, "vllm:0.14.0-gpu")
    assert w.rule == "IMG002" and w.severity == Severity.WARNING and "experimental" in w.message
    assert "vllm serve ./qwen2.5-7b-Q4_K_M.gguf --tokenizer" in w.hint and "llama-server" in w.hint
    # a mounted folder holding the GGUF: vLLM reads it as a Hugging Face folder and fails
    [f] = run(image_format.gguf_on_hf_engine, gguf_facts(), "vllm:0.14.0-gpu")
    assert f.severity == Severity.ERROR and "only when given the .gguf file itself" in f.message
    assert "vllm serve /path/to/qwen2.5-7b-Q4_K_M.gguf" in f.hint and f.data["loadable"] is False
    # ... unless the start command points at the file
    pointed = make_target(image="vllm:0.14.0-gpu", deployment=Deployment(source="--serve-cmd", source_kind="serve-cmd",
                                                                          model_ref="/models/qwen2.5-7b-Q4_K_M.gguf"))
    [w2] = run_rule(image_format.gguf_on_hf_engine, gguf_facts(), pointed, catalog=CAT)
    assert w2.severity == Severity.WARNING and "experimental" in w2.message
    [e] = run(image_format.gguf_on_hf_engine, gguf_facts(split=2, n=2), "vllm:0.14.0-gpu")
    assert e.severity == Severity.ERROR and "split GGUF" in e.message and "llama-gguf-split --merge" in e.hint
    # no GGUF loader from 0.24.0 (gguf_loader.py last in 0.23.0)
    assert run(image_format.gguf_on_hf_engine, one, "vllm:0.23.0-gpu")[0].severity == Severity.WARNING
    for image in ("vllm:0.24.0-gpu", "vllm/vllm-openai:v0.33.0"):
        [p] = run(image_format.gguf_on_hf_engine, one, image)
        assert p.severity == Severity.ERROR and "has no GGUF loader (removed in 0.24.0; 0.23.0 is the last" in p.message
        assert p.rule == "IMG002" and p.path == "qwen2.5-7b-Q4_K_M.gguf" and "llama-server" in p.hint
        assert (p.data["loadable"], p.data["certain"], p.data["split"]) == (False, True, False)
    [s] = run(image_format.gguf_on_hf_engine, gguf_facts(), "sglang:0.5.8-gpu")
    assert s.severity == Severity.ERROR and "serves Hugging Face folders" in s.message
    assert s.rule == "IMG002" and "llama-server -m qwen2.5-7b-Q4_K_M.gguf" in s.hint
    assert (s.data["engine"], s.data["version"]) == ("sglang", "0.5.8")
    assert run(image_format.gguf_on_hf_engine, gguf_facts(), "llama.cpp") == []


def test_hf_folder_on_llama_cpp():
    [f] = run(image_format.hf_folder_on_gguf_engine, make_facts(config=QWEN), "llama.cpp")
    assert f.rule == "IMG003" and "Qwen2ForCausalLM" in f.message
    assert "convert_hf_to_gguf.py" in f.hint and "llama-quantize" in f.hint
    assert f.severity == Severity.ERROR and "llama.cpp loads GGUF files only" in f.message
    assert f.data == {"engine": "llama.cpp", "accepts_formats": ["gguf"]}
    assert run(image_format.hf_folder_on_gguf_engine, make_facts(config=QWEN), "vllm:0.14.0-gpu") == []


def test_diffusion_layout():
    diffusers = make_facts(
        kind="diffusion", json_files={"model_index.json": {"_class_name": "StableDiffusionXLPipeline"}}
    )
    [f] = run(image_format.diffusion_format_mismatch, diffusers, "stable-diffusion-webui:4.2")
    assert f.rule == "IMG004" and f.severity == Severity.ERROR and f.path == "model_index.json"
    assert "single-file" in f.hint and f.data["layout"] == "diffusers"
    [w] = run(image_format.diffusion_format_mismatch, diffusers, "comfyui:2.2")
    assert w.severity == Severity.WARNING and "DiffusersLoader" in w.message
    single = make_facts(kind="diffusion", files={"sd_xl_base_1.0.safetensors": 10})
    assert run(image_format.diffusion_format_mismatch, single, "stable-diffusion-webui:4.2") == []
    assert run(image_format.diffusion_format_mismatch, single, "comfyui:2.2") == []
    [v] = run(image_format.diffusion_format_mismatch, single, "easyanimate:1.1.5")
    assert v.data["layout"] == "sd-single-file"


def test_general_purpose_image():
    [i] = run(img.general_purpose_image, make_facts(config=QWEN), "pytorch:2.5.1")
    assert i.rule == "IMG005" and i.severity == Severity.INFO and "own serving code" in i.message
    [t] = run(img.general_purpose_image, make_facts(config=QWEN), "nvcr.io/nvidia/tritonserver:24.08-py3")
    assert t.severity == Severity.WARNING and t.data["accepts_kinds"] == ["custom"]
    assert t.rule == "IMG005" and "triton 24.08 serves custom models" in t.message and "vllm" in t.hint
    triton = make_facts(kind="custom", subtype="triton", files={"config.pbtxt": 10})
    assert run(img.general_purpose_image, triton, "nvcr.io/nvidia/tritonserver:24.08-py3") == []
    assert run(img.general_purpose_image, make_facts(config=QWEN), "vllm:0.14.0-gpu") == []


def test_unknown_image():
    [f] = run(img.unknown_image, make_facts(config=QWEN), "myorg/fancy-server:1.0")
    assert f.rule == "IMG006" and "'myorg/fancy-server:1.0'" in f.message and "--catalog" in f.hint
    assert f.severity == Severity.WARNING and "was not checked" in f.message
    assert f.data == {
        "image": "myorg/fancy-server:1.0",
        "engine": "fancy-server",
        "not_checked": ["model kind and format support", "chip build", "engine flags", "architecture support",
                        "memory estimate"],
    }
    assert "--engine vllm:0.14.0" in f.hint and "--image-spec" in f.hint
    assert run(img.unknown_image, make_facts(config=QWEN), "vllm:0.14.0-gpu") == []


def test_pickle_only_weights():
    bins = make_facts(
        config=QWEN, files={"pytorch_model-00001-of-00002.bin": 5, "pytorch_model-00002-of-00002.bin": 5}
    )
    [f] = run(image_format.pickle_only_weights, bins, "vllm:0.14.0-gpu")
    assert f.rule == "IMG007" and f.severity == Severity.INFO and f.path == "pytorch_model-00001-of-00002.bin"
    assert "safe_serialization=True" in f.hint
    assert (
        run(
            image_format.pickle_only_weights,
            make_facts(config=QWEN, files={"model.safetensors": 5}),
            "vllm:0.14.0-gpu",
        )
        == []
    )


# -- end to end ---------------------------------------------------------------------------------


def image_findings(path, image: str) -> dict[str, list]:
    fa = facts.gather(str(path))
    rules = tuple(r for r in registry.load(plugins=False).rules if r.family == "IMG")
    res = linter.run(rules, Context(facts=fa, target=make_target(image=image), catalog=CAT))
    out: dict[str, list] = {}
    for f in res.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_e2e_gguf_on_vllm(tmp_path, gguf_q4):
    found = image_findings(gguf_q4, "vllm:0.14.0-gpu")
    assert list(found) == ["IMG002"]
    [f] = found["IMG002"]
    assert f.severity == Severity.WARNING and f.path == "tiny-llama-Q4_K_M.gguf"


def test_e2e_sd_checkpoint_on_vllm(tmp_path):
    d = tmp_path / "juggernaut-xl"
    d.mkdir()
    builders.make_sd_checkpoint(d / "juggernautXL_v9.safetensors", "sdxl")
    found = image_findings(d, "vllm:0.14.0-gpu")
    assert list(found) == ["IMG001"]
    assert found["IMG001"][0].data["kind"] == "diffusion"
