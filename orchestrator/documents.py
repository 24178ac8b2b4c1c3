"""Markdown files with YAML frontmatter (briefs, results, profiles): the one place that reads
and composes them.

What we write ourselves is read back without PyYAML where its shape is beyond doubt
(``yamlio.load_simple``); a file a person edited goes through PyYAML (and python-frontmatter for
the split). Nothing here writes: ``state.store`` does, atomically.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator import yamlio
from orchestrator.vocabulary import TaskStatus


def last_line_starting(data: bytes, prefix: bytes) -> int | None:
    """The offset of the last line of ``data`` that starts with ``prefix`` (a JSON-lines file's
    last line of one kind), or ``None``."""
    found = data.rfind(prefix)
    while found > 0 and data[found - 1 : found] != b"\n":
        found = data.rfind(prefix, 0, found)
    return found if found >= 0 else None


def sha256(text: str) -> str:
    import hashlib  # (OpenSSL's, loaded when a digest is first taken: most commands take none)

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compose(metadata: Mapping[str, Any], body: str) -> str:
    """A frontmatter document: ``---``, YAML, ``---``, body; byte for byte what
    ``frontmatter.dumps`` writes with our YAML handler (a test holds them equal), without its
    Post object and template formatting, which cost more than the YAML on every result."""
    text = f"---\n{yamlio.dump(metadata)}\n---\n\n{body}".strip()
    return text + "\n"


def parse(text: str) -> tuple[dict[str, Any], str]:
    """Split a frontmatter document into (metadata, body); raises ``ValueError`` when it is malformed."""
    import frontmatter  # not at import: most commands never read YAML that is not ours
    import yaml

    try:
        # frontmatter.parse, not loads: loads builds a Post(content, handler, **metadata), which
        # breaks on a metadata key named 'content' or 'handler'.
        metadata, content = frontmatter.parse(text, handler=yamlio.handler())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MalformedFrontmatter(f"frontmatter is not valid YAML: {problem}", mark.line + 1 if mark else 1) from None
    if not isinstance(metadata, dict):
        raise MalformedFrontmatter("frontmatter is not a mapping", 2)
    return dict(metadata), str(content)


class MalformedFrontmatter(ValueError):
    """Raised by ``parse``: one line saying what is wrong, and the line of the file it is on."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class NotAFile(OSError):
    """Raised by ``read_regular`` for a path that is not a regular file (a directory, a FIFO, a
    device such as /dev/zero, a socket): reading one could block for ever or never end."""

    hint = "move it aside: the orchestrator reads only plain files there"

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", os.fspath(path))
        self.kind = kind


class TooLarge(OSError):
    """Raised by ``read_regular`` for a file of more than its ``limit`` bytes."""

    hint = "move it aside, or make it smaller"

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"is {size:,} bytes, more than the {limit:,} read", os.fspath(path))
        self.size = size
        self.limit = limit


TEXT_LIMIT = 256 * 1024 * 1024  # bytes of a brief or result ``read_text`` reads at most

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: Path) -> int:
    """A file descriptor open for reading on ``path``, which must be a regular file (a symlink to
    one will do): ``NotAFile`` otherwise, and the ``OSError`` of a file that cannot be opened. A
    FIFO is opened without waiting for a writer, and closed again at once."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotAFile(path, next((name for test, name in _KINDS if test(mode)), "not a file"))
    return fd


def read_regular(path: Path, limit: int = TEXT_LIMIT) -> bytes:
    """The bytes of ``path`` (as ``open_regular`` takes it), at most ``limit`` of them: ``TooLarge``
    for a longer file."""
    fd = open_regular(path)
    try:
        chunks = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # (the file grew past the limit, or was over it already)
                raise TooLarge(path, max(size, os.fstat(fd).st_size), limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path) -> str | None:
    """``path.read_text(encoding="utf-8")`` (newlines made ``\\n``), or ``None`` if the file is
    missing, unreadable or not UTF-8: with plain syscalls, for about 60% of the cost (the runner
    reads every brief as its task starts). Only a regular file of at most ``TEXT_LIMIT`` bytes is
    read: a FIFO or a device put in a brief's place would block the runner or never end."""
    try:
        return decode(read_regular(path, TEXT_LIMIT))
    except (OSError, UnicodeDecodeError):
        return None


