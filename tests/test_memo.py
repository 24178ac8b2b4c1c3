"""What a long-lived process keeps of the files it read (``state/memo``): given again only while the
file is the same file, and never a stale answer, whatever the edit: in place, in the same second,
with the same size, with its mtime set back; a file changed moments ago is read again each time.
And through a real ``orchestrator mcp``: every change made between two calls is in the second."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from runner_helpers import Spec, run, write_plan

from orchestrator.state import memo


@pytest.fixture
def kept() -> object:
    memo.enable()
    yield memo
    memo.enable(False)


def test_a_file_is_read_again_whenever_it_is_not_the_same_file(
    tmp_path: Path, kept: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memo, "RACY", 0)  # (as if every file had settled)
    path = tmp_path / "a.txt"
    path.write_text("one")
    reads: list[str] = []

    def read() -> str:
        reads.append(path.read_text())
        return reads[-1]

    assert memo.kept("k", [path], read) == "one"
    assert memo.kept("k", [path], read) == "one" and len(reads) == 1  # the same file: kept
    stat = os.stat(path)
    with open(path, "r+") as file:  # in place: the same inode, the same size...
        file.write("two")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and its mtime set back
    assert memo.kept("k", [path], read) == "two"  # (its ctime, which no one sets back, moved)
    replaced = tmp_path / "b.txt"
    replaced.write_text("six")
    os.replace(replaced, path)  # as our own writes replace a file: a new inode
    assert memo.kept("k", [path], read) == "six"
    path.unlink()
    assert memo.kept("k", [path], lambda: "gone") == "gone"


def test_a_file_changed_moments_ago_is_read_each_time(tmp_path: Path, kept: object) -> None:
    """A clock tick is coarser than a nanosecond: a file changed within ``RACY`` is not kept."""
    path = tmp_path / "a.txt"
    path.write_text("one")
    reads: list[int] = []
    for _ in range(3):
        memo.kept("k", [path], lambda: reads.append(1))
    assert len(reads) == 3


def test_status_through_a_long_lived_server_sees_every_edit_between_two_calls(tmp_path: Path) -> None:
    """The MCP server keeps what it read; a result edited by hand in place, with its size and
    mtime kept, and a row added to the plan, are in the next answer."""
    pytest.importorskip("mcp")
    from test_mcp import mcp_client

    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert run(tmp_path).code == 0
    settled = time.time() - 60  # (as if the files had been left alone a minute: the memo keeps them)
    for path in (tmp_path / ".orchestrator").rglob("*"):
        os.utime(path, (settled, settled))
    result = tmp_path / ".orchestrator/results/agent-01-result.md"
    with mcp_client(tmp_path, "--workspace", str(tmp_path)) as client:
        first = client.call("status", {"tasks": "all"}).structured_content
        assert [t["status"] for t in first["tasks"]] == ["completed", "completed"]
        assert client.call("status", {"tasks": "all"}).structured_content == first
        text = result.read_text()
        stat = os.stat(result)
        edited = text.replace("status: completed", "status: cancelled", 1)
        edited = edited.replace("\n---\n", "\n---" + "\n" * (len(text) - len(edited)) + "\n", 1)
        assert len(edited) == len(text)
        with open(result, "r+") as file:
            file.write(edited)
        os.utime(result, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        second = client.call("status", {"tasks": "all"}).structured_content
        assert [t["status"] for t in second["tasks"]] == ["cancelled", "completed"], second["tasks"]
        plan = tmp_path / ".orchestrator/master_plan.md"
        plan.write_text(plan.read_text().replace("| T-02 |", "| T-03 | Task T-03 | Run it | None | P2 |\n| T-02 |", 1))
        third = client.call("status", {"tasks": "all"}).structured_content
        assert [t["id"] for t in third["tasks"]] == ["T-01", "T-03", "T-02"]
