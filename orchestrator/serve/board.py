"""The workspace as the dashboard shows it: the plan (read again when its file changes), every
task's state (``run/resume/freshness.current_views`` and ``state.summary.status_data``, as ``status --json``),
the pause, and the workspace's files, read safely.

Every file it serves is read through ``Board.read``: the path, links resolved, must lie inside
the workspace (or the folder asked for), be a regular file, and only a bounded part of it is read
(a brief's head, a log's tail). A name that leads out (``..``, an absolute path, a symlink to
/etc) reads as missing.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.documents import open_regular
from orchestrator.errors import OrchestratorError
from orchestrator.plan.model import Plan, Task
from orchestrator.printable import visible, visible_data
from orchestrator.run.forecasts.deadlines import workspace_verdicts
from orchestrator.run.forecasts.spend import what_is_left
from orchestrator.run.inflight.budgeting import standing
from orchestrator.run.resume.freshness import current_views
from orchestrator.serve.picture import graph_svg
from orchestrator.state.items import add_counts
from orchestrator.state.logs import attempts as logs_of
from orchestrator.state.pause import paused, read_pause
from orchestrator.state.plans import plan_of
from orchestrator.state.procs import pid_alive, ticks
from orchestrator.state.summary import status_data
from orchestrator.state.workspace import Workspace

TEXT_LIMIT = 64 * 1024  # bytes of a brief, a result or a context file sent to the page
LOG_LIMIT = 16 * 1024  # bytes of a log's tail
CONTEXT_FILES = 200  # files of context/ listed at most
CONTEXT_DIR = "context"

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FileKey:
    """What tells that a file changed without reading it."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileKey | None:
        try:
            found = path.stat()
        except OSError:
            return None
        return cls(found.st_size, found.st_mtime_ns)


