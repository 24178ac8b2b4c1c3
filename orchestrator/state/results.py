"""``results/agent-NN-result.md``: one task's outcome, as one ``ResultRecord`` in the frontmatter
and the output (or the reason it has none) as the body. Read and written only here.

A result file belongs to the task its frontmatter names (``task: T-03``): a file that names another
task is never taken for this one's (``read_record``), and is moved aside, never overwritten, when
this task writes its own (``write_result``, with ``kept/aside.set_aside``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator import redaction
from orchestrator.documents import compose, read_body, read_metadata, sha256
from orchestrator.printable import visible
from orchestrator.state import memo, store
from orchestrator.state.causes import Cause
from orchestrator.state.events.chain import digest
from orchestrator.state.kept.aside import move_aside, set_aside
from orchestrator.state.workspace import Workspace, as_kept_now
from orchestrator.vocabulary import ErrorClass, TaskStatus


def candidate(candidates: Sequence[Mapping[str, Any]], attempt: object) -> str:
    """A best-of candidate as people count it: by its place in its race, its attempt number (which
    counts across runs, as its logs and ``history`` do) beside it when the two differ."""
    place = next((n for n, c in enumerate(candidates, 1) if c.get("attempt") == attempt), None)
    if place is None:
        return f"attempt {attempt if attempt is not None else '?'}"
    return f"candidate {place}" + (f" (attempt {attempt})" if place != attempt else "")


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """What a result file says about its task (the frontmatter), field for field."""

    task: str
    agent: str
    name: str
    status: TaskStatus
    attempts: int = 0  # the number of its last attempt: numbers go on across runs
    # How many attempts the run of the task that produced this result made (1 + its retries);
    # None in a file written before it was recorded.
    run_attempts: int | None = None
    reason: str | None = None
    # Why it is in its state, as data (``state/causes.py``): its ``reason`` is this rendered. A
    # result written before causes were recorded has none; its reason is read as written.
    cause: Cause | None = None
    exit_code: int | None = None
    error_class: ErrorClass | None = None
    started: str | None = None  # local time with offset, to the millisecond
    finished: str | None = None
    duration: float | None = None  # seconds, of the attempt that ended the task
    backend: str | None = None
    fallback_from: str | None = None  # its own backend, when the attempt ran on a fallback (``run/limits/failover``)
    fingerprint: str | None = None  # of its brief, settings and inputs (``run/resume/selection``)
    output_hash: str | None = None  # of the output: part of each dependent's fingerprint
    inputs: str | None = None  # digest of what it was run from, checkable without its brief (``run/resume/basis``)
    session_id: str | None = None  # an agent session an interrupted attempt can resume
    cost_usd: float | None = None
    tokens: Mapping[str, int] | None = None
    turns: int | None = None
    permission_denials: int | None = None
    # What its agent asked a person (``ask: true``), each with its answer: who allowed or denied what.
    asked: tuple[Mapping[str, Any], ...] | None = None
    logs: tuple[str, ...] = ()
    simulated: bool = False  # made by the fake executor: no process ran
    # Reused from the cache (``run/resume/reuse.py``), no process started: why ("same inputs as the run of ...").
    reused: str | None = None
    worker: str | None = None  # on a cluster (``--executor dask``): the worker that ran the attempt
    # With isolation: worktree, the task's work: its branch, the commit its attempt left there,
    # ``git diff --stat`` since the branch left the integration branch, and what its merge did.
    branch: str | None = None
    commit: str | None = None
    diffstat: str | None = None
    merge: str | None = None
    # A hedged task (``run/races/hedge.py``): which attempt won, which was stopped, when the hedge
    # started (``after``, seconds into the first) and by how much the winner won (``won_by``).
    hedged: Mapping[str, Any] | None = None
    # Best of N (``run/races/bestof.py``): the judge, its reason, and every candidate (the others' results
    # are kept beside this file, ``<this file's name>.candidate-<attempt>.md``).
    best_of: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a person or a newer version added

    @property
    def raced(self) -> str | None:
        """What a hedge or best of N did, in one line (``status``, the dashboard, final_output.md)."""
        best, hedged = self.best_of, self.hedged
        if isinstance(best, Mapping):
            shown = best.get("candidates")
            them = [c for c in shown if isinstance(c, Mapping)] if isinstance(shown, list) else []
            chosen = next((c.get("attempt") for c in them if c.get("chosen")), None)
            each = ", ".join(f"{c.get('attempt')} {c.get('status')}" for c in them)
            judged = f"best of {len(them)}, judged {best.get('judge')}"
            said = f"{judged}: {candidate(them, chosen)} chosen, {best.get('reason')}"
            return f"{said} (candidates: {each})"
        if isinstance(hedged, Mapping):
            who = "its hedge" if hedged.get("won") == "hedge" else "its first attempt"
            return f"hedged after {hedged.get('after')}s: {who} (attempt {hedged.get('winner')}) won"
        return None

    @property
    def total_tokens(self) -> int | None:
        return sum(self.tokens.values()) if self.tokens else None

    def to_mapping(self) -> dict[str, Any]:
        """The frontmatter: empty fields left out, but for ``reason`` and ``exit_code``, which say
        something even when empty."""
        data: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "extra":
                continue
            if spec.name == "logs":
                value = list(value)
            elif spec.name == "asked" and value is not None:
                value = [dict(entry) for entry in value]
            elif spec.name in ("tokens", "hedged", "best_of") and value is not None:
                value = dict(value)
            elif spec.name == "simulated":
                value = value or None
            elif spec.name == "cause" and value is not None:
                value = value.as_json()
            if value is not None or spec.name in ("reason", "exit_code"):
                data[spec.name] = value
        return {**data, **{k: v for k, v in self.extra.items() if k not in data}}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ResultRecord | None:
        """The record a frontmatter holds, leniently (a person may have edited it); ``None`` when it
        names no task."""
        task = data.get("task")
        status = TaskStatus.read(data.get("status", TaskStatus.FAILED))
        if not isinstance(task, str) or not task or status is None:  # (a status word no task has: unreadable)
            return None
        tokens = data.get("tokens")
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            tokens = {"total": tokens}
        elif isinstance(tokens, Mapping):
            tokens = {str(k): int(v) for k, v in tokens.items() if isinstance(v, int) and not isinstance(v, bool)}
        else:
            tokens = None
        known = {spec.name for spec in fields(cls)} | {"content_hash"}  # (that one is the file's, not the task's)
        logs = data.get("logs")
        return cls(
            task=task,
            agent=_text(data.get("agent")) or "",
            name=_text(data.get("name")) or "",
            status=status,
            attempts=_int(data.get("attempts")) or 0,
            run_attempts=_int(data.get("run_attempts")),
            reason=_text(data.get("reason")),
            exit_code=_int(data.get("exit_code")),
            error_class=_error_class(data.get("error_class")),
            started=_text(data.get("started")),
            finished=_text(data.get("finished")),
            duration=_number(data.get("duration")),
            backend=_text(data.get("backend")),
            fallback_from=_text(data.get("fallback_from")),
            fingerprint=_text(data.get("fingerprint")),
            output_hash=_text(data.get("output_hash")),
            inputs=_text(data.get("inputs")),
            session_id=_text(data.get("session_id")),
            cost_usd=_number(data.get("cost_usd")),
            tokens=tokens or None,
            turns=_int(data.get("turns")),
            permission_denials=_int(data.get("permission_denials")),
            asked=_asked(data.get("asked")),
            logs=tuple(str(item) for item in logs) if isinstance(logs, list) else (),
            simulated=data.get("simulated") is True,
            reused=_text(data.get("reused")),
            worker=_text(data.get("worker")),
            branch=_text(data.get("branch")),
            commit=_text(data.get("commit")),
            diffstat=_text(data.get("diffstat")),
            merge=_text(data.get("merge")),
            hedged=dict(data["hedged"]) if isinstance(data.get("hedged"), Mapping) else None,
            best_of=dict(data["best_of"]) if isinstance(data.get("best_of"), Mapping) else None,
            cause=Cause.from_mapping(data.get("cause")),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _asked(value: object) -> tuple[Mapping[str, Any], ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(dict(entry) for entry in value if isinstance(entry, Mapping)) or None


def read_record(path: Path, task_id: str) -> ResultRecord | None:
    """The record of ``task_id``'s result file, or ``None`` when there is none, it cannot be read,
    or it is another task's (in a long-lived process, kept while the file is the same: ``memo``)."""
    return memo.kept(("record", str(path), task_id.lower()), (path,), lambda: _record(path, task_id))


