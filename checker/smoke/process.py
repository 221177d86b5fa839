"""The server as a subprocess: free port, launch in its own process group, wait for /health, stop it all.

The server runs in a new session (``start_new_session``), so its process group holds vLLM's API server,
engine core and workers; ``stop`` signals the whole group (SIGTERM, then SIGKILL after a grace period)
and waits until no member is left. ``ServerProcess`` is a context manager so that Ctrl-C, a timeout or
any exception still stops the group; SIGTERM and SIGHUP to modelcheck itself are turned into an exception
while a server runs, for the same reason. Container runtimes (docker, podman) get a ``--name`` so that
the container, which the runtime's client process does not own, is removed too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

CONTAINER_RUNTIMES = ("docker", "podman", "nerdctl")


class Interrupted(KeyboardInterrupt):
    """modelcheck got SIGTERM or SIGHUP while the server ran (treated like Ctrl-C)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids whose process group is ``pgid`` (Linux /proc; empty elsewhere)."""
    out: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." ; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds while only zombies remain: ask /proc when we can
    return bool(group_members(pgid)) if Path("/proc").is_dir() else True


class ServerProcess:
    """One server run. ``command`` is final (placeholders already filled)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        stop_grace_s: float = 10.0,
        container_name: str | None = None,
    ) -> None:
        self.command = tuple(command)
        self.log_path = Path(log_path)
        self.env = env
        self.stop_grace_s = stop_grace_s
        self.container_name = container_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self.started_at: float | None = None
        self._old_handlers: dict[int, object] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            self._install_signal_handlers()
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: we can signal all of it, and Ctrl-C in
                # the terminal reaches only us, so the stop below runs in order
            )
            self.pgid = self.proc.pid  # session leader: pgid == pid
        except BaseException:
            self._restore_signal_handlers()
            raise
        finally:
            log.close()

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self) -> None:
        """Stop the whole process group; idempotent. SIGTERM, grace period, SIGKILL, wait until empty."""
        try:
            if self.proc is None or self.pgid is None:
                return
            if self.container_name:
                self._remove_container()
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_grace_s
            while time.monotonic() < deadline and _group_alive(self.pgid):
                self.proc.poll()  # reap the leader so it does not linger as a zombie
                time.sleep(0.1)
            if _group_alive(self.pgid):
                self._signal(signal.SIGKILL)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and _group_alive(self.pgid):
                    self.proc.poll()
                    time.sleep(0.05)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL of our own child cannot fail
                pass
        finally:
            self._restore_signal_handlers()

    def __enter__(self) -> ServerProcess:  # noqa: PYI034 - py3.10 has no typing.Self
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)  # type: ignore[arg-type]
        except (ProcessLookupError, PermissionError):
            pass

    def _remove_container(self) -> None:
        runtime = os.path.basename(self.command[0])
        try:
            subprocess.run(
                [self.command[0], "rm", "-f", self.container_name],  # type: ignore[list-item]
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            print(f"modelcheck: could not remove {runtime} container {self.container_name}", file=sys.stderr)

    # -- signals -------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def raise_interrupted(signum: int, _frame: object) -> None:
            raise Interrupted(f"received {signal.Signals(signum).name}")

        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, raise_interrupted)
            except (ValueError, OSError):  # pragma: no cover - not the main thread / platform
                pass

    def _restore_signal_handlers(self) -> None:
        while self._old_handlers:
            sig, handler = self._old_handlers.popitem()
            try:
                signal.signal(sig, handler)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):  # pragma: no cover
                pass

    # -- readiness -----------------------------------------------------------------------------
    def wait_ready(
        self,
        base_url: str,
        timeout_s: float,
        *,
        on_tick: Callable[[float], None] | None = None,
        poll_s: float = 0.5,
    ) -> str:
        """Poll ``/health`` until it answers 200. Returns "ready", "exited" or "timeout"."""
        assert self.proc is not None and self.started_at is not None
        deadline = self.started_at + timeout_s
        while True:
            if self.proc.poll() is not None:
                return "exited"
            if _health_ok(base_url):
                return "ready"
            now = time.monotonic()
            if on_tick:
                on_tick(now - self.started_at)
            if now >= deadline:
                return "timeout"
            time.sleep(min(poll_s, max(0.0, deadline - now)))

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.started_at is not None else 0.0


def _health_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: str | os.PathLike[str], lines: int = 20, max_bytes: int = 64 * 1024) -> tuple[str, ...]:
    """Last lines of the log (bounded read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ()
    return tuple(line for line in data.splitlines() if line.strip())[-lines:]


def read_log(path: str | os.PathLike[str], max_bytes: int = 32 * 1024 * 1024) -> str:
    """The whole log for parsing, bounded: a runaway log keeps its first and last halves."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(0)
            if size <= max_bytes:
                return f.read().decode("utf-8", "replace")
            head = f.read(max_bytes // 2)
            f.seek(size - max_bytes // 2)
            return (head + b"\n" + f.read()).decode("utf-8", "replace")
    except OSError:
        return ""
