"""What SGLang derives from a model, per release, read in its source (never vLLM's rules).

Pure functions over plain dicts (config.json as parsed), GPU sizes in bytes and version tuples; nothing here
reads a file. Releases read: 0.4.6.post5, 0.4.9, 0.5.2, 0.5.4, 0.5.6, 0.5.8 (``pip download sglang==X
--no-deps``). A version between two of them is answered from the nearest release read at or below it, and
the answer says so (``Read.exact``).

- **Native architectures**: ``srt/models/registry.py`` imports every top-level module of
  ``sglang.srt.models`` and registers the ``__name__`` of each ``EntryClass``. An architecture in that
  registry runs SGLang's own implementation: the repository's ``auto_map`` modeling code is never imported,
  so ``--trust-remote-code`` is not needed for the model (Phi-3 ships an ``auto_map`` and is native).
  From 0.4.9 an architecture outside the registry falls back to the Transformers backend
  (``model_loader/utils.py resolve_transformers_arch``).
- **Config class**: ``utils/hf_transformers_utils.py get_config`` calls ``AutoConfig.from_pretrained`` with
  the transformers release the wheel pins (4.51.1 / 4.53.0 / 4.56.1 / 4.57.1) after registering SGLang's own
  config classes (``_CONFIG_REGISTRY``): the repo's ``AutoConfig`` code is needed only for a ``model_type``
  neither knows.
- **Context length**: ``get_context_length(hf_text_config)``: the first of ``max_sequence_length``,
  ``seq_length``, ``max_seq_len``, ``model_max_length``, ``max_position_embeddings`` (transformers' class
  default when config.json lacks the key), times ``rope_scaling.factor`` unless the scaling names
  ``original_max_position_embeddings`` or is ``llama3``; 2048 when none. No tokenizer_config, no
  sentence-transformers ``max_seq_length``, no Gemma 3 exception (Gemma 3's linear factor 8 gives
  1,048,576). ``--context-length`` above it stops the server unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN.
- **Memory**: ``--mem-fraction-static`` (weights + KV pool as a share of the GPU) defaults by release from
  the GPU memory (``nvidia-smi`` MiB) and TP/PP size (``server_args.py``); the KV pool is
  ``free_at_start x fraction - weights`` (``model_runner*.py profile_max_num_token``). A pool <= 0 stops
  the server ("Not enough memory. Please try to increase --mem-fraction-static"); a pool smaller than the
  context length does NOT: ``tp_worker.py`` clamps ``max_req_len = min(context_len - 1, pool - 1)``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from modelcheck.record import record

MIB = 1 << 20
GIB = 1 << 30

READ_RELEASES: tuple[tuple[int, ...], ...] = ((0, 4, 6), (0, 4, 9), (0, 5, 2), (0, 5, 4), (0, 5, 6), (0, 5, 8))
# setup.py / pyproject of each wheel (Requires-Dist: transformers==X)
TRANSFORMERS_PIN = {(0, 4, 6): "4.51.1", (0, 4, 9): "4.53.0", (0, 5, 2): "4.56.1", (0, 5, 4): "4.57.1",
                    (0, 5, 6): "4.57.1", (0, 5, 8): "4.57.1"}

# Fixes spell settings with the engine's own flags: checker/catalog/engine_args.yaml (engine_args.spelling).
# srt/environ.py / model_config.py _derive_context_length
ALLOW_LONGER_CONTEXT_ENV = "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"
CONTEXT_LENGTH_KEYS = ("max_sequence_length", "seq_length", "max_seq_len", "model_max_length", "max_position_embeddings")


# -- data read from the releases (see the module docstring for how) ---------------------------------------
# Generated with ast from srt/models/*.py (EntryClass names, aliases resolved) of each release read:
# (release, architectures added, architectures removed).
_ARCH_CHANGES: tuple[tuple[tuple[int, ...], str, str], ...] = (
    ((0, 4, 6), """
        BaichuanForCausalLM BertModel CLIPModel ChatGLMModel Cohere2ForCausalLM CohereForCausalLM Contriever
        DbrxForCausalLM DeepseekForCausalLM DeepseekV2ForCausalLM DeepseekV3ForCausalLM
        DeepseekV3ForCausalLMNextN DeepseekVL2ForCausalLM ExaoneForCausalLM GPT2LMHeadModel
        GPTBigCodeForCausalLM Gemma2ForCausalLM Gemma2ForSequenceClassification Gemma3ForCausalLM
        Gemma3ForConditionalGeneration GemmaForCausalLM GraniteForCausalLM Grok1ForCausalLM
        Grok1ModelForCausalLM InternLM2ForCausalLM InternLM2ForRewardModel InternLM3ForCausalLM
        InternVLChatModel KimiVLForConditionalGeneration Llama4ForCausalLM Llama4ForConditionalGeneration
        LlamaEmbeddingModel LlamaForCausalLM LlamaForCausalLMEagle LlamaForCausalLMEagle3
        LlamaForClassification LlamaForSequenceClassification LlamaForSequenceClassificationWithNormal_Weights
        LlavaForConditionalGeneration LlavaLlamaForCausalLM LlavaMistralForCausalLM LlavaQwenForCausalLM
        LlavaVidForCausalLM MiMoForCausalLM MiMoMTP MiniCPM3ForCausalLM MiniCPMForCausalLM MiniCPMO MiniCPMV
        Mistral3ForConditionalGeneration MistralForCausalLM MistralModel MixtralForCausalLM
        MllamaForConditionalGeneration MultiModalityCausalLM Olmo2ForCausalLM OlmoForCausalLM OlmoeForCausalLM
        Phi3ForCausalLM Phi3SmallForCausalLM PixtralVisionModel QWenLMHeadModel QuantMixtralForCausalLM
        Qwen2ForCausalLM Qwen2ForCausalLMEagle Qwen2ForRewardModel Qwen2ForSequenceClassification
        Qwen2MoeForCausalLM Qwen2VLForConditionalGeneration Qwen2_5_VLForConditionalGeneration
        Qwen3ForCausalLM Qwen3MoeForCausalLM StableLmForCausalLM TorchNativeLlamaForCausalLM
        TorchNativePhi3ForCausalLM XLMRobertaModel XverseForCausalLM XverseMoeForCausalLM YiVLForCausalLM
    """, ""),
    ((0, 4, 9), """
        BertForSequenceClassification Gemma3nForCausalLM Gemma3nForConditionalGeneration Glm4ForCausalLM
        HunYuanMoEV1ForCausalLM Phi4MMForCausalLM Qwen2AudioForConditionalGeneration TransformersForCausalLM
        VILAForConditionalGeneration XLMRobertaForSequenceClassification
    """, ""),
    ((0, 5, 2), """
        ArceeForCausalLM BailingMoeForCausalLM DeciLMForCausalLM Ernie4_5_ForCausalLM Ernie4_5_MoeForCausalLM
        Ernie4_5_MoeForCausalLMMTP Glm4MoeForCausalLM Glm4MoeForCausalLMNextN Glm4vForConditionalGeneration
        Glm4vMoeForConditionalGeneration GptOssForCausalLM GraniteMoeForCausalLM HunYuanDenseV1ForCausalLM
        InternS1ForConditionalGeneration LongcatFlashForCausalLM LongcatFlashForCausalLMNextN OPTForCausalLM
        PersimmonForCausalLM PhiForCausalLM PhiMoEForCausalLM Qwen3ForSequenceClassification
        Qwen3NextForCausalLM Qwen3NextForCausalLMMTP Step3VLForConditionalGeneration
    """, ""),
    ((0, 5, 4), """
        ApertusForCausalLM BailingMoEForCausalLM BailingMoeForCausalLMNextN BailingMoeV2ForCausalLM
        DeepseekOCRForCausalLM DeepseekV32ForCausalLM DotsOCRForCausalLM DotsVLMForCausalLM
        FalconH1ForCausalLM NemotronHForCausalLM POINTSV15ChatModel Qwen3OmniMoeForConditionalGeneration
        Qwen3VLForConditionalGeneration Qwen3VLMoeForConditionalGeneration Sarashina2VisionForCausalLM
        SolarForCausalLM Starcoder2ForCausalLM
    """, ""),
    ((0, 5, 6), """
        JetNemotronForCausalLM JetVLMForConditionalGeneration KimiLinearForCausalLM LLaDA2MoeModelLM
        MindSporeForCausalLM MiniMaxM2ForCausalLM NVILAForConditionalGeneration
        NVILALiteForConditionalGeneration NemotronH_Nano_VL_V2 OrionForCausalLM TeleFLMForCausalLM
    """, "VILAForConditionalGeneration"),
    ((0, 5, 8), """
        AfmoeForCausalLM Glm4MoeLiteForCausalLM GlmAsrForConditionalGeneration IQuestCoderForCausalLM
        IQuestLoopCoderForCausalLM MiDashengLMModel MiMoV2FlashForCausalLM MiMoV2MTP Ministral3ForCausalLM
        MistralLarge3ForCausalLM MistralLarge3ForCausalLMEagle NemotronHForCausalLMMTP
        PaddleOCRVLForConditionalGeneration PixtralForConditionalGeneration
    """, ""),
)
# srt/hf_transformers_utils.py _CONFIG_REGISTRY model_types, by the release that added them
_CONFIG_CHANGES: tuple[tuple[tuple[int, ...], str], ...] = (
    ((0, 4, 6), "chatglm dbrx deepseek_vl_v2 exaone internvl_chat kimi_vl multi_modality"),
    ((0, 4, 9), ""),
    ((0, 5, 2), "longcat_flash qwen3_next step3_vl"),
    ((0, 5, 4), "deepseek-ocr dots_ocr dots_vlm falcon_h1 nemotron_h olmo3"),
    ((0, 5, 6), "NemotronH_Nano_VL_V2 jet_nemotron jet_vlm kimi_linear"),
    ((0, 5, 8), "afmoe"),
)
# transformers models/auto/configuration_auto.py CONFIG_MAPPING_NAMES keys, by the pinned release adding them
_TRANSFORMERS_CONFIGS: tuple[tuple[str, str], ...] = (
    ("4.51.1", """
        albert align altclip aria aria_text audio-spectrogram-transformer autoformer aya_vision bamba bark
        bart beit bert bert-generation big_bird bigbird_pegasus biogpt bit blenderbot blenderbot-small blip
        blip-2 bloom bridgetower bros camembert canine chameleon chinese_clip chinese_clip_vision_model clap
        clip clip_text_model clip_vision_model clipseg clvp code_llama codegen cohere cohere2 colpali
        conditional_detr convbert convnext convnextv2 cpmant ctrl cvt dab-detr dac data2vec-audio
        data2vec-text data2vec-vision dbrx deberta deberta-v2 decision_transformer deepseek_v3 deformable_detr
        deit depth_anything depth_pro deta detr diffllama dinat dinov2 dinov2_with_registers distilbert
        donut-swin dpr dpt efficientformer efficientnet electra emu3 encodec encoder-decoder ernie ernie_m esm
        falcon falcon_mamba fastspeech2_conformer flaubert flava fnet focalnet fsmt funnel fuyu gemma gemma2
        gemma3 gemma3_text git glm glpn got_ocr2 gpt-sw3 gpt2 gpt_bigcode gpt_neo gpt_neox gpt_neox_japanese
        gptj gptsan-japanese granite granitemoe granitemoeshared granitevision graphormer grounding-dino
        groupvit helium hiera hubert ibert idefics idefics2 idefics3 idefics3_vision ijepa imagegpt informer
        instructblip instructblipvideo jamba jetmoe jukebox kosmos-2 layoutlm layoutlmv2 layoutlmv3 led levit
        lilt llama llama4 llama4_text llava llava_next llava_next_video llava_onevision longformer longt5 luke
        lxmert m2m_100 mamba mamba2 marian markuplm mask2former maskformer maskformer-swin mbart mctct mega
        megatron-bert mgp-str mimi mistral mistral3 mixtral mllama mobilebert mobilenet_v1 mobilenet_v2
        mobilevit mobilevitv2 modernbert moonshine moshi mpnet mpt mra mt5 musicgen musicgen_melody mvp nat
        nemotron nezha nllb-moe nougat nystromformer olmo olmo2 olmoe omdet-turbo oneformer open-llama
        openai-gpt opt owlv2 owlvit paligemma patchtsmixer patchtst pegasus pegasus_x perceiver persimmon phi
        phi3 phi4_multimodal phimoe pix2struct pixtral plbart poolformer pop2piano prompt_depth_anything
        prophetnet pvt pvt_v2 qdqbert qwen2 qwen2_5_vl qwen2_audio qwen2_audio_encoder qwen2_moe qwen2_vl
        qwen3 qwen3_moe rag realm recurrent_gemma reformer regnet rembert resnet retribert roberta
        roberta-prelayernorm roc_bert roformer rt_detr rt_detr_resnet rt_detr_v2 rwkv sam sam_vision_model
        seamless_m4t seamless_m4t_v2 segformer seggpt sew sew-d shieldgemma2 siglip siglip2
        siglip_vision_model smolvlm smolvlm_vision speech-encoder-decoder speech_to_text speech_to_text_2
        speecht5 splinter squeezebert stablelm starcoder2 superglue superpoint swiftformer swin swin2sr swinv2
        switch_transformers t5 table-transformer tapas textnet time_series_transformer timesformer
        timm_backbone timm_wrapper trajectory_transformer transfo-xl trocr tvlt tvp udop umt5 unispeech
        unispeech-sat univnet upernet van video_llava videomae vilt vipllava vision-encoder-decoder
        vision-text-dual-encoder visual_bert vit vit_hybrid vit_mae vit_msn vitdet vitmatte vitpose
        vitpose_backbone vits vivit wav2vec2 wav2vec2-bert wav2vec2-conformer wavlm whisper xclip xglm xlm
        xlm-prophetnet xlm-roberta xlm-roberta-xl xlnet xmod yolos yoso zamba zamba2 zoedepth
    """),
    ("4.53.0", """
        arcee bitnet blip_2_qformer colqwen2 csm d_fine dia dots1 falcon_h1 gemma3n gemma3n_audio gemma3n_text
        gemma3n_vision glm4 glm4v glm4v_text granite_speech granitemoehybrid hgnet_v2 internvl internvl_vision
        janus kyutai_speech_to_text lightglue minimax mlcd qwen2_5_omni qwen2_5_vl_text qwen2_vl_text sam_hq
        sam_hq_vision_model smollm3 t5gemma timesfm vjepa2
    """),
    ("4.56.1", """
        aimv2 aimv2_vision_model apertus cohere2_vision deepseek_v2 deepseek_vl deepseek_vl_hybrid
        dinov3_convnext dinov3_vit doge efficientloftr eomt ernie4_5 ernie4_5_moe evolla exaone4
        fastspeech2_conformer_with_hifigan florence2 glm4_moe glm4v_moe glm4v_moe_text gpt_oss
        hunyuan_v1_dense hunyuan_v1_moe kosmos-2.5 lfm2 metaclip_2 mm-grounding-dino modernbert-decoder ovis2
        perception_encoder perception_lm sam2 sam2_hiera_det_model sam2_video sam2_vision_model seed_oss
        voxtral voxtral_encoder xcodec xlstm
    """),
    ("4.57.1", """
        blt edgetam edgetam_video edgetam_vision_model flex_olmo lfm2_vl longcat_flash ministral olmo3
        parakeet_ctc parakeet_encoder qwen3_next qwen3_omni_moe qwen3_vl qwen3_vl_moe qwen3_vl_moe_text
        qwen3_vl_text siglip2_vision_model vaultgemma
    """),
)
# transformers@4.57.1 configuration_*.py __init__ defaults of the first context-length key (model_type=N)
_TRANSFORMERS_LEN_DEFAULTS = """
    EvollaModel=8192 Glm4vMoe_text=65536 aimv2_text_model=77 albert=512 align_text_model=512
    altclip_text_model=514 apertus=65536 arcee=4096 aria_text=2048 bamba=262144 bart=1024 bert-generation=512
    bert=512 big_bird=4096 bigbird_pegasus=4096 biogpt=1024 bitnet=2048 blenderbot-small=512 blenderbot=128
    blip_2_qformer=512 blip_text_model=512 blt=4096 blt_global_transformer=4096 blt_local_decoder=24576
    blt_local_encoder=24576 blt_patcher=8192 bridgetower_text_model=514 bros=512 camembert=512 canine=16384
    chameleon=4096 chinese_clip_text_model=512 clap_text_model=514 clip_text_model=77 clipseg_text_model=77
    clvp_decoder=608 cohere2=8192 cohere=8192 convbert=512 csm=2048 csm_depth_decoder_model=33
    data2vec-text=512 dbrx=2048 deberta-v2=512 deberta=512 deepseek_v2=2048 deepseek_v3=4096
    deformable_detr=1024 dia_decoder=3072 dia_encoder=1024 diffllama=2048 distilbert=512 doge=2048 dots1=2048
    dpr=512 electra=512 emu3_text_model=9216 ernie4_5=131072 ernie4_5_moe=131072 ernie=512 esm=1026
    exaone4=2048 falcon=2048 falcon_h1=8192 flaubert=512 flava_text_model=512 flex_olmo=4096
    florence_vision=50 fnet=512 fsmt=1024 fuyu=16384 gemma2=8192 gemma3_text=131072 gemma3n_text=32768
    gemma=8192 git=1024 glm4=131072 glm4_moe=131072 glm4v_text=32768 glm=131072 gpt_neo=2048 gpt_neox=2048
    gpt_neox_japanese=2048 gpt_oss=131072 granite=2048 granitemoe=2048 granitemoehybrid=2048
    granitemoeshared=2048 groupvit_text_model=77 helium=4096 hunyuan_v1_dense=2048 hunyuan_v1_moe=2048
    ibert=512 instructblip_qformer=512 instructblipvideo_qformer=512 jamba=262144 jetmoe=4096
    kosmos_2_5_text_model=4096 kosmos_2_text_model=2048 kyutai_speech_to_text=750 layoutlm=512 layoutlmv2=512
    layoutlmv3=512 lfm2=128000 lilt=512 llama=2048 longcat_flash=131072 longformer=512 luke=512 lxmert=512
    m2m_100=1024 marian=1024 markuplm=512 mbart=1024 megatron-bert=512 metaclip_2_text_model=77 mimi=8000
    mllama_text_model=131072 mobilebert=512 modernbert-decoder=8192 modernbert=8192 moonshine=512 moshi=3000
    moshi_depth=9 mpnet=512 mpt=2048 mra=512 musicgen_decoder=2048 musicgen_melody_decoder=2048 mvp=1024
    nemotron=4096 nllb-moe=1024 nystromformer=510 olmo2=2048 olmo3=2048 olmo=2048 olmoe=4096 opt=2048
    owlv2_text_model=16 owlvit_text_model=16 parakeet_encoder=5000 pegasus=1024 pegasus_x=16384 perceiver=2048
    persimmon=16384 phi3=4096 phi4_multimodal=131072 phi=2048 plbart=1024 prophetnet=512 qwen2=32768
    qwen2_5_omni_dit=32768 qwen2_5_omni_talker=32768 qwen2_5_omni_text=32768 qwen2_5_vl_text=32768
    qwen2_moe=32768 qwen2_vl_text=32768 qwen3=32768 qwen3_moe=32768 qwen3_next=32768
    qwen3_omni_moe_talker_code_predictor=32768 qwen3_omni_moe_talker_text=32768 qwen3_omni_moe_text=32768
    qwen3_vl_moe_text=128000 qwen3_vl_text=128000 reformer=4096 rembert=512 roberta-prelayernorm=512
    roberta=512 roc_bert=512 roformer=1536 seamless_m4t=1024 seamless_m4t_v2=4096 seed_oss=524288 sew-d=512
    siglip2_text_model=64 siglip_text_model=64 smollm3=32768 splinter=512 squeezebert=512 stablelm=4096
    starcoder2=4096 t5_gemma_module=8192 tapas=1024 trocr=512 tvp=512 vaultgemma=8192 vilt=40 visual_bert=512
    xclip_text_model=77 xglm=2048 xlm-roberta-xl=514 xlm-roberta=512 xlm=512 xmod=512 yoso=4096 zamba2=4096
    zamba=4096
