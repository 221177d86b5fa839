"""Frozen data the pipeline passes along: what the files say (facts), what we deploy to (target).

Facts are produced only by ``modelcheck.facts``; rules and the estimator read them and never touch disk.
Mappings inside these dataclasses are plain dicts parsed from JSON/headers: treat them as read-only.
"""

from __future__ import annotations

import functools
from typing import Any

from modelcheck.record import field, record

# Kinds a model folder can be (DESIGN.md "Contracts"); "embedding" is hf-llm-shaped but not generative.
KINDS = ("hf-llm", "gguf", "diffusion", "tts", "adapter", "ollama", "custom", "unknown")


@record
class FactError:
    """Something in the files that could not be read or made sense of. Exactly one rule reports each kind."""

    kind: str  # e.g. "json", "safetensors", "gguf", "pickle", "walk", "index", "unreadable"
    path: str  # relative to the model root ("" for the root itself)
    message: str


@record
class FileEntry:
    """One entry of the bounded walk. ``path`` is relative to the model root, with forward slashes."""

    path: str
    size: int
    type: str = "file"  # file | dir | symlink | fifo | socket | device | other
    symlink_target: str | None = None
    escapes_root: bool = False  # a symlink that resolves outside the model root
    broken_link: bool = False
    lfs_pointer: bool = False  # a git-lfs pointer text instead of data
    lfs_size: int | None = None  # the size the lfs pointer promises
    sparse_hint: bool = False  # fewer blocks allocated than size (data regions are holes)

    @property
    def name(self) -> str:
        return self.path[self.path.rfind("/") + 1 :]

    @property
    def suffix(self) -> str:
        """The last ``.xxx`` of the name, lower-case ('' without a dot). Asked per file by many rules: no
        intermediate strings."""
        path = self.path
        dot = path.rfind(".")
        return path[dot:].lower() if dot > path.rfind("/") else ""


@record
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype ("BF16", "F16", "I32", ...) or GGUF type name ("Q4_K", "F16", ...)
    shape: tuple[int, ...]
    nbytes: int
    offset: int = 0  # absolute data start inside the file (safetensors: after the header)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@record
