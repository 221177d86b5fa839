"""Make model-supplied text (file names, pickle global names, archive members) safe to print.

A file name or a global name in a pickle is chosen by whoever made the model: ``\\r`` returns the
cursor and overwrites the error line, ESC starts ANSI/OSC sequences (set the window title, hyperlinks,
clear the screen), BEL rings. ``for_terminal`` shows every C0/C1 control character, DEL and the Unicode
bidi/format controls as visible escapes (``\\r``, ``\\x1b``, ``\\u202e``); newlines in our own multi-line
output are added by the formatters, never taken from the data.
"""

from __future__ import annotations

import re

# C0 (except nothing: \n and \t in a name are suspicious too), DEL, C1, and the Unicode format/bidi
# controls that reorder or hide text (Trojan Source, CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x1b": "\\x1b", "\x07": "\\a", "\x08": "\\b"}


def _show(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """``text`` with control characters shown as escapes (one line, nothing the terminal interprets)."""
    return _CONTROL.sub(_show, text) if _CONTROL.search(text) else text
