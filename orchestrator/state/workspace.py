"""Where things live inside ``.orchestrator/``; one place so no module spells a path twice."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from orchestrator.errors import WorkspaceError, shown
from orchestrator.paths import PLAN_FILE

if TYPE_CHECKING:  # (a workspace's paths need no plan read: `--help` builds its parser on them)
    from orchestrator.plan.model import Task

DEFAULT_DIR = ".orchestrator"


RESULT_SUFFIX = "-result.md"  # a task's result file (``Workspace.result_file``)
ITEMS_FOLDER = "-items"  # a row's folder of its instances' results (``agent-03-items/``)
_STREAMS = {"in", "out", "err", "verify.out", "verify.err"}  # an attempt's logs: agent-01.attempt-1.<stream>


@dataclass(frozen=True, slots=True)
class Workspace:
    root: Path
    # Worked out once: the runner asks for these several times for every task it runs.
    plan_file: Path = field(init=False, repr=False, compare=False)
    project_dir: Path = field(init=False, repr=False, compare=False)
    tasks_dir: Path = field(init=False, repr=False, compare=False)
    results_dir: Path = field(init=False, repr=False, compare=False)
    logs_dir: Path = field(init=False, repr=False, compare=False)
    state_dir: Path = field(init=False, repr=False, compare=False)
    events_file: Path = field(init=False, repr=False, compare=False)  # every event of every run (``events``)

    def __post_init__(self) -> None:
        root = self.root
        for name, path in (
            ("plan_file", root / PLAN_FILE),
            ("project_dir", root.parent),
            ("tasks_dir", root / "agent_tasks"),
            ("results_dir", root / "results"),
            ("logs_dir", root / "logs"),
            ("state_dir", root / "state"),
            ("events_file", root / "state" / "events.jsonl"),
        ):
            object.__setattr__(self, name, path)

    @classmethod
    def find(cls, directory: str | Path | None = None, *, must_exist: bool = True) -> Workspace:
        """The workspace at ``directory`` (default ``.orchestrator``); a project directory that holds
        ``.orchestrator/`` or a path to ``master_plan.md`` work too."""
        path = Path(directory) if directory is not None else Path(DEFAULT_DIR)
        if path.name == PLAN_FILE and os.path.lexists(path) and not (path / PLAN_FILE).exists():
            path = path.parent  # the plan file itself, whatever it is: reading it says what is wrong
        if not (path / PLAN_FILE).exists() and (path / DEFAULT_DIR / PLAN_FILE).exists():
            path = path / DEFAULT_DIR
        if must_exist and not (path / PLAN_FILE).exists():
            if path.is_dir():
                raise WorkspaceError(f"{path}: no {PLAN_FILE} here — run `orchestrator init {path}` or write one")
            raise WorkspaceError(f"{path}: no such workspace — run `orchestrator init` to create .orchestrator/ here")
        return cls(path.resolve() if path.exists() else path.absolute())

    def check_inside(self, *also: Path) -> None:
        """Raise ``WorkspaceError`` when a directory the commands write in (agent_tasks/, results/,
        logs/, state/, context/, archive/; ``also``, a row's folder in results/ say) is a symlink
        that leads out of the workspace: nothing is written through one. Called before a command
        writes anything; a link within the workspace is followed. (Files are never written through
        a link: each is replaced by a rename, or opened with ``O_NOFOLLOW``.)"""
        for directory in (self.tasks_dir, self.results_dir, self.logs_dir, self.state_dir, self.context_dir,
                          self.archive_dir, *also):  # fmt: skip
            if not os.path.islink(directory):  # (one lstat: the runner asks before every result it writes)
                continue
            root, target = os.path.realpath(self.root), os.path.realpath(directory)
            if os.path.commonpath([root, target]) != root:
                raise WorkspaceError(
                    f"{self.relative(directory)}: a symlink to {target}, outside {self.root.name}/ — the orchestrator "
                    f"writes only inside its workspace: make {directory.name}/ a directory there (move what the link "
                    "points to into it, to keep that)"
                )

    @property
    def context_dir(self) -> Path:
        """What tasks share, note, discover and sync (see ``state.context``)."""
        return self.root / "context"

    @property
    def archive_dir(self) -> Path:
        """Tasks moved out of the plan's table, a markdown file a day (see ``state/kept/archive``)."""
        return self.root / "archive"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def cache_dir(self) -> Path:
        """Completed results kept by the key of what they came from (see ``state/kept/cache``)."""
        return self.root / "cache"

    @property
    def checkpoints_dir(self) -> Path:
        """What ``checkpoint save`` kept (see ``state/kept/checkpoints``)."""
        return self.root / "checkpoints"

    @property
    def worktrees_dir(self) -> Path:
        """The tasks' git worktrees, ``isolation: worktree`` (see ``git/worktrees``)."""
        return self.root / "worktrees"

    @property
    def places(self) -> tuple[Path, ...]:
        """Every directory of the workspace a command reads, its worktrees' aside: what no agent
        may write, there or not yet (``backends/guard``)."""
        return (
            self.tasks_dir, self.results_dir, self.logs_dir, self.state_dir, self.context_dir, self.archive_dir,
            self.templates_dir, self.agents_dir, self.cache_dir, self.checkpoints_dir,
        )  # fmt: skip

    @property
    def final_output(self) -> Path:
        return self.root / "final_output.md"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "runner.lock"

    @property
    def params_file(self) -> Path:
        """The values ``run --param`` gave (``state.params``)."""
        return self.state_dir / "params.json"

    @property
    def agents_file(self) -> Path:
        """The agent id each task was given (``state.identity``)."""
        return self.state_dir / "agents.json"

    def brief(self, task: Task) -> Path:
        return self.tasks_dir / f"{task.slug}.md"

    def result(self, task: Task) -> Path:
        return self.results_dir / self.result_file(task)

    @staticmethod
    def result_file(task: Task) -> str:
        """The name of a task's result file in results/: ``agent-01-result.md``; a row's instance's
        in its row's folder, ``agent-03-items/agent-03[7]-result.md``, so that results/ holds a
        file a task and a folder a row, however many items the row has."""
        return result_file_of(task.slug, instance=task.row is not None)

    def item_folders(self) -> list[Path]:
        """The rows' folders of their instances' results (``agent-03-items/``) in results/."""
        return [Path(entry.path) for entry in self._results_listed() if _items_folder(entry)]

    def result_names(self) -> list[str]:
        """Every result file in results/ by its name there (``result_file``'s), the rows' folders'
        (``agent-03-items/agent-03[7]-result.md``) with the others; none but ``*-result.md``."""
        found: list[str] = []
        for entry in self._results_listed():
            name = entry.name
            if name.endswith(RESULT_SUFFIX):
                found.append(name)
            elif _items_folder(entry):
                try:
                    found += [f"{name}/{inner}" for inner in os.listdir(entry.path) if inner.endswith(RESULT_SUFFIX)]
                except OSError:
                    continue
        return found

    def _results_listed(self) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(self.results_dir))
        except OSError:
            return []

    def result_at(self, name: str) -> Path | None:
        """The result file a log names by its name in results/ (``result_names``'), or ``None``
        for a name of no other form (one that would lead out of results/, say)."""
        return self.results_dir / name if is_result_name(name) else None

    @property
    def journal_file(self) -> Path:
        """The attempt journal (see ``journal``)."""
        return self.state_dir / "attempts.jsonl"

    def log_stem(self, task: Task, attempt: int) -> Path:
        """An attempt's logs without their stream's suffix (``.out``, ``.err``, ``.in``)."""
        return self.logs_dir / _log_stem(task, attempt)

    def log(self, task: Task, attempt: int, stream: str) -> Path:
        return self.logs_dir / f"{_log_stem(task, attempt)}.{stream}"

    def log_name(self, task: Task, attempt: int, stream: str) -> str:
        """``log`` as the user would type it from the project directory."""
        return f"{self.root.name}/logs/{_log_stem(task, attempt)}.{stream}"

    def result_name(self, task: Task) -> str:
        """The result file as the user would type it from the project directory."""
        return self.result_named(self.result_file(task))

    def result_named(self, file: str) -> str:
        """The result file ``file`` of results/ as the user would type it from the project directory."""
        return f"{self.root.name}/results/{file}"

    def brief_name(self, task: Task) -> str:
        return f"{self.root.name}/agent_tasks/{task.slug}.md"

    def attempt_logs(self, task: Task) -> dict[int, dict[str, Path]]:
        """Every attempt of ``task`` that left logs, by number: its streams (``in``, ``out``,
        ``err``, and ``verify.out``, ``verify.err`` of its ``verify`` command) and their files.
        Attempt numbers go on across runs, so this is every run's."""
        found: dict[int, dict[str, Path]] = {}
        prefix = f"{task.slug}.attempt-"
        try:
            names = os.listdir(self.logs_dir)
        except OSError:
            return found
        for name in names:
            number, _, stream = name.removeprefix(prefix).partition(".")
            if name.startswith(prefix) and number.isascii() and number.isdigit() and stream in _STREAMS:
                found.setdefault(int(number), {})[stream] = self.logs_dir / name
        return dict(sorted(found.items()))

    def relative(self, path: Path) -> str:
        """``path`` as the user would type it from the project directory."""
        try:
            return str(path.relative_to(self.project_dir))
        except ValueError:
            return str(path)


