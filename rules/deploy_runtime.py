"""DEP rules, runtime: will the started container serve? Ports, GPU counts vs parallelism, the engine
the command starts vs the image, hub downloads at start (gated repositories).

Like ``rules/deploy.py`` they read ``ctx.target.deployment`` (``modelcheck.deploy.load``); finding paths
are spec key paths.

Codes: DEP005, DEP006, DEP007, DEP008, DEP009, DEP011.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelcheck.catalog import support
from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import deployment, spec_path

# Hub organisations whose models are gated (licence acceptance) on huggingface.co. "all": every repo;
# otherwise name prefixes. Source: the model pages' access forms (meta-llama, google gemma family,
# mistralai newer releases, CohereForAI/CohereLabs aya/command-r, black-forest-labs FLUX.1-dev).
GATED = {
    "meta-llama": "all",
    "google": ("gemma", "paligemma", "medgemma", "shieldgemma", "codegemma", "recurrentgemma", "txgemma"),
    "mistralai": ("mistral-7b-instruct-v0.3", "mistral-7b-v0.3", "mistral-nemo", "mistral-large", "mistral-small",
                  "ministral", "codestral", "pixtral", "mixtral-8x22b", "mathstral"),
    "coherelabs": "all",
    "cohereforai": "all",
    "black-forest-labs": ("flux.1-dev",),
    "bigcode": ("starcoder", "starcoderbase"),
}


@rule("DEP005", severity=Severity.ERROR, needs={"deployment"})
def no_service_port(ctx: Context) -> Iterator[Finding]:
    """The service spec declares no container port.

    ## Why it matters
    EAS routes requests to the container's `port`; without it the service has no endpoint and health
    checks fail.

    ## How to fix
    Set containers[].port to the port the engine listens on (vLLM 8000, SGLang 30000, llama-server 8080
    unless --port says otherwise).
    """
    dep = deployment(ctx)
    if dep.source_kind != "eas-service" or dep.container_port is not None:
        return
    port = dep.engine_port or support.default_port(dep.launcher)
    yield Finding(f"{(dep.container_port_key or 'port')} is missing: the service has no port to route requests to",
                  path=spec_path(dep, (dep.container_port_key or "port")), hint=f"add \"port\": {port or 8000}",
                  data={"engine_port": port})


@rule("DEP006", severity=Severity.ERROR, needs={"deployment"})
def engine_port_mismatch(ctx: Context) -> Iterator[Finding]:
    """The engine listens on another port than the one the platform routes to.

    ## Why it matters
    Requests and health checks go to the spec's port; an engine on its default (SGLang 30000,
    llama-server 8080) or another --port never answers them and the service never becomes ready.

    ## How to fix
    Pass --port equal to the container port (and --host 0.0.0.0), or change the container port.
    """
    dep = deployment(ctx)
    cport = dep.container_port
    launcher = dep.launcher
    if not isinstance(cport, int) or not launcher:
        return
    eport = dep.engine_port
    explicit = eport is not None
    eport = eport if explicit else support.default_port(launcher)
    if eport is None or eport == cport:
        return
    yield Finding(
        f"the {launcher} command listens on port {eport}{'' if explicit else ' (its default)'} but the spec routes to {cport}",
        path=spec_path(dep, (dep.command_key or "command")), hint=f"add --port {cport} to the command",
        data={"engine_port": eport, "container_port": cport, "explicit": explicit})


@rule("DEP007", severity=Severity.ERROR, needs={"deployment"})
def gpu_image_on_cpu_spec(ctx: Context) -> Iterator[Finding]:
    """A GPU engine image is deployed on a spec without GPUs.

    ## Why it matters
    vLLM/SGLang GPU images need an NVIDIA GPU; on a CPU instance (or metadata.gpu 0 in a resource
    group) the container crashes at start ("No CUDA GPUs are available"). A CPU instance type is
    reported by CHP001/CHP003; this rule covers resource groups without metadata.gpu.

    ## How to fix
    Choose a GPU instance type (e.g. ecs.gn7i-*, ml.gu7i.*) or set metadata.gpu, or use a CPU build.
    """
    dep = deployment(ctx)
    img = ctx.target.image
    if not dep or img is None or (img.chip or "GPU") != "GPU" or img.engine not in ("vllm", "sglang"):
        return
    inst = ctx.target.instance
    meta_gpu = dep.metadata_gpu
    # a CPU instance type resolves into the target, where CHP001/CHP003 report it: one cause, one finding
    if inst is None and dep.resource_group and meta_gpu in (None, 0):
        yield Finding(f"GPU image {img.raw} in resource group {dep.resource_group} with no metadata.gpu",
                      path=spec_path(dep, "metadata.gpu"), hint="set metadata.gpu to the GPUs per replica",
                      data={"image": img.raw, "metadata_gpu": meta_gpu})


@rule("DEP008", severity=Severity.ERROR, needs={"deployment"})
def gpu_count_below_parallel(ctx: Context) -> Iterator[Finding]:
    """metadata.gpu gives fewer GPUs than tensor x pipeline parallelism needs.

    ## Why it matters
    The engine needs TP x PP GPUs per replica; EAS gives the container metadata.gpu of them. With
    fewer, the engine fails to start its workers.

    ## How to fix
    Set metadata.gpu to TP x PP or lower --tensor-parallel-size.
    """
    dep = deployment(ctx)
    n = dep.metadata_gpu
    ea = ctx.target.engine_args
    tp, pp = ea.get("tensor_parallel_size") or 1, ea.get("pipeline_parallel_size") or 1
    if not isinstance(n, int) or n <= 0 or not isinstance(tp, int) or not isinstance(pp, int):
        return
    if tp * pp > n:
        yield Finding(f"metadata.gpu is {n} but the command needs {tp * pp} GPUs (tensor {tp} x pipeline {pp}): "
                      "the engine cannot start its workers",
                      path=spec_path(dep, "metadata.gpu"), hint=f"set metadata.gpu to {tp * pp} or use --tensor-parallel-size {n}",
                      data={"metadata_gpu": n, "tensor_parallel_size": tp, "pipeline_parallel_size": pp})
    elif tp * pp < n:
        yield Finding(f"metadata.gpu is {n} but the command uses {tp * pp}: {n - tp * pp} GPU(s) idle",
                      path=spec_path(dep, "metadata.gpu"), severity=Severity.INFO,
                      hint=f"use --tensor-parallel-size {n} (if the heads divide) or lower metadata.gpu",
                      data={"metadata_gpu": n, "tensor_parallel_size": tp})


def gated_status(repo: str) -> bool:
    org, _, name = repo.partition("/")
    rule_ = GATED.get(org.lower())
    if rule_ == "all":
        return True
    return bool(rule_) and any(name.lower().startswith(p) for p in rule_)  # type: ignore[union-attr]


@rule("DEP009", severity=Severity.WARNING, needs={"deployment"})
def hub_model_download(ctx: Context) -> Iterator[Finding]:
    """The deployment loads a Hugging Face hub id, not a local path (gated repos need a token).

    ## Why it matters
    The engine downloads the weights at every cold start: the instance needs internet egress (EAS
    VPCs often have none) and, for gated repos (meta-llama, gemma, some mistralai...), an HF_TOKEN of an
    account that accepted the licence; otherwise it fails with 401/403.

    ## How to fix
    Mount the model from OSS/NAS and serve the mount path; or set HF_TOKEN in the container env and
    make sure the instance can reach huggingface.co.
    """
    dep = deployment(ctx)
    repo = dep.hub_id
    if not repo:
        return
    confirmed = dep.hub_gated
    gated = bool(confirmed) if confirmed is not None else gated_status(repo)
    token = bool(dep.hf_token_set)
    how = "confirmed on the hub" if confirmed is not None else "known gated organisation"
    data = {"repo": repo, "gated": gated, "hf_token_set": token, "confirmed_online": confirmed is not None}
    key = spec_path(dep, (dep.command_key or "command"))
    if gated and not token:
        yield Finding(f"{repo} is gated ({how}) and no HF_TOKEN is set: the download fails with 401/403",
                      path=key, severity=Severity.ERROR,
                      hint="set HF_TOKEN (an account that accepted the licence) or mount the model and serve the path",
                      data=data)
    else:
        yield Finding(f"the engine downloads {repo} from the hub at start"
                      + (" (gated; HF_TOKEN is set)" if gated else "") + ": needs internet egress from the instance",
                      path=key, severity=Severity.INFO,
                      hint="mount the model from OSS/NAS and serve the mount path for reliable cold starts", data=data)


@rule("DEP011", severity=Severity.WARNING, needs={"deployment"})
def launcher_differs_from_image(ctx: Context) -> Iterator[Finding]:
    """The start command runs another engine than the image provides.

    ## Why it matters
    A `python -m sglang.launch_server` command in a vLLM image (or the reverse) fails with "No module
    named ...": the image only has its own engine installed.

    ## How to fix
    Use the image of the engine the command starts, or rewrite the command for the image's engine.
    """
    dep = deployment(ctx)
    img = ctx.target.image
    launcher = dep.launcher
    if not launcher or img is None or img.engine not in ("vllm", "sglang", "llama.cpp") or img.engine == launcher:
        return
    yield Finding(f"the command starts {launcher} but the image {img.raw} is a {img.engine} image",
                  path=spec_path(dep, (dep.command_key or "command")), hint=f"use a {launcher} image or a {img.engine} command",
                  data={"launcher": launcher, "image_engine": img.engine})
