"""``orchestrator verify``: the event log's hash chain and the results it recorded, checked offline.

Real runs and real commands write the log; the tests change its bytes as a person or an accident
would (a byte edited, a line removed, two swapped, the end cut off, a result touched up) and hold
``verify`` to naming the first line that does not hold, with exit 1. Writers racing (eight
processes appending while a run goes on) leave a chain that holds: without the log's lock the same
race breaks it, which the test shows too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli, cli_in_process, run, start, write_plan

from orchestrator.state.events import audit, chain

LOG = ".orchestrator/state/events.jsonl"
NONE: dict[str, Any] = {"matched": 0, "differ": [], "gone": [], "unrecorded": [], "unchecked": []}  # (verify's results)


def _verify(project: Path) -> tuple[int, dict[str, Any], str]:
    """``verify --json`` in ``project``: its exit code, its answer, and the text ``verify`` prints."""
    said = cli_in_process(project, "verify", "--json")
    text = cli_in_process(project, "verify")
    assert text.code == said.code, (text.stdout, said.stdout)
    return said.code, json.loads(said.stdout), text.stdout + text.stderr


def _lines(project: Path) -> list[bytes]:
    return (project / LOG).read_bytes().splitlines(keepends=True)


def _write(project: Path, lines: list[bytes]) -> None:
    (project / LOG).write_bytes(b"".join(lines))


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    """A project whose plan ran: two tasks completed, one failed, one skipped after it."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", "echo one"),
            Spec("T-02", "echo two", ["T-01"]),
            Spec("T-03", "exit 3", ["T-01"]),
            Spec("T-04", "echo four", ["T-03"]),
        ],
    )
    assert run(tmp_path).code == 1
    return tmp_path


def test_a_run_verifies_its_chain_and_every_result_it_wrote(ran: Path) -> None:
    code, found, text = _verify(ran)
    lines = len(_lines(ran))
    assert code == 0, text
    assert found["ok"] is True and found["findings"] == [] and found["lines"] == lines
    assert found["chained_from"] == 1
    assert found["results"] == {**NONE, "matched": 4}  # (completed, failed and skipped alike)
    assert found["head"]["lines"] == lines and found["head"]["bytes"] == (ran / LOG).stat().st_size
    assert text == f"{LOG}: {lines} lines, chain holds from line 1 (0 unchained before it); 4 results match\n"
    assert all(json.loads(line)["prev"] for line in _lines(ran))


def _edit_a_byte(lines: list[bytes], at: int) -> None:
    lines[at] = lines[at].replace(b'"v": 1', b'"v": 2', 1)


def _remove(lines: list[bytes], at: int) -> None:
    del lines[at]


def _swap(lines: list[bytes], at: int) -> None:
    lines[at], lines[at + 1] = lines[at + 1], lines[at]


def _insert_a_copy(lines: list[bytes], at: int) -> None:
    lines.insert(at, lines[at - 2])


def _take_out_prev(lines: list[bytes], at: int) -> None:
    data = json.loads(lines[at])
    del data["prev"]
    lines[at] = json.dumps(data).encode() + b"\n"


# Each change to the line at index ``at`` (line ``at + 1``), and the first line that then does not hold.
CHANGES: list[Any] = [
    pytest.param(_edit_a_byte, 1, id="a-byte-edited"),
    pytest.param(_remove, 0, id="a-line-removed"),
    pytest.param(_swap, 0, id="two-lines-swapped"),
    pytest.param(_insert_a_copy, 0, id="a-line-inserted"),
    pytest.param(_take_out_prev, 0, id="its-prev-taken-out"),
]


@pytest.mark.parametrize(("change", "after"), CHANGES)
def test_a_line_changed_names_the_first_line_that_does_not_hold(
    ran: Path, change: Callable[[list[bytes], int], None], after: int
) -> None:
    lines = _lines(ran)
    middle = len(lines) // 2
    change(lines, middle)
    _write(ran, lines)
    code, found, text = _verify(ran)
    assert code == 1 and found["ok"] is False
    first = found["findings"][0]
    assert (first["file"], first["line"]) == (LOG, middle + 1 + after), found["findings"]
    assert text.startswith(f"{LOG}:{middle + 1 + after}: "), text
    assert text.rstrip("\n").endswith(f"the first: {LOG}:{middle + 1 + after}: {first['what']}")  # (stderr)


