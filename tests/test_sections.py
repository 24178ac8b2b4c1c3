"""The two tool-written sections of master_plan.md, and the atomic store under every write.

When the tool rewrites ``## Agent Assignment`` and ``## Dependency Graph`` every other byte of the
file stays exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import Workspace, load_plan
from orchestrator.output.render import render_briefs, update_plan_file
from orchestrator.plan.markdown import _LINE_RE, replace_sections, split_lines
from orchestrator.plan.parser import TOOL_SECTIONS
from orchestrator.state import store

NEW = {"agent assignment": "| a | b |\n|---|---|\n| 1 | 2 |", "dependency graph": "```mermaid\ngraph TD\n```"}

HEAD = """---
backend: shell
---
# Plan

## Original Request
> Do it.

## Task Decomposition
| Task ID | Description | Dependencies |
|---|---|---|
| T-01 | Scan | None |
| T-02 | Report | T-01 |
"""


def rewrite(text: str) -> str:
    return replace_sections(text, NEW, TOOL_SECTIONS)


def appended(newline: str = "\n") -> str:
    body = "## Agent Assignment\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    body += "## Dependency Graph\n\n```mermaid\ngraph TD\n```\n"
    return body.replace("\n", newline)


# --- replace_sections: byte-exactness ------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_absent_sections_are_appended(newline: str, trailing: bool) -> None:
    text = HEAD.replace("\n", newline)
    if not trailing:
        text = text[: -len(newline)]
    result = rewrite(text)
    assert result.startswith(text)
    rest = result[len(text) :]
    expected_gap = newline if trailing else newline * 2
    assert rest == expected_gap + appended(newline)
    assert rewrite(result) == result


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_sections_in_the_middle_are_replaced_in_place(newline: str) -> None:
    # U+2028, U+0085 and form feed are not line breaks to markdown; str.splitlines() thinks they are.
    before = HEAD + "\n## Intro\nodd\u2028line\x85breaks\x0chere\n\n## 🤝 Agent Assignment\n"
    old_body = "old table\n\n### a sub-heading inside\nmore old\n\n"
    middle = "# A level-one heading ends the section\nkeep me\n\n## Dependency Graph\n"
    after = "\n## Notes\nkeep\u2028this\x85and\x0cthis   \n\n\n"
    text = (before + old_body + middle + "old graph\n" + after).replace("\n", newline)
    result = rewrite(text)
    b, m, a = (part.replace("\n", newline) for part in (before, middle, after))
    assert result.startswith(b)
    assert result.endswith(a)
    assert m in result
    assert (
        result
        == b
        + newline
        + "| a | b |\n|---|---|\n| 1 | 2 |\n\n".replace("\n", newline)
        + m
        + (newline + "```mermaid\ngraph TD\n```\n".replace("\n", newline))
        + a
    )
    assert rewrite(result) == result
    if newline == "\r\n":
        assert "\n" not in result.replace("\r\n", "")


def test_section_at_end_without_trailing_newline() -> None:
    text = HEAD + "\n## Dependency Graph\nold"
    result = rewrite(text)
    assert result.startswith(HEAD + "\n## Dependency Graph\n")
    assert "old" not in result[len(HEAD) :]
    assert result.count("## Dependency Graph") == 1
    assert result.count("## Agent Assignment") == 1
    assert rewrite(result) == result


FENCED = [
    "```\n## Agent Assignment\nnot a section\n```\n",
    "~~~markdown\n## Agent Assignment\n## Dependency Graph\n~~~\n",
    "````\n```\n## Agent Assignment\n```\n````\n",
    "    ## Agent Assignment (indented code)\n",
    "<!--\n## Agent Assignment\n-->\n",
    "> ## Agent Assignment is a quote here\n",
]


@pytest.mark.parametrize("block", FENCED)
def test_heading_inside_code_or_comment_is_not_a_section(block: str) -> None:
    text = HEAD + "\n" + block + "\n## Notes\nkeep\n"
    result = rewrite(text)
    assert result.startswith(text)  # nothing replaced: both sections appended
    assert result[len(text) :] == "\n" + appended()


def test_fenced_heading_before_the_real_section() -> None:
    fence = "```markdown\n## Agent Assignment\nexample in a fence\n```\n"
    text = HEAD + "\n" + fence + "\n## Agent Assignment\nold\n\n## Dependency Graph\nold\n"
    result = rewrite(text)
    assert result.startswith(HEAD + "\n" + fence + "\n## Agent Assignment\n\n| a | b |")
    assert result.count("example in a fence") == 1
    assert "old" not in result


def test_setext_heading_section() -> None:
    text = HEAD + "\nAgent Assignment\n----------------\nold\n\n## Dependency Graph\nold\n"
    result = rewrite(text)
    assert result.startswith(HEAD + "\nAgent Assignment\n----------------\n\n| a | b |")
    assert "old" not in result
    assert rewrite(result) == result


def test_frontmatter_is_not_searched() -> None:
    text = "---\nappend_system_prompt: |\n  ## Agent Assignment\n  keep\n---\n" + HEAD.split("---\n", 2)[2]
    result = rewrite(text)
    assert result.startswith(text)


def test_only_the_first_of_two_sections_is_replaced() -> None:
    text = HEAD + "\n## Agent Assignment\nfirst\n\n## Agent Assignment\nsecond\n\n## Dependency Graph\ng\n"
    result = rewrite(text)
    assert "first" not in result and "second" in result


# --- update_plan_file and the CLI ----------------------------------------------------------------


def make_workspace(root: Path, data: bytes) -> Workspace:
    (root / ".orchestrator").mkdir(parents=True)
    (root / ".orchestrator" / "master_plan.md").write_bytes(data)
    return Workspace(root / ".orchestrator")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_update_plan_file_keeps_every_other_byte(tmp_path: Path, bom: bytes, newline: bytes, trailing: bool) -> None:
    notes_text = "## Notes\n  keep   trailing spaces  \n\t tabs\n\n## Dependency Graph\n"
    text = HEAD + "\n## Agent Assignment\nstale\n\n" + notes_text + "x\n"
    data = bom + text.encode().replace(b"\n", newline)
    if not trailing:
        data = data[: -len(newline)]
    ws = make_workspace(tmp_path, data)
    plan = load_plan(ws.root)
    assert update_plan_file(plan, ws)
    result = ws.plan_file.read_bytes()
    head = bom + (HEAD + "\n## Agent Assignment\n").encode().replace(b"\n", newline)
    notes = notes_text.encode().replace(b"\n", newline)
    assert result.startswith(head)
    assert notes in result
    assert b"stale" not in result
    assert b"T-01 | Agent-01 |" in result
    assert b"n0 --> n1" in result
    if newline == b"\r\n":
        assert b"\n" not in result.replace(b"\r\n", b"")
    assert not update_plan_file(load_plan(ws.root), ws)  # a second pass changes nothing
    assert load_plan(ws.root).tasks.keys() == plan.tasks.keys()


def test_cli_render_appends_sections_to_seed_file(tmp_path: Path) -> None:
    data = HEAD.encode()
    ws = make_workspace(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "render"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = ws.plan_file.read_bytes()
    assert result.startswith(data + b"\n## Agent Assignment\n\n")
    assert result.count(b"## Dependency Graph") == 1
    assert sorted(p.name for p in ws.tasks_dir.iterdir()) == ["agent-01.md", "agent-02.md"]


# --- the store -----------------------------------------------------------------------------------


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.md"
    store.write_text(target, "one\n")
    store.write_text(target, "two ✅\r\n")
    store.write_bytes(tmp_path / "raw.bin", b"\x00\xff")
    assert store.write_many([(tmp_path / "a.md", "a"), (tmp_path / "sub" / "b.md", "b")]) == 2
    assert target.read_bytes() == "two ✅\r\n".encode()
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a.md",
        "raw.bin",
        "sub",
        "sub/b.md",
        "sub/file.md",
    ]


def test_failed_replace_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file.md"
    target.write_text("old\n", encoding="utf-8")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        store.write_text(target, "new\n")
    with pytest.raises(OSError, match="disk on fire"):
        store.write_many([(tmp_path / "x.md", "x"), (target, "new\n")])
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["file.md"]


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from orchestrator.state import store
    target = Path(sys.argv[1])
    store._write_temp(target, b"half-written garbage", sync=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_temp_file_of_a_killed_writer_is_ignored(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, HEAD.encode())
    render_briefs(load_plan(ws.root), ws)
    brief = ws.tasks_dir / "agent-01.md"
    original = brief.read_bytes()
    for target in (brief, ws.plan_file):
        proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], timeout=60, check=False)
        assert proc.returncode == -9
    leftovers = sorted(p.name for p in ws.root.rglob(".tmp-*"))
    assert len(leftovers) == 2 and all(".tmp-" in name for name in leftovers)
    assert brief.read_bytes() == original
    assert ws.plan_file.read_bytes() == HEAD.encode()

    plan = load_plan(ws.root)  # the plan is read from master_plan.md, not from the leftover
    assert list(plan.tasks) == ["T-01", "T-02"]
    report = render_briefs(plan, ws)
    assert report.written == [] and report.kept_edited == []
    assert sorted(report.unchanged) == [f".orchestrator/agent_tasks/agent-0{i}.md" for i in (1, 2)]
    assert [p.name for p in store.iter_files(ws.tasks_dir, "*.md")] == ["agent-01.md", "agent-02.md"]
    assert update_plan_file(plan, ws)
    assert b"half-written" not in ws.plan_file.read_bytes()

    store.clean_temp_files(ws.tasks_dir)
    store.clean_temp_files(ws.root)
    assert not list(ws.root.rglob(".tmp-*"))
    assert brief.read_bytes() == original


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "| x |", "\n", "\r", "\r\n", "\x0c", "\x0b", "\x85", "\u2028", "\x1d", "é"])
        | st.text(max_size=3)
    ).map("".join)
)
def test_lines_end_only_at_lf_crlf_and_cr(text: str) -> None:
    assert split_lines(text) == _LINE_RE.findall(text)
    assert "".join(split_lines(text)) == text