def _items_folder(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` of results/ is a row's folder (a directory, not a link to one)."""
    return entry.name.endswith(ITEMS_FOLDER) and entry.is_dir(follow_symlinks=False)


def is_result_name(name: str) -> bool:
    """Whether ``name`` is a result's name in results/ (``Workspace.result_file``): a file there,
    or one in a row's folder; never a name with ``..``, ``.`` or an empty part."""
    parts = name.split("/")
    if not parts[-1].endswith(RESULT_SUFFIX) or any(part in ("", ".", "..") or "\\" in part for part in parts):
        return False
    return len(parts) == 1 or (len(parts) == 2 and parts[0].endswith(ITEMS_FOLDER))


def result_file_of(slug: str, *, instance: bool | None = None) -> str:
    """``Workspace.result_file`` of the task whose files are named ``slug`` (``agent-03[7]``: an
    instance of a row, unless ``instance`` says otherwise: its name is all a log's name tells)."""
    stem, bracket, number = slug.rpartition("[")
    if instance is None:
        instance = bool(bracket) and number.endswith("]") and number[:-1].isdigit()
    return f"{stem}{ITEMS_FOLDER}/{slug}{RESULT_SUFFIX}" if instance else f"{slug}{RESULT_SUFFIX}"


def named_in_results(shown: str) -> str:
    """The name in results/ of a result as a log line names it from the project directory
    (``.orchestrator/results/agent-03-items/agent-03[7]-result.md``: ``agent-03-items/...``),
    whatever the workspace was called then (``as_kept_now``: an item's as a version before named it)."""
    parts = PurePosixPath(shown).parts
    return as_kept_now("/".join(parts[2:]) if len(parts) > 2 else PurePosixPath(shown).name)


def as_kept_now(name: str) -> str:
    """A result's name in results/ as a log of a version before row folders wrote it: an item's,
    ``agent-03[7]-result.md``, is ``agent-03-items/agent-03[7]-result.md``, where a run moves it
    (``state/results.gather_items``); any other is itself."""
    if "/" in name or not name.endswith("]" + RESULT_SUFFIX):
        return name
    return result_file_of(name.removesuffix(RESULT_SUFFIX))


def from_here(path: str | os.PathLike[str]) -> str:
    """``path`` as the user would type it from where they stand (the current directory), as
    messages show paths: relative when it is inside, absolute when it is not (``errors.shown``)."""
    return shown(path)


def _log_stem(task: Task, attempt: int) -> str:
    return f"{task.slug}.attempt-{attempt}"
