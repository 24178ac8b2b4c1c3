"""How far one command's call goes through the package: the distinct functions of ``orchestrator``
it calls (issue 74's target: `status` under 60, `approve T-04` under 20).

    python bench/callpath.py [--tasks 40] [--show]

A workspace of ``--tasks`` shell tasks (``true``) in a chain of layers, T-04 gated ``after``, run
once to the end, so T-04's result awaits a word. Then, each in-process under ``sys.setprofile``,
in turn on the same files: ``status`` as derived (its snapshot removed first: the path a person's
save takes), ``status`` as kept (its snapshot there), ``approve T-04`` and ``cancel T-09``.
A function counts once however often it is called; what importing a module runs (its
``<module>`` code, and what that calls: a class made, a record registered) and comprehensions,
lambdas and generator expressions (``<listcomp>`` and the like) do not count.
``--show`` lists each command's functions, by module.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = str(ROOT / "orchestrator")

TABLE = """| ID | Task | Depends On | Command | Approval |
|----|------|------------|---------|----------|
"""


def plan(tasks: int) -> str:
    rows = []
    for number in range(1, tasks + 1):
        task = f"T-{number:02d}"
        needs = f"T-{number - 3:02d}" if number > 3 else ""
        approval = "after" if number == 4 else ""
        rows.append(f"| {task} | step {number} | {needs} | `true` | {approval} |")
    return "# Callpath\n\n## Tasks\n\n" + TABLE + "\n".join(rows) + "\n"


def called(argv: list[str], cwd: Path) -> set[CodeType]:
    """The package's functions a call of ``orchestrator argv`` in ``cwd`` calls, in this process."""
    from orchestrator.cli.main import main

    seen: set[CodeType] = set()

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(PACKAGE) and not code.co_name.startswith("<") and not importing(frame):
                seen.add(code)

    before = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sys.setprofile(profile)
            try:
                main(argv)
            finally:
                sys.setprofile(None)
    finally:
        os.chdir(before)
    return seen


def importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs as a module of the package is imported (a class made, a record registered)."""
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_code.co_filename.startswith(PACKAGE):
            return True
        frame = frame.f_back
    return False


def named(codes: set[CodeType]) -> list[str]:
    return sorted(f"{Path(c.co_filename).relative_to(ROOT)}:{c.co_qualname}" for c in codes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callpath-") as tmp:
        project = Path(tmp)
        (project / ".orchestrator").mkdir()
        (project / ".orchestrator" / "master_plan.md").write_text(plan(args.tasks), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "orchestrator", "run"], cwd=project, env=env, check=False,
                       capture_output=True)  # fmt: skip
        subprocess.run([sys.executable, "-m", "orchestrator", "status"], cwd=project, env=env, check=True,
                       capture_output=True)  # fmt: skip
        state = project / ".orchestrator" / "state"
        time.sleep(2.5)  # (a snapshot is kept only of sources older than the clock: git's racily clean files)

        def derived() -> None:
            for snapshot in state.glob("snapshot.*"):
                snapshot.unlink()

        def kept() -> None:
            called(["status"], project)  # (derived once more, and kept)

        cases: list[tuple[str, Callable[[], None], list[str]]] = [
            ("status (derived)", derived, ["status"]),
            ("status (kept)", kept, ["status"]),
            ("approve T-04", lambda: None, ["approve", "T-04"]),
            ("cancel T-09", lambda: None, ["cancel", "T-09"]),
        ]
        print(f"| command, {args.tasks} tasks | functions of the package called |")
        print("|---|---|")
        found: dict[str, set[CodeType]] = {}
        for label, setup, argv in cases:
            setup()
            found[label] = called(argv, project)
            print(f"| `{label}` | {len(found[label])} |")
        if args.show:
            for label, codes in found.items():
                print(f"\n## {label}\n")
                print("\n".join(named(codes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
