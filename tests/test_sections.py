"""The status blocks of master_plan.md, and the atomic store under every write.

The tool writes only between its two marker lines; every other byte of the file (before, between
and after the blocks) stays exactly as it was, and a save made while the tool rewrites the file is
never lost.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import Workspace, load_plan
from orchestrator.output.briefs import render_briefs
from orchestrator.output.sections import update_plan_file
from orchestrator.plan.markdown import _LINE_RE, split_lines
from orchestrator.state import planfile, store, swap
from orchestrator.state.planfile import Block

BLOCKS = [
    Block("status", "Agent Assignment", "| a | b |\n|---|---|\n| 1 | 2 |"),
    Block("graph", "Dependency Graph", "G"),
]

HEAD = """---
backend: shell
---
# Plan

## Original Request
> Do it.

## Task Decomposition
| Task ID | Description | Dependencies | Command |
|---|---|---|---|
| T-01 | Scan | None | echo scan |
| T-02 | Report | T-01 | echo report |
"""

# What version 0.1 wrote, without markers: the status section ran to the next heading, and the
# graph section to the end of the file (where a person's note appended later was lost).
LEGACY = (
    HEAD
    + """
## Agent Assignment
<!-- Written by orchestrator: this section and "Dependency Graph" are rewritten on every render and run. -->
| Task ID | Agent | Status | Start | End | Duration | Cost |
|---------|-------|--------|-------|-----|----------|------|
| T-01 | Agent-01 | 🟡 Pending | - | - | - | - |

**Totals**: 2 tasks: 1 pending
A line of my own under the table.

## Dependency Graph
```mermaid
graph TD
    old
```
My note after the graph.
"""
)


def splice(text: str) -> str:
    return planfile.splice(text, BLOCKS)


def fenced(block: Block, newline: str = "\n") -> str:
    return (block.begin() + "\n" + block.body + "\n" + block.end() + "\n").replace("\n", newline)


# --- splice: byte-exactness ---------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_missing_blocks_are_appended_with_their_headings(newline: str, trailing: bool) -> None:
    text = HEAD.replace("\n", newline)
    if not trailing:
        text = text[: -len(newline)]
    result = splice(text)
    assert result.startswith(text)
    appended = "\n## Agent Assignment\n" + fenced(BLOCKS[0]) + "\n## Dependency Graph\n" + fenced(BLOCKS[1])
    assert result == HEAD.replace("\n", newline) + appended.replace("\n", newline)
    assert splice(result) == result  # a second pass changes nothing


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_only_what_is_between_the_markers_changes(newline: str) -> None:
    """Before, between and after the blocks: the person's bytes, kept exactly (trailing spaces,
    tabs, a heading of theirs right after an end marker, text with no newline at the end)."""
    before = HEAD + "\n## Agent Assignment\nintro of mine  \n"
    between = "\tbetween, mine\n\n## Dependency Graph\n"
    after = "## Notes\nkeep me"
    old_status = Block("status", "Agent Assignment", "stale table")
    old_graph = Block("graph", "Dependency Graph", "stale graph")
    text = (before + fenced(old_status) + between + fenced(old_graph) + after).replace("\n", newline)
    result = splice(text)
    expected = before + fenced(BLOCKS[0]) + between + fenced(BLOCKS[1]) + after
    assert result == expected.replace("\n", newline)
    assert "stale" not in result


def test_a_note_appended_after_the_blocks_is_kept() -> None:
    text = splice(HEAD) + "My note\n"
    assert splice(text) == text
    blocks = [Block("status", "Agent Assignment", "new table"), Block("graph", "Dependency Graph", "new graph")]
    again = planfile.splice(text, blocks)
    assert again.endswith("<!-- orchestrator:end graph -->\nMy note\n")


def test_a_plan_of_version_0_1_has_exactly_its_generated_lines_replaced() -> None:
    result = splice(LEGACY)
    assert result.startswith(HEAD + "\n## Agent Assignment\n" + fenced(BLOCKS[0]))
    assert "A line of my own under the table.\n" in result
    assert "## Dependency Graph\n" + fenced(BLOCKS[1]) + "My note after the graph.\n" in result
    assert "Written by orchestrator" not in result and "old" not in result
    assert result.count("## Agent Assignment") == 1 and result.count("## Dependency Graph") == 1
    assert splice(result) == result


def test_sections_a_person_wrote_under_the_same_names_are_theirs() -> None:
    """Without markers (and not what version 0.1 wrote), a section called Agent Assignment is the
    person's: it stays, and the blocks go after it."""
    text = HEAD + "\n## Agent Assignment\nmy own table\n\n## Dependency Graph\n```mermaid\nmine\n```\n"
    result = splice(text)
    assert result.startswith(text)
    assert "my own table" in result and "mine" in result