class Board:
    """One workspace as the dashboard shows it. Called from worker threads (the tailer's refresh
    and each request for a task's files), so the plan it caches is guarded by a lock."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.root = os.path.realpath(workspace.root)
        self.context_dir = workspace.root / CONTEXT_DIR
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._plan_key: tuple[FileKey | None, FileKey | None] | None = None
        self._svg = ""
        self.plan_error: str | None = None
        self.plan_version = 0

    def plan(self) -> Plan | None:
        """The plan as its file says now; while the file does not parse (an edit under way), the
        last plan that did, and ``plan_error`` says what is wrong."""
        # (and the values run --param gave: the plan's text is read with them)
        key = (FileKey.of(self.workspace.plan_file), FileKey.of(self.workspace.params_file))
        with self._lock:
            if key[0] is not None and key == self._plan_key:
                return self._plan
            self._plan_key = key
            try:
                plan = plan_of(self.workspace)
            except (OrchestratorError, OSError) as exc:
                self.plan_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return self._plan
            self._plan, self.plan_error = plan, None
            self._svg = graph_svg(plan)
            self.plan_version += 1
            return plan

    def svg(self) -> str:
        self.plan()
        with self._lock:
            return self._svg

    def snapshot(self, run: dict[str, Any], feed: list[Event], notable: list[Event]) -> dict[str, Any]:
        """Everything the page shows at once: ``status --json``'s data, the run, the pause, the
        totals, the recent events and the context files; every string in it ``visible``."""
        plan = self.plan()
        views = current_views(plan, self.workspace) if plan is not None else []  # out of date told, as status does
        data = status_data(self.workspace, views)
        if plan is not None:
            add_counts(plan, self.workspace, data["tasks"])  # (a row run per item: its counts, as status says them)
        no_plan = {"eta": None, "forecast": None, "max_cost": None}
        data.update(what_is_left(plan, self.workspace, views)[0] if plan is not None else no_plan)  # (as status)
        data["deadlines"] = workspace_verdicts(plan, self.workspace, views) if plan is not None else []
        tokens = [v.tokens for v in views if v.tokens is not None]
        if run.get("pid") and run.get("finished") is None:
            run = {**run, "alive": pid_alive(int(run["pid"]), ticks(run.get("pid_start")))}
        data.update(
            {
                "name": self.workspace.project_dir.name,
                "request": plan.request if plan is not None else "",
                "params": plan.params if plan is not None else {},
                "tokens": sum(tokens) if tokens else None,
                "run": run,
                "pause": self.pause(),
                "budget": standing(self.workspace, plan.settings.max_cost if plan is not None else None),
                "plan_version": self.plan_version,
                "plan_error": self.plan_error,
                "context": self.context_files(),
                "feed": feed,
                "notable": notable,
                "now": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            }
        )
        return visible_data(data)  # (a task's reason, an event's stderr_tail: what agents printed, shown)

    def pause(self) -> dict[str, Any] | None:
        """A usage-limit pause in force (``state/pause.json``), or ``None``."""
        if not paused(self.workspace):
            return None
        data = read_pause(self.workspace) or {}
        return {key: data.get(key) for key in ("until", "until_iso", "reason", "backend")}

    def find(self, task_id: str) -> Task | None:
        """The task ``task_id`` names as the command line names it (``commands/words.task_in``:
        any case; ``T-03[2]``, an instance of a row run per item), or ``None``."""
        from orchestrator.commands.words import task_in
        from orchestrator.errors import UsageError
        from orchestrator.plan.table.items import split_instance
        from orchestrator.run.items import with_instances

        plan = self.plan()
        if plan is None:
            return None
        if split_instance(task_id) is not None:  # (the instances are read only for an id that names one)
            plan = with_instances(plan, self.workspace)
        try:
            return task_in(plan, task_id)
        except UsageError:
            return None

    def task_files(self, task_id: str) -> dict[str, Any] | None:
        """A task's brief, result and the tail of its last attempt's logs; ``None`` for no such task."""
        task = self.find(task_id)
        if task is None:
            return None
        attempts = logs_of(self.workspace, task)  # an attempt that printed nothing too
        last = max(attempts) if attempts else None
        logs = attempts.get(last, {}) if last is not None else {}
        return visible_data(
            {
                "task": task.id,
                "agent": task.agent,
                "name": task.title,
                "brief": self.read(self.workspace.brief(task)),
                "result": self.read(self.workspace.result(task)),
                "attempt": last,
                "attempts": list(attempts),
                "stdout": self.read(logs["out"], LOG_LIMIT, tail=True) if "out" in logs else None,
                "stderr": self.read(logs["err"], LOG_LIMIT, tail=True) if "err" in logs else None,
            }
        )

    def context_files(self) -> list[dict[str, Any]]:
        """The files under ``context/`` (what agents discovered and shared), newest first."""
        found: list[dict[str, Any]] = []
        base = self.context_dir
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if not self.inside(path, base):
                    continue
                try:
                    info = path.stat()
                except OSError:
                    continue
                found.append(
                    {
                        "name": path.relative_to(base).as_posix(),
                        "bytes": info.st_size,
                        "modified": datetime.fromtimestamp(info.st_mtime).astimezone().isoformat(timespec="seconds"),
                    }
                )
                if len(found) >= CONTEXT_FILES:
                    break
        found.sort(key=lambda entry: entry["modified"], reverse=True)
        return found

    def context_file(self, name: str) -> dict[str, Any] | None:
        """One file under ``context/`` by its relative name; ``None`` for a name that leads out."""
        relative = PurePosixPath(name)
        if relative.is_absolute() or any(part in ("..", "") for part in relative.parts) or "\\" in name:
            return None
        return self.read(self.context_dir / relative, within=self.context_dir)

    def inside(self, path: Path, within: Path | None = None) -> bool:
        """Whether ``path``, every link resolved, lies inside ``within`` (default the workspace)."""
        base = self.root if within is None else os.path.realpath(within)
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError):  # a NUL in a name, a loop of links: nothing there to read
            return False
        return os.path.commonpath([base, real]) == base and (within is None or real != base)

    def read(
        self, path: Path, limit: int = TEXT_LIMIT, *, tail: bool = False, within: Path | None = None
    ) -> dict[str, Any] | None:
        """At most ``limit`` bytes of a regular file inside the workspace (its tail when ``tail``),
        as text; ``None`` when it is missing, not a file, or outside."""
        if not self.inside(path, within) or not self.inside(path):
            return None
        try:
            fd = open_regular(path)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            start = max(0, size - limit) if tail else 0
            data = os.pread(fd, limit, start)
        except OSError:
            return None
        finally:
            os.close(fd)
        truncated = size > limit
        text = visible(data.decode("utf-8", errors="replace"))  # (a log as printed: shown, never acted on)
        if truncated and tail:
            text = text.partition("\n")[2] or text  # from the first whole line
        return {"path": self.workspace.relative(path), "text": text, "bytes": size, "truncated": truncated}
