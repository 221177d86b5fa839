"""Which tokenizer a folder's tokenizer_config.json makes transformers load, and whether that is repo code.

transformers' ``AutoTokenizer`` (models/auto/tokenization_auto.py@5.19.0, the same test in 4.4x) uses the
repo's ``auto_map["AutoTokenizer"]`` class only when ``tokenizer_class`` is not one of its own
("has_local_code"): with ``trust_remote_code=False`` -- what vLLM and SGLang pass unless the flag is set --
``resolve_trust_remote_code`` then picks the local class and no repo code runs. An ``auto_map`` without an
``AutoTokenizer`` entry (e.g. only ``AutoProcessor``) never makes the tokenizer remote code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Base names ("Fast" suffix removed) in TOKENIZER_MAPPING_NAMES of transformers 5.19.0, plus the generic
# and 4.x classes still named by tokenizer_config.json files on the Hub (PreTrainedTokenizerFast, ...).
TRANSFORMERS_TOKENIZER_CLASSES = frozenset(
    (
        "AlbertTokenizer",
        "BartTokenizer",
        "BarthezTokenizer",
        "BartphoTokenizer",
        "BertGenerationTokenizer",
        "BertJapaneseTokenizer",
        "BertTokenizer",
        "BertweetTokenizer",
        "BigBirdTokenizer",
        "BioGptTokenizer",
        "BlenderbotSmallTokenizer",
        "BlenderbotTokenizer",
        "BloomTokenizer",
        "ByT5Tokenizer",
        "CLIPTokenizer",
        "CTRLTokenizer",
        "CamembertTokenizer",
        "CanineTokenizer",
        "ClvpTokenizer",
        "CodeGenTokenizer",
        "CodeLlamaTokenizer",
        "CohereTokenizer",
        "ConvBertTokenizer",
        "CpmAntTokenizer",
        "CpmTokenizer",
        "DPRQuestionEncoderTokenizer",
        "DebertaTokenizer",
        "DebertaV2Tokenizer",
        "DiaTokenizer",
        "DistilBertTokenizer",
        "ElectraTokenizer",
        "EsmTokenizer",
        "EsmcTokenizer",
        "FNetTokenizer",
        "FSMTTokenizer",
        "FastSpeech2ConformerTokenizer",
        "FlaubertTokenizer",
        "FunnelTokenizer",
        "GPT2Tokenizer",
        "GPTNeoXJapaneseTokenizer",
        "GPTNeoXTokenizer",
        "GPTSw3Tokenizer",
        "GemmaTokenizer",
        "HerbertTokenizer",
        "LEDTokenizer",
        "LasrTokenizer",
        "LayoutLMTokenizer",
        "LayoutLMv2Tokenizer",
        "LayoutLMv3Tokenizer",
        "LayoutXLMTokenizer",
        "LlamaTokenizer",
        "LongformerTokenizer",
        "LukeTokenizer",
        "LxmertTokenizer",
        "M2M100Tokenizer",
        "MBart50Tokenizer",
        "MBartTokenizer",
        "MLukeTokenizer",
        "MPNetTokenizer",
        "MarianTokenizer",
        "MarkupLMTokenizer",
        "MgpstrTokenizer",
        "MistralCommonBackend",
        "MobileBertTokenizer",
        "MvpTokenizer",
        "MyT5Tokenizer",
        "NllbTokenizer",
        "NougatTokenizer",
        "OpenAIGPTTokenizer",
        "PLBartTokenizer",
        "ParakeetTokenizer",
        "PegasusTokenizer",
        "PerceiverTokenizer",
        "PhobertTokenizer",
        "PreTrainedTokenizer",
        "ProphetNetTokenizer",
        "PythonBackend",
        "Qwen2Tokenizer",
        "RagTokenizer",
        "ReformerTokenizer",
        "RemBertTokenizer",
        "RetriBertTokenizer",
        "RoCBertTokenizer",
        "RoFormerTokenizer",
        "RobertaTokenizer",
        "SeamlessM4TTokenizer",
        "Siglip2Tokenizer",
        "SiglipTokenizer",
        "Speech2TextTokenizer",
        "SpeechT5Tokenizer",
        "SplinterTokenizer",
        "SqueezeBertTokenizer",
        "T5Tokenizer",
        "TapasTokenizer",
        "Tipsv2Tokenizer",
        "TokenizersBackend",
        "UdopTokenizer",
        "VideoPrismTokenizer",
        "VitsTokenizer",
        "Wav2Vec2CTCTokenizer",
        "Wav2Vec2PhonemeCTCTokenizer",
        "WhisperTokenizer",
        "XGLMTokenizer",
        "XLMRobertaTokenizer",
        "XLMTokenizer",
        "XLNetTokenizer",
    )
)


def is_transformers_tokenizer(name: object) -> bool:
    return isinstance(name, str) and name.removesuffix("Fast") in TRANSFORMERS_TOKENIZER_CLASSES


def tokenizer_auto_map(tok_cfg: Mapping[str, Any] | None) -> object:
    """The ``AutoTokenizer`` entry of tokenizer_config.json's auto_map (legacy list form included), or None."""
    if not isinstance(tok_cfg, Mapping):
        return None
    am = tok_cfg.get("auto_map")
    if isinstance(am, (list, tuple)):
        return list(am) or None
    if isinstance(am, Mapping):
        return am.get("AutoTokenizer") or None
    return None


def tokenizer_needs_remote_code(tok_cfg: Mapping[str, Any] | None) -> bool:
    """True when loading the tokenizer runs the repo's code: an AutoTokenizer auto_map whose
    ``tokenizer_class`` is not a transformers class."""
    if tokenizer_auto_map(tok_cfg) is None:
        return False
    return not is_transformers_tokenizer(tok_cfg.get("tokenizer_class"))  # type: ignore[union-attr]
