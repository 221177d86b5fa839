"""A minimal OpenAI-compatible HTTP client (stdlib only): one streamed, greedy generation request.

Streaming gives the time to first token; ``stream_options.include_usage`` gives the token count. Works
against vLLM's and llama.cpp's OpenAI servers. Responses are read line by line with a bound on the total.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from modelcheck.record import record

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


@record
class Generation:
    text: str
    ttft_s: float | None  # first non-empty text
    total_s: float
    completion_tokens: int | None
    finish_reason: str | None
    first_token_at: float | None = None  # monotonic clock, for tokens/s over the decode phase
    last_token_at: float | None = None


class RequestError(Exception):
    """The server answered with an error or not at all; ``str`` is one line for the report."""


def generate(
    base_url: str,
    model: str,
    prompt: str,
    *,
    chat: bool,
    max_tokens: int,
    timeout_s: float,
    extra: dict[str, Any] | None = None,
) -> Generation:
    endpoint = "/v1/chat/completions" if chat else "/v1/completions"
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,  # greedy: the answer must not depend on luck
        "top_p": 1,
        "seed": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body.update(extra or {})
    req = urllib.request.Request(
        base_url + endpoint,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        method="POST",
    )
    started = time.monotonic()
    pieces: list[str] = []
    first: float | None = None
    last: float | None = None
    tokens: int | None = None
    finish: str | None = None
    received = 0
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            for raw in resp:
                received += len(raw)
                if received > MAX_RESPONSE_BYTES:
                    raise RequestError(f"{endpoint}: response larger than {MAX_RESPONSE_BYTES} bytes")
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    event = json.loads(payload)
                except json.JSONDecodeError:
                    raise RequestError(f"{endpoint}: unreadable stream event {payload[:80]!r}") from None
                if isinstance(event.get("error"), dict | str):
                    raise RequestError(f"{endpoint}: {_error_text(event['error'])}")
                usage = event.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    tokens = usage["completion_tokens"]
                for choice in event.get("choices") or ():
                    text = _choice_text(choice, chat)
                    if text:
                        now = time.monotonic()
                        first = first if first is not None else now
                        last = now
                        pieces.append(text)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
    except urllib.error.HTTPError as exc:
        detail = exc.read(4096).decode("utf-8", "replace")
        try:
            detail = _error_text(json.loads(detail).get("error", detail))
        except (json.JSONDecodeError, AttributeError):
            pass
        raise RequestError(f"{endpoint}: HTTP {exc.code}: {detail.strip()[:300]}") from None
    except (urllib.error.URLError, OSError) as exc:  # includes socket timeouts and resets
        reason = getattr(exc, "reason", exc)
        raise RequestError(f"{endpoint}: {type(exc).__name__}: {reason}") from None
    total = time.monotonic() - started
    return Generation(
        text="".join(pieces),
        ttft_s=(first - started) if first is not None else None,
        total_s=total,
        completion_tokens=tokens,
        finish_reason=finish,
        first_token_at=first,
        last_token_at=last,
    )


def _choice_text(choice: dict[str, Any], chat: bool) -> str:
    if chat:
        delta = choice.get("delta") or choice.get("message") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = choice.get("text")
    return text if isinstance(text, str) else ""


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def served_models(base_url: str, timeout_s: float = 5.0) -> list[str]:
    """Model ids the server lists under /v1/models (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(base_url + "/v1/models", timeout=timeout_s) as resp:
            data = json.loads(resp.read(1024 * 1024))
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)]
