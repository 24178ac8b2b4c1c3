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

from orchestrator import backends
from orchestrator.output.templates import fence
from orchestrator.plan.markdown import fence_closes, fence_opening

_MAX_LEVEL = 6
_ATX = re.compile(r"^( {0,3})(#{1,6})(?=[ \t]|$)")
# A line that may be a heading (ATX) or a setext underline: only then is the text parsed.
_MAYBE_HEADING = re.compile(r"^ {0,3}(?:#{1,6}(?:[ \t]|$)|=+[ \t]*$|-+[ \t]*$)", re.M)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Block structure is all that is needed: inline parsing off, as in plan.markdown.
    return MarkdownIt("commonmark", {"html": True}).disable(["inline", "text_join"])


def output_form(result_format: str, backend: str | None, output: str | None = None) -> str:
    """``markdown`` or ``text``: the ``result_format`` setting, and for ``auto`` by the backend
    that made the output (agents answer in markdown) and, for a shell task's stdout, by the output
    itself when it is given: markdown when it plainly is (``looks_like_markdown``), else text."""
    if result_format != "auto":
        return result_format
    if not backends.runs_script(backend):
        return "markdown"
    return "markdown" if output is not None and looks_like_markdown(output) else "text"


# Blocks a markdown report is made of; anything else (an indented code block, raw HTML) is taken
# for text a command printed.
_MARKDOWN_BLOCKS = {
    "heading_open", "bullet_list_open", "ordered_list_open", "table_open", "fence", "hr", "blockquote_open",
}  # fmt: skip
_STRUCTURE = {"heading_open", "bullet_list_open", "ordered_list_open", "table_open", "fence"}
_TAG = re.compile(r"<[A-Za-z/!?]")


@lru_cache(maxsize=1)
def _table_parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable("table").disable(["inline", "text_join"])


def looks_like_markdown(text: str) -> bool:
    """Whether a command's output is plainly a markdown document, to be shown as one: it has a
    heading, a list, a table or a fenced block; every fence it opens is closed; it has no HTML
    (nothing like a tag: a stray ``<script>`` stays text) and no indented code block; and no
    paragraph runs over two lines (``ls``, ``grep``, a diff, a script's source: lines that markdown
    would merge into one are text). Anything in doubt stays text, in a code block."""
    if not text.strip() or _TAG.search(text) or _open_fence(text):
        return False
    structured = False
    for token in _table_parser().parse(text):
        if token.type == "paragraph_open":
            if token.map is not None and token.map[1] - token.map[0] > 1:
                return False
        elif token.type in ("html_block", "code_block"):
            return False
        elif token.level == 0 and (token.type.endswith("_open") or token.type in ("fence", "hr")):
            if token.type not in _MARKDOWN_BLOCKS:
                return False
            structured = structured or token.type in _STRUCTURE
    return structured


def _open_fence(text: str) -> bool:
    """Whether a code fence ``text`` opens is left open (it would swallow what follows it)."""
    marker: str | None = None
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if marker is not None:
            if fence_closes(stripped, marker):
                marker = None
        else:
            marker = fence_opening(stripped)
    return marker is not None


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