def _record(path: Path, task_id: str) -> ResultRecord | None:
    meta = read_metadata(path)
    if meta is None:
        return None
    record = ResultRecord.from_mapping(meta)
    return record if record is not None and record.task.lower() == task_id.lower() else None


def not_run_body(task_id: str, status: TaskStatus, reason: str | None) -> str:
    """The body of the result of a task that ends with no attempt's output to show (skipped,
    interrupted, cancelled, failed before it could start)."""
    return f"# {status.icon} {task_id} {status}: {reason}\n"


@dataclass(frozen=True, slots=True)
class Kept:
    """A file found where a task's result goes, moved aside rather than written over or deleted."""

    path: Path  # where it is now
    why: str  # what it was: "could not be read as T-01's result", "was edited by hand ..."

    def notice(self, name: str) -> str:
        return f"{name} {self.why}: kept as {self.path.name}"


@dataclass(frozen=True, slots=True)
class Written:
    """What ``write_result`` did: the file it ``kept`` aside first, if any, and the ``digest`` of
    the bytes it wrote, which the event that tells the task's end records (``result_digest``:
    ``verify`` compares the file with it)."""

    kept: Kept | None
    digest: str


def write_result(
    path: Path,
    record: ResultRecord,
    body: str | Iterable[str],
    *,
    durable: bool = True,
    exists: bool = True,
    before: Callable[[str], None] | None = None,
) -> Written:
    """Write ``record`` and ``body`` as ``path``, atomically. ``durable=False`` leaves the fsync
    to a later ``store.sync_files`` (the runner's, within a second). A file there that is not
    this task's result as the tool wrote it is first moved aside (``keep_aside``), and said, for
    the caller to tell. ``exists=False``: the caller knows nothing is there. The frontmatter holds
    a hash of the body (``content_hash``), by which a hand edit of it is known. ``before`` is
    handed the digest of the bytes before they are written (a runner journals it: ``state/events/untold``)."""
    kept = keep_aside(path, record.task) if exists else None
    if not isinstance(body, str):
        return Written(kept, _streamed(path, record, body, durable=durable, exists=exists, before=before))
    body = visible(body)  # what the task printed: no secret, no control character in a markdown file
    mapping = {**redaction.current().data(record.to_mapping()), "content_hash": sha256(body.strip())}
    data = compose(mapping, body).encode("utf-8")
    written = digest(data)
    if before is not None:
        before(written)
    store.write_bytes(path, data, durable=durable, parent_exists=True, exists=exists)
    return Written(kept, written)


