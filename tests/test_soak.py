"""The soak of bench/soak.py, short: kill -9 of the runner at random moments loses nothing.

The long one (200-task runs, hundreds of kills) is run by hand: ``python bench/soak.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="it reads /proc")
def test_random_kill_9s_lose_nothing_rerun_nothing_and_leave_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--tasks", "30", "--rounds", "1", "--seed", "7", "--kill-after", "0.4,1.2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.fullmatch(r"1 rounds, (\d+) runs, (\d+) kills in \d+ s: 0 lost, 0 re-run, 0 unparsable, 0 orphans", last)
    assert found is not None, last
    assert int(found.group(2)) >= 2, f"too few kills to mean anything: {last}"