"""


def _words(s: str) -> set[str]:
    return set(s.split())


@record
class Read:
    """Which release read answers for ``version``: exact, the nearest below, or the newest (unknown version)."""

    release: tuple[int, ...]
    exact: bool
    note: str | None


def fmt(v: tuple[int, ...] | None) -> str:
    return ".".join(map(str, v)) if v else "?"


def release_read(version: tuple[int, ...] | None) -> Read:
    if not version:
        return Read(READ_RELEASES[-1], False, f"SGLang version unknown: the newest release read ({fmt(READ_RELEASES[-1])}) is assumed")
    v = tuple(version[:3])
    if v in READ_RELEASES:
        return Read(v, True, None)
    below = [r for r in READ_RELEASES if r <= v]
    if not below:
        return Read(READ_RELEASES[0], False, f"SGLang {fmt(v)} is older than any release read; "
                    f"{fmt(READ_RELEASES[0])}'s behaviour is assumed")
    r = below[-1]
    if r == READ_RELEASES[-1]:
        return Read(r, False, f"SGLang {fmt(v)} is newer than the releases read; {fmt(r)}'s behaviour is assumed")
    return Read(r, False, f"SGLang {fmt(v)} was not read; {fmt(r)}'s behaviour (the nearest release read below) is assumed")


@lru_cache(maxsize=16)
def native_architectures(version: tuple[int, ...] | None) -> frozenset[str]:
    """The architectures SGLang's ModelRegistry holds in ``version`` (nearest release read)."""
    r = release_read(version).release
    out: set[str] = set()
    for rel, added, removed in _ARCH_CHANGES:
        if rel > r:
            break
        out |= _words(added)
        out -= _words(removed)
    return frozenset(out)