def test_markers_of_other_names_and_frontmatter_are_left_alone() -> None:
    text = (
        "---\nappend_system_prompt: |\n  <!-- orchestrator:begin status -->\n---\n"
        + HEAD.split("---\n", 2)[2]
        + "<!-- orchestrator:begin notes -->\nx\n<!-- orchestrator:end notes -->\n"
    )
    result = splice(text)
    assert result.startswith(text)


# --- rewrite: never losing a save made meanwhile ------------------------------------------------


def test_no_block_goes_into_a_plan_file_caught_empty_mid_save(tmp_path: Path) -> None:
    """A save that truncates, then writes (an editor's, Python's ``write_text``), leaves the file
    empty for an instant. A run's blocks written then made a file of blocks alone: `status`, read
    in that moment, said "no '## Task Decomposition' section" (exit 2) until the save came back.
    The file caught empty is left as it is; the next flush writes the blocks into the save."""
    path = tmp_path / "master_plan.md"
    path.write_text("", encoding="utf-8")
    assert swap.rewrite(path, splice) is False
    assert path.read_bytes() == b""
    assert splice(" \n") == " \n"
    path.write_text(HEAD, encoding="utf-8")  # (the save's write lands)
    assert swap.rewrite(path, splice) is True and "## Agent Assignment" in path.read_text(encoding="utf-8")


def test_a_save_made_while_the_file_is_rewritten_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone saves the plan in the instant between the rewrite's last look and its swap: the
    save is what comes out of the swap, so it is swapped straight back, then gets the blocks and
    goes in. Nothing of it is lost, and no temp file is left."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    swap = store.exchange
    saved = HEAD.replace("| T-01 | echo report |", "| T-01 | echo report |\n| T-03 | Added meanwhile | T-02 | true |")
    calls: list[Path] = []

    def save_first(first: Path, second: Path) -> bool:
        if not calls:
            path.write_text(saved, encoding="utf-8")  # an editor's save, in place
        calls.append(first)
        return swap(first, second)

    monkeypatch.setattr(store, "exchange", save_first)
    assert planfile.rewrite(path, splice)
    assert path.read_text(encoding="utf-8") == splice(saved)
    assert len(calls) == 3  # the swap, the swap back, the swap of their text with the blocks
    assert not [p for p in tmp_path.iterdir() if p.name != "master_plan.md"]  # no temp file left


def test_an_edit_to_the_swapped_in_file_before_it_is_swapped_back_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two saves race the swap: one into the file taken out, one into the file just swapped in.
    The first is the plan again; the second, made to a text without the first, cannot be both:
    it is kept beside the plan, never dropped."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    swap = store.exchange
    calls: list[Path] = []

    def racing(first: Path, second: Path) -> bool:
        calls.append(first)
        if len(calls) == 1:
            path.write_text(HEAD + "first save\n", encoding="utf-8")  # into the file about to go out
        elif len(calls) == 2:
            with path.open("a", encoding="utf-8") as handle:  # into ours, about to be swapped back
                handle.write("second save\n")
        return swap(first, second)

    monkeypatch.setattr(store, "exchange", racing)
    assert planfile.rewrite(path, splice)
    text = path.read_text(encoding="utf-8")
    assert "first save" in text and "<!-- orchestrator:begin status" in text
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("master_plan.md.saved-")]
    assert aside.read_text(encoding="utf-8").endswith("second save\n")


