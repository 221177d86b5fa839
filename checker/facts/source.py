"""Hub references (``hf://Qwen/Qwen2.5-7B-Instruct``, ``Qwen/Qwen2.5-7B-Instruct``, ``...@revision``)
turned into a local folder that ``modelcheck.facts.gather`` can read.

* Offline (default): the snapshot in the local Hugging Face cache (``HF_HUB_CACHE``, ``HF_HOME/hub`` or
  ``~/.cache/huggingface/hub``). Nothing is fetched.
* ``--online``: only metadata, through ``huggingface_hub``: ``model_info`` (file list with sizes),
  ``hf_hub_download`` for small text files (config.json, tokenizer_config.json, the safetensors index...),
  and HTTP range requests for safetensors headers (and the head of GGUF files). Each weight file is
  written as a SPARSE file: the real header, then a hole up to the real size, so the facts see true
  sizes and headers without a byte of weight data. The mirror uses the Hugging Face cache layout
  (``<cache>/models--org--name/snapshots/<commit>/``) under ``~/.cache/modelcheck/hub`` so the
  resolver names it ``org/name`` and records the revision.

``HF_TOKEN``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are read when called (not at import), so they can
be set per run. ``huggingface_hub`` is imported lazily: local checks never pay for it.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any

from modelcheck.errors import UsageError
from modelcheck.record import record

DEFAULT_ENDPOINT = "https://huggingface.co"
MIRROR_MARKER = "modelcheck-mirror.json"  # in the repo folder of a mirror: how it was made
SMALL_FILE_MAX = 16 << 20  # text/metadata files we download whole
SAFETENSORS_HEADER_MAX = 100 << 20  # the safetensors library's own limit
GGUF_HEAD_MAX = 32 << 20  # GGUF metadata (vocab arrays) of large models stays well under this
FIRST_RANGE = 100_000  # one request covers 97% of safetensors headers (huggingface_hub's figure)

WEIGHT_SUFFIXES = (
    ".safetensors",
    ".gguf",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".onnx",
    ".h5",
    ".msgpack",
    ".pkl",
    ".npz",
    ".npy",
    ".joblib",
    ".tflite",
    ".mlmodel",
    ".engine",
    ".plan",
    ".nemo",
    ".keras",
)
SMALL_SUFFIXES = (
    ".json",
    ".txt",
    ".md",
    ".jinja",
    ".model",
    ".tiktoken",
    ".yaml",
    ".yml",
    ".py",
    ".pbtxt",
    ".vocab",
    ".spm",
    ".merges",
    ".cfg",
    ".toml",
    ".j2",
)
SMALL_NAMES = ("Modelfile", "LICENSE", "NOTICE", "USE_POLICY")

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@record
class HubRef:
    repo_id: str
    revision: str | None = None

    @property
    def display(self) -> str:
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def parse_ref(ref: str) -> HubRef:
    """``hf://org/name[@rev]`` or ``org/name[@rev]``; ``hf://models/org/name`` is accepted too."""
    body = ref.removeprefix("hf://")
    body = body.strip().strip("/")
    revision = None
    if "@" in body:
        body, _, revision = body.partition("@")
        revision = revision or None
    parts = body.split("/")
    if parts and parts[0] == "models" and len(parts) == 3:
        parts = parts[1:]
    if len(parts) != 2 or not all(_REPO_PART.match(p) for p in parts) or ".." in body:
        raise UsageError(
            f"{ref!r} is not a Hugging Face model reference (expected hf://org/name or org/name)"
        )
    return HubRef(repo_id="/".join(parts), revision=revision)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def classify_ref(ref: str | None) -> str | None:
    """What a model reference is, by its spelling alone (the one heuristic; no filesystem access):
    'oss' | 'hf' (hf://...) | 'url' | 'path' (absolute) | 'relative' | 'hub' (org/name) | None."""
    if not ref:
        return None
    if ref.startswith("oss://"):
        return "oss"
    if "://" in ref:
        return "hf" if ref.startswith("hf://") else "url"
    if ref.startswith("/"):
        return "path"
    if ref.startswith(("./", "../", "~")):
        return "relative"
    if _HUB_ID.match(ref.split("@", 1)[0]):
        return "hub"
    return "relative"


