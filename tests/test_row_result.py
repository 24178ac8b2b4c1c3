"""A row's result over many items is written as a stream (``state/results.write_result`` of pieces,
``run/rows.body_of``) and read back only as far as it is shown (``documents.read_output_head``):
the bytes on disk are those of the whole body written at once, and neither is ever held whole.

Real files in ``tmp_path``; hypothesis over the pieces a body comes in.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator import documents
from orchestrator.run.rows import body_of
from orchestrator.state.results import ResultRecord, read_record, write_result
from orchestrator.vocabulary import TaskStatus

RECORD = ResultRecord(task="T-01", agent="Agent-01", name="per item", status=TaskStatus.COMPLETED, attempts=0,
                      run_attempts=0, reason=None, started="2026-11-27T10:00:00.000+00:00",
                      finished="2026-11-27T10:00:00.000+00:00", duration=1.5, backend="shell")  # fmt: skip

# Text a piece may hold: whitespace of every kind ``str.strip`` takes (a no-break space, a line
# separator), control characters ``visible`` writes out, an emoji, plain words.
PIECE = st.text(alphabet=st.sampled_from(["a", "é", "📦", " ", "\n", "\t", "\xa0", "\u2028", "\x1b", "\r", "#"]))


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(PIECE, max_size=8))
@example(pieces=["a\r", "\nb"])  # (a \r\n across two pieces: one newline, as in the whole)
@example(pieces=[" \xa0", "", "x\u2028", " "])
def test_a_body_written_in_pieces_is_the_body_written_whole(tmp_path_factory: object, pieces: list[str]) -> None:
    where: Path = tmp_path_factory.mktemp("r")  # type: ignore[attr-defined]
    whole, streamed = where / "whole.md", where / "streamed.md"
    said: list[str] = []
    one = write_result(whole, RECORD, "".join(pieces), exists=False)
    other = write_result(streamed, RECORD, iter(pieces), exists=False, before=said.append)
    assert streamed.read_bytes() == whole.read_bytes()
    assert other.digest == one.digest == said[0]
    assert sorted(p.name for p in where.iterdir()) == ["streamed.md", "whole.md"]  # (no spool left behind)


def test_a_rows_body_comes_in_pieces_and_ends_with_the_json_a_dependent_reads(tmp_path: Path) -> None:
    items = [(f"T-01[{n}]", f"item-{n}") for n in range(1, 2001)]  # (each instance's id and item)
    answers = {number: f"answer «item-{number}»\n" for number in range(1, 2001)}
    pieces = list(body_of(items, answers.get, ["T-01[7]"], False))
    assert len(pieces) > len(items) and max(map(len, pieces)) < 1 << 20 + 64
    path = tmp_path / "agent-01-result.md"
    write_result(path, RECORD, iter(pieces), exists=False)
    output = documents.read_output(path)
    assert output is not None and output.startswith("📦 1,999 of 2,000 items done, 1 not\n\n## T-01[1] · item-1\n")
    assert "## T-01[7] · item-7 (did not complete)\n\nanswer «item-7»\n" in output
    data = json.loads(output.rsplit("```json\n", 1)[1].removesuffix("```\n"))
    assert data == {"items": [answers[n].strip() for n in range(1, 2001)], "failed": ["T-01[7]"]}
    assert read_record(path, "T-01") is not None


def test_only_the_start_of_a_long_result_is_read_and_a_short_one_whole(tmp_path: Path) -> None:
    long, short = tmp_path / "long.md", tmp_path / "short.md"
    write_result(long, RECORD, iter(f"## item {n} ✅\n\n{'x' * 100}\n" for n in range(20_000)), exists=False)
    write_result(short, RECORD, "## one item ✅\n\nanswer\n", exists=False)
    head = documents.read_output_head(long, 5_000)
    assert head is not None
    text, whole = head
    assert not whole and 5_000 <= len(text) < 100_000 and (documents.read_output(long) or "").startswith(text)
    assert documents.read_output_head(short, 5_000) == (documents.read_output(short), True)
    assert documents.read_output_head(tmp_path / "missing.md", 5_000) is None
