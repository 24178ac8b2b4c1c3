"""What a completed result was run from, as a digest ``status`` can check against the plan as it
is now without rendering a brief: the ``inputs`` field of a result's frontmatter.

A run's own test of whether a result is up to date is its fingerprint (``selection``): of the
brief as run would render it now, which costs 70 µs a task (0.7 s at 10,000 tasks: too slow for
``status``). So a run also records, for each task it completes, ``v2-<plan>-<task>-<upstream>``:

- ``plan``: a digest of the whole plan as the run read it (its text outside the tool's status
  blocks, its settings, the agent ids, the profiles its tasks name, the templates): while it
  is the same, so is everything each task's brief and settings come from;
- ``task``: a digest of what this task's brief is rendered from (its row and details, the plan's
  request and goal, the names of its inputs' result files, the templates, and the plan's
  settings where a template of the workspace's own could show them) and of its settings'
  signature: asked only once the plan has changed;
- ``upstream``: a digest of what its fingerprint takes from its dependencies (each one's
  fingerprint and output hash): asked only when one of them has a result newer than this one.

Equal digests mean the fingerprint would be equal (a brief edited by hand aside: ``freshness``);
a different ``upstream`` means it would differ; a different ``task`` only that it may (a changed
field the template does not show), and ``freshness`` then asks the fingerprint itself. Bump
``BASIS_VERSION`` when what a brief is rendered from or what a signature covers changes: the
results made before then count as made by an earlier version (up to date, unless upstream
runs again) until they run again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.output.briefs import BRIEF_TEMPLATE
from orchestrator.output.templates import PACKAGED
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.model import Plan, Task
from orchestrator.run.resume.selection import task_signature, upstream_of
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace

BASIS_VERSION = "v2"  # (a letter first: the field is then a plain YAML scalar, the quickest to read)
_BEGIN, _END = "<!-- orchestrator:begin", "<!-- orchestrator:end"  # as the tool writes them (``state.planfile``)


def _digest(data: str) -> str:
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


class Basis:
    """The ``inputs`` digests of one plan's tasks. ``signature``: a task's settings' signature
    (as ``selection.settings_signature`` makes it); ``records``: the results a dependency's
    fingerprint and output hash are read from."""

    def __init__(
        self,
        plan: Plan,
        workspace: Workspace,
        signature: Callable[[Task], str],
        records: Mapping[str, ResultRecord],
    ) -> None:
        self.plan = plan
        self.signature = signature
        self.records = records
        own = _templates_of(workspace.templates_dir)
        # The brief template gets the task's settings: only a workspace's own template shows them.
        shown = repr(plan.settings) if own else ""
        values = sorted(plan.params.items())  # the parameters' values: the plan's text is the same for any
        common = (BASIS_VERSION, workspace.root.name, plan.request, plan.goal, _packaged(), own, shown, values)
        self._common = hashlib.blake2b(repr(common).encode("utf-8", "surrogatepass"), digest_size=6)
        profiles = Profiles(workspace)
        named = sorted({task.profile for task in plan.tasks.values() if task.profile})
        whole = hashlib.blake2b(digest_size=6)
        for part in (repr(common), repr(plan.settings), " ".join(task.agent for task in plan.tasks.values())):
            whole.update(part.encode("utf-8", "surrogatepass") + b"\0")
        whole.update(repr([profiles.lookup(name) for name in named]).encode("utf-8", "surrogatepass") + b"\0")
        whole.update(repr(sorted(plan.types.items())).encode("utf-8", "surrogatepass") + b"\0")  # types.yaml's too
        whole.update(_outside_blocks(plan.text).encode("utf-8", "surrogatepass"))
        self.level = whole.hexdigest()  # the ``plan`` part

    def task_part(self, task: Task) -> str:
        tasks = self.plan.tasks
        deps = task.dependencies
        row = (  # (one flat tuple: asked of 10,000 tasks once the plan has changed)
            task.id,
            task.name,
            task.description,
            deps,
            task.priority,
            task.agent,
            task.profile,
            task.timeout,
            task.timeout_set,
            task.retries,
            task.backend,
            task.command,
            task.access,
            task.isolation,
            task.type,
            task.approval,
            task.tags,
            task.details,
            sorted(task.extra.items()) if task.extra else None,
            [tasks[dep].agent if dep in tasks else "" for dep in deps] if deps else None,  # its inputs' names
            self.signature(task),
        )  # fmt: skip  (not its line: a row moved is the same task)
        digest = self._common.copy()
        digest.update(repr(row).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def upstream_part(self, task: Task, records: Mapping[str, ResultRecord] | None = None) -> str:
        return _digest(repr(sorted(upstream_of(task.dependencies, self.records if records is None else records))))

    def of(self, task: Task, newer: Mapping[str, ResultRecord] | None = None) -> str:
        """``task``'s digest now; ``newer``: results written since ``records`` was read, which win."""
        records = self.records
        if newer:  # (its dependencies' only: a run completes 10,000 tasks)
            records = {d: r for d in task.dependencies if (r := newer.get(d) or self.records.get(d)) is not None}
        return f"{BASIS_VERSION}-{self.level}-{self.task_part(task)}-{self.upstream_part(task, records)}"


