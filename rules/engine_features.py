"""ENG rules, model features the deployment must enable or keep: the repo's own code
(--trust-remote-code), a chat template for the chat endpoint, and image inputs of vision-language models.

Codes: ENG015, ENG016, ENG017, ENG018.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from modelcheck.catalog import support
from modelcheck.catalog.tokenizers import tokenizer_needs_remote_code
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import serving_engine


def _remote_code(ctx: Context) -> tuple[list[str], bool]:
    """(reasons, config_needs_it): auto_map entries and .py files that mean the repo ships code."""
    reasons = []
    cfg = ctx.facts.config or {}
    am = cfg.get("auto_map")
    # transformers' own class wins for a model_type it knows: the repo's AutoConfig is then optional
    config_needs = (isinstance(am, dict) and "AutoConfig" in am
                    and cfg.get("model_type") not in support.TRANSFORMERS_NATIVE_MODEL_TYPES)
    if isinstance(am, dict) and am:
        reasons.append("config.json auto_map (" + ", ".join(sorted(am)[:4]) + ")")
    tok = ctx.facts.json_files.get("tokenizer_config.json") or {}
    # an AutoTokenizer auto_map is repo code only when tokenizer_class is not a transformers class
    if isinstance(tok, dict) and tokenizer_needs_remote_code(tok):
        reasons.append("tokenizer_config.json auto_map")
    py = [f.path for f in ctx.facts.files if f.type == "file" and f.suffix == ".py" and "/" not in f.path]
    if py:
        reasons.append(".py files: " + ", ".join(py[:3]))
    return reasons, config_needs


@rule("ENG015", severity=Severity.ERROR, kinds={"hf-llm"}, needs={"config"})
def trust_remote_code_needed(ctx: Context) -> Iterator[Finding]:
    """The model ships its own code (auto_map) that the engine must load, and --trust-remote-code is not set.

    ## Why it matters
    A config whose model_type transformers does not know (auto_map.AutoConfig), or an architecture the
    engine has no implementation for, only loads with the repo's Python code. Without
    --trust-remote-code the server stops ("requires you to execute the configuration file").

    ## How to fix
    Review the repo's .py files, then pass --trust-remote-code; or use a version of the model that is
    supported natively.
    """
    if ctx.target.engine_args.get("trust_remote_code") is True:
        return
    engine, v = serving_engine(ctx)
    if engine == "llama.cpp":
        return
    reasons, config_needs = _remote_code(ctx)
    if not reasons or not any("auto_map" in r for r in reasons):
        return
    arch = ctx.facts.architectures[0] if ctx.facts.architectures else None
    native = arch is not None and engine in (None, "vllm") and support.arch_support(arch, v).status == "registered"
    tokenizer_needs = any(r.startswith("tokenizer_config.json") for r in reasons)
    if engine == "sglang":  # SGLang's own registry and config classes (checker/engines/sglang.py)
        from modelcheck.engines import sglang

        need = sglang.remote_code(ctx.facts.config, v)
        native, config_needs = not need.model_needs, need.config_needs
    if native and not config_needs and not tokenizer_needs:
        return
    why = "its config class is repo code (auto_map.AutoConfig)" if config_needs else f"{arch} has no built-in implementation"
    yield Finding(
        f"the model needs its own code ({'; '.join(reasons)}): {why}, and --trust-remote-code is not set",
        path="config.json:auto_map", severity=None if config_needs or not native else Severity.WARNING,
        hint="review the .py files, then add --trust-remote-code", data={"reasons": reasons, "architecture": arch})


@rule("ENG016", severity=Severity.INFO, kinds={"hf-llm"})
def trust_remote_code_unneeded(ctx: Context) -> Iterator[Finding]:
    """--trust-remote-code is set but the model ships no code.

    ## Why it matters
    The flag lets any .py file in the repo run inside the server. With no auto_map and no .py files it
    does nothing today, but it would silently run code a later upload adds.

    ## How to fix
    Drop --trust-remote-code.
    """
    if ctx.target.engine_args.get("trust_remote_code") is not True:
        return
    reasons, _ = _remote_code(ctx)
    if reasons:
        return
    yield Finding("--trust-remote-code is set but the model has no auto_map and no .py files",
                  path="engine_args.trust_remote_code", hint="remove --trust-remote-code", data={})


@rule("ENG017", severity=Severity.WARNING, kinds={"hf-llm"})
def no_chat_template(ctx: Context) -> Iterator[Finding]:
    """The model has no chat template, but the server exposes a chat endpoint.

    ## Why it matters
    vLLM and SGLang serve /v1/chat/completions; without a template (tokenizer_config.json
    chat_template, chat_template.jinja or chat_template.json) every chat request fails with 400
    ("default chat template is no longer allowed"). Base models usually have none.

    ## How to fix
    Serve an instruct/chat checkpoint, pass --chat-template FILE, or use only /v1/completions.
    """
    engine, _ = serving_engine(ctx)
    if engine == "llama.cpp" or ctx.facts.classification.subtype in ("embedding", "reranker"):
        return
    if ctx.target.engine_args.get("chat_template"):
        return
    tok = ctx.facts.json_files.get("tokenizer_config.json")
    if isinstance(tok, dict) and tok.get("chat_template"):
        return
    names = {f.path for f in ctx.facts.files}
    if names & {"chat_template.jinja", "chat_template.json"} or "tokenizer_config.json" not in names and not tok:
        # no tokenizer_config at all: FIL rules own the missing tokenizer
        if names & {"chat_template.jinja", "chat_template.json"}:
            return
        if not tok:
            return
    yield Finding(
        "no chat template (tokenizer_config.json has no chat_template; no chat_template.jinja/.json): "
        "/v1/chat/completions requests will fail with 400",
        path="tokenizer_config.json", hint="pass --chat-template FILE, serve an instruct checkpoint, or use /v1/completions",
        data={})


_TEXT_ONLY_FOR_VLM = {
    # checkpoint architecture names vLLM registers as text-only although the config has a vision tower
    "Gemma3ForCausalLM", "Llama4ForCausalLM", "Mistral3ForCausalLM", "Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM",
}


def _mm_image_limit(val: Any) -> int | None:
    if isinstance(val, dict):
        n = val.get("image")
        return n if isinstance(n, int) else None
    if isinstance(val, str):
        s = val.strip()
        if s.startswith("{"):
            try:
                return _mm_image_limit(json.loads(s))
            except ValueError:
                return None
        m = re.search(r"image\s*=\s*(\d+)", s)
        return int(m.group(1)) if m else None
    return None


@rule("ENG018", severity=Severity.WARNING, kinds={"hf-llm", "gguf"})
def vision_inputs_dropped(ctx: Context) -> Iterator[Finding]:
    """A vision-language model is deployed in a way that drops image inputs.

    ## Why it matters
    `--limit-mm-per-prompt image=0`, `--language-model-only`, an architecture name vLLM registers as
    text-only, or llama-server without `--mmproj` all start fine but reject every request with an
    image: the deployment looks healthy and fails in use.

    ## How to fix
    Drop the flag (or set image=1+), keep the ...ForConditionalGeneration architecture, or pass the
    projector GGUF with --mmproj.
    """
    cfg = ctx.facts.config or {}
    vlm = "image" in ctx.facts.classification.modalities or isinstance(cfg.get("vision_config"), dict)
    if not vlm:
        return
    ea = ctx.target.engine_args
    engine, _ = serving_engine(ctx)
    limit = _mm_image_limit(ea.get("limit_mm_per_prompt"))
    if limit == 0:
        yield Finding("--limit-mm-per-prompt sets image=0 on a vision-language model: requests with images are refused",
                      path="engine_args.limit_mm_per_prompt", hint="remove it or set image=1 (or more)",
                      data={"limit_mm_per_prompt": ea.get("limit_mm_per_prompt")})
    if ea.get("language_model_only") is True:
        yield Finding("--language-model-only on a vision-language model: the vision tower is not loaded",
                      path="engine_args.language_model_only", hint="drop --language-model-only to serve images", data={})
    arch = ctx.facts.architectures[0] if ctx.facts.architectures else None
    if arch in _TEXT_ONLY_FOR_VLM and isinstance(cfg.get("vision_config"), dict):
        yield Finding(f"config.json has a vision_config but architectures[0] is {arch}, which vLLM serves text-only",
                      path="config.json:architectures", hint="use the ...ForConditionalGeneration architecture of this model",
                      data={"architecture": arch})
    if engine == "llama.cpp" and ctx.facts.kind == "gguf" and not ea.get("mmproj"):
        yield Finding("llama-server without --mmproj: the vision projector is not loaded, image requests fail",
                      hint="pass --mmproj <mmproj-*.gguf>", data={})