def test_lines_cut_off_the_end_are_told_by_the_head(ran: Path) -> None:
    lines = _lines(ran)
    _write(ran, lines[:-2])  # (the chain of what is left holds)
    code, found, _ = _verify(ran)
    assert code == 1
    cut = [json.loads(line) for line in lines[-2:]]
    told = [".orchestrator/results/" + e["result"].rsplit("/", 1)[1] for e in cut if e.get("result_digest")]
    assert told, cut  # (the run's last result: its record was cut off with it)
    assert found["findings"] == [
        {
            "file": LOG,
            "line": len(lines) - 2,
            "what": f"ends at line {len(lines) - 2} but state/events.head says {len(lines)} lines "
            "(lines cut off its end)",
        },
        *({"file": result, "line": None, "what": audit.UNRECORDED} for result in told),
    ]
    # The next writer does not cover the cut up: its line chains to the line the head names.
    assert cli_in_process(ran, "add", "five", "--command", "echo five").code == 0
    code, found, _ = _verify(ran)
    assert code == 1 and [f["line"] for f in found["findings"]] == [len(lines) - 1, *(None for _ in told)]


def test_the_last_line_edited_is_told_by_the_head(ran: Path) -> None:
    lines = _lines(ran)
    lines[-1] = lines[-1].replace(b'"v": 1', b'"v": 7')
    _write(ran, lines)
    code, found, _ = _verify(ran)
    assert code == 1 and [f["line"] for f in found["findings"]] == [len(lines)], found["findings"]


def test_the_head_removed_is_told(ran: Path) -> None:
    (ran / ".orchestrator/state/events.head").unlink()
    code, found, _ = _verify(ran)
    assert code == 1
    assert [(f["file"], f["line"]) for f in found["findings"]] == [(".orchestrator/state/events.head", None)]


def test_a_result_edited_by_hand_is_named(ran: Path) -> None:
    result = ran / ".orchestrator/results/agent-02-result.md"
    result.write_text(result.read_text() + "a line a person added\n")
    code, found, text = _verify(ran)
    assert code == 1
    assert found["results"]["differ"] == [".orchestrator/results/agent-02-result.md"]
    assert found["results"]["matched"] == 3
    [finding] = found["findings"]
    recorded = next(
        number for number, line in enumerate(_lines(ran), 1) if b'"task_completed"' in line and b'"T-02"' in line
    )
    assert finding == {
        "file": ".orchestrator/results/agent-02-result.md",
        "line": None,
        "what": f"not the bytes the run recorded at events.jsonl:{recorded} (edited after)",
    }
    assert text.startswith(f"{finding['file']}: {finding['what']}\n"), text


def test_a_result_written_again_by_a_run_or_a_command_is_recorded_again(ran: Path) -> None:
    """Every way the tool writes a result again records its digest: a run after `reset`, a cancel
    with no run going on; one removed since (`retry`) is counted as gone, not checked."""
    assert cli(ran, "reset", "T-01").code == 0
    assert run(ran).code == 1  # (T-01 runs again, T-03 fails again)
    assert cli_in_process(ran, "cancel", "T-04").code == 0  # (skipped: now cancelled)
    code, found, text = _verify(ran)
    assert code == 0 and found["results"] == {**NONE, "matched": 4}, text
    assert cli_in_process(ran, "retry", "T-04").code == 0  # (its result removed)
    code, found, text = _verify(ran)
    assert code == 0, text
    assert found["results"] == {**NONE, "matched": 3, "gone": [".orchestrator/results/agent-04-result.md"]}
    assert "1 result the log recorded no longer there" in text


def test_a_word_given_between_runs_is_recorded_as_the_next_run_takes_it(tmp_path: Path) -> None:
    """A result that awaited approval is written again by the next run, before it starts: the word
    is logged as taken, with the result's digest."""
    path = tmp_path / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True)
    path.write_text(
        "---\nbackend: shell\nretries: 0\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies | Approval |\n|---|---|---|---|\n"
        "| T-01 | echo built | None | after |\n| T-02 | echo deployed | T-01 | |\n",
        encoding="utf-8",
    )
    assert cli(tmp_path, "run").code == 4
    assert cli_in_process(tmp_path, "approve", "T-01").code == 0
    assert cli(tmp_path, "run").code == 0
    code, found, text = _verify(tmp_path)
    assert code == 0, text
    assert found["results"]["matched"] == 2
    given = [json.loads(line) for line in _lines(tmp_path) if b'"approval_given"' in line]
    assert [(e["task"], e["run"], e["gate"]) for e in given] == [("T-01", None, "after")]