def hub_id(ref: str | None) -> str | None:
    """``org/name`` for a hub reference (bare or hf://), else None."""
    kind = classify_ref(ref)
    if kind == "hub":
        return ref
    if kind == "hf":
        return ref[len("hf://"):].strip("/")  # type: ignore[index]
    return None


def locate(path: str, *, online: bool = False) -> str:
    """The local path to read for ``path``: itself when it exists; for a hub reference (``hf://org/name``,
    or a bare ``org/name`` that is not a local path) the Hugging Face cache snapshot, or with ``online``
    a metadata-only mirror. Raises UsageError when neither exists."""
    if os.path.exists(path) or classify_ref(path) not in ("hub", "hf"):
        return path
    return materialize(path, online=online)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hf_cache_dir() -> str:
    """Where huggingface_hub keeps its cache, by the same environment variables, read now."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return os.path.expanduser(os.path.expandvars(explicit))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return os.path.join(os.path.expanduser(os.path.expandvars(home)), "hub")


def mirror_dir() -> str:
    """Where ``--online`` metadata mirrors go (``MODELCHECK_CACHE_DIR`` or ``~/.cache/modelcheck``)."""
    base = os.environ.get("MODELCHECK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "modelcheck"
    )
    return os.path.join(os.path.expanduser(base), "hub")


def _repo_folder(cache: str, repo_id: str) -> str:
    return os.path.join(cache, "models--" + repo_id.replace("/", "--"))


def materialize(ref: str, *, online: bool) -> str:
    """A local folder for the hub reference ``ref`` (see the module docstring). Raises UsageError."""
    hub_ref = parse_ref(ref)
    if online:
        if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
            raise UsageError(
                f"{hub_ref.display}: --online was given but HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE "
                "to fetch metadata, or drop --online to use the local Hugging Face cache"
            )
        return _online(hub_ref)
    if not ref.startswith("hf://") and not os.path.isdir(_repo_folder(hf_cache_dir(), hub_ref.repo_id)):
        # ``models/qwen`` with a typo reads as a repo id: say first that no such path exists
        raise UsageError(
            f"{ref}: no such file or folder (nor a Hugging Face repo id in the local cache "
            f"{hf_cache_dir()}; for the hub use hf://{hub_ref.repo_id} --online)"
        )
    return _offline(hub_ref)


# -- offline: the Hugging Face cache -------------------------------------------------------------


def _offline(ref: HubRef) -> str:
    cache = hf_cache_dir()
    repo = _repo_folder(cache, ref.repo_id)
    snapshots = os.path.join(repo, "snapshots")
    missing = UsageError(
        f"{ref.display} is not in the local Hugging Face cache ({cache}); pass --online to fetch metadata"
    )
    if not os.path.isdir(snapshots):
        raise missing
    revision = ref.revision
    if revision is None:
        with os.scandir(snapshots) as entries:
            empty = not any(entries)
        if empty:
            raise missing
        return repo  # the resolver follows refs/main (and says so when it has to guess)
    commit = revision
    ref_file = os.path.join(repo, "refs", revision)
    if os.path.isfile(ref_file):
        with open(ref_file, encoding="utf-8") as fh:
            commit = fh.read(200).strip()
    elif not re.fullmatch(r"[0-9a-f]{40}", revision):
        # a short commit prefix is common in docs: accept a unique match
        matches = [d for d in os.listdir(snapshots) if d.startswith(revision)]
        commit = matches[0] if len(matches) == 1 else revision
    path = os.path.join(snapshots, commit)
    if not os.path.isdir(path):
        raise UsageError(
            f"{ref.display}: revision {revision!r} is not in the local Hugging Face cache ({repo}); "
            "pass --online to fetch metadata"
        )
    return path


# -- online: a sparse metadata mirror ------------------------------------------------------------


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None  # None: huggingface_hub falls back to the saved login


def _hub_error(ref: HubRef, exc: Exception) -> UsageError:
    from huggingface_hub import errors as hf_errors

    name = type(exc).__name__
    if isinstance(exc, hf_errors.GatedRepoError):
        why = "the repository is gated: accept its licence on the hub and set HF_TOKEN"
    elif isinstance(exc, hf_errors.RepositoryNotFoundError):
        why = "repository not found (or private: set HF_TOKEN)"
    elif isinstance(exc, hf_errors.RevisionNotFoundError):
        why = f"revision {ref.revision!r} not found"
    elif isinstance(exc, hf_errors.OfflineModeIsEnabled):
        why = "HF_HUB_OFFLINE is set"
    else:
        why = f"{name}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return UsageError(f"{ref.display}: cannot fetch metadata from {_endpoint()}: {why}")


def _kind_of(name: str, size: int | None, is_lfs: bool) -> str:
    low = name.lower()
    base = name.rsplit("/", 1)[-1]
    if low.endswith(".safetensors"):
        return "safetensors"
    if low.endswith(".gguf"):
        return "gguf"
    if low.endswith(WEIGHT_SUFFIXES):
        return "sparse"
    if (low.endswith(SMALL_SUFFIXES) or base in SMALL_NAMES or not is_lfs) and (size or 0) <= SMALL_FILE_MAX:
        return "download"
    return "sparse"


def _safe_relpath(name: str) -> str | None:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name:
        return None
    return os.path.join(*parts)


class _Fetcher:
    """Range reads through huggingface_hub's HTTP session (its headers, token, retries and errors)."""

    def __init__(self, ref: HubRef, commit: str) -> None:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        self._url = hf_hub_url
        self._headers = build_hf_headers(token=_token())
        self._session = get_session
        self._raise = hf_raise_for_status
        self.ref = ref
        self.commit = commit

    def range(self, filename: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of ``filename``; never more than asked, whatever is sent."""
        url = self._url(self.ref.repo_id, filename, revision=self.commit, endpoint=_endpoint())
        headers = {**self._headers, "Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}
        limit = end - start + 1
        with self._session().stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=30
        ) as response:
            if response.status_code >= 400:
                response.read()  # hf_raise_for_status reads the error body
                self._raise(response)
            skip = start if response.status_code == 200 else 0  # a server that ignores Range
            chunks: list[bytes] = []
            got = 0
            for chunk in response.iter_bytes():
                if skip:
                    drop = min(skip, len(chunk))
                    chunk, skip = chunk[drop:], skip - drop
                chunks.append(chunk[: limit - got])
                got += len(chunks[-1])
                if got >= limit:
                    break
        return b"".join(chunks)

    def safetensors_header(self, filename: str, size: int) -> bytes:
        """The 8-byte length prefix plus the JSON header, exactly as stored (two requests at most)."""
        head = self.range(filename, 0, min(size, FIRST_RANGE) - 1)
        if len(head) < 8:
            raise ValueError(f"{filename}: fewer than 8 bytes served")
        (n,) = struct.unpack("<Q", head[:8])
        if n > SAFETENSORS_HEADER_MAX or 8 + n > size:
            return head  # nonsense length: keep what was served, the facts report it
        if 8 + n <= len(head):
            return head[: 8 + n]
        return head + self.range(filename, len(head), 8 + n - 1)

    def download(self, filename: str, dest: str, private_cache: str) -> None:
        from huggingface_hub import hf_hub_download

        # A private cache: the user's HF cache must not gain half a snapshot (config.json without
        # weights), which the offline path would then mistake for the model.
        path = hf_hub_download(
            self.ref.repo_id,
            filename,
            revision=self.commit,
            cache_dir=private_cache,
            endpoint=_endpoint(),
            token=_token(),
        )
        import shutil

        shutil.copyfile(path, dest)


def _write_sparse(dest: str, head: bytes, size: int) -> None:
    with open(dest, "wb") as fh:
        fh.write(head[:size])
        fh.truncate(size)  # the rest is a hole: true size, no data


def _online(ref: HubRef) -> str:
    try:
        from huggingface_hub import HfApi
    except ImportError:  # pragma: no cover - a declared dependency
        raise UsageError("--online needs the huggingface_hub package (pip install huggingface_hub)") from None

    api = HfApi(endpoint=_endpoint(), token=_token())
    try:
        info = api.model_info(ref.repo_id, revision=ref.revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - network, auth, not found: one line, exit 2
        raise _hub_error(ref, exc) from None
    commit = info.sha or ref.revision or "main"
    repo = _repo_folder(mirror_dir(), ref.repo_id)
    final = os.path.join(repo, "snapshots", commit)
    marker = os.path.join(repo, MIRROR_MARKER)
    # Work files live beside the snapshots, never inside one: the facts walk every file there.
    work = os.path.join(repo, ".modelcheck")
    complete = os.path.join(work, f"{commit}.complete")
    if os.path.isdir(final) and os.path.isfile(complete):
        return final
    os.makedirs(os.path.join(repo, "snapshots"), exist_ok=True)
    os.makedirs(work, exist_ok=True)
    import shutil
    import tempfile
    from concurrent.futures import ThreadPoolExecutor  # only for --online: it pulls in logging

    staging = tempfile.mkdtemp(prefix="staging-", dir=work)
    private_cache = tempfile.mkdtemp(prefix="hf-", dir=work)
    fetcher = _Fetcher(ref, commit)
    files: list[dict[str, Any]] = []
    plan = []
    for sib in sorted(info.siblings or [], key=lambda s: s.rfilename):
        rel = _safe_relpath(sib.rfilename)
        if rel is None:
            continue
        size = sib.lfs.size if sib.lfs is not None else sib.size
        plan.append((sib.rfilename, rel, size, _kind_of(sib.rfilename, size, sib.lfs is not None)))

    def fetch(item: tuple[str, str, int | None, str]) -> dict[str, Any]:
        name, rel, size, kind = item
        dest = os.path.join(staging, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if kind == "download" or size is None:
            fetcher.download(name, dest, private_cache)
            return {"path": name, "size": os.path.getsize(dest), "mode": "downloaded"}
        if kind == "safetensors" and size >= 8:
            head = fetcher.safetensors_header(name, size)
            _write_sparse(dest, head, size)
            return {"path": name, "size": size, "mode": "header", "header_bytes": len(head)}
        if kind == "gguf" and size > 0:
            head = fetcher.range(name, 0, min(size, GGUF_HEAD_MAX) - 1)
            _write_sparse(dest, head, size)
            return {"path": name, "size": size, "mode": "head", "head_bytes": len(head)}
        _write_sparse(dest, b"", size)
        return {"path": name, "size": size, "mode": "sparse"}

    from modelcheck import progress

    try:
        with progress.bar(f"{ref.display} metadata", total=len(plan)) as advance:

            def step(item: tuple[str, str, int | None, str]) -> dict[str, Any]:
                out = fetch(item)
                advance(1)
                return out

            with ThreadPoolExecutor(max_workers=8) as pool:
                files = list(pool.map(step, plan))
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(staging, final)
        with open(complete, "w", encoding="utf-8") as fh:
            fh.write(commit + "\n")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any fetch failure: clean up, one line, exit 2
        shutil.rmtree(staging, ignore_errors=True)
        raise _hub_error(ref, exc) from None
    finally:
        shutil.rmtree(private_cache, ignore_errors=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    if ref.revision is None or ref.revision == commit:
        with open(os.path.join(repo, "refs", "main" if ref.revision is None else commit), "w") as fh:
            fh.write(commit)
    else:
        with open(os.path.join(repo, "refs", ref.revision.replace("/", "--")), "w") as fh:
            fh.write(commit)
    manifest = {
        "repo_id": ref.repo_id,
        "revision": ref.revision,
        "commit": commit,
        "endpoint": _endpoint(),
        "files": files,
    }
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
    return final
