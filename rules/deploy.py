"""DEP rules: the deployment spec (EAS service JSON, deploy YAML, start command) vs what will run.

They read ``ctx.target.deployment`` as built by ``checker.deploy.load``: mounts, the start command's
model reference and port, the metadata GPU count, env. Paths in findings are spec key paths
("service.json:storage[0].mount_path").
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from checker import engines
from checker.rule import Context, Finding, Severity, rule

# Paths a mount must not hide (EAS doc / skill: "/, /bin, /etc, /usr" and the like).
SYSTEM_PATHS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
                "/sys", "/usr", "/var", "/tmp")
# empty_dir at /dev/shm is the documented way to enlarge shared memory
_ALLOWED_UNDER_SYSTEM = ("/dev/shm",)

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


def _dep(ctx: Context) -> dict[str, Any]:
    return ctx.target.deployment or {}


def _p(dep: dict[str, Any], key: str) -> str:
    return f"{dep.get('source', 'spec')}:{key}"


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _under(path: str, mount: str) -> bool:
    path, mount = _norm(path), _norm(mount)
    return mount == "/" or path == mount or path.startswith(mount.rstrip("/") + "/")


@rule("DEP001", severity=Severity.ERROR)
def model_path_not_mounted(ctx: Context) -> Iterator[Finding]:
    """The model path in the start command is not under any storage mount.

    ## Why it matters
    On EAS (and any container platform) the model reaches the container through a mount (OSS, NAS...).
    A command that loads /model_dir while the storage is mounted at /models/qwen finds an empty path:
    vLLM then tries it as a Hugging Face repo id and fails ("Repo id must be in the form...").

    ## How to fix
    Make the command's model path equal to (or under) the mount_path, or change the mount_path.
    """
    dep = _dep(ctx)
    ref = dep.get("model_ref")
    if not ref or dep.get("model_ref_kind") != "path" or dep.get("source_kind") == "serve-cmd":
        return
    mounts = dep.get("mounts") or []
    if any(_under(ref, m["mount_path"]) for m in mounts if m.get("mount_path")):
        return
    paths = [m["mount_path"] for m in mounts if m.get("mount_path")]
    key = dep.get("command_key", "command")
    if not mounts:
        if dep.get("source_kind") == "deploy-yaml" and not dep.get("mounts_declared"):
            return
        yield Finding(
            f"the start command loads {ref} but the spec mounts no storage: the model must be baked into the image",
            path=_p(dep, key), severity=Severity.WARNING,
            hint=f"add a storage entry with mount_path {ref} (oss/nfs) or make sure the image contains {ref}",
            data={"model_path": ref, "mounts": paths})
        return
    yield Finding(
        f"the start command loads {ref}, which is under none of the mounts ({', '.join(paths)}): the engine finds no model",
        path=_p(dep, key), hint=f"serve {paths[0]} in the command, or mount the model storage at {ref}",
        data={"model_path": ref, "mounts": paths})


@rule("DEP002", severity=Severity.ERROR)
def mounts_overlap(ctx: Context) -> Iterator[Finding]:
    """Two storage mounts share or nest their mount paths.

    ## Why it matters
    EAS requires mount paths not to overlap; a nested mount hides the files of the outer one (or the
    service is rejected at creation).

    ## How to fix
    Give each mount its own, non-nested mount_path.
    """
    dep = _dep(ctx)
    mounts = [m for m in dep.get("mounts") or [] if m.get("mount_path")]
    for i, a in enumerate(mounts):
        for b in mounts[i + 1:]:
            if _under(a["mount_path"], b["mount_path"]) or _under(b["mount_path"], a["mount_path"]):
                yield Finding(
                    f"mounts {a['key']} ({a['mount_path']}) and {b['key']} ({b['mount_path']}) overlap",
                    path=_p(dep, f"{b['key']}.mount_path"), hint="use separate, non-nested mount paths",
                    data={"mounts": [a["mount_path"], b["mount_path"]]})


@rule("DEP003", severity=Severity.ERROR)
def mount_on_system_path(ctx: Context) -> Iterator[Finding]:
    """A storage mount sits on a system path of the container.

    ## Why it matters
    Mounting over /, /usr, /etc, /bin... hides the image's own files: the container cannot start its
    Python or the engine (EAS rejects such mount paths).

    ## How to fix
    Mount under a dedicated path such as /model_dir or /mnt/models.
    """
    dep = _dep(ctx)
    for m in dep.get("mounts") or []:
        mp = _norm(m.get("mount_path") or "")
        if not mp or any(_under(mp, ok) for ok in _ALLOWED_UNDER_SYSTEM):
            continue
        hit = next((s for s in SYSTEM_PATHS if mp == s or (s != "/" and s not in ("/tmp", "/var", "/root", "/run")
                                                           and mp.startswith(s + "/"))), None)
        if not mp.startswith("/"):
            yield Finding(f"{m['key']} mount_path {mp!r} is not absolute", path=_p(dep, f"{m['key']}.mount_path"),
                          hint="use an absolute path such as /model_dir", data={"mount_path": mp})
        elif hit:
            yield Finding(f"{m['key']} mounts storage at {mp}, a system path ({hit}) of the container",
                          path=_p(dep, f"{m['key']}.mount_path"), hint="mount at a dedicated path such as /model_dir",
                          data={"mount_path": mp, "system_path": hit})


@rule("DEP004", severity=Severity.ERROR)
def oss_url_passed_to_engine(ctx: Context) -> Iterator[Finding]:
    """The start command hands an oss:// URL to the engine.

    ## Why it matters
    vLLM, SGLang and llama.cpp read local paths or hub ids; an oss:// URL is taken as a repo id and
    fails. OSS data reaches the container only through a storage mount.

    ## How to fix
    Mount the OSS directory (storage: oss.path + mount_path) and pass the mount_path to the engine.
    """
    dep = _dep(ctx)
    argv = dep.get("argv") or []
    bad = [a for a in argv if isinstance(a, str) and "oss://" in a]
    if not bad:
        return
    mounts = [m["mount_path"] for m in dep.get("mounts") or [] if m.get("type") == "oss"]
    yield Finding(
        f"the start command passes {bad[0]} to the engine; engines cannot read oss:// URLs",
        path=_p(dep, dep.get("command_key", "command")),
        hint=f"pass the mount path instead ({mounts[0]})" if mounts else
        "add a storage entry {oss: {path: ...}, mount_path: /model_dir} and serve /model_dir",
        data={"url": bad[0], "oss_mounts": mounts})


@rule("DEP005", severity=Severity.ERROR)
def no_service_port(ctx: Context) -> Iterator[Finding]:
    """The service spec declares no container port.

    ## Why it matters
    EAS routes requests to the container's `port`; without it the service has no endpoint and health
    checks fail.

    ## How to fix
    Set containers[].port to the port the engine listens on (vLLM 8000, SGLang 30000, llama-server 8080
    unless --port says otherwise).
    """
    dep = _dep(ctx)
    if dep.get("source_kind") != "eas-service" or dep.get("container_port") is not None:
        return
    port = dep.get("engine_port") or engines.default_port(dep.get("launcher"))
    yield Finding(f"{dep.get('container_port_key', 'port')} is missing: the service has no port to route requests to",
                  path=_p(dep, dep.get("container_port_key", "port")), hint=f"add \"port\": {port or 8000}",
                  data={"engine_port": port})


@rule("DEP006", severity=Severity.ERROR)
def engine_port_mismatch(ctx: Context) -> Iterator[Finding]:
    """The engine listens on another port than the one the platform routes to.

    ## Why it matters
    Requests and health checks go to the spec's port; an engine on its default (SGLang 30000,
    llama-server 8080) or another --port never answers them and the service never becomes ready.

    ## How to fix
    Pass --port equal to the container port (and --host 0.0.0.0), or change the container port.
    """
    dep = _dep(ctx)
    cport = dep.get("container_port")
    launcher = dep.get("launcher")
    if not isinstance(cport, int) or not launcher:
        return
    eport = dep.get("engine_port")
    explicit = eport is not None
    eport = eport if explicit else engines.default_port(launcher)
    if eport is None or eport == cport:
        return
    yield Finding(
        f"the {launcher} command listens on port {eport}{'' if explicit else ' (its default)'} but the spec routes to {cport}",
        path=_p(dep, dep.get("command_key", "command")), hint=f"add --port {cport} to the command",
        data={"engine_port": eport, "container_port": cport, "explicit": explicit})


@rule("DEP007", severity=Severity.ERROR)
def gpu_image_on_cpu_spec(ctx: Context) -> Iterator[Finding]:
    """A GPU engine image is deployed on a spec without GPUs.

    ## Why it matters
    vLLM/SGLang GPU images need an NVIDIA GPU; on a CPU instance (or metadata.gpu 0 in a resource
    group) the container crashes at start ("No CUDA GPUs are available"). A CPU instance type is
    reported by CHP001/CHP003; this rule covers resource groups without metadata.gpu.

    ## How to fix
    Choose a GPU instance type (e.g. ecs.gn7i-*, ml.gu7i.*) or set metadata.gpu, or use a CPU build.
    """
    dep = _dep(ctx)
    img = ctx.target.image
    if not dep or img is None or (img.chip or "GPU") != "GPU" or img.engine not in ("vllm", "sglang"):
        return
    inst = ctx.target.instance
    meta_gpu = dep.get("metadata_gpu")
    # a CPU instance type resolves into the target, where CHP001/CHP003 report it: one cause, one finding
    if inst is None and dep.get("resource_group") and meta_gpu in (None, 0):
        yield Finding(f"GPU image {img.raw} in resource group {dep['resource_group']} with no metadata.gpu",
                      path=_p(dep, "metadata.gpu"), hint="set metadata.gpu to the GPUs per replica",
                      data={"image": img.raw, "metadata_gpu": meta_gpu})


@rule("DEP008", severity=Severity.ERROR)
def gpu_count_below_parallel(ctx: Context) -> Iterator[Finding]:
    """metadata.gpu gives fewer GPUs than tensor x pipeline parallelism needs.

    ## Why it matters
    The engine needs TP x PP GPUs per replica; EAS gives the container metadata.gpu of them. With
    fewer, the engine fails to start its workers.

    ## How to fix
    Set metadata.gpu to TP x PP or lower --tensor-parallel-size.
    """
    dep = _dep(ctx)
    n = dep.get("metadata_gpu")
    ea = ctx.target.engine_args
    tp, pp = ea.get("tensor_parallel_size") or 1, ea.get("pipeline_parallel_size") or 1
    if not isinstance(n, int) or n <= 0 or not isinstance(tp, int) or not isinstance(pp, int):
        return
    if tp * pp > n:
        yield Finding(f"metadata.gpu is {n} but the command needs {tp * pp} GPUs (tensor {tp} x pipeline {pp})",
                      path=_p(dep, "metadata.gpu"), hint=f"set metadata.gpu to {tp * pp} or use --tensor-parallel-size {n}",
                      data={"metadata_gpu": n, "tensor_parallel_size": tp, "pipeline_parallel_size": pp})
    elif tp * pp < n:
        yield Finding(f"metadata.gpu is {n} but the command uses {tp * pp}: {n - tp * pp} GPU(s) idle",
                      path=_p(dep, "metadata.gpu"), severity=Severity.INFO,
                      hint=f"use --tensor-parallel-size {n} (if the heads divide) or lower metadata.gpu",
                      data={"metadata_gpu": n, "tensor_parallel_size": tp})


def gated_status(repo: str) -> bool:
    org, _, name = repo.partition("/")
    rule_ = GATED.get(org.lower())
    if rule_ == "all":
        return True
    return bool(rule_) and any(name.lower().startswith(p) for p in rule_)  # type: ignore[union-attr]


@rule("DEP009", severity=Severity.WARNING)
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
    dep = _dep(ctx)
    repo = dep.get("hub_id")
    if not repo:
        return
    confirmed = dep.get("hub_gated")
    gated = bool(confirmed) if confirmed is not None else gated_status(repo)
    token = bool(dep.get("hf_token_set"))
    how = "confirmed on the hub" if confirmed is not None else "known gated organisation"
    data = {"repo": repo, "gated": gated, "hf_token_set": token, "confirmed_online": confirmed is not None}
    key = _p(dep, dep.get("command_key", "command"))
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


@rule("DEP010", severity=Severity.ERROR)
def nas_mount_without_vpc(ctx: Context) -> Iterator[Finding]:
    """An NFS/NAS mount is declared without the VPC settings it needs.

    ## Why it matters
    EAS reaches NAS through the service's VPC; without cloud.networking.vpc_id/vswitch_id the mount
    fails and the instance never starts.

    ## How to fix
    Add cloud.networking {vpc_id, vswitch_id, security_group_id} of the VPC the NAS mount target is in.
    """
    dep = _dep(ctx)
    if dep.get("source_kind") != "eas-service":
        return
    net = dep.get("networking") or {}
    for m in dep.get("mounts") or []:
        if m.get("type") == "nfs" and not (net.get("vpc_id") and net.get("vswitch_id")):
            yield Finding(f"{m['key']} mounts NAS {m.get('source')} but cloud.networking has no vpc_id/vswitch_id",
                          path=_p(dep, f"{m['key']}.nfs"), hint="add cloud.networking vpc_id, vswitch_id, security_group_id",
                          data={"mount_path": m.get("mount_path")})


@rule("DEP011", severity=Severity.WARNING)
def launcher_differs_from_image(ctx: Context) -> Iterator[Finding]:
    """The start command runs another engine than the image provides.

    ## Why it matters
    A `python -m sglang.launch_server` command in a vLLM image (or the reverse) fails with "No module
    named ...": the image only has its own engine installed.

    ## How to fix
    Use the image of the engine the command starts, or rewrite the command for the image's engine.
    """
    dep = _dep(ctx)
    img = ctx.target.image
    launcher = dep.get("launcher")
    if not launcher or img is None or img.engine not in ("vllm", "sglang", "llama.cpp") or img.engine == launcher:
        return
    yield Finding(f"the command starts {launcher} but the image {img.raw} is a {img.engine} image",
                  path=_p(dep, dep.get("command_key", "command")), hint=f"use a {launcher} image or a {img.engine} command",
                  data={"launcher": launcher, "image_engine": img.engine})