def decode(data: bytes) -> str:
    """UTF-8 ``data`` as ``Path.read_text`` reads it: newlines made ``\\n``."""
    text = data.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def file_version(path: Path) -> tuple[int, int, int, int] | None:
    """What changes whenever ``path``'s content is changed or replaced (inode, size, modification
    and change times), or ``None`` if it cannot be looked at."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_body(path: Path) -> str | None:
    """The body of a frontmatter file without parsing its YAML (stripped, as python-frontmatter
    does), or ``None`` if the file is missing or unreadable.

    Results are read for their bodies by every dependent and by the aggregation; their metadata
    is not needed there, and YAML costs more than everything else in reading one.
    """
    text = read_text(path)
    if text is None:
        return None
    first = text.find("\n")
    if not text.startswith("---") or first < 0:
        return text.strip()
    end = closing_fence_end(text, first)
    if end is None:
        return text.strip()
    return text[end:].strip()


def output_of(text: str) -> str:
    """What a task printed, from the text of its result file: the body as written, only the one
    blank line ``compose`` puts after the frontmatter taken off (the first line keeps its
    indentation: ``   1016 x`` stays so); it ends with one newline, as ``compose`` ended it (what
    the task printed after its last line, blank lines and spaces, is not kept), or is empty."""
    first = text.find("\n")
    end = closing_fence_end(text, first) if text.startswith("---") and first >= 0 else None
    body = text[end:] if end is not None else text
    body = body[1:] if body.startswith("\n") else body  # (one a hand-written file lacks: nothing taken)
    return body.rstrip() + "\n" if body.strip() else ""


def read_output_head(path: Path, chars: int) -> tuple[str, bool] | None:
    """The first ``chars`` or more characters of what a task printed (``output_of``), and whether
    that is all of it; ``None`` as ``read_output``. Only so much of the file is read: a row's
    result over 100,000 items is tens of MB, of which final_output.md shows the start."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        data = os.read(fd, 64 * 1024 + 4 * chars)  # (its frontmatter, then at most 4 bytes a character)
        whole = len(data) < 64 * 1024 + 4 * chars or not os.read(fd, 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    return (output_of(text), True) if whole else (output_of(text).rstrip("\n"), False)


def read_output(path: Path) -> str | None:
    """What a task printed, from its result file at ``path`` (``output_of``), or ``None`` if the
    file is missing or unreadable: what ``output`` prints, the inputs file a later task reads,
    its upstream results in a prompt and final_output.md's section. (``read_body``, stripped, is
    for a brief and a hash of a body.)"""
    text = read_text(path)
    return output_of(text) if text is not None else None


def closing_fence_end(text: str, newline: int) -> int | None:
    """Where the body starts: just past the first line after ``newline`` (the index of a newline)
    that is ``---`` and nothing but spaces or tabs after it, and past that line's own newline.

    What ``re.compile(r"^---[ \t]*$\r?\n?", re.M).search(text, newline + 1).end()`` finds (a test
    holds them equal), for a tenth of its cost: the regex tries every position of a brief, a
    third of the work of reading one, and a brief's emoji makes each position four bytes wide.
    """
    size = len(text)
    while True:
        start = text.find("\n---", newline)
        if start < 0:
            return None
        end = start + 4
        while end < size and text[end] in " \t":
            end += 1
        if end == size:
            return end
        if text[end] == "\n":
            return end + 1
        newline = start + 1


def read_document(path: Path) -> tuple[dict[str, Any], str] | None:
    """(metadata, body) of a frontmatter file, or ``None`` if it is missing or unreadable."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def metadata_problem(path: Path) -> str | None:
    """Why ``read_metadata`` finds no frontmatter of a task in the file at ``path`` (it is not
    UTF-8, has no frontmatter, YAML that does not parse, names no task, or a status no task has),
    or ``None``: it reads (whichever task it names), or there is no such file."""
    try:
        with open(open_regular(path), encoding="utf-8") as handle:
            if handle.readline().strip() != "---":
                return "it does not start with a '---' frontmatter"
            if not any(line.rstrip("\r\n") == "---" for line in handle):
                return "its frontmatter has no closing '---'"
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    meta = read_metadata(path)
    if meta is None:
        return "its frontmatter is not valid YAML, or not a mapping"
    task = meta.get("task")
    if not (isinstance(task, str) and task):
        return "its frontmatter names no task ('task: T-01')"
    status = meta.get("status")
    if status is not None and TaskStatus.read(status) is None:
        return f"its status '{status}' is none of: {', '.join(TaskStatus)}"
    return None


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Only the frontmatter of a result file: a result body may be many megabytes of output."""
    try:
        with open(open_regular(path), encoding="utf-8") as handle:
            if handle.readline().strip() != "---":
                return None
            lines: list[str] = []
            for line in handle:
                if line.rstrip("\r\n") == "---":
                    break
                lines.append(line)
            else:
                return None
    except (OSError, UnicodeDecodeError):
        return None
    fast = yamlio.load_simple(lines)  # what we wrote ourselves, read without PyYAML
    if fast is not None:
        return fast
    import yaml  # only for a file edited by hand: importing PyYAML costs as much as the rest of status

    try:
        data = yamlio.safe_load("".join(lines))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None
