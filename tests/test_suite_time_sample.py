"""Two tests of known lengths, for tests/test_suite_time.py's report (they pass, quickly)."""

from __future__ import annotations

import time


def test_the_slower_one() -> None:
    time.sleep(0.3)


def test_the_quicker_one() -> None:
    time.sleep(0.01)
