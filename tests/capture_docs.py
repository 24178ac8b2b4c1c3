"""Capture again the output the docs show after their ``# runnable`` blocks.

    python tests/capture_docs.py [DOC ...]

Each ``# runnable`` block followed (after one blank line) by a ``text`` block is run as
``tests/test_docs.py`` runs it: in a fresh copy of this repository, with its home in a temporary
folder. What it prints replaces the ``text`` block, with the paths of that run shown as a reader's
machine would show them (``~/project``, ``~``, ``~/.venv/bin``): the docs name no path of the
machine they were captured on. ``tests/test_docs.py`` fails when a block's output no longer
matches what its doc shows, with times, durations, ids and the order of lines masked.
A block that exits with another code than its marker says is reported, and its output kept; so is
an output that differs from the doc's only where the test masks it (times, ids, the order of lines).
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_docs import BLOCKS, DOCS, ROOT, WORKERS, Block, Outcome, make_snapshot, run_block, shape


def captured_again(doc: str, runs: dict[int, tuple[int, str]]) -> str:
    """``doc``'s text with each text block replaced by its output: ``runs`` maps the line of a
    block's opening fence (1-based) to how many lines its body has and what the run printed."""
    lines = (ROOT / doc).read_text(encoding="utf-8").split("\n")
    for opening in sorted(runs, reverse=True):
        length, output = runs[opening]
        lines[opening : opening + length] = output.rstrip("\n").split("\n")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    wanted = set(argv) or set(DOCS)
    unknown = wanted - set(DOCS)
    if unknown:
        print(f"not a doc with runnable blocks: {', '.join(sorted(unknown))} (one of {', '.join(DOCS)})")
        return 2
    blocks = [b for b in BLOCKS if b.captured is not None and b.doc in wanted]
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="capture-docs-") as scratch:
        base = Path(scratch)
        snapshot = make_snapshot(base / "snapshot" / "repo")

        def one(index: int, block: Block) -> Outcome:
            where = base / f"block{index}"
            where.mkdir()
            return run_block(block, snapshot, where)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(pool.map(one, range(len(blocks)), blocks))
    runs: dict[str, dict[int, tuple[int, str]]] = {}
    for block, outcome in zip(blocks, outcomes, strict=True):
        assert block.captured is not None
        if outcome.exit_code != block.exit_code:
            failed.append(f"{block.name} exited {outcome.exit_code}, expected {block.exit_code}: kept as it was")
            continue
        if shape(outcome.output) == shape(block.captured.body):
            continue  # (only times, ids or the order of lines changed: kept, so that a capture changes no line in vain)
        length = block.captured.body.count("\n")
        runs.setdefault(block.doc, {})[block.captured.line] = (length, outcome.output)
    for doc, found in runs.items():
        text = captured_again(doc, found)
        if text != (ROOT / doc).read_text(encoding="utf-8"):
            (ROOT / doc).write_text(text, encoding="utf-8")
            print(f"{doc}: {len(found)} outputs captured again")
    for line in failed:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