class SafetensorsHeader:
    path: str
    header_size: int  # the 8-byte length prefix value
    data_bytes: int  # end of the last tensor's data region (what the file must hold after the header)
    file_size: int
    tensors: tuple[TensorInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def expected_file_size(self) -> int:
        return 8 + self.header_size + self.data_bytes


@record
class GGUFInfo:
    path: str
    version: int
    tensor_count: int
    kv_count: int
    # Scalars and strings as read; arrays are summarised as {"type": ..., "length": n} unless small.
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    file_size: int
    data_offset: int  # where the tensor data section starts
    expected_file_size: int  # data_offset + end of the last tensor
    split_index: int | None = None  # split.no for multi-file GGUF
    split_count: int | None = None

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None


@record
class PickleGlobal:
    module: str
    name: str
    verdict: str  # "safe" | "dangerous" | "unknown"


@record
class PickleScan:
    """Opcode-level scan of one pickle (a file, or a member of a torch zip archive). Never unpickled."""

    path: str  # the file's path (never split: names may hold ':'); the archive member is ``member``
    format: str  # "pickle" | "torch-zip" | "torch-legacy" | "numpy" | "joblib"
    globals: tuple[PickleGlobal, ...]
    opcodes_seen: int = 0
    member: str | None = None  # "archive/data.pkl" for a member of a zip/tar (nested: "a.zip/b.pkl")

    @property
    def dangerous(self) -> tuple[PickleGlobal, ...]:
        """Globals that make loading run code: denylisted ("dangerous") or off the allowlist ("unlisted")."""
        return tuple(g for g in self.globals if g.verdict in ("dangerous", "unlisted"))

    @property
    def unknown(self) -> tuple[PickleGlobal, ...]:
        return tuple(g for g in self.globals if g.verdict == "unknown")


@record
class WeightsSummary:
    """Totals over whatever weight headers were read (safetensors or GGUF).

    ``total_bytes`` counts only what was read. When some weights could not be read (git-lfs pointers,
    shards missing or unreadable, no weight files at all, a GGUF with no tensors) the summary says so:
    ``declared_bytes`` is the size the files *declare* (the index's ``metadata.total_size`` or the sizes
    the git-lfs pointers promise), with ``declared_source`` saying which; ``unknown_reason`` says why no
    figure exists at all. Unknown is never zero: use :attr:`figure_bytes`.
    """

    format: str  # safetensors | gguf | pytorch | onnx | mixed | none
    total_bytes: int  # bytes of tensor data read from headers (exact for what was read)
    param_count: int  # elements (for packed quantized tensors: as stored)
    dtype_bytes: dict[str, int]  # dtype -> bytes of data in that dtype
    dominant_dtype: str | None  # dtype holding most bytes ("BF16", "Q4_K", ...)
    tensor_count: int
    files: tuple[str, ...]
    from_file_sizes: bool = False  # no tensor headers to read (pytorch .bin, onnx): total_bytes = file sizes
    declared_bytes: int | None = None  # whole-model size declared, not read (set only when reading fell short)
    declared_source: str | None = None  # e.g. "model.safetensors.index.json metadata.total_size", "git-lfs pointers"
    unknown_reason: str | None = None  # why the weight size is unknown (then declared_bytes is None)
    unread: tuple[str, ...] = ()  # weight files whose data could not be read (pointers, missing shards)

    @property
    def complete(self) -> bool:
        """Every weight the model needs was read from a real header."""
        return self.declared_bytes is None and self.unknown_reason is None

    @property
    def figure_bytes(self) -> int | None:
        """The weight size to plan memory with: read, else declared, else None (unknown)."""
        if self.unknown_reason is not None:
            return None
        return self.declared_bytes if self.declared_bytes is not None else self.total_bytes


@record
class Classification:
    kind: str
    confidence: float  # 0..1
    evidence: tuple[str, ...]
    name_suggests: str | None = None  # kind the folder/file name suggests, if any
    modalities: tuple[str, ...] = ("text",)
    subtype: str | None = None  # e.g. "sdxl", "sd1", "flux", "cosyvoice", "lora", "embedding", "triton"


@record
class SourceInfo:
    """Where the files came from, when not a plain folder: a Hugging Face cache snapshot or an Ollama store."""

    revision: str | None = None  # HF cache: the snapshot folder name (commit)
    ref: str | None = None  # HF cache: the ref that named it ("main")
    cache_repo: str | None = None  # HF cache: the models--org--name folder
    cache_snapshots: tuple[str, ...] = ()  # HF cache: every snapshot present
    notes: tuple[str, ...] = ()  # how the resolver chose
    ollama_manifest: str | None = None  # Ollama: the manifest (relative to the store root)
    ollama_name: str | None = None  # Ollama: model:tag
    ollama_models: tuple[str, ...] = ()  # Ollama: the manifests a store root holds
    ollama_manifest_invalid: bool = False
    ollama_model_blob: str | None = None  # Ollama: the GGUF blob of the model layer
    ollama_layers: tuple[dict[str, Any], ...] = ()  # Ollama: the manifest's layers (path, mediaType, size)

    @classmethod
    def from_resolver(cls, notes: dict[str, Any]) -> SourceInfo:
        return cls(
            revision=notes.get("revision"), ref=notes.get("ref"), cache_repo=notes.get("hf_cache_repo"),
            cache_snapshots=tuple(notes.get("hf_cache_snapshots") or ()),
            notes=tuple(notes.get("resolve_notes") or ()), ollama_manifest=notes.get("ollama_manifest"),
            ollama_name=notes.get("ollama_name"), ollama_models=tuple(notes.get("ollama_models") or ()),
            ollama_manifest_invalid=bool(notes.get("ollama_manifest_invalid")),
            ollama_model_blob=notes.get("ollama_model_blob"),
            ollama_layers=tuple(notes.get("ollama_layers") or ()),
        )


@record
class HashResult:
    """One weight file hashed on request (--verify) against the digest it should have."""

    path: str  # relative to the model root
    status: str  # "ok" | "mismatch" | "no-reference" | "error"
    algorithm: str | None  # "sha256" | "git-sha1"
    expected: str | None
    actual: str | None
    source: str | None  # "hf-cache" | "sidecar" | "hub"
    size: int
    message: str = ""


@record
class ModelFacts:
    """Everything the files say, gathered once by ``modelcheck.facts.gather``."""

    input_path: str  # what the user typed
    root: str  # absolute folder we walked (for a single file: its parent)
    name: str  # display name used for name-based hints (folder, repo or file stem)
    single_file: str | None  # set when PATH was a file: its path relative to root
    files: tuple[FileEntry, ...]
    walk_truncated: bool
    json_files: dict[str, Any]  # relative path -> parsed JSON (config.json, tokenizer_config.json, ...)
    safetensors: tuple[SafetensorsHeader, ...]
    gguf: tuple[GGUFInfo, ...]
    pickles: tuple[PickleScan, ...]
    errors: tuple[FactError, ...]
    weights: WeightsSummary
    classification: Classification
    yaml_files: dict[str, Any] = field(default_factory=dict)
    text_files: dict[str, str] = field(default_factory=dict)  # small text files (config.pbtxt, Modelfile...)
    source: str = "local"  # local | hf-cache | ollama | hub
    source_info: SourceInfo = field(default_factory=SourceInfo)
    incomplete_downloads: tuple[str, ...] = ()  # .incomplete / .part files a downloader left behind
    weights_not_in_index: tuple[str, ...] = ()  # safetensors files the index does not list (not loaded)
    hashes: tuple[HashResult, ...] = ()  # --verify only: every weight file hashed
    scan: CodeScan = field(default_factory=lambda: CodeScan())  # modelcheck.facts.scan: code in the files

    # -- convenience views (pure, no I/O) -------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.classification.kind

    @property
    def config(self) -> dict[str, Any] | None:
        cfg = self.json_files.get("config.json")
        return cfg if isinstance(cfg, dict) else None

    @property
    def text_config(self) -> dict[str, Any] | None:
        """The language-model part of config.json (``text_config`` / ``llm_config`` for VLMs)."""
        cfg = self.config
        if cfg is None:
            return None
        for key in ("text_config", "llm_config", "language_config"):
            sub = cfg.get(key)
            if isinstance(sub, dict) and sub:
                merged = dict(sub)
                return merged
        return cfg

    @property
    def architectures(self) -> tuple[str, ...]:
        cfg = self.config or {}
        archs = cfg.get("architectures")
        if isinstance(archs, list):
            return tuple(a for a in archs if isinstance(a, str))
        return ()

    @property
    def model_type(self) -> str | None:
        mt = (self.config or {}).get("model_type")
        return mt if isinstance(mt, str) else None

    def file(self, path: str) -> FileEntry | None:
        for f in self.files:
            if f.path == path:
                return f
        return None

    def files_with_suffix(self, *suffixes: str) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.type == "file" and f.suffix in suffixes)

    def errors_of(self, kind: str) -> tuple[FactError, ...]:
        return tuple(e for e in self.errors if e.kind == kind)


