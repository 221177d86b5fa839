"""modelcheck.smoke runner, process and client without vLLM: a small OpenAI-compatible stand-in server
(stdlib http.server, launched through the launch template like any engine) and plain `sleep` commands
for the timeout and clean-up paths. The real vLLM runs are in test_smoke_e2e.py."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelcheck.errors import UsageError
from modelcheck.model import Estimate, FileEntry, PickleGlobal, PickleScan, Target
from modelcheck.rule import Finding, Severity
from modelcheck import smoke
from modelcheck.smoke import SmokeCase, SmokeOptions, options_from_cli, smoke_engine_args
from modelcheck.smoke.process import group_members
from modelcheck.testing import make_facts, make_target

GIB = 1024**3


def run_smoke(facts, target, *, estimate=None, options=None, findings=()):
    """The smoke stage as a check runs it: start the server, then the SMK rules judge what it saw."""
    from modelcheck.api import judge_smoke
    from modelcheck.rule import Context

    observed = smoke.run_smoke(facts, target, estimate=estimate, options=options, findings=findings)
    return judge_smoke(Context(facts=facts, target=target, estimate=estimate), observed)


def make_estimate(**kw) -> Estimate:
    """A prediction with plausible defaults (one 24 GiB GPU, 8B-ish weights); override the figures under test."""
    base = {
        "engine": "vllm",
        "weights_bytes": 15 * GIB,
        "weights_bytes_per_gpu": 15 * GIB,
        "total_vram_bytes": 24 * GIB,
        "gpu_memory_utilization": 0.9,
        "usable_bytes": int(21.6 * GIB),
        "activation_bytes": GIB,
        "non_torch_bytes": GIB // 2,
        "cuda_graph_bytes": GIB // 2,
        "kv_cache_bytes": 4 * GIB,
        "kv_cache_bytes_per_token": 131072,
        "kv_cache_tokens": 32768,
        "max_model_len": 4096,
        "max_concurrency": 8.0,
        "block_size": 16,
        "assumptions": (),
    }
    base.update(kw)
    return Estimate(**base)


FAKE_SERVER = textwrap.dedent(
    '''
    """Stand-in OpenAI server: answers every request with --answer, logs vLLM-shaped lines."""
    import argparse, json, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--answer", default="4")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--exit-with", default=None)
    ap.add_argument("--model"); ap.add_argument("--host"); ap.add_argument("--port", type=int)
    ap.add_argument("--served-model-name", default="m")
    args, rest = ap.parse_known_args()
    print("(APIServer pid=1) INFO 12-03 15:31:22 [api_utils.py:286] non-default args:", rest, flush=True)
    if args.exit_with:
        print(args.exit_with, flush=True)
        sys.exit(3)
    time.sleep(args.delay)
    print("(EngineCore pid=2) INFO 12-03 15:32:08 [kv_cache_utils.py:2327] GPU KV cache size: 40,000 tokens, "
          "Maximum concurrency for 4,096 tokens per request: 9.77x", flush=True)
    print("(Worker pid=3) INFO 12-03 15:32:08 [gpu_worker.py:760] Available KV cache memory: 2.0 GiB", flush=True)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass
        def do_GET(self):
            body = b"" if self.path == "/health" else json.dumps(
                {"data": [{"id": args.served_model_name}]}).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            chat = self.path.endswith("/chat/completions")
            with open(args.model + ".requests", "a") as f:
                f.write(json.dumps({"path": self.path, **req}) + "\\n")
            self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
            n = req["max_tokens"] if req.get("ignore_eos") else 1
            for i in range(n):
                piece = {"delta": {"content": args.answer}} if chat else {"text": args.answer}
                ev = {"choices": [{"index": 0, **piece, "finish_reason": "stop" if i == n - 1 else None}]}
                self.wfile.write(b"data: " + json.dumps(ev).encode() + b"\\n\\n"); self.wfile.flush()
                time.sleep(0.001)
            usage = {"choices": [], "usage": {"completion_tokens": n}}
            self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\\n\\ndata: [DONE]\\n\\n")

    ThreadingHTTPServer((args.host, args.port), H).serve_forever()
    '''
)


@pytest.fixture
def fake_server(tmp_path: Path) -> Path:
    p = tmp_path / "fake_server.py"
    p.write_text(FAKE_SERVER)
    return p


def _facts(tmp_path: Path, *, chat: bool = True, **kw):
    root = tmp_path / "model"
    root.mkdir(exist_ok=True)
    tok = {"chat_template": "{{ messages }}"} if chat else {}
    facts = make_facts(
        config={"architectures": ["LlamaForCausalLM"]}, json_files={"tokenizer_config.json": tok}, **kw
    )
    from modelcheck.record import replace

    return replace(facts, root=str(root), input_path=str(root))


def _opts(launch, **kw) -> SmokeOptions:
    kw.setdefault("timeout_s", 30)
    kw.setdefault("progress", False)
    return SmokeOptions(python=sys.executable, launch=tuple(launch), **kw)


def _codes(result) -> list[str]:
    return [f.rule for f in result.findings]


def test_answering_model_passes_and_reports_figures(tmp_path: Path, fake_server: Path) -> None:
    facts = _facts(tmp_path)
    est = make_estimate(kv_cache_tokens=40_000, kv_cache_bytes=2 * 1024**3, max_concurrency=9.7)
    result = run_smoke(
        facts,
        Target(None, None, "GPU"),
        estimate=est,
        options=_opts(["{python}", str(fake_server), "{args}"], log_path=str(tmp_path / "s.log")),
    )
    assert result.passed, result.findings
    assert result.findings == ()
    (case,) = result.answers
    assert (case.answer, case.endpoint, case.passed) == ("4", "/v1/chat/completions", True)
    assert result.metrics["kv_cache_tokens"] == 40_000 and result.metrics["max_concurrency"] == 9.77
    assert (
        result.metrics["load_s"] > 0 and result.metrics["ttft_s"] > 0 and result.metrics["tokens_per_s"] > 0
    )
    assert {c.name: c.disagrees for c in result.comparisons} == {
        "kv_cache_gib": False,
        "kv_cache_tokens": False,
        "max_concurrency": False,
    }
    assert result.log_path == str(tmp_path / "s.log")
    assert "non-default args" in Path(result.log_path).read_text()
    from modelcheck.formatters.text import smoke_text

    lines = smoke_text(result)
    assert lines[0] == "smoke: PASSED (vllm)" and "'What is 2+2?' -> '4'" in lines[1]
    # greedy decoding, the served name we gave, the test prompt
    requests = [
        eval_json(line) for line in Path(str(tmp_path / "model") + ".requests").read_text().splitlines()
    ]
    assert requests[0]["temperature"] == 0 and requests[0]["model"] == "modelcheck-smoke"
    assert requests[0]["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert requests[1]["ignore_eos"] is True and requests[1]["max_tokens"] == 32


def eval_json(text: str) -> dict:
    import json

    return json.loads(text)


def test_wrong_answer_fails_with_the_answer_shown(tmp_path: Path, fake_server: Path) -> None:
    facts = _facts(tmp_path, chat=False)  # no chat template: the completions endpoint
    est = make_estimate(kv_cache_tokens=400_000, kv_cache_bytes=2 * 1024**3, max_concurrency=97.0)
    result = run_smoke(
        facts,
        Target(None, None, "GPU"),
        estimate=est,
        options=_opts(
            ["{python}", str(fake_server), "--answer", "five", "{args}"],
            cases=(SmokeCase("What is 2+2?", r"\b4\b"), SmokeCase("Say five", "five")),
        ),
    )
    assert not result.passed
    assert [c.passed for c in result.answers] == [False, True]
    wrong = [f for f in result.findings if f.rule == "SMK001"]
    assert len(wrong) == 1 and wrong[0].severity == Severity.ERROR and wrong[0].name == "smoke-answer-wrong"
    assert wrong[0].message == (
        "asked 'What is 2+2?' through /v1/completions (greedy) and got 'five', which does not match /\\b4\\b/"
    )
    assert wrong[0].data["answer"] == "five"
    # the 10x gap between the predicted and the reported KV tokens is a warning naming both numbers
    gap = [f for f in result.findings if f.rule == "SMK012"]
    assert [f.data["figure"] for f in gap] == ["kv_cache_tokens", "max_concurrency"]
    assert (
        "vLLM reported kv_cache_tokens = 40,000 tokens, the static prediction was 400,000 tokens"
        in gap[0].message
    )
    assert gap[0].severity == Severity.WARNING


def test_server_that_exits_is_reported_with_its_error(tmp_path: Path, fake_server: Path) -> None:
    line = (
        "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
        "Your Tesla T4 GPU has compute capability 7.5. You can use float16 instead"
    )
    result = run_smoke(
        _facts(tmp_path),
        Target(None, None, "GPU"),
        options=_opts(["{python}", str(fake_server), "--exit-with", line, "{args}"]),
    )
    assert not result.passed and result.answers == ()
    assert _codes(result) == ["SMK007"]
    assert (
        result.findings[0].message
        == "vLLM refused bfloat16 on Tesla T4 (compute capability 7.5): it needs compute capability 8.0"
    )
    assert result.findings[0].hint == "--dtype half"

    other = run_smoke(
        _facts(tmp_path),
        Target(None, None, "GPU"),
        options=_opts(["{python}", str(fake_server), "--exit-with", "RuntimeError: boom", "{args}"]),
    )
    assert _codes(other) == ["SMK011"]
    assert other.findings[0].message == "the server exited with code 3 before serving: RuntimeError: boom"


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    # a "server" that never answers /health and has a child of its own
    launch = ["bash", "-c", "sleep 1000 & echo started child $!; sleep 1000", "{model}"]
    # without the timeout this call would wait for `sleep 1000`; SMK010 below proves it fired
    result = run_smoke(
        _facts(tmp_path), Target(None, None, "GPU"), options=_opts(launch, timeout_s=1.5, stop_grace_s=2)
    )
    assert _codes(result) == ["SMK010"]
    assert result.findings[0].message.startswith(
        "the server was not ready after 2 s (stopped it); last log line: started child"
    )
    child = int(Path(result.log_path).read_text().split("started child ")[1].split()[0])
    assert not _alive(child)


def test_sigterm_ignoring_server_is_killed(tmp_path: Path) -> None:
    launch = ["bash", "-c", "trap '' TERM; echo pgid $$; sleep 1000 & wait", "{model}"]
    result = run_smoke(
        _facts(tmp_path), Target(None, None, "GPU"), options=_opts(launch, timeout_s=1, stop_grace_s=1)
    )
    pgid = int(Path(result.log_path).read_text().split("pgid ")[1].split()[0])
    assert group_members(pgid) == []
    assert _codes(result) == ["SMK010"]


def test_ctrl_c_stops_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.smoke import process

    seen: list[int] = []

    def interrupt(self, base_url, timeout_s, on_tick=None, poll_s=0.5):
        seen.append(self.pgid)
        time.sleep(0.3)
        raise KeyboardInterrupt

    monkeypatch.setattr(process.ServerProcess, "wait_ready", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_smoke(
            _facts(tmp_path),
            Target(None, None, "GPU"),
            options=_opts(["bash", "-c", "sleep 1000", "{model}"]),
        )
    assert seen and group_members(seen[0]) == []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


# --- gating ------------------------------------------------------------------------------------


def test_static_errors_skip_unless_forced(tmp_path: Path) -> None:
    err = Finding("weights exceed VRAM").stamped("MEM001", "weights-exceed-vram", Severity.ERROR)
    result = run_smoke(_facts(tmp_path), Target(None, None, "GPU"), options=_opts(["false"]), findings=[err])
    assert not result.passed and result.findings == ()
    assert (
        result.skipped_reason
        == "not started: the static checks found errors (MEM001); fix them or pass --force-smoke"
    )
    forced = run_smoke(
        _facts(tmp_path),
        Target(None, None, "GPU"),
        options=_opts(["/no/such/server"], force=True),
        findings=[err],
    )
    assert forced.skipped_reason is None and _codes(forced) == ["SMK013"]


def test_unsafe_model_never_runs_even_forced(tmp_path: Path) -> None:
    scan = PickleScan("pytorch_model.bin", "torch-zip", (PickleGlobal("os", "system", "dangerous"),))
    result = run_smoke(
        _facts(tmp_path, pickles=[scan]), Target(None, None, "GPU"), options=_opts(["false"], force=True)
    )
    assert result.skipped_reason == "not started: the model is flagged as unsafe (pickle imports os.system)"


def test_prediction_that_cannot_fit_never_starts_the_server(tmp_path: Path) -> None:
    est = make_estimate(
        kv_cache_bytes=-5 * 1024**3, weights_bytes_per_gpu=30 * 1024**3, usable_bytes=20 * 1024**3
    )
    marker = tmp_path / "started"
    result = run_smoke(
        _facts(tmp_path), Target(None, None, "GPU"), estimate=est, options=_opts(["touch", str(marker)])
    )
    assert result.skipped_reason.startswith("not started: the memory prediction says the model cannot fit")
    assert not marker.exists()


def test_cpu_server_that_cannot_fit_in_ram_is_never_started(tmp_path: Path) -> None:
    from modelcheck.model import WeightsSummary

    huge = WeightsSummary("safetensors", 2**50, 2**49, {"BF16": 2**50}, "BF16", 1, ("model.safetensors",))
    marker = tmp_path / "started"
    result = run_smoke(
        _facts(tmp_path, weights=huge), Target(None, None, "CPU"), options=_opts(["touch", str(marker)])
    )
    assert _codes(result) == ["SMK014"] and not result.passed
    assert result.findings[0].message.startswith(
        "vLLM was not started: the model needs about 1048577.00 GiB of RAM"
    )
    assert not marker.exists()


def test_no_engine_for_the_kind(tmp_path: Path) -> None:
    result = run_smoke(_facts(tmp_path, kind="diffusion"), Target(None, None, "GPU"), options=SmokeOptions())
    assert _codes(result) == ["SMK013"]
    assert result.findings[0].message == (
        "smoke test not run: no smoke engine for a diffusion model (vLLM serves Hugging Face LLMs, llama.cpp GGUF)"
    )
    missing = run_smoke(
        _facts(tmp_path), Target(None, None, "GPU"), options=SmokeOptions(python=sys.executable)
    )
    if missing.findings:  # this interpreter has no vllm (the usual case)
        assert "vLLM is not installed for" in missing.findings[0].message


def test_gguf_without_llama_cpp_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no llama-server
    facts = _facts(tmp_path, kind="gguf", files=[FileEntry("m.gguf", 10)])
    result = run_smoke(facts, Target(None, None, "GPU"), options=SmokeOptions(python=sys.executable))
    assert _codes(result) == ["SMK013"]
    assert "no llama.cpp engine for this GGUF model" in result.findings[0].message


# --- arguments -----------------------------------------------------------------------------------


def test_engine_args_become_vllm_flags() -> None:
    target = make_target(
        engine_args={
            "gpu_memory_utilization": 0.9,
            "max_model_len": 4096,
            "enforce_eager": True,
            "trust_remote_code": False,
            "served_model_name": "x",
            "hf_overrides": {"a": 1},
            "enable_chunked_prefill": False,
            "quantization": None,
        }
    )
    assert smoke_engine_args(target) == [
        "--no-enable-chunked-prefill",
        "--enforce-eager",
        "--gpu-memory-utilization",
        "0.9",
        "--hf-overrides",
        '{"a": 1}',
        "--max-model-len",
        "4096",
        "--no-trust-remote-code",
    ]


def test_options_from_cli() -> None:
    o = options_from_cli(
        prompt="Capital of France?", expect="(?i)paris", launch="docker run --rm {image} {args}", timeout=30
    )
    assert o.cases == (SmokeCase("Capital of France?", "(?i)paris"),)
    assert o.launch == ("docker", "run", "--rm", "{image}", "{args}") and o.timeout_s == 30
    assert options_from_cli().cases == (SmokeCase("What is 2+2?", r"\b4\b"),)
    assert options_from_cli(cases=[("a", "b"), ("c", "d")]).cases == (
        SmokeCase("a", "b"),
        SmokeCase("c", "d"),
    )
    with pytest.raises(UsageError, match="not a valid regular expression"):
        options_from_cli(expect="(")
    with pytest.raises(UsageError, match="unknown placeholder"):
        options_from_cli(launch="{pyton} -m vllm")
    with pytest.raises(UsageError, match="needs --smoke-expect"):
        options_from_cli(prompt="Hi?")


def test_docker_launch_gets_a_container_name(tmp_path: Path) -> None:
    from modelcheck.smoke.runner import _fill, _name_container

    cmd = _fill(
        ("docker", "run", "--rm", "-v", "{model}:{model}:ro", "{image}", "{args}"),
        python="p",
        model="/m",
        port=8001,
        host="127.0.0.1",
        target=make_target(image="vllm:0.14.0-gpu"),
        engine="vllm",
    )
    named = _name_container(cmd, "modelcheck-smoke-1")
    assert named[:4] == ["docker", "run", "--name", "modelcheck-smoke-1"]
    assert named[-8:] == [
        "--model",
        "/m",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
        "--served-model-name",
        "modelcheck-smoke",
    ]
    assert "-v" in named and "/m:/m:ro" in named and os.sep in named[-7]
