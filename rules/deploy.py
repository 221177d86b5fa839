"""DEP rules, storage: does the model reach the container? Mounts vs the start command's model path,
overlapping or system-path mounts, oss:// URLs, NAS without a VPC.

They read ``ctx.target.deployment`` as built by ``modelcheck.deploy.load``: mounts, the start command's
model reference and port, the metadata GPU count, env. Paths in findings are spec key paths
("service.json:storage[0].mount_path"). Ports, GPUs and hub downloads: ``rules/deploy_runtime.py``.

Codes: DEP001, DEP002, DEP003, DEP004, DEP010.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from modelcheck.rule import Context, Finding, Severity, rule
from modelcheck_rules._common import deployment, spec_path

# Paths a mount must not hide (EAS doc / skill: "/, /bin, /etc, /usr" and the like).
SYSTEM_PATHS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
                "/sys", "/usr", "/var", "/tmp")
# empty_dir at /dev/shm is the documented way to enlarge shared memory
_ALLOWED_UNDER_SYSTEM = ("/dev/shm",)


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _under(path: str, mount: str) -> bool:
    path, mount = _norm(path), _norm(mount)
    return mount == "/" or path == mount or path.startswith(mount.rstrip("/") + "/")


@rule("DEP001", severity=Severity.ERROR, needs={"deployment"})
def model_path_not_mounted(ctx: Context) -> Iterator[Finding]:
    """The model path in the start command is not under any storage mount.

    ## Why it matters
    On EAS (and any container platform) the model reaches the container through a mount (OSS, NAS...).
    A command that loads /model_dir while the storage is mounted at /models/qwen finds an empty path:
    vLLM then tries it as a Hugging Face repo id and fails ("Repo id must be in the form...").

    ## How to fix
    Make the command's model path equal to (or under) the mount_path, or change the mount_path.
    """
    dep = deployment(ctx)
    ref = dep.model_ref
    if not ref or dep.model_ref_kind != "path" or dep.source_kind == "serve-cmd":
        return
    mounts = dep.mounts
    if any(_under(ref, m.mount_path) for m in mounts if m.mount_path):
        return
    paths = [m.mount_path for m in mounts if m.mount_path]
    key = (dep.command_key or "command")
    if not mounts:
        if dep.source_kind == "deploy-yaml" and not dep.mounts_declared:
            return
        yield Finding(
            f"the start command loads {ref} but the spec mounts no storage: the model must be baked into the image",
            path=spec_path(dep, key), severity=Severity.WARNING,
            hint=f"add a storage entry with mount_path {ref} (oss/nfs) or make sure the image contains {ref}",
            data={"model_path": ref, "mounts": paths})
        return
    yield Finding(
        f"the start command loads {ref}, which is under none of the mounts ({', '.join(paths)}): the engine finds no model",
        path=spec_path(dep, key), hint=f"serve {paths[0]} in the command, or mount the model storage at {ref}",
        data={"model_path": ref, "mounts": paths})


@rule("DEP002", severity=Severity.ERROR, needs={"deployment"})
def mounts_overlap(ctx: Context) -> Iterator[Finding]:
    """Two storage mounts share or nest their mount paths.

    ## Why it matters
    EAS requires mount paths not to overlap; a nested mount hides the files of the outer one (or the
    service is rejected at creation).

    ## How to fix
    Give each mount its own, non-nested mount_path.
    """
    dep = deployment(ctx)
    mounts = [m for m in dep.mounts if m.mount_path]
    for i, a in enumerate(mounts):
        for b in mounts[i + 1:]:
            if _under(a.mount_path, b.mount_path) or _under(b.mount_path, a.mount_path):
                yield Finding(
                    f"mounts {a.key} ({a.mount_path}) and {b.key} ({b.mount_path}) overlap: the nested "
                    "mount hides the other's files (EAS rejects overlapping mount paths)",
                    path=spec_path(dep, f"{b.key}.mount_path"), hint="use separate, non-nested mount paths",
                    data={"mounts": [a.mount_path, b.mount_path]})


@rule("DEP003", severity=Severity.ERROR, needs={"deployment"})
def mount_on_system_path(ctx: Context) -> Iterator[Finding]:
    """A storage mount sits on a system path of the container.

    ## Why it matters
    Mounting over /, /usr, /etc, /bin... hides the image's own files: the container cannot start its
    Python or the engine (EAS rejects such mount paths).

    ## How to fix
    Mount under a dedicated path such as /model_dir or /mnt/models.
    """
    dep = deployment(ctx)
    for m in dep.mounts:
        mp = _norm(m.mount_path or "")
        if not mp or any(_under(mp, ok) for ok in _ALLOWED_UNDER_SYSTEM):
            continue
        hit = next((s for s in SYSTEM_PATHS if mp == s or (s != "/" and s not in ("/tmp", "/var", "/root", "/run")
                                                           and mp.startswith(s + "/"))), None)
        if not mp.startswith("/"):
            yield Finding(f"{m.key} mount_path {mp!r} is not absolute", path=spec_path(dep, f"{m.key}.mount_path"),
                          hint="use an absolute path such as /model_dir", data={"mount_path": mp})
        elif hit:
            yield Finding(f"{m.key} mounts storage at {mp}, a system path ({hit}) of the container",
                          path=spec_path(dep, f"{m.key}.mount_path"), hint="mount at a dedicated path such as /model_dir",
                          data={"mount_path": mp, "system_path": hit})


@rule("DEP004", severity=Severity.ERROR, needs={"deployment"})
def oss_url_passed_to_engine(ctx: Context) -> Iterator[Finding]:
    """The start command hands an oss:// URL to the engine.

    ## Why it matters
    vLLM, SGLang and llama.cpp read local paths or hub ids; an oss:// URL is taken as a repo id and
    fails. OSS data reaches the container only through a storage mount.

    ## How to fix
    Mount the OSS directory (storage: oss.path + mount_path) and pass the mount_path to the engine.
    """
    dep = deployment(ctx)
    argv = dep.argv
    bad = [a for a in argv if isinstance(a, str) and "oss://" in a]
    if not bad:
        return
    mounts = [m.mount_path for m in dep.mounts if m.type == "oss"]
    yield Finding(
        f"the start command passes {bad[0]} to the engine; engines cannot read oss:// URLs",
        path=spec_path(dep, (dep.command_key or "command")),
        hint=f"pass the mount path instead ({mounts[0]})" if mounts else
        "add a storage entry {oss: {path: ...}, mount_path: /model_dir} and serve /model_dir",
        data={"url": bad[0], "oss_mounts": mounts})


@rule("DEP010", severity=Severity.ERROR, needs={"deployment"})
def nas_mount_without_vpc(ctx: Context) -> Iterator[Finding]:
    """An NFS/NAS mount is declared without the VPC settings it needs.

    ## Why it matters
    EAS reaches NAS through the service's VPC; without cloud.networking.vpc_id/vswitch_id the mount
    fails and the instance never starts.

    ## How to fix
    Add cloud.networking {vpc_id, vswitch_id, security_group_id} of the VPC the NAS mount target is in.
    """
    dep = deployment(ctx)
    if dep.source_kind != "eas-service":
        return
    net = dep.networking
    for m in dep.mounts:
        if m.type == "nfs" and not (net.get("vpc_id") and net.get("vswitch_id")):
            yield Finding(f"{m.key} mounts NAS {m.source} but cloud.networking has no "
                          "vpc_id/vswitch_id: the mount fails and the instance never starts",
                          path=spec_path(dep, f"{m.key}.nfs"), hint="add cloud.networking vpc_id, vswitch_id, security_group_id",
                          data={"mount_path": m.mount_path})