# ----------------------------------------------------------------------------------------------
# Target: what the model is deployed to


@record
class GPU:
    name: str  # canonical catalog name ("A10", "Tesla T4", "H100 SXM")
    memory_bytes: int  # what the driver reports (total), used for planning
    nominal_gb: float  # marketing size
    compute_capability: str  # "8.6"
    bf16: bool
    fp8: bool
    fp4: bool = False
    arch: str | None = None
    source: str | None = None
    memory_source: str | None = None  # how memory_bytes was obtained: vllm-observation | torch-published | estimate | nvml | user

    @property
    def cc_int(self) -> int:
        major, _, minor = self.compute_capability.partition(".")
        return int(major) * 10 + int(minor or 0)


@record
class Instance:
    name: str
    cloud: str  # alibaba | aws | gcp | azure | pai | user | local
    chip: str  # GPU | CPU | PPU | XPU
    gpu: GPU | None
    gpu_count: int
    vcpu: int | None = None
    mem_gib: float | None = None
    family: str | None = None
    source: str | None = None


@record
class ImageFamily:
    """An image family as the catalog describes it (``checker/catalog/images.yaml``): what the rules judge an
    image by. Looked up once, with the image (``target.resolve``), and carried on the :class:`ImageRef`."""

    name: str
    category: str  # llm | image-generation | video | tts | general | base | rag | training | other
    chip_types: tuple[str, ...] = ()
    default_chip: str | None = None
    accepts_kinds: tuple[str, ...] | None = None  # None: the catalog does not say (judged by category)
    accepts_kinds_experimental: tuple[str, ...] = ()
    accepts_formats: tuple[str, ...] = ()
    latest_known: str | None = None
    versions: tuple[str, ...] = ()
    confidence: str | None = None


