"""Helpers that rules of several modules share: which files an engine reads, how to name a model kind,
which engine the target runs, what the image family serves (resolved with the image), the deployment spec and
the smoke observation.

Private (leading underscore): the registry collects rules from the public modules of ``rules`` only, and
nothing here is a rule. Everything is pure: it reads the Context, never the disk.
"""

from __future__ import annotations

import re

from modelcheck.catalog import support
from modelcheck.memo import last_answer
from modelcheck.model import ImageFamily, ModelFacts
from modelcheck.record import record
from modelcheck.rule import Context

# -- files ---------------------------------------------------------------------------------------

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack")
# files an engine reads at start-up: a problem with them stops the server
READ_AT_STARTUP = re.compile(
    r"(^|/)(config\.json|generation_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|"
    r"preprocessor_config\.json|processor_config\.json|model_index\.json|adapter_config\.json|"
    r"[^/]*\.index\.json|params\.json|tokenizer\.model|vocab\.(json|txt)|merges\.txt)$"
)


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if abs(n) >= 2**20 else f"{n} bytes"


# -- kinds ---------------------------------------------------------------------------------------

# how a message names each kind of model folder (modelcheck.model.KINDS)
KIND_WORDS = {
    "hf-llm": "a Hugging Face language model",
    "gguf": "a GGUF model",
    "adapter": "a LoRA/PEFT adapter",
    "diffusion": "an image-generation (diffusion) model",
    "tts": "a text-to-speech model",
    "ollama": "an Ollama model store",
    "custom": "a custom (non-HF) model",
    "unknown": "nothing recognisable",
}

# -- engine --------------------------------------------------------------------------------------


def image_engine(ctx: Context) -> tuple[str | None, tuple[int, ...] | None]:
    """(engine, version) of the declared image; (None, None) without --image."""
    img = ctx.target.image
    if img is None:
        return None, None
    return img.engine, support.vt(img.version)


def serving_engine(ctx: Context) -> tuple[str | None, tuple[int, ...] | None]:
    """Like :func:`image_engine`, but without an image the deployment's start command (its launcher:
    vllm, sglang, llama.cpp) still names the engine, of unknown version."""
    if ctx.target.image is None:
        return (ctx.target.deployment.launcher if ctx.target.deployment else None), None
    return image_engine(ctx)


def model_types(ctx: Context) -> tuple[str, ...]:
    """config.json model_type, then the text config's (a VLM's language model) when it differs."""
    out = []
    if ctx.facts.model_type:
        out.append(ctx.facts.model_type)
    tc = ctx.facts.text_config or {}
    if isinstance(tc.get("model_type"), str) and tc["model_type"] not in out:
        out.append(tc["model_type"])
    return tuple(out)


def quant_method(ctx: Context) -> tuple[str | None, bool]:
    """(method, explicit): --quantization wins over config.json quantization_config."""
    flag = ctx.target.engine_args.get("quantization")
    if isinstance(flag, str) and flag.strip():
        return support.normalize_quant_method(flag), True
    if ctx.facts.kind == "gguf":
        return "gguf", False
    return support.quant_method_from_config(ctx.facts.config), False


# -- sharded-weights indexes (*.index.json weight_map) ------------------------------------------------


@record
class WeightIndex:
    path: str  # the index file, relative to the model root
    files: frozenset[str]  # the file names its weight_map values give (each once)
    not_names: tuple[str, ...]  # values that are not file names at all (repr), sorted
    doc: dict  # the whole index document


@last_answer  # the FIL index rules and SEC006 read the same indexes of the same facts
def weight_indexes(facts: ModelFacts) -> tuple[WeightIndex, ...]:
    """Every ``*.index.json`` with a ``weight_map`` object, by path. A map names each shard once per tensor
    (a 405B index: 1,100+ entries for 191 files): the rules want the files."""
    out = []
    for rel, doc in sorted(facts.json_files.items()):
        wm = doc.get("weight_map") if rel.endswith(".index.json") and isinstance(doc, dict) else None
        if isinstance(wm, dict):
            values = wm.values()
            out.append(WeightIndex(rel, frozenset(v for v in values if isinstance(v, str)),
                                   tuple(sorted({repr(v) for v in values if not isinstance(v, str)})), doc))
    return tuple(out)


# -- image family (catalog data: checker/catalog/images.yaml, resolved with the image by target.resolve) ------

# images that run the user's own serving code rather than a model folder
GENERAL_CATEGORIES = ("general", "base")
# Used only when the image is not of a family we know (or a test built its ImageRef by hand): category -> kinds.
_CATEGORY_KINDS = {
    "llm": {"hf-llm", "adapter", "gguf", "ollama"},
    "image-generation": {"diffusion"},
    "video": {"diffusion"},
    "training": {"diffusion"},
    "tts": {"tts"},
    "rag": {"hf-llm", "custom"},
}


def image_family(ctx: Context) -> ImageFamily | None:
    """The catalog's entry for the target image's family (None: no image, or not a family we know)."""
    img = ctx.target.image
    return img.family if img is not None else None


def image_category(ctx: Context) -> str | None:
    img = ctx.target.image
    fam = image_family(ctx)
    return fam.category if fam is not None else (img.category if img else None)


def accepted_kinds(ctx: Context) -> tuple[set[str], set[str]]:
    """(kinds served, kinds served experimentally) by the target image."""
    fam = image_family(ctx)
    if fam is not None and fam.accepts_kinds is not None:
        return set(fam.accepts_kinds), set(fam.accepts_kinds_experimental)
    return set(_CATEGORY_KINDS.get(image_category(ctx) or "", ())), set()


def images_for(ctx: Context, kind: str) -> list[str]:
    """Catalog image families that serve ``kind`` (special-purpose ones first, general ones never)."""
    if ctx.catalog is None:
        return []  # no catalog to suggest from
    ranked: list[tuple[tuple[bool, bool, int, str], str]] = []
    for fam in ctx.catalog.families():
        if kind in (fam.accepts_kinds or ()) and fam.category not in (*GENERAL_CATEGORIES, "training"):
            # dedicated serving images first, the best documented (most known versions) before the rest
            ranked.append(((fam.category == "rag", fam.confidence == "low", -len(fam.versions), fam.name), fam.name))
    return [name for _, name in sorted(ranked)]


def engine_label(ctx: Context) -> str:
    """'vllm 0.14.0' for messages; '?' without an image."""
    img = ctx.target.image
    if img is None:
        return "?"
    return f"{img.engine}" + (f" {img.version}" if img.version else "")


# -- deployment spec (modelcheck.deploy.load) --------------------------------------------------------


def deployment(ctx: Context):  # -> modelcheck.model.Deployment | None
    return ctx.target.deployment


def spec_path(dep, key: str) -> str:
    """A finding path inside the spec file: 'service.json:storage[0].mount_path'. A bare command line
    (--serve-cmd) has no file around it: the flag itself is the path."""
    source = (dep.source or "spec")
    return source if key == source else f"{source}:{key}"


# -- smoke stage ---------------------------------------------------------------------------------

def observation(ctx: Context):  # -> modelcheck.smoke.types.SmokeObservation (the SMK rules need one)
    return ctx.observation
