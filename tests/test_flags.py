"""Engine flag lists per release (checker/catalog/flags.py, engine_flags.yaml, tools/extract_engine_flags.py)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from modelcheck.catalog import flags as F

ROOT = Path(__file__).resolve().parents[1]


def _extractor():
    spec = importlib.util.spec_from_file_location("extract_engine_flags", ROOT / "tools" / "extract_engine_flags.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["extract_engine_flags"] = mod
    spec.loader.exec_module(mod)
    return mod


# -- the data -------------------------------------------------------------------------------------


def test_every_catalog_vllm_version_is_covered():
    from modelcheck.catalog import load

    rels = F.releases("vllm")
    fam = load().find_image_family("vllm")
    lo, hi = fam["version_range"]
    for v in [lo, hi, *fam["versions"]]:
        base = v.split("rc")[0]
        fr = F.flag_releases("vllm", v)
        assert base in rels or fr.releases[-1] == base or len(fr.releases) == 2, (v, fr)
    assert {"0.6.0", "0.9.1", "0.14.0", "0.32.0"} <= set(rels)
    assert F.releases("sglang") == ("0.4.6.post5", "0.5.2", "0.5.8")


@pytest.mark.parametrize(
    "version, present, absent",
    [
        # vllm/engine/arg_utils.py@0.6.3: --use-v2-block-manager exists; no --no-X forms yet
        ("0.6.3", {"--use-v2-block-manager", "--max-model-len", "-tp", "-pp", "-q", "--enable-prefix-caching"},
         {"--no-enable-prefix-caching", "-dp", "--speculative-config"}),
        # 0.8.4: --speculative-config replaced --speculative-model; -dp arrived
        ("0.8.4", {"--speculative-config", "-dp", "--data-parallel-size"}, {"--speculative-model"}),
        # 0.14.0: dataclass-generated BooleanOptionalAction flags, -O, --optimization-level
        ("0.14.0", {"--no-enable-prefix-caching", "--enable-prefix-caching", "--gpu-memory-utilization",
                    "--max-model-len", "--optimization-level", "-cc", "--compilation-config", "--port",
                    "--host", "--served-model-name", "--api-key", "--config", "--headless"},
         {"--use-v2-block-manager", "--gpu-memory-utilisation"}),
    ],
)
def test_vllm_release_flags(version, present, absent):
    known = F.known_flags("vllm", version)
    assert present <= known, present - known
    assert not (absent & known), absent & known


def test_sglang_and_llama_server_flags():
    s = F.known_flags("sglang", "0.5.8")
    assert {"--model-path", "--tp-size", "--tensor-parallel-size", "--mem-fraction-static", "--port"} <= s
    ll = F.known_flags("llama.cpp", None)
    assert {"-m", "--model", "-ngl", "--n-gpu-layers", "-c", "--ctx-size", "--host", "--port", "--no-mmap"} <= ll
    # the newest snapshot dropped --no-mmap for a load-mode option: a version-less check accepts both
    assert "--no-mmap" not in F.known_flags("llama.cpp", "0.3.36")
    assert "--no-mmap" in F.known_flags("llama.cpp", "0.3.16")


# -- check_flag -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "engine, version, flag, ok, suggestion",
    [
        ("vllm", "0.14.0", "--max-model-lenn", False, "--max-model-len"),
        ("vllm", "0.14.0", "--gpu-memory-utilisation", False, "--gpu-memory-utilization"),
        ("vllm", "0.14.0", "enable_prefix_cachng", False, "--enable-prefix-caching"),
        ("vllm", "0.14.0", "--max_model_len=4096", True, None),  # FlexibleArgumentParser: _ -> -
        ("vllm", "0.14.0", "enable_prefix_caching", True, None),
        ("vllm", "0.14.0", "-tp", True, None),
        ("vllm", "0.14.0", "--no-enable-prefix-caching", True, None),
        ("vllm", "0.6.3", "--no-enable-prefix-caching", False, "--enable-prefix-caching"),
        ("vllm", "0.14.0", "--compilation-config.level", True, None),
        ("vllm", "0.14.0", "--compilaton-config.level", False, "--compilation-config.level"),
        ("vllm", "0.14.0", "-O3", True, None),
        ("vllm", "0.14.0", "--max-model", True, "--max-model-len"),  # argparse allow_abbrev
        ("sglang", "0.5.8", "--tp_size", False, "--tp-size"),  # plain argparse: no underscore forms
        ("sglang", "0.5.8", "--mem-fraction-statc", False, "--mem-fraction-static"),
        ("llama.cpp", None, "--ctx-sise", False, "--ctx-size"),
        ("llama-server", None, "-ngl", True, None),
    ],
)
def test_check_flag(engine, version, flag, ok, suggestion):
    assert F.check_flag(engine, version, flag) == (ok, suggestion)


def test_canonical_flag():
    assert F.canonical_flag("vllm", "0.14.0", "--max_model_len") == "--max-model-len"
    assert F.canonical_flag("vllm", "0.14.0", "--max-model") == "--max-model-len"
    assert F.canonical_flag("vllm", "0.14.0", "--max-model-lenn") is None


def test_flag_releases_notes():
    assert F.flag_releases("vllm", "0.14.0") == ("vllm", ("0.14.0",), "")
    newest = F.releases("vllm")[-1]
    fr = F.flag_releases("vllm", "0.99.0")
    assert fr.releases == (newest,) and f"newer than {newest}" in fr.note
    assert F.flag_releases("vllm", None).note == f"no version named: checked against {newest}, the newest release known"
    fr = F.flag_releases("vllm", "0.13.0rc2")
    assert fr.releases == ("0.12.0", "0.13.0")
    fr = F.flag_releases("vllm", "0.22.0")  # between extracted 0.21.0 and 0.24.0: union
    assert fr.releases == ("0.21.0", "0.24.0")
    assert F.known_flags("vllm", "0.22.0") == F.known_flags("vllm", "0.21.0") | F.known_flags("vllm", "0.24.0")
    with pytest.raises(KeyError, match="no flag list for engine 'comfyui'"):
        F.known_flags("comfyui", None)


# -- the extractor --------------------------------------------------------------------------------


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text), encoding="utf-8")


def test_extractor_reads_literal_dataclass_and_loop_flags(tmp_path):
    """The shapes vLLM's sources use (arg_utils.py@0.14.0, entrypoints/openai/cli_args.py@0.14.0)."""
    ex = _extractor()
    _write(tmp_path, "vllm/config/cache.py", """
        from dataclasses import dataclass
        @dataclass
        class CacheConfig:
            enable_prefix_caching: bool | None = None
            gpu_memory_utilization: float = 0.9
            kv_cache_dtype: str = "auto"
            extra: "bool | str | None" = None
    """)
    _write(tmp_path, "vllm/engine/arg_utils.py", """
        import argparse
        def get_kwargs(cls): ...
        # the Optional-valued flag case: type_hints == {bool, str, type(None)}
        class EngineArgs:
            @staticmethod
            def add_cli_args(parser):
                cache_kwargs = get_kwargs(CacheConfig)
                g = parser.add_argument_group("cache")
                g.add_argument("--enable-prefix-caching", **cache_kwargs["enable_prefix_caching"])
                g.add_argument("--gpu-memory-utilization", **cache_kwargs["gpu_memory_utilization"])
                g.add_argument("--extra", **cache_kwargs["extra"])
                g.add_argument("--tensor-parallel-size", "-tp", type=int)
                g.add_argument("--disable-x", action=argparse.BooleanOptionalAction)
                return parser
    """)
    _write(tmp_path, "vllm/entrypoints/openai/cli_args.py", """
        from dataclasses import dataclass
        @dataclass
        class BaseFrontendArgs:
            host: str | None = None
            @classmethod
            def add_cli_args(cls, parser):
                frontend_kwargs = get_kwargs(cls)
                for key, value in frontend_kwargs.items():
                    parser.add_argument(f"--{key.replace('_', '-')}", **value)
        @dataclass
        class FrontendArgs(BaseFrontendArgs):
            port: int = 8000
            enable_auto_tool_choice: bool = False
        def make_arg_parser(parser):
            parser.add_argument("model_tag", nargs="?")
            FrontendArgs.add_cli_args(parser)
            return EngineArgs.add_cli_args(parser)
    """)
    assert ex.vllm_flags(tmp_path) == {
        "-h", "--help",
        "--enable-prefix-caching", "--no-enable-prefix-caching",
        "--gpu-memory-utilization", "--extra",
        "--tensor-parallel-size", "-tp",
        "--disable-x", "--no-disable-x",
        "--host", "--port", "--enable-auto-tool-choice", "--no-enable-auto-tool-choice",
    }


