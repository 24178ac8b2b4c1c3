"""A task's output made fit to sit inside a larger markdown document (final_output.md).

Raw text (a shell task's stdout: a diff, ``ls -l``, a log) is not markdown: pasted as it is, its
lines merge into paragraphs and ``- removed`` lines become bullets. It goes into a code block.
Markdown (an agent's answer) keeps its form, but its headings are moved below the heading it is
put under: an answer's ``# Summary`` must not outrank the task's own ``### T-05``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from orchestrator.output.templates import fence

_MAX_LEVEL = 6
_ATX = re.compile(r"^( {0,3})(#{1,6})(?=[ \t]|$)")
# A line that may be a heading (ATX) or a setext underline: only then is the text parsed.
_MAYBE_HEADING = re.compile(r"^ {0,3}(?:#{1,6}(?:[ \t]|$)|=+[ \t]*$|-+[ \t]*$)", re.M)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Block structure is all that is needed: inline parsing off, as in plan.markdown.
    return MarkdownIt("commonmark", {"html": True}).disable(["inline", "text_join"])


def output_form(result_format: str, backend: str | None) -> str:
    """``markdown`` or ``text``: the ``result_format`` setting, and for ``auto`` by the backend
    that made the output (a shell task's stdout is text; agents answer in markdown)."""
    if result_format != "auto":
        return result_format
    return "text" if backend == "shell" else "markdown"


def as_code_block(text: str) -> str:
    """Raw text as a fenced code block that nothing inside it can close."""
    return fence(text, "text")


def demote_headings(text: str, below: int) -> str:
    """``text`` with its headings moved down so that the highest is level ``below + 1``; their
    order among themselves is kept (levels past 6 stay at 6). Setext headings (a line underlined
    with ``===`` or ``---``) become ``#`` headings. Headings inside code blocks, lists or quotes
    are text of theirs, and stay as they are."""
    if not _MAYBE_HEADING.search(text):
        return text
    lines = text.split("\n")
    found: list[tuple[int, int, int, bool]] = []  # (first line, end line, level, setext)
    for token in _parser().parse(text):
        if token.type == "heading_open" and token.level == 0 and token.map:
            start, end = token.map
            found.append((start, end, int(token.tag[1]), not token.markup.startswith("#")))
    if not found:
        return text
    shift = below + 1 - min(level for _, _, level, _ in found)
    if shift <= 0:
        return text
    for start, end, level, setext in reversed(found):
        marks = "#" * min(_MAX_LEVEL, level + shift)
        if setext:  # its text lines, then the underline: one ATX line
            words = " ".join(line.strip() for line in lines[start : end - 1])
            lines[start:end] = [f"{marks} {words}"]
        else:
            line = lines[start]
            match = _ATX.match(line)
            if match is not None:
                lines[start] = match.group(1) + marks + line[match.end() :]
    return "\n".join(lines)


def quoted_in(part: str, whole: str) -> bool:
    """Whether ``part`` appears in ``whole`` as whole lines, verbatim: a report that repeats an
    upstream result. Blank ``part`` is quoted nowhere."""
    lines = part.strip("\n")
    if not lines.strip():
        return False
    return f"\n{lines}\n" in f"\n{whole}\n"
