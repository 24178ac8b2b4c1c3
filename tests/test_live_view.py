"""The live view on a terminal (a pseudo-terminal here): a running task's clock moves while
nothing else happens, and the start and finish lines stay on screen above the panel."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from runner_helpers import CLI, HANG_GUARD, Spec, write_plan

pty = pytest.importorskip("pty")
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_on_a_terminal(project: Path, *args: str) -> tuple[int, str]:
    """``orchestrator run ARGS`` with a pseudo-terminal for stdin, stdout and stderr; what it
    wrote, control sequences taken out."""
    code, written = _terminal_bytes(project, *args)
    return code, _ESCAPE.sub("", written.decode("utf-8", errors="replace"))


def _terminal_bytes(project: Path, *args: str) -> tuple[int, bytes]:
    """``orchestrator run ARGS`` on a pseudo-terminal of 16 colours (``TERM=xterm``): all it wrote."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    for name in ("NO_COLOR", "COLORTERM", "FORCE_COLOR"):  # rich would draw in other colours, or none
        env.pop(name, None)
    process = subprocess.Popen(
        [*CLI, "run", *args], cwd=project, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    written = b""
    deadline = time.monotonic() + HANG_GUARD
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not data:
                    break
                written += data
            elif process.poll() is not None:
                break
        code = process.wait(timeout=HANG_GUARD)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, written


_SGR = re.compile(r"\x1b\[([0-9;]*)m|(\x1b\[[0-9;?]*[A-Za-z])|([^\x1b]+)")
_BAR = "━╸╺"  # what rich draws a progress bar with


def _bar_colours(written: bytes) -> set[str]:
    """The foreground colours (SGR codes: ``31`` red, ``32`` green...) the progress bar's filled
    part and the rest were drawn in."""
    colours: set[str] = set()
    foreground = ""
    for sgr, _other, text in _SGR.findall(written.decode("utf-8", errors="replace")):
        if text:
            if any(glyph in text for glyph in _BAR):
                colours.add(foreground)
            continue
        codes = sgr.split(";") if sgr else ["0"]
        for index, code in enumerate(codes):
            if code in {"0", "39"}:
                foreground = ""
            elif code.isdigit() and (30 <= int(code) <= 37 or 90 <= int(code) <= 97):
                foreground = code
            elif code == "38":
                foreground = ";".join(codes[index:])
                break
    return colours


_RED = {"31", "91"}


@pytest.mark.parametrize(("script", "code"), [("true", 0), ("exit 1", 1)], ids=["none-failed", "one-failed"])
def test_the_progress_bar_is_red_only_when_a_task_failed(tmp_path: Path, script: str, code: int) -> None:
    """It was drawn in rich's own red-pink (bright red on 16 colours) while every task went
    well. T-01 runs on for a while after T-02 ends, so the bar is drawn part done."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", "while [ ! -f two ]; do sleep 0.05; done\nsleep 2"),
            Spec("T-02", f"touch two\n{script}"),
        ],
    )
    exit_code, written = _terminal_bytes(tmp_path)
    assert exit_code == code
    colours = _bar_colours(written)
    filled = colours - {"90", ""}  # the part to do is grey (or the terminal's own colour)
    assert filled, colours  # the bar was drawn with a part done
    if code == 0:
        assert filled == {"32"}, colours  # green
    else:
        assert filled & _RED and "32" not in filled, colours


def test_a_running_tasks_clock_moves_and_finished_lines_stay(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo hi", name="Quick"), Spec("T-02", "sleep 3.5", deps=["T-01"], name="Long")])
    code, shown = _run_on_a_terminal(tmp_path)
    assert code == 0, shown
    # The clock of T-02, alone and silent for 3.5 s, was drawn at more than zero seconds.
    clocks = {float(value) for value in re.findall(r"T-02\s+(\d+\.\d)s\s+Long", shown)}
    assert any(value >= 1.0 for value in clocks), sorted(clocks)
    for line in (
        "🔵 T-01 [Agent-01] started: Quick",
        "✅ T-01 [Agent-01] completed in",
        "✅ T-02 [Agent-02] completed in",
        "■ run finished in",
    ):
        assert line in shown, line


def test_the_panel_of_a_simulated_run_says_it_is_simulated(tmp_path: Path) -> None:
    """The live panel of ``run --executor fake`` showed counts and a progress bar as for real
    work; it says now that nothing runs and every result is made up."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    code, shown = _run_on_a_terminal(tmp_path, "--executor", "fake")
    assert code == 0, shown
    assert "🎭 simulated" in shown and "the fake executor runs nothing: every result is made up" in shown, shown
    code, shown = _run_on_a_terminal(tmp_path, "--rerun", "T-01")  # real work: no such row
    assert code == 0 and "🎭" not in shown, shown


# What the live panel itself writes, and nothing else: rich's Live hides the cursor while it
# draws and shows it at the end (``?25l``, ``?25h``), takes its last drawing back line by line
# (a carriage return, erase the line ``2K``, up one ``1A``) and colours (SGR ``...m``).
_PANEL_OWN = re.compile(rb"\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A|\x1b\[[0-9;]*m")
_RAW_CONTROL = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")  # all but a line end (\n, \r)


def test_the_live_panel_writes_no_control_character_a_task_printed_or_was_named_with(tmp_path: Path) -> None:
    """A task printing an OSC title change, a clear-screen, a bell and a NUL on both streams
    while it runs and as it fails, and named with them (and with rich markup): on the terminal,
    the panel's own cursor and colour sequences and nothing else. The panel drew a running task's
    name raw (its ESC [2J cleared the screen), and a name holding ``[/]`` crashed the run."""
    printf = "printf 'title\\033]0;pwned\\007 clear\\033[2J bell\\007 nul\\000 end\\n'"
    script = f"{printf}\n{printf} >&2\nsleep 1.5\n{printf} >&2\nexit 1"
    name = "Named title\x1b]0;pwned\x07 clear\x1b[2J bell\x07 [/] [bold red]markup"  # (a plan holds no NUL)
    write_plan(tmp_path, [Spec("T-01", script, name=name), Spec("T-02", f"{printf}\nsleep 1.5", name=name)])
    code, written = _terminal_bytes(tmp_path)
    assert code == 1, written
    rest = _PANEL_OWN.sub(b"", written)
    assert not _RAW_CONTROL.search(rest), _RAW_CONTROL.findall(rest)
    shown = rest.decode("utf-8")
    assert "title\\x1b]0;pwned\\x07 clear\\x1b[2J bell\\x07 nul\\x00 end" in shown  # the failure's tail
    # The panel's rows of the running tasks: the name as written, its controls shown, its markup as text.
    panel = re.findall(r"T-0[12] +[\d.<]+s +(.*?) *\r", shown)
    assert panel, shown
    assert all(row == "Named title\\x1b]0;pwned\\x07 clear\\x1b[2J bell\\x07 [/] [bold red]markup" for row in panel), (
        panel
    )


def test_the_panel_shows_the_runs_end_once_an_estimate_is_learned(tmp_path: Path) -> None:
    """The first run knows nothing: its panel says nothing of the end (it said "about 2m00s
    left" from the 60 s defaults). After a reset, the run knows what each task took: it says."""
    write_plan(tmp_path, [Spec("T-01", "sleep 0.6"), Spec("T-02", "sleep 0.6", deps=["T-01"])])
    code, shown = _run_on_a_terminal(tmp_path)
    assert code == 0, shown
    assert "left (ends about" not in shown and "⏱️" not in shown, shown
    assert _run_on_a_terminal(tmp_path, "--rerun", "T-01")[0] == 0  # (a second run learns from both)
    code, shown = _run_on_a_terminal(tmp_path, "--rerun", "T-01")
    assert code == 0, shown
    told = re.findall(r"⏱️ (\d)/2 done: about (\S+) left \(ends about \d\d:\d\d\)", shown)
    assert any(done == "0" and 1.0 <= float(left.rstrip("s")) < 3 for done, left in told), told  # T-01, then T-02


def test_the_panel_draws_one_bar_for_each_row_run_per_item(tmp_path: Path) -> None:
    """A row with an ``Each`` cell has a progress bar of its own, counting its items as they end."""
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(
        "---\nbackend: shell\nmax_parallel: 2\nretries: 0\non_item_failure: continue\n---\n# P\n\n## Tasks\n"
        "| Task ID | Description | Dependencies | Each | Command |\n|---|---|---|---|---|\n"
        "| T-01 | per item | None | a, b, c | `sleep 0.3; test {{ item }} != b` |\n"
    )
    code, shown = _run_on_a_terminal(tmp_path)
    assert code != 0, shown
    assert "📦 T-01 runs once per item of a, b, c: 3 items" in shown, shown
    assert "📦 T-01: 0 of 3 done" in shown and "📦 T-01: 2 of 3 done, 1 not" in shown, shown
