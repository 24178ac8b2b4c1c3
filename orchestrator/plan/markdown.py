"""Markdown structure with source line numbers: frontmatter, ``##`` sections, tables, section rewrites.

Everything here works on line ranges of the original text, so a rewrite can replace exactly the
lines of one section and leave every other byte of the file as it was.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from orchestrator.yamlio import load_flat, safe_load

if TYPE_CHECKING:  # (markdown-it is imported when a document is first parsed: `_parser`)
    from markdown_it import MarkdownIt
    from markdown_it.token import Token


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Inline parsing is switched off: we only need block structure and the raw text of each block,
    # and skipping it makes a 10,000-row table several times cheaper to read.
    # Tables are read by ``tables_in`` from their paragraphs, for the same reason.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).disable(["inline", "text_join"])


def headings(text: str) -> list[tuple[int, int, bool]]:
    """Each heading of ``text`` as Markdown reads it: its 1-based line, its level, and whether it
    is a setext one (text underlined with ``===`` or ``---``), which no ``#`` tells."""
    found = []
    for token in _parser().parse(text):
        if token.type == "heading_open" and token.map:
            found.append((token.map[0] + 1, int(token.tag[1]), token.markup in ("=", "-")))
    return found


_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# Where str.splitlines splits besides LF, CRLF and CR.
_OTHER_BREAKS_RE = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def split_lines(text: str) -> list[str]:
    """``text`` split after each line ending, keeping the endings.

    Only LF, CRLF and CR end a line, as in markdown-it; ``str.splitlines`` also splits at form
    feeds, U+0085 and U+2028, which would put our line numbers out of step with the parser's. In
    a text without those it splits the same, in half the time of the regular expression.
    """
    if _OTHER_BREAKS_RE.search(text) is None:
        return text.splitlines(keepends=True)
    return _LINE_RE.findall(text)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def fence_opening(line: str) -> str | None:
    """The marker of the code fence ``line`` opens (```` ``` ````, ``~~~~``...), or ``None``.
    A backtick fence's info string may hold no backtick (CommonMark)."""
    match = _FENCE.match(line.rstrip("\r\n"))
    if match is None or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1)


def fence_closes(line: str, marker: str) -> bool:
    """Whether ``line`` closes the fence ``marker`` opened: the same character, at least as
    many, and nothing after them but spaces (CommonMark)."""
    match = _FENCE.match(line.rstrip("\r\n"))
    return (
        match is not None
        and match.group(1)[0] == marker[0]
        and len(match.group(1)) >= len(marker)
        and not match.group(2).strip()
    )


def outside_fences(lines: list[str]) -> list[int]:
    """The indexes of the lines that are not inside a fenced code block (nor its fence lines)."""
    found: list[int] = []
    marker: str | None = None
    for index, line in enumerate(lines):
        if marker is not None:
            if fence_closes(line, marker):
                marker = None
            continue
        marker = fence_opening(line)
        if marker is None:
            found.append(index)
    return found


def normalize_heading(text: str) -> str:
    """``"## 📋 Task Decomposition:"`` -> ``"task decomposition"``."""
    words = re.sub(r"[^0-9a-z]+", " ", text.lower()).split()
    return " ".join(words)