def _streamed(
    path: Path, record: ResultRecord, pieces: Iterable[str], *, durable: bool, exists: bool,
    before: Callable[[str], None] | None,
) -> str:  # fmt: skip
    """``write_result`` of a body given in ``pieces`` (a row's over 100,000 items: tens of MB),
    never held whole: spooled to a temp file beside ``path`` as they come, then put after the
    frontmatter its hash makes; the same bytes as ``write_result`` of their join. Each piece is
    redacted on its own: a caller never cuts one inside a secret (a row's pieces are its items'
    answers, each read from a result file redacted already). The digest of what is written is
    returned."""
    spool = _Spool(store.write_temp(path, b"", sync=False, parent_exists=True, exists=False))
    try:
        carried = ""  # (a piece's last ``\r``, which may begin a ``\r\n`` that ``visible`` makes one newline)
        for piece in pieces:
            piece, carried = carried + piece, ""
            if piece.endswith("\r"):
                piece, carried = piece[:-1], "\r"
            spool.add(visible(piece))
        spool.add(visible(carried))
        spool.close()
        mapping = {**redaction.current().data(record.to_mapping()), "content_hash": spool.content_hash.hexdigest()}
        head = compose(mapping, "").encode("utf-8") + (b"\n" if spool.started else b"")
        chain = hashlib.blake2b(head, digest_size=20)  # (``digest``'s, of the bytes as they are written)
        temp = store.write_temp(path, head, sync=False, parent_exists=True, exists=exists)
        try:
            with open(spool.name, "rb") as source, open(temp, "ab") as target:
                while chunk := source.read(1 << 20):
                    chain.update(chunk)
                    target.write(chunk)
                if spool.started:
                    target.write(b"\n")
                    chain.update(b"\n")
                if durable:
                    target.flush()
                    os.fsync(target.fileno())
            if before is not None:
                before(chain.hexdigest())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    finally:
        spool.close()
        with contextlib.suppress(OSError):
            os.unlink(spool.name)
    store.replace(Path(temp), path, durable=durable)
    return chain.hexdigest()


