"""Hub references: the local Hugging Face cache offline, a sparse metadata mirror with --online.

The online tests run huggingface_hub against a local 127.0.0.1 server that speaks the hub endpoints
huggingface_hub uses (``/api/models/{repo}/revision/{rev}``, ``/{repo}/resolve/{rev}/{file}`` with HEAD,
Range and the X-Repo-Commit / X-Linked-* headers) and serves files from a fixture folder by seeking.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelcheck.facts import source as hub
from modelcheck.errors import UsageError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "Qwen/Tiny-Instruct"
CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 64,
    "num_hidden_layers": 2,
}


def _make_repo(root: Path) -> Path:
    """A sharded safetensors repo written by the real safetensors library."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(CONFIG))
    (root / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    shard1 = {"model.embed_tokens.weight": np.zeros((256, 1024), dtype=np.float32)}  # 1 MiB of data
    shard2 = {"lm_head.weight": np.ones((16, 64), dtype=np.float16)}
    save_file(shard1, str(root / "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    save_file(shard2, str(root / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": 256 * 1024 * 4 + 16 * 64 * 2},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors",
        },
    }
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    (root / "pytorch_model.bin").write_bytes(b"\0" * 4096)  # never downloaded: written sparse
    return root


class Hub:
    """State of the fake hub: what it serves and what it was asked."""

    def __init__(self, files: Path, token: str | None = None) -> None:
        self.files = files
        self.token = token
        self.requests: list[tuple[str, str, str | None, str | None]] = []  # method, path, range, auth

    def siblings(self) -> list[dict]:
        out = []
        for p in sorted(self.files.rglob("*")):
            if not p.is_file():
                continue
            rel = p.relative_to(self.files).as_posix()
            size = p.stat().st_size
            entry = {"rfilename": rel, "size": size, "blobId": hashlib.sha1(rel.encode()).hexdigest()}
            if p.suffix in (".safetensors", ".bin", ".gguf"):
                entry["lfs"] = {
                    "size": size,
                    "sha256": hashlib.sha256(rel.encode()).hexdigest(),
                    "pointerSize": 134,
                }
            out.append(entry)
        return out