class Signatures:
    """Each task's settings' signature, and an earlier version's (``selection.task_signature``),
    made once for each set of the cells and the profile it depends on: tasks share them, and
    10,000 made one by one cost 0.1 s."""

    def __init__(self, plan: Plan, profiles: Profiles) -> None:
        self.plan = plan
        self.profiles = profiles
        self._made: dict[tuple[object, ...], tuple[str, str | None]] = {}

    def both(self, task: Task) -> tuple[str, str | None]:
        # What ``Plan.settings_for`` and ``Profiles.settings_for`` read of a task.
        key = (
            task.profile,
            task.timeout_set,
            task.timeout,
            task.retries,
            task.backend,
            task.access,
            task.isolation,
            task.type,
            task.params,
        )
        found = self._made.get(key)
        if found is None:
            settings = self.profiles.settings_for(self.plan, task)
            found = self._made[key] = task_signature(self.plan, task, settings, self.profiles)
        return found

    def __call__(self, task: Task) -> str:
        return self.both(task)[0]


def inputs_now(plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord]) -> Callable[[Task], str]:
    """Each task's ``inputs`` digest as it is now (against ``records``), the ``Basis`` made at the
    first one asked for: what a person's word at a gate is judged by (``approvals.Decision``)."""
    made: list[Basis] = []

    def of(task: Task) -> str:
        if not made:
            made.append(Basis(plan, workspace, Signatures(plan, Profiles(workspace)), records))
        return made[0].of(task)

    return of


def _outside_blocks(text: str) -> str:
    """The plan's text without the status blocks the tool rewrites (found as the tool writes their
    markers; one a person respaced stays in: the plan then looks changed, and each task is asked)."""
    kept: list[str] = []
    at = 0
    while (begin := text.find(_BEGIN, at)) >= 0 and (end := text.find(_END, begin)) >= 0:
        kept.append(text[at : text.rfind("\n", 0, begin) + 1])
        after = text.find("\n", end)
        at = len(text) if after < 0 else after
    kept.append(text[at:])
    return "".join(kept)


def _packaged() -> str:
    return hashlib.sha256((PACKAGED / BRIEF_TEMPLATE).read_bytes()).hexdigest()


def _templates_of(directory: Path) -> tuple[tuple[str, str], ...]:
    """The workspace's own templates (``templates/``): each file's path and a digest of it (a
    brief template may include any of them)."""
    found: list[tuple[str, str]] = []
    for parent, _, names in os.walk(directory):
        for name in names:
            path = Path(parent, name)
            try:
                found.append((str(path.relative_to(directory)), hashlib.sha256(path.read_bytes()).hexdigest()))
            except OSError:
                continue
    return tuple(sorted(found))
