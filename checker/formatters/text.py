"""Human output: one block per path (what the folder is, the target, memory, findings with a hint each)."""

from __future__ import annotations

from typing import Any

from modelcheck.escape import for_terminal
from modelcheck.model import Estimate
from modelcheck.report import PathReport, Report
from modelcheck.rule import Finding, Severity
from modelcheck.summary import model_summary, not_checked

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} B"


def human_count(n: int | None) -> str:
    if not n:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _finding_lines(f: Finding, color: bool) -> list[str]:
    sev = f.severity or Severity.ERROR
    label = _paint(f"{sev.label:<7}", _COLORS[sev], color)
    # messages are self-contained (JSON/SARIF show them alone) and often name their file: then the
    # "path: " prefix would print the name twice
    where = f"{for_terminal(f.path)}: " if f.path and f.path not in f.message else ""
    lines = [f"  {label} {f.rule} [{f.name}] {where}{for_terminal(f.message)}"]
    if f.hint:
        lines.append(f"          {_paint('fix:', _BOLD, color)} {for_terminal(f.hint)}")
    return lines


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def memory_text(est: Estimate) -> list[str]:
    """A readable breakdown of the memory estimate (no trailing newlines)."""
    x = est.extra
    ver = f" {est.engine_version}" if est.engine_version else ""
    eng = f" ({x['vllm_engine']})" if x.get("vllm_engine") else ""
    lines = [f"memory ({est.engine}{ver}{eng}, per GPU):"]
    if not est.llm:
        need = est.weights_bytes_per_gpu + est.activation_bytes + est.non_torch_bytes
        lines.append(f"  weights {_gib(est.weights_bytes_per_gpu)} + activation {_gib(est.activation_bytes)}"
                     f" + CUDA context {_gib(est.non_torch_bytes)} = {_gib(need)} of {_gib(est.total_vram_bytes)}"
                     f" ({_gib(est.total_vram_bytes - need)} spare)")
    else:
        lines.append(f"  total {_gib(est.total_vram_bytes)} x util {est.gpu_memory_utilization:g} = "
                     f"{_gib(est.usable_bytes)} usable")
        lines.append(f"  weights {_gib(est.weights_bytes_per_gpu)} (model {_gib(est.weights_bytes)})"
                     f" + activation {_gib(est.activation_bytes)} + non-torch {_gib(est.non_torch_bytes)}"
                     + (f" + CUDA graphs {_gib(est.cuda_graph_bytes)}" if x.get("cuda_graphs_reserved") else ""))
        kv = _gib(est.kv_cache_bytes) if est.kv_cache_bytes >= 0 else f"none ({_gib(-est.kv_cache_bytes)} short)"
        lines.append(f"  KV cache {kv} at {est.kv_cache_bytes_per_token} B/token = {est.kv_cache_tokens} tokens")
        if est.max_model_len:
            conc = f"{est.max_concurrency:.2f}x" if est.max_concurrency is not None else "n/a"
            lines.append(f"  max_model_len {est.max_model_len}: max concurrency {conc}")
    if est.status == "fail":
        lines.append(f"  predicted start-up: FAIL ({est.failure})")
    lines.extend(f"  assumes: {a}" for a in est.assumptions)
    return lines


def smoke_text(s: Any) -> list[str]:
    """The smoke stage: verdict, each answer, the figures, measured vs predicted."""
    if s.skipped_reason:
        return [f"smoke: skipped, {s.skipped_reason}"]
    lines = [f"smoke: {'PASSED' if s.passed else 'FAILED'} ({s.engine or 'no engine'})"]
    for c in s.answers:
        mark = "pass" if c.passed else "FAIL"
        got = repr(c.answer) if c.answer is not None else f"error: {c.error}"
        if c.raw_answer is not None:
            got += f" (with special tokens: {c.raw_answer!r})"
        ttft = f", first token {c.ttft_s * 1000:.0f} ms" if c.ttft_s is not None else ""
        lines.append(f"  {mark}  {c.prompt!r} -> {got} (expect /{c.expect}/, {c.endpoint}{ttft})")
    m = s.metrics
    figures = []
    for key, label, unit in (
        ("load_s", "ready in", "s"), ("ttft_s", "TTFT", "s"), ("tokens_per_s", "decode", "tok/s"),
        ("weights_gib", "weights", "GiB"), ("kv_cache_gib", "KV cache", "GiB"), ("kv_cache_tokens", "KV tokens", ""),
        ("max_concurrency", "max concurrency", "x"),
    ):
        if m.get(key) is not None and not (key == "kv_cache_gib" and m[key] < 0):
            figures.append(f"{label} {m[key]:,}{(' ' + unit) if unit and unit != 'x' else unit}")
        elif key == "kv_cache_gib" and m.get(key) is not None and m[key] < 0:
            figures.append(f"{label} none ({-m[key]:,} GiB short)")  # vLLM logs a negative figure then
        elif key == "tokens_per_s" and key in m:
            figures.append(f"{label} unknown (not measurable)")
    if figures:
        lines.append("  " + ", ".join(figures))
    for c in s.comparisons:
        flag = "  <-- disagrees" if c.disagrees else ""
        lines.append(f"  {c.name}: vLLM {c.measured:,.4g} {c.unit} vs predicted {c.predicted:,.4g} {c.unit}{flag}")
    if s.log_path:
        lines.append(f"  log: {s.log_path}")
    return lines


