"""bench/suite_time.py reads a real JUnit report of a real pytest run and says where its time went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "suite_time.py"


def test_the_table_sums_a_real_reports_tests_by_file_and_kind(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", f"--junitxml={report}",
         "tests/test_suite_time_sample.py"],
        cwd=BENCH.parent.parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = subprocess.run([sys.executable, str(BENCH), "--xml", str(report), "--workers", "2", "--top", "3"],
                          capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert said.startswith("2 tests (0 failed), "), said
    assert "| in-process only | 2 |" in said and "| `tests/test_suite_time_sample.py` | 2 |" in said, said
    assert "test_suite_time_sample.py::test_the_slower_one" in said.split("slowest tests")[1].splitlines()[4], said