@record
class ArchSupport:
    status: str  # "native" | "transformers-fallback" | "unsupported"
    release: tuple[int, ...]
    note: str | None  # version caveat, if any


def arch_support(arch: str, version: tuple[int, ...] | None) -> ArchSupport:
    read = release_read(version)
    if arch in native_architectures(version):
        return ArchSupport("native", read.release, read.note)
    # model_loader/utils.py (>= 0.4.9): not native -> TransformersForCausalLM, when transformers' class (or the
    # repo's AutoModel) is backend-compatible
    status = "transformers-fallback" if "TransformersForCausalLM" in native_architectures(version) else "unsupported"
    return ArchSupport(status, read.release, read.note)


@lru_cache(maxsize=8)
def _transformers_model_types(pin: str) -> frozenset[str]:
    out: set[str] = set()
    for ver, added in _TRANSFORMERS_CONFIGS:
        out |= _words(added)
        if ver == pin:
            break
    return frozenset(out)


def config_class_builtin(model_type: str | None, version: tuple[int, ...] | None) -> bool:
    """Whether ``AutoConfig`` resolves ``model_type`` without the repo's code in this SGLang release:
    transformers' CONFIG_MAPPING of the pinned release, plus SGLang's ``_CONFIG_REGISTRY``."""
    if not model_type:
        return False
    r = release_read(version).release
    if model_type in _transformers_model_types(TRANSFORMERS_PIN[r]):
        return True
    return any(model_type in _words(added) for rel, added in _CONFIG_CHANGES if rel <= r)


