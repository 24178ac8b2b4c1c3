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
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
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
    return code, _ESCAPE.sub("", written.decode("utf-8", errors="replace"))


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
