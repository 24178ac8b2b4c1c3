"""``orchestrator verify``: whether a workspace's event log and results are what its runs wrote,
from the files alone (``state/events/audit``). It reads, and changes nothing.

Exit 1 for anything that does not hold: a line of the chain, the log's end against its head, a
result edited after its run recorded it (or after a restore brought it back), a result file no
event records (new since: written by hand, or by a runner killed before it told of it). That is
no error of the tool's (a person may edit a result): the answer says which file and line, one
line each on stdout, the first again on stderr, and a script reads the exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.commands.calling import Call, Result
from orchestrator.errors import shown
from orchestrator.vocabulary import ExitCode, counted


def verify(call: Call) -> Result:
    """The chain of ``state/events.jsonl`` and the results it recorded, checked."""
    from orchestrator.state.events import effects
    from orchestrator.state.events.audit import audit

    workspace = call.workspace
    found = audit(workspace)
    ledger = effects.ledger(workspace.events_file)  # (each outward effect's last word: done, failed, unknown)
    data: dict[str, Any] = {
        "ok": found.ok,
        "log": workspace.relative(found.log),
        "lines": found.lines,
        "chained_from": found.chained_from,
        "torn": found.torn,
        "head": found.head.as_json() if found.head is not None else None,
        "results": {
            "matched": len(found.matched),
            "differ": [workspace.relative(path) for path in found.differ],
            "gone": [workspace.relative(path) for path in found.gone],
            "unrecorded": [workspace.relative(path) for path in found.unrecorded],
            "unchecked": [workspace.relative(path) for path in found.unchecked],
        },
        "findings": [{"file": workspace.relative(f.path), "line": f.line, "what": f.what} for f in found.findings],
        "more": found.more,
        "effects": [entry.as_json() for entry in ledger.values()],
    }

    def text() -> str:
        lines = [_where(f.path, f.line) + f": {f.what}" for f in found.findings]
        if found.more:
            lines.append(f"... and {counted(found.more, 'finding')} more")
        if found.ok:
            lines.append(_summary(found.log, found.lines, found.chained_from, len(found.matched)))
        lines += [_where(found.log, n) + ": torn: a crash cut it short as it was written; no reader takes it"
                  for n in found.torn]  # fmt: skip
        if found.gone:
            gone = f"{len(found.gone):,} {'result' if len(found.gone) == 1 else 'results'}"
            lines.append(f"{gone} the log recorded no longer there (reset and retry remove them): not checked")
        if found.unchecked:
            old = f"{len(found.unchecked):,} {'result' if len(found.unchecked) == 1 else 'results'}"
            lines.append(f"{old} only a version before digests recorded (or restored): not checked")
        lines += _effect_lines(list(ledger.values()))
        return "".join(line + "\n" for line in lines)

    if found.ok:
        return Result(data, shown=text)
    first, count = found.findings[0], counted(len(found.findings) + found.more, "finding")
    said = f"verify: {count}; the first: {_where(first.path, first.line)}: {first.what}"
    return Result(data, ExitCode.FAILED, said=said, shown=text)


def _effect_lines(entries: list[Any]) -> list[str]:
    """The ledger's effects: how many of each state, and each that is not done, or that is (its link)."""
    if not entries:
        return []
    states = {state: sum(1 for e in entries if e.state == state) for state in ("done", "unknown", "failed")}
    told = ", ".join(f"{n} {state}" for state, n in states.items() if n)
    from orchestrator.state.events.effects import said

    return [f"{counted(len(entries), 'outward effect')} in the log ({told}):", *("  " + line for line in said(entries))]


def _where(path: Path, line: int | None) -> str:
    return shown(path) + (f":{line}" if line is not None else "")


def _summary(log: Path, lines: int, chained_from: int | None, matched: int) -> str:
    """The one line a log that holds gets."""
    if not lines:
        return f"{shown(log)}: no event yet: nothing to check"
    if chained_from is None:
        return f"{shown(log)}: {lines:,} lines, none chained (written before the chain): nothing to check"
    before = chained_from - 1
    held = f"chain holds from line {chained_from:,} ({before:,} unchained before it)"
    results = f"{matched:,} {'result matches' if matched == 1 else 'results match'}"
    return f"{shown(log)}: {lines:,} {'line' if lines == 1 else 'lines'}, {held}; {results}"
