"""A runner killed -9 at a drawn moment (tests/test_differential.py, tests/test_fixed_point_races.py):
after a time, or held by a git hook (``reference-transaction``) at the moment a ref of a run with
``isolation: worktree`` moves: a lane's attempt committed, a task's own attempt committed, a
race's winner adopted onto its task's branch (or a dead runner's race set back there by the next
run, the same git command), a branch merged into the integration branch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st
from runner_helpers import Result, parse_events, start

# Where a hook holds the runner's git, to be killed there: the ref that moves (an awk regex) and
# the git command that moves it (a piece of its command line).
MOMENTS = {
    "lane committed": (r"^refs/heads/orchestrator/integration-T-[0-9]+[+][0-9]+$", " commit "),
    "task committed": (r"^refs/heads/orchestrator/integration-T-[0-9]+$", " commit "),
    "winner adopted": (r"^refs/heads/orchestrator/integration-T-[0-9]+$", " reset -q --hard "),
    "merged": (r"^refs/heads/orchestrator/integration$", " merge --no-ff "),
}
_HOLD = """#!/bin/sh
[ "$1" = committed ] || exit 0
awk -v re='REF' '$3 ~ re && $1 != $2 {f = 1} END {exit !f}' || exit 0
tr '\\0' ' ' < /proc/$PPID/cmdline | grep -q -- 'COMMAND' || exit 0
n=$(($(cat DIR/count 2>/dev/null || echo 0) + 1)); echo $n > DIR/count
[ "$n" = NTH ] || exit 0
echo $PPID > DIR/git.pid
echo $$ > DIR/held.pid
exec sleep 60
"""


@dataclass(frozen=True)
class Kill:
    run: int  # which run (1, 2...) is killed
    moment: str  # "after" (a time), or one of MOMENTS
    nth: int  # after: tenths of a second; a moment: its nth time in that run


def kill_at(runs: int = 2) -> st.SearchStrategy[Kill]:
    """A kill of one of the first ``runs`` runs: after up to 1.5 s, or at a moment's first or second time."""
    which = st.integers(1, runs)
    after = st.builds(Kill, which, st.just("after"), st.integers(1, 15))
    return after | st.builds(Kill, which, st.sampled_from(sorted(MOMENTS)), st.integers(1, 2))


def killed(project: Path, kill: Kill) -> Result | None:
    """A run of ``project`` killed -9 at ``kill``'s moment: ``None``; a run that ended before its
    moment came, how it ended (held to status as any other)."""
    hooks, held = project / ".git" / "hooks", project.parent / "held"
    held.mkdir(exist_ok=True)
    for name in ("count", "held.pid", "git.pid"):
        (held / name).unlink(missing_ok=True)
    hook = hooks / "reference-transaction"
    if kill.moment in MOMENTS:
        ref, command = MOMENTS[kill.moment]
        text = _HOLD.replace("REF", ref).replace("COMMAND", command).replace("NTH", str(kill.nth))
        hook.write_text(text.replace("DIR", str(held)), encoding="utf-8")
        hook.chmod(0o755)
    runner = start(project, name=f"killed-{kill.run}")
    try:
        deadline = time.monotonic() + (kill.nth / 10 if kill.moment == "after" else 60)
        while runner.process.poll() is None and time.monotonic() < deadline and not _read_pid(held / "held.pid"):
            time.sleep(0.02)
        if runner.process.poll() is not None:
            out, err = runner.stdout.read_text(encoding="utf-8"), runner.stderr.read_text(encoding="utf-8")
            return Result(runner.process.returncode, out, err, parse_events(out))
        runner.kill()
    finally:
        hook.unlink(missing_ok=True)
        runner.cleanup()
        _release(held)
    return None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text else None


def _release(held: Path) -> None:
    """The hook's hold let go, and the git it held waited for to end (its ref moved already)."""
    pid, git_pid = _read_pid(held / "held.pid"), _read_pid(held / "git.pid")
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while git_pid is not None and Path(f"/proc/{git_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