class FrontmatterError(ValueError):
    """Raised by ``split_frontmatter`` with the 1-based line of the problem (and what to do, when
    it is not to fix the YAML)."""

    def __init__(self, line: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.hint = hint


@dataclass(slots=True)
class Frontmatter:
    data: dict[str, object]
    key_lines: dict[str, int]  # key -> 1-based line in the file
    body_offset: int  # 0-based index of the first body line


FRONTMATTER_LIMIT = 256 * 1024  # characters: settings, not data (a long prompt belongs in a profile)


def split_frontmatter(lines: list[str]) -> Frontmatter:
    """Parse an optional leading ``---`` YAML block; line numbers refer to ``lines`` (1-based)."""
    if not lines or lines[0].strip() != "---":
        return Frontmatter({}, {}, 0)
    for end in range(1, len(lines)):
        if lines[end].strip() in {"---", "..."}:
            break
    else:
        raise FrontmatterError(1, "frontmatter opened with '---' is never closed")
    size = sum(len(line) for line in lines[1:end])
    if size > FRONTMATTER_LIMIT:
        raise FrontmatterError(
            1,
            f"the frontmatter is {size:,} characters, more than the {FRONTMATTER_LIMIT:,} it may have",
            "keep it to settings: long text such as a system prompt goes in a profile (agents/NAME.md)",
        )
    data: object = load_flat(lines[1:end])  # most frontmatter is plain settings: no PyYAML then
    if data is None:
        data = _load_yaml(lines[1:end])
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontmatterError(2, "frontmatter must be a mapping of 'setting: value' lines")
    key_lines: dict[str, int] = {}
    for index in range(1, end):
        match = re.match(r"^([A-Za-z0-9_-]+)\s*:", lines[index])
        if match and match.group(1) in key_lines:  # YAML keeps the last value: a cap above it is not in force
            first = key_lines[match.group(1)]
            raise FrontmatterError(index + 1, f"'{match.group(1)}' is set twice (first on line {first})", "keep one")
        if match:
            key_lines[match.group(1)] = index + 1
    return Frontmatter({str(k): v for k, v in data.items()}, key_lines, end + 1)


def misplaced_frontmatter(lines: list[str], names: Collection[str]) -> int | None:
    """The 1-based line of a ``---`` above the task table, outside code fences, whose next line
    sets one of the settings ``names``: the frontmatter a person meant, below a blank line or a
    title, where it is not read (only a block on the file's first line is). ``None`` if none."""
    for index in outside_fences(lines):
        line = lines[index]
        if line.lstrip().startswith("|"):  # the task table: settings come before it
            return None
        if line.strip() != "---":
            continue
        following = next((later for later in lines[index + 1 :] if later.strip()), "")
        match = re.match(r"^([A-Za-z0-9_-]+)\s*:", following)
        if match and match.group(1).replace("-", "_") in names:
            return index + 1
    return None


def _load_yaml(lines: list[str]) -> object:
    import yaml

    try:
        return safe_load("".join(lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontmatterError(line, f"frontmatter is not valid YAML: {problem}") from None


@dataclass(slots=True)
class Table:
    header: list[str]
    header_line: int  # 1-based
    rows: list[tuple[int, list[str]]]  # (1-based line, cells)


@dataclass(slots=True)
class Section:
    """A ``#``/``##`` heading and the lines up to the next heading of the same or higher level."""

    title: str
    key: str  # normalized title
    level: int
    start: int  # 0-based line of the heading
    end: int  # 0-based line after the section
    body_start: int = -1  # 0-based line after the heading (a setext heading has two lines)
    tokens: list[Token] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.body_start < 0:
            self.body_start = self.start + 1


@dataclass(slots=True)
class Document:
    lines: list[str]
    offset: int  # 0-based line where the markdown body starts (after frontmatter)
    sections: list[Section]
    unclosed_fence: int | None = None  # 1-based line of a code fence that runs to the end of the file

    def section(self, *keys: str) -> Section | None:
        for section in self.sections:
            if section.level == 2 and section.key in keys:
                return section
        return None

    def source(self, start: int, end: int) -> str:
        return "".join(self.lines[start:end])


def _collapse_pipe_runs(lines: list[str], offset: int) -> tuple[str, list[int]]:
    """The text markdown-it sees, with each run of lines that start with ``|`` folded into its first
    line, and for every line of that text the 0-based line of ``lines`` it stands for (plus one
    entry for the end).

    A run of table rows is one paragraph to the block parser whether it is 3 lines or 10,000, but
    the parser's cost grows with every line; folded, a 10,000-task plan parses in milliseconds.
    Table rows are read from the original lines by ``tables_in``.
    """
    kept: list[str] = []
    origin: list[int] = []
    previous_pipe = False
    for index in range(offset, len(lines)):
        line = lines[index]
        is_pipe = line.lstrip(" ").startswith("|") and len(line) - len(line.lstrip(" ")) < 4
        if is_pipe and previous_pipe:
            continue
        kept.append(line if line.endswith(("\n", "\r")) else line + "\n")
        origin.append(index)
        previous_pipe = is_pipe
    origin.append(len(lines))
    return "".join(kept), origin


def parse_document(lines: list[str], offset: int = 0) -> Document:
    """Block-parse ``lines[offset:]`` into level-1/2 sections, keeping absolute 0-based line numbers."""
    text, origin = _collapse_pipe_runs(lines, offset)
    tokens = _parser().parse(text)
    for token in tokens:
        if token.map:
            token.map = [origin[token.map[0]], origin[token.map[1]]]
    sections: list[Section] = []
    current: Section | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open" and token.tag in {"h1", "h2"} and token.map:
            title = tokens[index + 1].content
            start = token.map[0]
            if current is not None:
                current.end = start
            level, body_start = int(token.tag[1]), token.map[1]
            current = Section(title, normalize_heading(title), level, start, len(lines), body_start)
            sections.append(current)
            index += 3
            continue
        if current is not None:
            current.tokens.append(token)
        index += 1
    return Document(lines, offset, sections, _unclosed_fence(tokens, lines))


def _unclosed_fence(tokens: list[Token], lines: list[str]) -> int | None:
    """A fence that is never closed swallows the rest of the file, sections written later included."""
    for token in tokens:
        if token.type == "fence" and token.map and token.map[1] >= len(lines):
            start, end = token.map
            last = lines[end - 1].strip() if end - 1 > start else ""
            marker = token.markup
            if not (last.startswith(marker) and set(last) == {marker[0]}):
                return start + 1
    return None


def split_row(line: str) -> list[str]:
    """GFM cell split on unescaped pipes (GFM splits inside code spans too); the cells as they
    are written (escapes kept, spaces around them too)."""
    text = line.strip()
    if "\\" not in text:
        cells = text.split("|")
        if text.startswith("|"):
            cells = cells[1:]
        if text.endswith("|") and cells:
            cells = cells[:-1]
        return cells
    cells = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
    cells.append("".join(current))
    if text.startswith("|"):
        cells = cells[1:]
    if text.endswith("|") and not text.endswith("\\|") and cells:
        cells = cells[:-1]
    return cells


_DELIMITER_CELL = re.compile(r"^\s*:?-+:?\s*$")


def _is_delimiter(cells: list[str]) -> bool:
    return bool(cells) and all(_DELIMITER_CELL.match(cell) for cell in cells)


def is_delimiter_row(line: str) -> bool:
    """``|---|:---:|``, whatever its number of cells."""
    return "|" in line and _is_delimiter(split_row(line))


def tables_in(tokens: list[Token], lines: list[str]) -> list[Table]:
    """Every GFM table among ``tokens`` with its cells (raw text, ``\\|`` unescaped) and 1-based lines.

    markdown-it's own table rule makes a token per cell (370,000 for a 10,000-row plan, seconds of
    work), so tables are read here from the paragraphs that hold them, by the GFM rules: a header
    row, a delimiter row with as many cells, then rows until a line without a pipe.
    """
    tables: list[Table] = []
    for token in tokens:
        if token.type != "paragraph_open" or not token.map:
            continue
        start, end = token.map
        index = start
        while index < end - 1:
            header = lines[index]
            if "|" in header and "-" in lines[index + 1]:
                header_cells = split_row(header)
                delimiter = split_row(lines[index + 1])
                if len(header_cells) == len(delimiter) and _is_delimiter(delimiter):
                    table = Table([_cell(c) for c in header_cells], index + 1, [])
                    row = index + 2
                    while row < end and "|" in (source := lines[row]):
                        cells = split_row(source)
                        # _cell's unescaping only matters in a row that has a backslash
                        table.rows.append(
                            (row + 1, [_cell(c) for c in cells] if "\\" in source else [c.strip() for c in cells])
                        )
                        row += 1
                    tables.append(table)
                    index = row
                    continue
            index += 1
    return tables


def _cell(text: str) -> str:
    return text.strip().replace("\\|", "|")


def pipe_runs(section: Section, lines: list[str], start: int) -> list[tuple[int, int]]:
    """Runs of lines that start with ``|`` (as a table row does: indented less than 4 spaces) in
    ``section`` from the 0-based line ``start`` on, outside code and HTML blocks: ``(first, end)``, 0-based,
    ``end`` excluded. What follows a table there: rows a blank line or a note cut off from it, or
    another table."""
    # (an HTML block too: rows commented out between '<!--' and '-->' lines are meant not to run)
    blocks = [tok.map for tok in section.tokens if tok.type in {"fence", "code_block", "html_block"} and tok.map]
    code = {index for first, end in blocks for index in range(first, end)}  # (one look a line, however many blocks)
    runs: list[tuple[int, int]] = []
    first: int | None = None
    in_block = False  # between the markers of a block the tool writes (state.planfile): its own table
    for index in range(max(start, section.body_start), section.end):
        line = lines[index]
        stripped = line.lstrip(" ")
        if stripped.startswith("<!--"):
            marker = stripped[4:].lstrip()
            if marker.startswith("orchestrator:begin"):
                in_block = True
            elif marker.startswith("orchestrator:end"):
                in_block = False
        is_row = stripped.startswith("|") and len(line) - len(stripped) < 4 and not in_block and index not in code
        if is_row and first is None:
            first = index
        elif not is_row and first is not None:
            runs.append((first, index))
            first = None
    if first is not None:
        runs.append((first, section.end))
    return runs


def starts_table(lines: list[str], index: int, end: int) -> list[str] | None:
    """The header cells of the GFM table whose header is line ``index`` (0-based), or ``None``."""
    if index + 1 >= end:
        return None
    header, delimiter = split_row(lines[index]), split_row(lines[index + 1])
    if len(header) != len(delimiter) or not _is_delimiter(delimiter):
        return None
    return [_cell(c) for c in header]


def pipe_paragraphs(tokens: list[Token]) -> list[int]:
    """1-based first lines of paragraphs that look like a table but did not parse as one."""
    found: list[int] = []
    for index, token in enumerate(tokens):
        if token.type == "paragraph_open" and token.map and index + 1 < len(tokens):
            content = tokens[index + 1].content
            if content.lstrip().startswith("|") and content.count("|") >= 2:
                found.append(token.map[0] + 1)
    return found


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)\s*$")


def fenced_whole(lines: list[str]) -> tuple[int, int, str] | None:
    """Where a text written whole inside one code fence opens and closes it (1-based lines) and
    the fence (```` ```markdown ````): its first line that is not blank opens a fence of no
    language but markdown, what it holds begins as a plan does (``---`` or a heading), and its
    last line closes it. ``None`` for any other text."""
    filled = [number for number, line in enumerate(lines, start=1) if line.strip()]
    if len(filled) < 2:
        return None
    first, last = filled[0], filled[-1]
    opening = _FENCE.match(lines[first - 1].rstrip("\r\n"))
    closing = _FENCE.match(lines[last - 1].rstrip("\r\n"))
    if opening is None or closing is None or closing.group(2) or closing.group(1)[0] != opening.group(1)[0]:
        return None
    if opening.group(2).lower() not in ("", "markdown", "md") or len(closing.group(1)) < len(opening.group(1)):
        return None
    inside = next((line.strip() for line in lines[first : last - 1] if line.strip()), "")
    if inside != "---" and not inside.startswith("#"):  # (what a plan begins with: settings, or a title)
        return None
    return first, last, opening.group(1) + opening.group(2)