def test_a_save_written_late_into_the_file_the_swap_took_out_is_told_and_put_back(tmp_path: Path) -> None:
    """An editor opened the plan just before a rewrite swapped it out, and writes into it after the
    rewrite has looked: ``saved_late`` says so (until then it does not), and the next rewrite puts
    that save back in the plan, its blocks in it."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    assert planfile.rewrite(path, splice)
    assert planfile.saved_late(path) is None
    with path.open("r+", encoding="utf-8") as editor:  # opened before the next swap
        assert planfile.rewrite(path, lambda text: text + "the run's news\n")
        assert planfile.saved_late(path) is None  # nothing written into what came out yet
        editor.seek(0)
        editor.write(HEAD + "the person's late save\n")
        editor.truncate()
    assert "the person's late save" not in path.read_text(encoding="utf-8")  # in the file taken out
    assert planfile.saved_late(path) is not None
    planfile.rewrite(path, splice)
    text = path.read_text(encoding="utf-8")
    assert "the person's late save" in text and "<!-- orchestrator:begin status" in text
    assert planfile.saved_late(path) is None


def test_a_late_save_that_is_not_utf8_goes_back_as_it_is(tmp_path: Path) -> None:
    """A late save the blocks cannot go into (not UTF-8): the next rewrite puts it back in the plan
    as it is, and says the file is unreadable, rather than dropping it with the file it came in."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    saved = HEAD.encode() + b"caf\xe9 in Latin-1\n"
    with path.open("r+b") as editor:
        assert planfile.rewrite(path, splice)
        editor.seek(0)
        editor.write(saved)
        editor.truncate()
    assert planfile.saved_late(path) is not None
    with pytest.raises(planfile.PlanFileUnreadable):
        planfile.rewrite(path, splice)
    assert path.read_bytes() == saved
    assert planfile.saved_late(path) is None


def test_a_late_save_outlives_a_rewrite_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rewrite that would put a late save back fails (a full disk): the save is still held,
    ``saved_late`` still says so, and the next rewrite puts it back."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    with path.open("r+", encoding="utf-8") as editor:
        assert planfile.rewrite(path, splice)
        editor.write(HEAD + "the person's late save\n")
    write_temp = store.write_temp

    def full(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_temp", full)
    with pytest.raises(OSError, match="No space"):
        planfile.rewrite(path, lambda text: splice(text) + "news\n")
    assert planfile.saved_late(path) is not None
    monkeypatch.setattr(store, "write_temp", write_temp)
    planfile.rewrite(path, lambda text: splice(text) + "news\n")
    assert "the person's late save" in path.read_text(encoding="utf-8")


def test_a_save_written_between_the_swaps_check_and_the_hold_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor writes into the file taken out in the instant after the rewrite compared it
    with what it read, before it holds it: what it holds is judged against what it compared,
    so the save is seen (not taken as what the file held all along) and goes back in the plan."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    hold = swap._Out.__init__
    with path.open("r+", encoding="utf-8") as editor:

        def write_first(self: Any, temp: Path, held: bytes) -> None:
            editor.write(HEAD + "saved in the instant\n")
            editor.flush()
            hold(self, temp, held)

        monkeypatch.setattr(swap._Out, "__init__", write_first)
        assert planfile.rewrite(path, splice)
    monkeypatch.setattr(swap._Out, "__init__", hold)
    planfile.rewrite(path, splice)  # (the next rewrite, if this one held it)
    assert "saved in the instant" in path.read_text(encoding="utf-8")


_EDITOR = """
import sys, time
path, count = sys.argv[1], int(sys.argv[2])
for n in range(count):
    with open(path, "r+", encoding="utf-8") as handle:  # in place, as many editors save
        text = handle.read()
        handle.seek(0)
        handle.write(text.replace("# Plan\\n", f"# Plan\\nedit {n}\\n", 1))
        handle.truncate()
    time.sleep(0.005)
"""


def test_saves_made_while_the_file_is_rewritten_over_and_over_are_never_lost(tmp_path: Path) -> None:
    """An editor (another process) saves a 3,000-task plan in place every 5 ms, 200 times, each
    save adding a line, while the plan's status blocks are rewritten over and over: every line is
    there at the end, and nothing had to be set aside. (Version 0.1 read, then wrote, the file:
    it lost a few saves in each such run.)"""
    path = tmp_path / "master_plan.md"
    rows = "".join(f"| T-{i:04d} | Task {i} | None | true |\n" for i in range(3000))
    path.write_text(HEAD.split("| T-01 |")[0] + rows, encoding="utf-8")
    done = threading.Event()
    errors: list[BaseException] = []

    def rewrite_over_and_over() -> None:
        try:
            while not done.is_set():
                planfile.rewrite(path, splice, durable=False)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=rewrite_over_and_over)
    worker.start()
    try:
        subprocess.run([sys.executable, "-c", _EDITOR, str(path), "200"], check=True, timeout=120)
    finally:
        done.set()
        worker.join(timeout=60)
    assert not errors, errors
    planfile.rewrite(path, splice)
    final = path.read_text(encoding="utf-8")
    missing = [n for n in range(200) if f"edit {n}\n" not in final]
    assert missing == [], f"{len(missing)} of 200 saves lost"
    assert [p.name for p in tmp_path.iterdir()] == ["master_plan.md"]  # nothing set aside, no temp file
    assert final.count("<!-- orchestrator:begin status") == 1


