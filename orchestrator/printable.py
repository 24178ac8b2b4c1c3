"""Text a task or an agent printed, made fit to show: no secret and no control character reaches a
terminal or a markdown file we write. Each secret is ``[redacted: NAME]`` (``redaction``). ESC,
BEL, NUL, DEL and the C1 controls are shown as ``\\x1b``, ``\\x07``, ``\\x00``..., so an OSC title
change, a clear-screen or a bell is seen and never acted on; newline and tab stay, and a CRLF line
end reads as a newline. ``logs/`` keeps the bytes as printed but for secrets (``redaction.Stream``);
``--json`` output is exact (JSON escapes control characters itself)."""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

from orchestrator import redaction

T = TypeVar("T")

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with each secret redacted and each control character but newline and tab written
    as ``\\xNN``."""
    text = redaction.text(text)
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text.replace("\r\n", "\n"))


def visible_data(value: T) -> T:
    """``value`` (JSON-like: dicts, lists, strings...) with ``visible`` applied to every string in
    it, keys too: what the dashboard sends of what agents printed (an event's ``stderr_tail``, a
    task's reason) is shown, never a raw ESC for the page to hold. ``visible`` twice is once, so
    text made visible already is left as it is."""
    shown: Any = value
    if isinstance(value, str):
        shown = visible(value)
    elif isinstance(value, dict):
        shown = {visible(key) if isinstance(key, str) else key: visible_data(item) for key, item in value.items()}
    elif isinstance(value, list | tuple):
        shown = [visible_data(item) for item in value]
    return cast(T, shown)