@record
class RemoteCode:
    needed: bool
    config_needs: bool  # AutoConfig must come from the repo
    model_needs: bool  # no native class: the Transformers backend imports the repo's AutoModel code
    architecture: str | None
    reason: str
    note: str | None


def remote_code(config: dict[str, Any] | None, version: tuple[int, ...] | None) -> RemoteCode:
    """Does SGLang need ``--trust-remote-code`` for this config.json (tokenizer code aside)?"""
    cfg = config if isinstance(config, dict) else {}
    am = cfg.get("auto_map") if isinstance(cfg.get("auto_map"), dict) else {}
    archs = [a for a in (cfg.get("architectures") or []) if isinstance(a, str)]
    arch = archs[0] if archs else None
    read = release_read(version)
    mt = cfg.get("model_type") if isinstance(cfg.get("model_type"), str) else None
    config_needs = "AutoConfig" in am and not config_class_builtin(mt, version)
    native = any(arch_support(a, version).status == "native" for a in archs)
    model_needs = bool(am) and not native and any(k.startswith("AutoModel") for k in am)
    rel = fmt(read.release)
    if config_needs:
        reason = (f"model_type {mt!r} is known neither to transformers {TRANSFORMERS_PIN[read.release]} nor to "
                  f"SGLang {rel}'s config registry: the repo's AutoConfig code must run")
    elif model_needs:
        reason = f"{arch} has no SGLang {rel} implementation: the repo's AutoModel code must run"
    elif native and am:
        reason = f"{arch} is implemented natively in SGLang {rel} (srt/models): the repo's auto_map code is not used"
    else:
        reason = "no auto_map"
    return RemoteCode(config_needs or model_needs, config_needs, model_needs, arch, reason, read.note)