def test_a_restore_records_what_it_brought_back_and_a_result_changed_since_is_named(ran: Path) -> None:
    """A restore brings back other bytes than the log last recorded: its own line records each
    result it brought back, which ``verify`` holds them to. A result edited after the restore was
    not told (everything recorded before it was forgotten); now it is named at the restore's line."""
    assert cli_in_process(ran, "checkpoint", "save", "one").code == 0
    assert cli(ran, "reset", "T-02").code == 0
    assert run(ran).code == 1  # (T-02 written again: other times, other bytes)
    assert cli_in_process(ran, "checkpoint", "restore", "one").code == 0
    code, found, text = _verify(ran)
    assert code == 0, text
    assert found["results"]["matched"] == 4  # (each as the restore brought it back)
    restored = [json.loads(line) for line in _lines(ran) if b'"checkpoint_restored"' in line]
    assert sorted(restored[-1]["results"]) == [f"agent-0{n}-result.md" for n in range(1, 5)]
    result = ran / ".orchestrator/results/agent-03-result.md"
    result.write_text(result.read_text() + "touched up after the restore\n")
    code, found, text = _verify(ran)
    line = len(_lines(ran))  # (the restore's: the log's last)
    assert code == 1 and found["results"]["differ"] == [".orchestrator/results/agent-03-result.md"], text
    assert found["findings"][0]["what"] == f"not the bytes the run recorded at events.jsonl:{line} (edited after)"
    (ran / ".orchestrator/results/agent-09-result.md").write_text("---\ntask: T-09\nstatus: completed\n---\nmine\n")
    code, found, text = _verify(ran)
    assert found["results"]["unrecorded"] == [".orchestrator/results/agent-09-result.md"], text


def test_a_result_file_no_event_records_is_named_and_one_of_a_version_before_digests_is_not(ran: Path) -> None:
    """A result file written since the run (by hand: ``verify`` cannot tell a person from a runner
    killed before it told of it) was silent; now it is a finding, exit 1. One that only a line of
    a version before digests names is counted apart (``unchecked``), as a restore of such a
    version makes every result."""
    made = ran / ".orchestrator/results/agent-07-result.md"
    made.write_text("---\ntask: T-07\nstatus: completed\n---\nmade up\n")
    (ran / ".orchestrator/results/agent-07-result.edited.md").write_text("kept aside: no task's result\n")
    code, found, text = _verify(ran)
    assert code == 1 and found["results"]["unrecorded"] == [".orchestrator/results/agent-07-result.md"], text
    assert found["findings"] == [
        {"file": ".orchestrator/results/agent-07-result.md", "line": None, "what": audit.UNRECORDED}
    ]
    assert text.startswith(f".orchestrator/results/agent-07-result.md: {audit.UNRECORDED}\n"), text
    # A line of a version before digests names it: not to be told from one written since.
    old = {"event": "task_completed", "run": None, "time": "t", "task": "T-07", "result": ".orchestrator/results/"
           "agent-07-result.md"}  # fmt: skip
    _write(ran, [*_lines(ran), json.dumps(old).encode() + b"\n"])
    code, found, text = _verify(ran)
    assert found["results"]["unrecorded"] == [] and found["results"]["unchecked"] == [
        ".orchestrator/results/agent-07-result.md"
    ], text
    assert "1 result only a version before digests recorded (or restored): not checked" in text