@record
class ImageRef:
    raw: str
    engine: str  # vllm | sglang | llama.cpp | comfyui | sd-webui | cosyvoice | pytorch | triton | ...
    version: str | None
    chip: str | None  # GPU | CPU | PPU | XPU (None = not stated)
    category: str  # llm | image-generation | tts | general | rag | other
    variant: str | None = None  # "api", "webui", build metadata ...
    registry: str | None = None
    region: str | None = None
    known: bool = True  # False when the engine name is not in our catalog
    repository: str | None = None  # path without registry and tag: "pai-eas/vllm", "vllm/vllm-openai"
    tag: str | None = None
    digest: str | None = None  # "sha256:..." when pinned by digest
    chip_from: str | None = None  # where ``chip`` came from: "tag" | "default" (family default) | None
    # where ``version`` came from: "tag" | "newest-known" (none given: the catalog's newest) | "engine" (--engine)
    # | "spec" (--image-spec labels) | None
    version_from: str | None = None
    family: ImageFamily | None = None  # the catalog's entry for ``engine`` (None: not a family we know)

    @property
    def version_tuple(self) -> tuple[int, ...] | None:
        return version_tuple(self.version)


@functools.lru_cache(maxsize=256)  # asked once per estimate: the planner runs ~100 per check
def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """'0.14.0' -> (0, 14, 0); '0.13.0rc2' -> (0, 13, 0); None/garbage -> None."""
    if not version:
        return None
    parts: list[int] = []
    for piece in version.lstrip("vV").split("."):
        digits = ""
        for ch in piece:
            if ch.isdigit():
                digits += ch
            else:
                break
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts) or None


@record
class Mount:
    """One storage mount of a deployment spec."""

    mount_path: str
    type: str  # oss | nfs | dataset | git | image | empty_dir | pvc | host | s3 | other
    source: str | None = None
    read_only: bool | None = None
    key: str = ""  # its key path in the spec ("storage[0]", "mounts[1]")


@record
class Deployment:
    """A deployment spec as the DEP rules read it (modelcheck.deploy.load: service JSON, deploy YAML, start command)."""

    source: str  # the spec's name as findings show it: "service.json", "--serve-cmd"
    source_kind: str  # eas-service | deploy-yaml | serve-cmd
    launcher: str | None = None  # the engine the start command runs: vllm | sglang | llama.cpp
    command: str | None = None
    command_key: str = "command"  # where the command sits in the spec
    argv: tuple[str, ...] = ()
    engine_flags: tuple[str, ...] = ()  # every flag the start command passes the engine, as written
    container_index: int | None = None
    container_count: int | None = None
    container_port: int | None = None
    container_port_key: str = "port"
    engine_port: int | None = None  # the port the command makes the engine listen on
    mounts: tuple[Mount, ...] = ()
    mounts_declared: bool = False
    env: dict[str, Any] = field(default_factory=dict)
    metadata_gpu: int | None = None
    resource_group: str | None = None
    instance_types: tuple[str, ...] = ()
    networking: dict[str, Any] = field(default_factory=dict)
    hf_token_set: bool = False
    model_ref: str | None = None
    model_ref_kind: str | None = None  # modelcheck.facts.source.classify_ref
    is_hub_id: bool = False
    hub_id: str | None = None
    hub_gated: Any = None  # --online: False | "auto" | "manual"
    hub_error: str | None = None