def test_a_plan_that_is_not_utf8_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "master_plan.md"
    data = HEAD.encode() + b"\xff\xfe half-typed\n"
    path.write_bytes(data)
    with pytest.raises(planfile.PlanFileUnreadable, match="line 14"):
        planfile.rewrite(path, splice)
    assert path.read_bytes() == data


# --- update_plan_file and the CLI ----------------------------------------------------------------


def make_workspace(root: Path, data: bytes) -> Workspace:
    (root / ".orchestrator").mkdir(parents=True)
    (root / ".orchestrator" / "master_plan.md").write_bytes(data)
    return Workspace(root / ".orchestrator")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_update_plan_file_keeps_every_other_byte(tmp_path: Path, bom: bytes, newline: bytes) -> None:
    text = LEGACY + "## Notes\n  keep   trailing spaces  \n\t tabs\n"
    data = bom + text.encode().replace(b"\n", newline)
    ws = make_workspace(tmp_path, data)
    plan = load_plan(ws.root)
    assert update_plan_file(plan, ws)
    result = ws.plan_file.read_bytes()
    assert result.startswith(bom + (HEAD + "\n## Agent Assignment\n").encode().replace(b"\n", newline))
    for kept in (b"A line of my own under the table.", b"My note after the graph.", b"  keep   trailing spaces  "):
        assert kept in result
    assert b"T-01 | Agent-01 |" in result and b"n0 --> n1" in result
    if newline == b"\r\n":
        assert b"\n" not in result.replace(b"\r\n", b"")
    assert not update_plan_file(load_plan(ws.root), ws)  # a second pass changes nothing
    assert load_plan(ws.root).tasks.keys() == plan.tasks.keys()