def test_a_log_from_before_the_chain_goes_on_as_the_chains_unchained_past(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    old = [
        {"event": "task_added", "run": None, "time": "2026-01-01T00:00:00Z", "task": "T-00", "name": "", "after": []},
        {"event": "shared", "run": None, "v": 1, "time": "2026-01-01T00:00:01Z", "task": None, "text": "hello"},
    ]
    (tmp_path / LOG).parent.mkdir(parents=True)
    (tmp_path / LOG).write_text("".join(json.dumps(line) + "\n" for line in old))
    code, found, text = _verify(tmp_path)
    assert code == 0 and found["chained_from"] is None, text
    assert text == f"{LOG}: 2 lines, none chained (written before the chain): nothing to check\n"
    assert run(tmp_path).code == 0
    code, found, text = _verify(tmp_path)
    assert code == 0, text
    assert found["chained_from"] == 3 and found["results"]["matched"] == 1
    assert "chain holds from line 3 (2 unchained before it); 1 result matches" in text
    # The first chained line holds the last unchained one to what it was.
    lines = _lines(tmp_path)
    lines[1] = lines[1].replace(b"hello", b"HELLO")
    _write(tmp_path, lines)
    code, found, _ = _verify(tmp_path)
    assert code == 1 and found["findings"][0]["line"] == 3
    # A line without "prev" after the chain began is a break.
    lines[1] = lines[1].replace(b"HELLO", b"hello")
    _write(tmp_path, [*lines, json.dumps(old[1]).encode() + b"\n"])
    code, found, _ = _verify(tmp_path)
    assert code == 1 and found["findings"][0]["line"] == len(lines) + 1
    assert 'has no "prev"' in found["findings"][0]["what"]


def test_a_line_torn_by_a_crash_is_told_and_the_next_writer_chains_to_it(ran: Path) -> None:
    with (ran / LOG).open("ab") as log:
        log.write(b'{"event": "task_started", "run": "2026')  # (the power went)
    code, found, _ = _verify(ran)
    assert code == 0 and found["torn"] == [len(_lines(ran))]
    assert cli_in_process(ran, "add", "five", "--command", "echo five").code == 0
    code, found, text = _verify(ran)
    lines = _lines(ran)
    assert code == 0, text
    assert found["torn"] == [len(lines) - 1] and lines[-2].endswith(b'"2026\n')
    assert f"{LOG}:{len(lines) - 1}: torn" in text
    assert json.loads(lines[-1])["task"] == "T-05"


# Each appender: ``append`` 50 times, one line a call, as add, cancel or discover does (``locked``:
# through the log's lock, as the tool writes; else with its turn made a no-op, the lock gone).
APPENDER = """
import contextlib, sys, time
from pathlib import Path
from orchestrator.state.events import append, chain
if sys.argv[3] == "unlocked":
    chain.turn = lambda path, **_: contextlib.nullcontext()
    linked = chain.linked
    chain.linked = lambda lines, prev: (time.sleep(0.002), linked(lines, prev))[1]
for n in range(50):
    append(Path(sys.argv[1]), [{"event": "shared", "run": None, "v": 1, "time": "t", "task": None,
                                "text": f"appender {sys.argv[2]}, line {n}"}])
"""


def _race(project: Path, how: str) -> int:
    """Eight appenders and a run at once; how many lines the appenders wrote."""
    write_plan(project, [Spec(f"T-{n:02d}", "echo done") for n in range(1, 21)])
    runner = start(project)
    try:
        appenders = [
            subprocess.Popen([sys.executable, "-c", APPENDER, str(project / LOG), str(n), how]) for n in range(8)
        ]
        assert [p.wait(timeout=120) for p in appenders] == [0] * 8
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.stop_all()
    return sum(b'"appender ' in line for line in _lines(project))


def test_writers_at_once_leave_a_chain_that_holds(tmp_path: Path) -> None:
    assert _race(tmp_path, "locked") == 400
    code, found, text = _verify(tmp_path)
    assert code == 0, text
    assert found["lines"] == len(_lines(tmp_path)) == found["head"]["lines"]
    assert found["results"]["matched"] == 20


def test_without_the_lock_the_same_writers_break_it(tmp_path: Path) -> None:
    """The race above, the lock taken away: two writers chain to the same line (what the lock is for)."""
    _race(tmp_path, "unlocked")
    code, found, _ = _verify(tmp_path)
    assert code == 1 and any("is not the digest of line" in f["what"] for f in found["findings"])


def test_verify_writes_nothing_and_needs_no_lock_file(ran: Path) -> None:
    state = ran / ".orchestrator/state"
    (state / chain.LOCK_NAME).unlink()
    before = {path.name: path.read_bytes() for path in state.iterdir() if path.is_file()}
    assert _verify(ran)[0] == 0
    assert {path.name: path.read_bytes() for path in state.iterdir() if path.is_file()} == before


def test_a_workspace_with_no_log_has_nothing_to_check(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    code, found, text = _verify(tmp_path)
    assert code == 0 and found["lines"] == 0 and found["head"] is None
    assert text == f"{LOG}: no event yet: nothing to check\n"