def test_extractor_reads_llama_server_options(tmp_path):
    """common/arg.cpp shapes (llama.cpp vendored in llama_cpp_python 0.3.16)."""
    ex = _extractor()
    src = tmp_path / "arg.cpp"
    src.write_text(textwrap.dedent(r'''
        add_opt(common_arg(
            {"-m", "--model"}, "FNAME",
            "model path (default: `models/$filename`)", // a comment with a quote '
            [](common_params & params, const std::string & value) { params.model.path = value; }
        ).set_env("LLAMA_ARG_MODEL"));
        add_opt(common_arg(
            {"--prompt-cache"}, "FNAME", "file to cache prompt state",
            [](common_params & params, const std::string & value) { params.path_prompt_cache = value; }
        ).set_examples({LLAMA_EXAMPLE_MAIN}));
        add_opt(common_arg(
            {"--host"}, "HOST", string_format("ip (default: %s)", "{x}"),
            [](common_params & params, const std::string & value) { if (value == "}") {} }
        ).set_examples({LLAMA_EXAMPLE_SERVER}));
        add_opt(common_arg(
            {"-cnv", "--conversation"}, "run in conversation mode",
            [](common_params & params) { params.conversation_mode = COMMON_CONVERSATION_MODE_ENABLED; }
        ).set_examples({LLAMA_EXAMPLE_MAIN, LLAMA_EXAMPLE_SERVER}).set_excludes({LLAMA_EXAMPLE_SERVER}));
        add_opt(common_arg(
            {"--mmap"}, {"--no-mmap"}, "memory-map model",
            [](common_params & params, bool value) { params.use_mmap = value; }
        ));
    '''), encoding="utf-8")
    assert ex.llama_server_flags(src) == {"-m", "--model", "--host", "--mmap", "--no-mmap"}


def test_extractor_compact_round_trip():
    ex = _extractor()
    per = {"0.1.0": {"--a", "--b"}, "0.2.0": {"--a", "--c"}, "0.10.0": {"--c"}}
    doc = ex.compact(per)
    assert doc == {
        "base_version": "0.1.0",
        "base": ["--a", "--b"],
        "releases": [
            {"version": "0.2.0", "added": ["--c"], "removed": ["--b"]},
            {"version": "0.10.0", "removed": ["--a"]},
        ],
    }


@pytest.mark.skipif(not Path("/work/src/vllm-0.14.0/vllm").is_dir(), reason="release sources not on this machine")
def test_yaml_matches_a_fresh_extraction_of_0_14_0():
    ex = _extractor()
    assert ex.vllm_flags(Path("/work/src/vllm-0.14.0")) == F.known_flags("vllm", "0.14.0")