def _memory_lines(r: PathReport, verbose: bool) -> list[str]:
    if r.estimate is None:
        return []
    lines = ["  " + line for line in memory_text(r.estimate)]
    # The assumptions matter when memory is the problem; otherwise they drown the findings.
    if verbose or any(f.rule.startswith(("MEM", "SMK")) for f in r.findings):
        return lines
    kept = [line for line in lines if not line.lstrip().startswith("assumes:")]
    hidden = len(lines) - len(kept)
    if hidden:
        kept.append(f"    ({hidden} assumptions behind these figures: --verbose, or the JSON memory block)")
    return kept


def _path_block(r: PathReport, color: bool, verbose: bool = False) -> list[str]:
    m = model_summary(r.facts)
    c = r.facts.classification
    head = f"{_paint(for_terminal(r.path), _BOLD, color)}"
    lines = [head]
    what = [f"kind {c.kind}" + (f" ({c.subtype})" if c.subtype else "") + f", confidence {c.confidence:.2f}"]
    if m["architecture"]:
        what.append(m["architecture"])
    if m["format"] and m["format"] != "none":
        what.append(m["format"])
    if m["param_count"]:
        what.append(f"{human_count(m['param_count'])} params")
    if m["dtype"]:
        what.append(m["dtype"])
    if m["weights_bytes"]:
        what.append(f"{human_bytes(m['weights_bytes'])} weights")
    if len(c.modalities) > 1:
        what.append("modalities " + "+".join(c.modalities))
    lines.append("  " + ", ".join(what))
    for ev in c.evidence[:4]:
        lines.append(_paint(f"    evidence: {ev}", _DIM, color))
    t = r.target
    tparts = []
    if t.image:
        img = t.image
        tparts.append(
            f"image {img.engine}"
            + (f" {img.version}" if img.version else "")
            + (" (no version given: the newest known)" if getattr(img, "version_from", None) == "newest-known" else "")
            + (f" ({img.chip})" if img.chip else "")
        )
    if t.instance:
        inst = t.instance
        gpu = f", {inst.gpu_count}x {inst.gpu.name}" if inst.gpu and inst.gpu_count else ""
        tparts.append(f"instance {inst.name} [{inst.chip}{gpu}]")
    elif t.chip:
        tparts.append(f"chip {t.chip}")
    if t.engine_args:
        tparts.append(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(t.engine_args.items())
                               if not k.startswith("_")))
    if tparts:
        lines.append("  target: " + "; ".join(tparts))
    lines.extend(_memory_lines(r, verbose))
    for gap in not_checked(r.skipped):
        lines.append(_paint(f"  not checked: {', '.join(gap['families'])} rules ({gap['reason']})", _DIM, color))
    findings = r.findings
    if findings:
        for f in findings:
            lines.extend(_finding_lines(f, color))
    else:
        lines.append("  " + _paint("ok", "\033[32m", color) + " no findings")
    if r.smoke is not None:
        lines.extend("  " + s for s in smoke_text(r.smoke))
    return lines


def _quiet_block(r: PathReport, color: bool) -> list[str]:
    """``-q``: the path and its findings, nothing else."""
    lines = [_paint(r.path, _BOLD, color)]
    for f in r.findings:
        lines.extend(_finding_lines(f, color))
    return lines


def format(report: Report, *, color: bool = False, width: int | None = None, quiet: bool = False,
           **_: Any) -> str:
    """One block per path, then the verdict. ``width``: wrap at this column with hanging indents
    (None: never); ``quiet``: only the findings of failing paths, no verdict (a passing run prints
    nothing). With several paths, a path without findings collapses to nothing unless ``report.verbose``."""
    from modelcheck.formatters import summary_line
    from modelcheck.formatters.wrap import wrap_lines

    lines: list[str] = []
    if quiet:
        for r in report.results:
            if r.failed:
                lines.extend(_quiet_block(r, color))
        return "".join(line + "\n" for line in wrap_lines(lines, width))
    collapse = len(report.results) > 1 and not report.verbose
    hidden = 0
    for r in report.results:
        if collapse and not r.findings and r.smoke is None:
            hidden += 1
            continue
        lines.extend(_path_block(r, color, report.verbose))
        lines.append("")
    if hidden:
        lines.append(f"{hidden} path{'s' if hidden != 1 else ''} passed with no findings (-v shows "
                     f"{'them' if hidden != 1 else 'it'})")
    lines.append(summary_line(report, color=color))
    return "\n".join(wrap_lines(lines, width)) + "\n"