class _Spool:
    """A body written to the temp file ``name`` a piece at a time, as ``compose`` ends it (its
    trailing whitespace held back until more text follows, and never written), with the
    ``content_hash`` of its stripped text made on the way."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.file = open(name, "ab")  # noqa: SIM115 (closed by ``close``; the caller unlinks it either way)
        self.content_hash = hashlib.sha256()
        self.started = False  # (text other than whitespace was seen: what ``strip`` keeps begins)
        self.pending = ""  # whitespace after the last text: written if text follows

    def add(self, piece: str) -> None:
        text = piece.rstrip()
        if not text:
            self.pending += piece
            return
        kept = self.pending + text if self.started else text.lstrip()
        self.file.write((self.pending + text).encode("utf-8"))
        self.content_hash.update(kept.encode("utf-8"))
        self.started, self.pending = True, piece[len(text) :]

    def close(self) -> None:
        self.file.close()


def gather_items(workspace: Workspace) -> list[str]:
    """Each instance's result a version before row folders wrote in results/ itself
    (``agent-03[7]-result.md``) moved into its row's folder, where it is read now
    (``Workspace.result_file``): renamed, never copied, and left where it is when that place is
    taken. The names moved. The caller holds the workspace lock."""
    moved: list[str] = []
    try:
        names = os.listdir(workspace.results_dir)
    except OSError:
        return moved
    for name, target in sorted((name, as_kept_now(name)) for name in names):
        if target == name:  # (a task's, or no result)
            continue
        path = workspace.results_dir / target
        path.parent.mkdir(exist_ok=True)
        workspace.check_inside(path.parent)  # (never moved through a symlink out of the workspace)
        if not path.exists():
            with contextlib.suppress(FileNotFoundError):
                os.rename(workspace.results_dir / name, path)
                moved.append(name)
    return moved


def keep_aside(path: Path, task_id: str) -> Kept | None:
    """Move aside what is at ``path`` if it is no result of ``task_id`` as the tool wrote it:
    another task's (``<name>.T-02.md``), one a hand edit left unreadable (``.unreadable.md``), or
    one whose body a person edited since (``.edited.md``): a person's work is never written
    over, nor deleted by ``reset``."""
    moved = set_aside(path, task_id, unreadable=True)
    if moved is not None:
        return Kept(moved, f"could not be read as {task_id}'s result")
    why = edited(path)
    if why is not None and (moved := move_aside(path, "edited")) is not None:
        return Kept(moved, why)
    return None


def edited(path: Path) -> str | None:
    """How the result at ``path`` is a person's rather than the tool's, or ``None``: a body other
    than the one its ``content_hash`` was made of, or a completed result the tool cannot have
    written (no hash and no ``output_hash``, which every completed result of every version has:
    a person marked the task done by hand). An older version's result is neither."""
    meta = read_metadata(path)  # (as every result is read: no PyYAML for our own frontmatter)
    if meta is None:
        return None
    recorded = meta.get("content_hash")
    if isinstance(recorded, str):
        return "was edited by hand since it was written" if recorded != sha256(read_body(path) or "") else None
    written = TaskStatus.read(meta.get("status")) != TaskStatus.COMPLETED or meta.get("output_hash") is not None
    return None if written else "was written by hand, not by a run"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a time PyYAML read from a hand-edited file
        return value.isoformat(timespec="milliseconds")
    return value if isinstance(value, str) else str(value)


def _error_class(value: object) -> ErrorClass | None:
    try:
        return ErrorClass(str(value)) if value is not None else None
    except ValueError:
        return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