@record
class Target:
    image: ImageRef | None
    instance: Instance | None  # may be synthesised from --gpu / --gpu-count
    chip: str | None  # effective chip (flag > image tag > catalog)
    engine_args: dict[str, Any] = field(default_factory=dict)  # vLLM-style names, underscores
    deployment: Deployment | None = None  # the deployment spec, when one was given

    @property
    def engine(self) -> str | None:
        return self.image.engine if self.image else None

    @property
    def gpu(self) -> GPU | None:
        return self.instance.gpu if self.instance else None

    @property
    def gpu_count(self) -> int:
        return self.instance.gpu_count if self.instance else 0


@record
class Fixes:
    """Settings that make a failing start work, each re-estimated and found to start (None: none does)."""

    max_model_len: int | None = None  # the largest (a multiple of the block size) that starts
    gpu_memory_utilization: float | None = None  # the smallest (0.01 steps) that starts at max_model_len
    tensor_parallel_size: int | None = None  # the smallest that divides the heads and starts
    max_num_seqs: int | None = None  # a smaller profiling batch that starts (vLLM 0.8's sampler warm-up)
    kv_cache_dtype: str | None = None  # "fp8" when an FP8 KV cache makes max_model_len fit (and the GPU runs it)


@record
class Estimate:
    """Memory prediction (see modelcheck.estimate). All byte figures are per GPU unless named otherwise."""

    engine: str
    weights_bytes: int  # whole model as stored
    weights_bytes_per_gpu: int
    total_vram_bytes: int  # per GPU, as the driver reports
    gpu_memory_utilization: float
    usable_bytes: int  # total * utilization
    activation_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    kv_cache_bytes: int  # available for the KV cache per GPU (may be negative: it does not fit)
    kv_cache_bytes_per_token: int  # per GPU
    kv_cache_tokens: int
    max_model_len: int | None
    max_concurrency: float | None
    block_size: int
    assumptions: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # engine-specific detail for the JSON block
    status: str = "ok"  # "ok" | "fail": the predicted start-up
    failure: str | None = None  # why it fails: weights-exceed | no-kv-memory | max-model-len-exceeds-kv
    engine_version: str | None = None  # the version the figures were computed for
    fixes: Fixes | None = None  # only for a failing start
    llm: bool = True  # False for diffusion / TTS pipelines: no KV cache



@record
class CodeScan:
    """What ``modelcheck.facts.scan`` found while looking for code in the model files (nothing is executed).

    Pickle scans themselves are ``ModelFacts.pickles``; what stopped a scan is a ``FactError`` of kind
    "pickle" (``limits`` repeats the folder-wide ones: caps and the per-run budget).
    """

    files_sniffed: int = 0  # files whose content was looked at
    opcodes: int = 0  # pickle opcodes walked, all files together
    bytes_read: int = 0  # bytes decompressed or read from archives into memory
    limits: tuple[str, ...] = ()  # caps or budget reached: files or members left unscanned (one line each)
    keras_lambda: dict[str, tuple[str, ...]] = field(default_factory=dict)  # .keras/.h5 -> Lambda layer names
    onnx_external: dict[str, tuple[str, ...]] = field(default_factory=dict)  # .onnx -> external-data locations
    torchscript: tuple[tuple[str, str | None], ...] = ()  # (file, member or None) TorchScript archives
