"""Wrap text lines to a width with hanging indents, ANSI colour codes kept and not counted.

Words are never broken (a long path stays whole on a line of its own); a continuation line is indented
under the text it continues: a finding's message under its rule code, a ``fix:`` under the fix, a
``label: value`` line under its value, anything else two columns in from its own indent.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FINDING = re.compile(r"^( *)(error|warning|info) +")
_LABEL = re.compile(r"^( *)(fix|evidence|target|assumes|log|memory|smoke|not checked): ")
_SPACES = re.compile(r"( +)")


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def hang(plain: str) -> int:
    """Columns a continuation of ``plain`` (a line without colour codes) is indented by."""
    for pattern in (_FINDING, _LABEL):
        m = pattern.match(plain)
        if m:
            return len(m.group(0))
    return len(plain) - len(plain.lstrip(" ")) + 2


def wrap_line(line: str, width: int | None) -> list[str]:
    if not width or visible_len(line) <= width:
        return [line]
    plain = _ANSI.sub("", line)
    indent = hang(plain)
    if indent >= width // 2:
        indent = min(len(plain) - len(plain.lstrip(" ")) + 2, width // 2)
    lead_len = len(line) - len(line.lstrip(" "))
    parts = _SPACES.split(line[lead_len:])  # word, spaces, word, spaces...
    out: list[str] = []
    current = line[:lead_len]
    current_len = lead_len
    fresh = True  # nothing but indentation on the current line yet
    i = 0
    while i < len(parts):
        word = parts[i]
        gap = parts[i - 1] if i > 0 else ""
        wlen = visible_len(word)
        if fresh:
            current += word
            current_len += wlen
            fresh = False
        elif current_len + len(gap) + wlen <= width:
            current += gap + word
            current_len += len(gap) + wlen
        else:
            out.append(current)
            current = " " * indent + word
            current_len = indent + wlen
        i += 2
    out.append(current)
    return out


def wrap_lines(lines: list[str], width: int | None) -> list[str]:
    if not width:
        return list(lines)
    out: list[str] = []
    for line in lines:
        out.extend(wrap_line(line, width))
    return out