def test_a_note_appended_to_the_plan_survives_a_run(tmp_path: Path) -> None:
    """``echo "My note" >> master_plan.md; orchestrator run``: the note is still there after."""
    ws = make_workspace(tmp_path, HEAD.encode())
    cli = [sys.executable, "-m", "orchestrator"]
    first = subprocess.run([*cli, "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    with ws.plan_file.open("a", encoding="utf-8") as handle:
        handle.write("My note\n")
    again = subprocess.run([*cli, "run", "--rerun", "T-01"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    text = ws.plan_file.read_text(encoding="utf-8")
    assert text.endswith("My note\n")
    assert text.count("<!-- orchestrator:begin status") == 1 and "✅ Completed" in text


def test_a_plan_with_status_blocks_off_is_never_written(tmp_path: Path) -> None:
    """``status_blocks: false`` (a plan kept in git): render, run and reset leave the file as it
    is, byte for byte and untouched; status still tells the states."""
    data = HEAD.replace("backend: shell\n", "backend: shell\nstatus_blocks: false\n").encode()
    ws = make_workspace(tmp_path, data)
    before = ws.plan_file.stat().st_mtime_ns
    cli = [sys.executable, "-m", "orchestrator"]
    for args in (["render"], ["run"], ["reset", "T-02"], ["run"]):
        proc = subprocess.run([*cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, (args, proc.stderr)
    assert ws.plan_file.read_bytes() == data and ws.plan_file.stat().st_mtime_ns == before
    status = subprocess.run([*cli, "status"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert status.stdout.count("✅ Completed") == 2


def test_cli_render_appends_the_blocks_to_a_plan_without_them(tmp_path: Path) -> None:
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
    assert result.startswith(data + b"\n## Agent Assignment\n<!-- orchestrator:begin status ")
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
    store.write_temp(target, b"half-written garbage", sync=True)
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


# --- what keeps the blocks out: never the person's text, never the run --------------------------


def test_a_begin_marker_without_its_end_leaves_the_file_alone(tmp_path: Path) -> None:
    """The end marker deleted by hand: guessing where the block ends could take the person's
    text with it (matching a later block's end marker did). Nothing is replaced or appended; render
    says why in one line and exits 2."""
    ws = make_workspace(tmp_path, HEAD.encode())
    assert subprocess.run([sys.executable, "-m", "orchestrator", "render"], cwd=tmp_path, check=False).returncode == 0
    text = ws.plan_file.read_text(encoding="utf-8").replace("<!-- orchestrator:end status -->\n", "")
    text = text.replace("## Dependency Graph", "## My notes\nkeep me\n\n## Dependency Graph")
    ws.plan_file.write_text(text, encoding="utf-8")
    with pytest.raises(planfile.MarkersBroken, match="'status' block's begin marker has no end marker"):
        splice(text)
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "render"], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith(".orchestrator/master_plan.md: line ")
        assert "Traceback" not in proc.stderr
        assert ws.plan_file.read_text(encoding="utf-8") == text
    # validate lists it as render refuses it: 'fix every problem validate lists' leaves none behind
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    line = text.split("\n").index(next(x for x in text.split("\n") if "orchestrator:begin status" in x)) + 1
    said = f".orchestrator/master_plan.md:{line}: the 'status' block's begin marker has no end marker"
    assert proc.stderr.startswith(said)
    assert planfile.broken_markers(text.replace("## My notes", "<!-- orchestrator:end status -->\n## My notes")) == []


@pytest.mark.parametrize("edit", ["begin deleted", "block copied"])
def test_an_end_marker_without_its_begin_or_a_second_block_is_refused_not_left_stale(tmp_path: Path, edit: str) -> None:
    """QA: with its begin marker deleted, the next write appended a new block and left the old
    table (showing ✅ where status said pending) above it for ever; a block copied elsewhere kept
    what it showed when copied. validate said OK to both. Both are refused, as a begin marker
    without its end is: one line naming the line, and the file left as it is."""
    ws = make_workspace(tmp_path, HEAD.encode())
    assert subprocess.run([sys.executable, "-m", "orchestrator", "render"], cwd=tmp_path, check=False).returncode == 0
    text = ws.plan_file.read_text(encoding="utf-8")
    lines = text.split("\n")
    begin = next(i for i, x in enumerate(lines) if "orchestrator:begin status" in x)
    end = next(i for i, x in enumerate(lines) if "orchestrator:end status" in x)
    if edit == "begin deleted":
        text = "\n".join(lines[:begin] + lines[begin + 1 :])
        line, said = end, "the 'status' block's end marker has no begin marker above it"
    else:
        text += "\n## A copy\n" + "\n".join(lines[begin : end + 1]) + "\n"
        line = text.split("\n").index(lines[begin], end + 1) + 1
        said = f"a second 'status' block (the first begins on line {begin + 1})"
    ws.plan_file.write_text(text, encoding="utf-8")
    with pytest.raises(planfile.MarkersBroken, match=re.escape(said)):
        splice(text)
    for command in ("validate", "render"):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", command], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2, proc.stdout
        assert f"master_plan.md:{line}: {said}" in proc.stderr or f"line {line}: {said}" in proc.stderr, proc.stderr
        assert ws.plan_file.read_text(encoding="utf-8") == text


def test_markers_in_a_code_block_are_text(tmp_path: Path) -> None:
    documented = "```\n<!-- orchestrator:begin status -->\nexample\n<!-- orchestrator:end status -->\n```\n"
    result = splice(HEAD + documented)
    assert result.startswith(HEAD + documented)  # the example is text, kept as it is
    assert result.count("<!-- orchestrator:begin status") == 2  # the example, and the real block after it


def test_a_plan_gone_for_an_instant_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools that save by deleting and writing anew (git checkout, some editors) leave no file
    for an instant: the rewrite just skips that turn."""
    path = tmp_path / "master_plan.md"
    path.write_text(HEAD, encoding="utf-8")
    swap = store.exchange

    def deleted_first(first: Path, second: Path) -> bool:
        second.unlink()
        return swap(first, second)

    monkeypatch.setattr(store, "exchange", deleted_first)
    assert planfile.rewrite(path, splice) is False
    assert list(tmp_path.iterdir()) == []  # no temp file left either


def test_a_run_survives_its_plan_being_replaced_over_and_over(tmp_path: Path) -> None:
    """While a run writes its status blocks, the plan is deleted and written anew again and again:
    the run finishes its work (exit 0), whatever it could not show."""
    lines = [f"| T-{i:02d} | Nap | None | sleep 0.05 |" for i in range(40)]
    plan = "---\nbackend: shell\nmax_parallel: 2\n---\n# Plan\n\n## Task Decomposition\n"
    plan += "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n" + "\n".join(lines) + "\n"
    ws = make_workspace(tmp_path, plan.encode())
    runner = subprocess.Popen([sys.executable, "-m", "orchestrator", "run"], cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        while runner.poll() is None and not (ws.root / "state" / "attempts.jsonl").exists():
            time.sleep(0.01)  # the run has read its plan
        while runner.poll() is None:
            text = ws.plan_file.read_bytes() if ws.plan_file.exists() else plan.encode()
            ws.plan_file.unlink(missing_ok=True)
            time.sleep(0.002)
            ws.plan_file.write_bytes(text)
            time.sleep(0.002)
        assert runner.wait(timeout=120) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert (ws.root / "final_output.md").exists()


def test_blocks_rendered_before_the_lock_are_written_only_while_they_still_say_the_same(tmp_path: Path) -> None:
    """``render`` renders the status blocks before it writes anything and writes them under the
    lock: as rendered when the workspace still says the same, rendered again when a run ended
    meanwhile."""
    from dataclasses import replace

    from orchestrator.output.sections import Rendered, render_status

    ws = make_workspace(tmp_path, HEAD.encode())
    plan = load_plan(ws.root)
    rendered = render_status(plan, ws)
    assert "🟡 Pending" in rendered.blocks[0].body
    marked = Rendered(rendered.views, [replace(rendered.blocks[0], body="as rendered"), rendered.blocks[1]])
    assert update_plan_file(plan, ws, rendered=marked)  # the same views: the blocks given are written
    assert "\nas rendered\n" in ws.plan_file.read_text(encoding="utf-8")

    run = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--json"], cwd=tmp_path, capture_output=True)
    assert run.returncode == 0, run.stderr
    planfile.rewrite(ws.plan_file, lambda text: planfile.splice(text, rendered.blocks))  # the blocks of before
    assert "🟡 Pending" in ws.plan_file.read_text(encoding="utf-8")
    assert update_plan_file(plan, ws, rendered=rendered)  # a run ended since they were rendered: rendered again
    text = ws.plan_file.read_text(encoding="utf-8")
    assert "as rendered" not in text and "🟡 Pending" not in text and text.count("✅ Completed") == 2


def test_the_person_digest_does_not_change_when_the_tool_adds_or_rewrites_its_blocks() -> None:
    """A run compares it with the plan it read, to know whether a person changed the file: the
    blocks it adds at its first write (their headings too) must not read as a change, or every
    run parses a 10,000-task plan a second time. A person's edit anywhere else must."""
    first = planfile.splice(HEAD, BLOCKS)
    again = planfile.splice(
        first, [Block("status", "Agent Assignment", "other"), Block("graph", "Dependency Graph", "H")]
    )
    assert planfile.person_digest(HEAD) == planfile.person_digest(first) == planfile.person_digest(again)
    assert planfile.person_digest(first + "\nMy note.\n") != planfile.person_digest(first)
    assert planfile.person_digest(first.replace("echo scan", "echo SCAN")) != planfile.person_digest(first)
    assert planfile.person_digest(HEAD + "\n## My own heading\n") != planfile.person_digest(HEAD)


def test_a_watch_of_the_plan_reads_it_only_when_it_moved_and_tells_only_a_persons_change(tmp_path: Path) -> None:
    """What a run's status blocks and its live queue each keep: one stat a look, the text read only
    when the file moved, and the run's own rewrite of its blocks no change."""
    plan_file = tmp_path / "master_plan.md"
    plan_file.write_text(HEAD, encoding="utf-8")
    watch = planfile.PersonWatch(plan_file, HEAD)
    assert watch.moved() and not watch.moved()  # the first look takes the file as it is
    assert not watch.changed()  # the text the run loaded
    planfile.rewrite(plan_file, lambda text: planfile.splice(text, BLOCKS))
    assert watch.moved() and not watch.changed()  # the tool's blocks only
    edited = plan_file.read_text(encoding="utf-8") + "\nMy note.\n"
    plan_file.write_text(edited, encoding="utf-8")
    assert watch.moved() and watch.changed()
    assert not watch.changed()  # told once
    plan_file.unlink()
    assert not watch.moved() and not watch.changed()  # being replaced: nothing to tell yet


@pytest.mark.parametrize(
    ("body", "newline", "lines"),
    [
        ("", "\n", []),
        ("\n\n", "\n", []),
        ("\na\n\n\nb ✅\n\n", "\n", ["a\n", "\n", "\n", "b ✅\n"]),
        ("a\x1b[0m\r\nb", "\r\n", ["a\\x1b[0m\r\n", "b\r\n"]),
    ],
)
def test_a_blocks_lines_are_its_body_without_the_newlines_around_it_each_with_the_files_newline(
    body: str, newline: str, lines: list[str]
) -> None:
    """A block's lines: its body, the newlines it starts and ends with left out, each line with
    the plan file's newline, what a task printed made visible (each line made once)."""
    assert planfile._with_newline(body, newline) == lines