# -- context length ---------------------------------------------------------------------------------------


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """hf_transformers_utils.get_hf_text_config: Llava*ForCausalLM keeps the top level; else text_config,
    llm_config, language_config, thinker_config.text_config."""
    archs = config.get("architectures") or []
    if archs and isinstance(archs[0], str) and archs[0].startswith("Llava") and archs[0].endswith("ForCausalLM"):
        return config
    for key in ("text_config", "llm_config", "language_config"):
        sub = config.get(key)
        if isinstance(sub, dict):
            return sub
    thinker = config.get("thinker_config")
    if isinstance(thinker, dict):
        sub = thinker.get("text_config")
        return sub if isinstance(sub, dict) else thinker
    return config


@lru_cache(maxsize=1)
def _len_defaults() -> dict[str, int]:
    out = {}
    for item in _TRANSFORMERS_LEN_DEFAULTS.split():
        k, _, v = item.partition("=")
        out[k] = int(v)
    return out


def _num(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@record
class ContextLength:
    value: int  # what SGLang uses (the user's --context-length when it is accepted)
    derived: int  # get_context_length(hf_text_config)
    key: str | None  # config key it came from (None: the 2048 fallback)
    factor: float
    from_class_default: bool
    error: str | None  # --context-length above the derived length without the env override
    notes: tuple[str, ...]


def context_length(config: dict[str, Any] | None, version: tuple[int, ...] | None = None,
                   requested: int | None = None, allow_longer: bool = False) -> ContextLength | None:
    """SGLang's ``model_config.context_len``. None when there is no config.json dict."""
    if not isinstance(config, dict):
        return None
    text = _text_config(config)
    notes: list[str] = []
    rs = text.get("rope_scaling")
    factor = 1.0
    if isinstance(rs, dict) and rs:
        f = _num(rs.get("factor"))
        factor = float(f) if f is not None else 1.0
        # transformers copies a legacy "type" into "rope_type" (LlamaConfig & co.)
        if "original_max_position_embeddings" in rs or (rs.get("rope_type") or rs.get("type")) == "llama3":
            factor = 1.0
    key = None
    base = None
    from_default = False
    for k in CONTEXT_LENGTH_KEYS:
        v = _num(text.get(k))
        if v is not None:
            key, base = k, v
            break
    if base is None:
        mt = text.get("model_type") if isinstance(text.get("model_type"), str) else None
        d = _len_defaults().get(mt or "")
        if d is not None:
            key, base, from_default = "max_position_embeddings", d, True
            notes.append(f"config.json has no context-length key: transformers' {mt} config class defaults "
                         f"max_position_embeddings to {d}")
    if base is None:
        derived = 2048
        notes.append("config.json has no context-length key SGLang reads: it falls back to 2048")
    else:
        derived = int(factor * base)
        if factor != 1.0:
            notes.append(f"{key} {int(base)} x rope_scaling factor {factor:g} = {derived}")
    value, error = derived, None
    if requested:
        if requested > derived and not allow_longer:
            error = (f"--context-length {requested} is greater than the derived context_length ({derived}): SGLang "
                     f"stops unless {ALLOW_LONGER_CONTEXT_ENV}=1")
        value = int(requested)
    return ContextLength(value, derived, key, factor, from_default, error, tuple(notes))


def max_req_len(context_len: int, pool_tokens: int) -> int:
    """tp_worker.py: the longest request SGLang accepts, min(context_len - 1, pool - 1)."""
    return min(context_len - 1, pool_tokens - 1)


# -- memory -----------------------------------------------------------------------------------------------


@record
class MemFraction:
    value: float
    reserved_mib: float | None
    release: tuple[int, ...]
    note: str


def _vlm_factor(vision_config: dict[str, Any] | None) -> float | None:
    """server_args.py adjust_mem_fraction_for_vlm: 0.95 x a ViT-size factor clamped to [0.8, 1.05]."""
    if not isinstance(vision_config, dict):
        return None
    layers = _num(vision_config.get("num_hidden_layers")) or 24
    hidden = _num(vision_config.get("hidden_size")) or 1024
    ratio = layers * hidden**2 / (24 * 1024**2)
    return 0.95 * max(0.8, min(1.05, 1.0 - 0.1 * (ratio - 1.0)))


def chunked_prefill_default(gpu_mib: float, version: tuple[int, ...] | None) -> int:
    r = release_read(version).release
    if r >= (0, 5, 4):
        return 2048 if gpu_mib < 35 * 1024 else 4096 if gpu_mib < 60 * 1024 else 8192 if gpu_mib < 160 * 1024 else 16384
    return 2048 if gpu_mib < 25_000 else 8192


def _cuda_graph_max_bs(gpu_mib: float, tp: int, r: tuple[int, ...]) -> int:
    # server_args.py _handle_gpu_memory_settings (0.5.4: 16 below 35 GB at TP < 4; 0.5.6+: 24)
    if gpu_mib < 20 * 1024:
        return 8
    if gpu_mib < 35 * 1024:
        return (16 if r < (0, 5, 6) else 24) if tp < 4 else 80
    if gpu_mib < 60 * 1024:
        return 32 if tp < 4 else 160
    if gpu_mib < 160 * 1024:
        return 256 if tp < 4 else 512
    return 512


def mem_fraction_static(gpu_bytes: int, version: tuple[int, ...] | None, tp: int = 1, pp: int = 1,
                        chunked_prefill_size: int | None = None, vision_config: dict[str, Any] | None = None,
                        multimodal: bool = False) -> MemFraction:
    """The default ``--mem-fraction-static`` SGLang picks for one GPU of ``gpu_bytes`` (server_args.py)."""
    read = release_read(version)
    r = read.release
    gpu = gpu_bytes / MIB
    par = tp * pp
    reserved: float | None
    if r >= (0, 5, 4):
        # server_args.py@0.5.4-0.5.8: 512 + activations (1.5 MiB per chunked-prefill token) + CUDA graphs
        # (2 MiB per batch size) + TP*PP/8 GiB; at least 10 GiB above 60 GB
        chunk = chunked_prefill_size if chunked_prefill_size is not None else chunked_prefill_default(gpu, version)
        reserved = 512 + (max(chunk, 2048) if chunk > 0 else 2048) * 1.5 + _cuda_graph_max_bs(gpu, tp, r) * 2 + par / 8 * 1024
        if gpu > 60 * 1024:
            reserved = max(reserved, 10 * 1024)
        value = round((gpu - reserved) / gpu, 3)
        how = f"reserves {reserved:.0f} MiB for activations and CUDA graphs"
    elif r >= (0, 4, 9):
        # server_args.py@0.4.9/0.5.2: reserved memory by GPU size bucket
        if gpu < 35 * 1024:
            reserved = (2.8 + par / 10) * 1024
        elif gpu < 90 * 1024:
            reserved = (9.5 + par / 2) * 1024
        elif gpu < 160 * 1024:
            reserved = (12 + par / 2) * 1024
        else:
            reserved = 32 * 1024
        value = round((gpu - reserved) / gpu, 3)
        how = f"reserves {reserved:.0f} MiB by GPU size"
    else:
        # server_args.py@0.4.6: by TP x PP up to 80 GB, lifted above 96 GB
        reserved = None
        value = 0.88
        if gpu <= 81920:
            value = 0.79 if par >= 16 else 0.81 if par >= 8 else 0.85 if par >= 4 else 0.87 if par >= 2 else 0.88
        if gpu > 96 * 1024:
            value = min(value + 48 * 1024 * (1 - value) / gpu, (gpu - 1024 * 18) / gpu)
        how = f"by TP x PP = {par}"
    if multimodal and r >= (0, 4, 9):
        f = _vlm_factor(vision_config)
        if f is not None:
            value = value * f
            how += f", x {f:.3f} for the vision tower"
    note = f"--mem-fraction-static defaults to {value:.3f} on a {gpu / 1024:.1f} GiB GPU in SGLang {fmt(r)} ({how})"
    if read.note:
        note += f"; {read.note}"
    return MemFraction(value, reserved, r, note)


# server_args / model_config: hybrid SWA pools (full + sliding) for these architectures only (0.5.8);
# every other model (Gemma 2/3, Mistral) gets a full-attention KV pool on every layer
HYBRID_SWA_ARCHS = frozenset({"Llama4ForConditionalGeneration", "GptOssForCausalLM", "MiMoV2FlashForCausalLM"})
SWA_FULL_TOKENS_RATIO = 0.8


def pool_tokens(kv_bytes: int, bytes_per_token_all_layers: int, num_layers: int, swa_layers: int = 0) -> int:
    """model_runner_kv_cache_mixin.py: tokens of the (full-attention) pool. With a hybrid SWA pool the same
    bytes are split so that swa tokens = 0.8 x full tokens (set_num_tokens_hybrid_swa)."""
    if kv_bytes <= 0 or bytes_per_token_all_layers <= 0:
        return 0
    tokens = kv_bytes // bytes_per_token_all_layers
    if swa_layers and num_layers:
        full = num_layers - swa_layers
        tokens = int(tokens * num_layers / (SWA_FULL_TOKENS_RATIO * swa_layers + full))
    return int(tokens)


def model_dtype_bytes(config: dict[str, Any] | None, dtype: str | None = None) -> int:
    """model_config.py _get_and_verify_dtype: --dtype auto keeps the config dtype, float32 (or none) -> 16-bit."""
    d = str(dtype or "auto").lower()
    if d in ("float32", "float", "fp32"):
        return 4
    return 2
