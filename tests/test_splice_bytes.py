"""The status blocks are spliced into master_plan.md on its UTF-8 bytes (``planfile.splice_bytes``,
what a run and ``render`` write with): the same bytes, byte for byte, as the line-by-line splice
of the decoded text (``planfile._splice_lines``, which plans holding version 0.1's blocks still
take), broken markers told alike; and a large plan is never held decoded while it is done."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.state import planfile
from orchestrator.state.planfile import Block, MarkersBroken

BLOCKS = [
    Block("status", "Agent Assignment", "\n| Task | Status |\n|---|---|\n| T-1 | ✅ Completed |\n|a|\x1b[0m b|\r\n\n"),
    Block("graph", "Dependency Graph", "```mermaid\ngraph TD\n    T-1\n```"),
]
# Lines that open or close fences (or only look as if they did), markers of ours and others' (some
# behind whitespace only str reads as whitespace), frontmatter fences, legacy lines, and text.
PIECES = [
    "---", "...", " --- ", "\u00a0---", "\ufeff---", "# Plan 🎯", "text", "", " ", "\u00a0", "\u2028", "\x0c", "\x85",
    "```", "```mermaid", "~~~", "   ```", "    ```", "````", "``` x`y", "~~~~ ", "```\u00a0", "~~~ `x`",
    "<!-- orchestrator:begin status -->", "<!-- orchestrator:end status -->",
    "<!-- orchestrator:begin graph — x -->", "<!-- orchestrator:end graph -->",
    "\u00a0<!-- orchestrator:begin status -->", " <!-- orchestrator:end status -->\u00a0",
    "\u2028<!-- orchestrator:begin status -->", "\x1c<!-- orchestrator:end graph -->",
    "<!-- orchestrator:begin graph -->\u3000", "x <!-- orchestrator:begin status -->",
    "```<!-- orchestrator:begin status -->", "  ~~~ <!-- orchestrator:end status -->",
    "<!-- orchestrator:begin notes -->", "<!--", "a\x85<!-- orchestrator:end status -->",
    '<!-- Written by orchestrator: this section and "Dependency Graph" are rewritten', "| T-1 | a |",
    "**Totals**: 1", "## Dependency Graph", "## Agent Assignment", "✅ done",
]  # fmt: skip
texts = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(["\n", "\r\n", "\r"])), max_size=16).flatmap(
    lambda lines: st.sampled_from(["", "cut"]).map(
        lambda end: "".join(a + b for a, b in lines).rstrip("\r\n") if end else "".join(a + b for a, b in lines)
    )
)


def outcome(splice: object, text: str) -> str | tuple[str, str]:
    try:
        return splice(text, BLOCKS)  # type: ignore[operator, no-any-return]
    except MarkersBroken as exc:
        return ("broken", str(exc))


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_the_bytes_splice_is_the_line_by_line_splice(text: str) -> None:
    expected = outcome(planfile._splice_lines, text)
    assert outcome(planfile.splice, text) == expected
    if isinstance(expected, str):
        assert planfile.splice_bytes(text.encode("utf-8"), BLOCKS) == expected.encode("utf-8")
    else:
        with pytest.raises(MarkersBroken, match=expected[1].split(":")[0]):
            planfile.splice_bytes(text.encode("utf-8"), BLOCKS)


def big_plan(tasks: int, newline: str) -> tuple[str, list[Block]]:
    """A plan of ``tasks`` rows in a fence-and-frontmatter setting, its blocks made earlier (a table
    of ✅ rows: the text takes 4 bytes a character once decoded), and the blocks it gets now."""
    rows = "".join(f"| T-{n:05d} | Check part {n} of the plan 🎯 | true | None |\n" for n in range(tasks))
    table = "".join(f"| T-{n:05d} | Agent-{n:05d} | ✅ Completed | 10:00 | 10:01 | 1m | - |\n" for n in range(tasks))
    old = Block("status", "Agent Assignment", table.replace("✅ Completed", "🟡 Pending"))
    text = (
        "---\nbackend: shell\n---\n# 🎯 A plan\n\n```\n<!-- orchestrator:begin status -->\n```\n\n"
        "## Task Decomposition\n| Task ID | Task Name | Command | Dependencies |\n|---|---|---|---|\n"
        + rows
        + "\n## Agent Assignment\n"
        + old.begin()
        + "\n"
        + old.body
        + old.end()
        + "\nA note of mine, kept.\n"
    ).replace("\n", newline)
    return text, [Block("status", "Agent Assignment", table), BLOCKS[1]]


@pytest.mark.parametrize(("newline", "bom"), [("\n", b""), ("\r\n", codecs.BOM_UTF8)])
def test_a_runs_rewrite_of_a_large_plan_is_byte_for_byte_the_line_by_line_splice(
    tmp_path: Path, newline: str, bom: bytes
) -> None:
    """The file a run's rewrite leaves (byte order mark, CRLF, a person's note, a marker shown in a
    code block) holds exactly what the line-by-line splice of its text makes; a second rewrite
    changes nothing."""
    text, blocks = big_plan(3000, newline)
    path = tmp_path / "master_plan.md"
    path.write_bytes(bom + text.encode("utf-8"))
    assert planfile.rewrite_blocks(path, blocks, durable=False) is True
    assert path.read_bytes() == bom + planfile._splice_lines(text, blocks).encode("utf-8")
    assert planfile.rewrite_blocks(path, blocks, durable=False) is False


def test_a_rewrite_of_a_large_plan_holds_a_few_copies_of_its_bytes_never_its_text(tmp_path: Path) -> None:
    """The rewrite's peak (tracemalloc) stays under 5 times the plan's bytes (4.4 here): the file
    read, the new blocks' UTF-8, the bytes with each block spliced in, and what the swap reads back
    a piece at a time. Decoding the plan (4 bytes a character: a ✅ in it), its lines and the
    spliced text took 16.7 times here (16 MB for a 1.5 MB plan at a 10,000-task run's end, on top
    of all the run held)."""
    text, blocks = big_plan(6000, "\n")
    path = tmp_path / "master_plan.md"
    path.write_text(text, encoding="utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert planfile.rewrite_blocks(path, blocks, durable=False)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 5 * size, f"{peak / size:.1f} times the plan's {size:,} bytes"