def _handler(state: Hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(
            self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False
        ) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _authorized(self) -> bool:
            return state.token is None or self.headers.get("Authorization") == f"Bearer {state.token}"

        def _serve(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            state.requests.append(
                (self.command, path, self.headers.get("Range"), self.headers.get("Authorization"))
            )
            if not self._authorized():
                return self._send(
                    401,
                    b'{"error":"Invalid credentials"}',
                    {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"},
                    head,
                )
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                if m.group(1) != REPO:
                    return self._send(
                        404,
                        b'{"error":"Repository not found"}',
                        {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"},
                        head,
                    )
                body = json.dumps(
                    {
                        "id": REPO,
                        "modelId": REPO,
                        "sha": COMMIT,
                        "private": False,
                        "siblings": state.siblings(),
                    }
                ).encode()
                return self._send(200, body, {"Content-Type": "application/json"}, head)
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if not m or m.group(1) != REPO or m.group(2) not in (COMMIT, "main"):
                return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, head)
            file = state.files / m.group(3)
            if not file.is_file():
                return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, head)
            size = file.stat().st_size
            etag = hashlib.sha256(m.group(3).encode()).hexdigest()
            headers = {
                "ETag": f'"{etag}"',
                "X-Repo-Commit": COMMIT,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if file.suffix in (".safetensors", ".bin", ".gguf"):
                headers.update({"X-Linked-Size": size, "X-Linked-Etag": f'"{etag}"'})
            rng = self.headers.get("Range")
            start, end = 0, size - 1
            code = 200
            if rng:
                rm = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                start = int(rm.group(1))
                end = min(int(rm.group(2)) if rm.group(2) else size - 1, size - 1)
                code = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            with open(file, "rb") as fh:  # serve the range by seeking: never the whole file
                fh.seek(start)
                body = b"" if head else fh.read(end - start + 1)
            headers["Content-Length"] = end - start + 1
            self._send(code, body, headers, head)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

    return Handler


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch):
    state = Hub(_make_repo(tmp_path / "served"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("MODELCHECK_CACHE_DIR", str(tmp_path / "mc-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield state
    server.shutdown()
    server.server_close()


def test_online_mirror_has_real_headers_true_sizes_and_no_weight_data(fake_hub: Hub, tmp_path: Path) -> None:
    folder = Path(hub.materialize(f"hf://{REPO}", online=True))
    served = fake_hub.files
    assert folder == tmp_path / "mc-cache" / "hub" / "models--Qwen--Tiny-Instruct" / "snapshots" / COMMIT
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in served.iterdir())
    assert json.loads((folder / "config.json").read_text()) == CONFIG
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        real, mirror = (served / name).read_bytes(), (folder / name).read_bytes()
        assert len(mirror) == len(real)
        n = int.from_bytes(real[:8], "little")
        assert mirror[: 8 + n] == real[: 8 + n]  # the header, byte for byte
        assert mirror[8 + n :] == b"\0" * (len(real) - 8 - n)  # the data: a hole
    big = folder / "model-00001-of-00002.safetensors"
    assert big.stat().st_blocks * 512 < big.stat().st_size  # sparse on disk
    assert (folder / "pytorch_model.bin").stat().st_size == 4096

    # Weights were only ever read by range requests, within the first 100 kB (the header).
    weight_gets = [r for r in fake_hub.requests if r[0] == "GET" and r[1].endswith((".safetensors", ".bin"))]
    assert weight_gets and all(r[2] is not None and r[2].startswith("bytes=0-") for r in weight_gets)
    assert all(int(r[2].split("-")[1]) < 100_001 for r in weight_gets)
    assert not any(r[1].endswith(".bin") for r in fake_hub.requests)
    # the user's HF cache was not touched; the manifest records the commit
    assert not (tmp_path / "hf-cache").exists()
    manifest = json.loads((folder.parent.parent / hub.MIRROR_MARKER).read_text())
    assert manifest["commit"] == COMMIT
    assert {f["path"]: f["mode"] for f in manifest["files"]}["model-00001-of-00002.safetensors"] == "header"

    # second run: reused (one model_info call, no file requests)
    before = len(fake_hub.requests)
    assert hub.materialize(REPO, online=True) == str(folder)
    assert [r[1] for r in fake_hub.requests[before:]] == [f"/api/models/{REPO}"]


def test_online_mirror_is_read_by_facts(fake_hub: Hub) -> None:
    facts_mod = pytest.importorskip("modelcheck.facts")
    facts = facts_mod.gather(hub.materialize(f"hf://{REPO}", online=True))
    assert facts.name == REPO
    assert facts.config == CONFIG
    assert facts.weights.total_bytes == 256 * 1024 * 4 + 16 * 64 * 2
    assert sorted(h.path for h in facts.safetensors) == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert not [e for e in facts.errors if e.kind == "safetensors"]


def test_hf_token_is_sent(fake_hub: Hub, monkeypatch) -> None:
    fake_hub.token = "hf_secret"
    with pytest.raises(
        UsageError, match=r"hf://Qwen/Tiny-Instruct: cannot fetch metadata from http://127\.0\.0\.1:\d+"
    ):
        hub.materialize(f"hf://{REPO}", online=True)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert Path(hub.materialize(f"hf://{REPO}", online=True), "config.json").is_file()
    assert all(r[3] == "Bearer hf_secret" for r in fake_hub.requests[1:])


def test_unknown_repo_is_one_line_usage_error(fake_hub: Hub) -> None:
    with pytest.raises(UsageError) as err:
        hub.materialize("hf://nobody/nothing", online=True)
    assert str(err.value).startswith("hf://nobody/nothing: cannot fetch metadata from http://127.0.0.1:")
    assert str(err.value).endswith("repository not found (or private: set HF_TOKEN)")


def test_offline_env_forbids_online(fake_hub: Hub, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="--online was given but HF_HUB_OFFLINE is set"):
        hub.materialize(f"hf://{REPO}", online=True)
    assert fake_hub.requests == []


def test_offline_uses_hf_cache_snapshot(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(UsageError) as err:
        hub.materialize("hf://Qwen/Qwen2.5-7B-Instruct", online=False)
    assert str(err.value) == (
        f"hf://Qwen/Qwen2.5-7B-Instruct is not in the local Hugging Face cache ({cache}); "
        "pass --online to fetch metadata"
    )
    # a bare org/name that is neither a path nor cached: most often a mistyped local folder
    with pytest.raises(UsageError) as err:
        hub.materialize("models/qwen-7b", online=False)
    assert str(err.value) == (
        f"models/qwen-7b: no such file or folder (nor a Hugging Face repo id in the local cache {cache}; "
        "for the hub use hf://models/qwen-7b --online)"
    )
    repo = cache / "models--Qwen--Qwen2.5-7B-Instruct"
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(CONFIG))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    assert hub.materialize("hf://Qwen/Qwen2.5-7B-Instruct", online=False) == str(repo)
    assert hub.materialize("Qwen/Qwen2.5-7B-Instruct@main", online=False) == str(snap)
    assert hub.materialize("Qwen/Qwen2.5-7B-Instruct@0123456", online=False) == str(snap)
    with pytest.raises(UsageError, match="revision 'v2' is not in the local Hugging Face cache"):
        hub.materialize("Qwen/Qwen2.5-7B-Instruct@v2", online=False)


def test_hf_home_and_ref_parsing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.hf_cache_dir() == str(tmp_path / "home" / "hub")
    assert hub.parse_ref("hf://Qwen/Qwen2.5-7B-Instruct@v1.0") == hub.HubRef(
        "Qwen/Qwen2.5-7B-Instruct", "v1.0"
    )
    assert hub.parse_ref("hf://models/org/name") == hub.HubRef("org/name")
    for bad in ("hf://a", "hf://a/b/c", "hf://../x", "hf://a/.."):
        with pytest.raises(UsageError, match="is not a Hugging Face model reference"):
            hub.parse_ref(bad)
