"""One attempt of one task: made from its brief as it is on disk, run by the executor, and
interpreted by its backend.

    Launcher.prepare(task, number, …) ──▶ Attempt (job, launch)   brief read now: hand edits run
    Launcher.run(attempt)          ──▶ Outcome (ProcessRun, AgentResult)

``call_agent`` is the same path for the one agent call a command makes outside a run (``plan``,
``aggregate --agent``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator import backends, redaction
from orchestrator.backends.base import AgentResult, Backend, CannotInvoke, Invocation, Job, Observer
from orchestrator.documents import read_body
from orchestrator.errors import AgentCallError
from orchestrator.executors.base import Executor, Launch, LineCallback, ProcessRun, StartCallback
from orchestrator.executors.local import LocalExecutor
from orchestrator.executors.sandbox import INSTALL as SANDBOX_INSTALL
from orchestrator.executors.sandbox import Sandbox
from orchestrator.executors.sandbox import missing as sandbox_missing
from orchestrator.git.remote import no_push
from orchestrator.plan.config import filling
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import output_fields, shape_problem
from orchestrator.run.prompt import build_prompt, cli_command, discoveries_since
from orchestrator.state import inputs as inputs_files
from orchestrator.state.journal import attempt_environment
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ARGUMENT_LIMIT, ErrorClass


@dataclass(frozen=True, slots=True)
class Resumable:
    """An agent session an interrupted attempt left, and the fingerprint of what that attempt was
    started with (None: not recorded, by a version before it was)."""

    session_id: str
    fingerprint: str | None = None
    since: float | None = None  # when that attempt's prompt was made (epoch seconds; None: not known)
    worker: str | None = None  # on a cluster: the worker that ran it, where the session lives


def continuation_prompt(task: Task, brief_name: str) -> str:
    """What a resumed session is told when its task is exactly what it was started with: a short
    prompt, not the brief and its inputs a second time (the session holds them)."""
    return (
        f"Your work on task {task.id} ({task.title}) was interrupted. Go on from where you stopped: "
        f"the task, its brief ({brief_name}) and its inputs are unchanged. When it is done, answer "
        "with your final result as the brief asks."
    )


@dataclass(slots=True)
class Attempt:
    """An attempt made ready to start."""

    task: Task
    number: int
    settings: Settings
    backend: Backend
    job: Job
    launch: Launch
    observer: Observer
    started: float = 0.0  # wall clock, when it was started
    fingerprint: str = ""  # of the brief it got, its settings and its inputs (``selection``)
    session: str = "new"  # "new"; "continued": resumed and told to go on; "resumed": resumed with
    # the whole prompt (the interrupted attempt's fingerprint was not recorded); "restarted": the
    # task changed since the interrupted attempt, whose session is left behind; "moved": its
    # session is on a worker that is gone (``afresh``)
    scope: anyio.CancelScope | None = None  # while it runs: what `orchestrator cancel` cancels
    told: float = 0.0  # wall clock, when its prompt was made (the discoveries it holds are older)
    # Its place in this run of its task: 1 for the first attempt a run makes of the task (or the
    # first after `orchestrator retry`), one more for each retry after a failure or a limit.
    in_run: int = 1
    fallback_from: str | None = None  # the task's own backend, when this attempt runs on a fallback
    estimate: float | None = None  # seconds the run expected it to take (``run/forecasts/estimates``), for ``report``
    expected_cost: float | None = None  # dollars it was expected to cost (``run/forecasts/spend``), for ``report``
    brief: str = ""  # the fingerprint of its brief and settings alone (no inputs): what its estimate learns by
    stop_asked: bool = False  # a cancel or the run's stop asked for it (``stop``)
    afresh: Callable[[], Attempt] | None = None  # resuming a session on a worker: the attempt in a new one

    @contextlib.contextmanager
    def stoppable(self) -> Iterator[anyio.CancelScope]:
        """The scope it runs in, which ``stop`` cancels (at once, if asked before)."""
        with anyio.CancelScope() as self.scope:
            if self.stop_asked:
                self.scope.cancel()
            yield self.scope

    def stop(self) -> None:
        """Stop it (`orchestrator cancel`, the run's stop): its scope cancelled now, or as soon as
        it has one (an attempt started in the same turn of the loop has not entered it yet)."""
        self.stop_asked = True
        if self.scope is not None:
            self.scope.cancel()


@dataclass(frozen=True, slots=True)
class Raced:
    """What a hedged attempt raced (``run/races/hedge.py``): the attempt stopped (``lost``: its number,
    ``spent``: what it spent, counted in the task's), whether the hedge won, when it started
    (``after``, seconds into the first) and how much longer the loser had run than the winner took."""

    lost: int
    spent: AgentResult
    resumed: str | None  # the session the stopped attempt continued
    hedge_won: bool
    after: float
    won_by: float

    def frontmatter(self, winner: int) -> dict[str, object]:
        return {"winner": winner, "lost": self.lost, "won": "hedge" if self.hedge_won else "first",
                "after": round(self.after, 3), "won_by": round(self.won_by, 3)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judged:
    """How best of N (``run/races/bestof.py``) chose the task's result: by which ``judge``, why, each
    candidate (its attempt, state, answer's length, the file it is kept in, whether chosen), and
    what the others and the judge spent (with the session each continued), counted in the task's."""

    judge: str
    reason: str
    candidates: tuple[dict[str, object], ...]
    spent: tuple[tuple[AgentResult, str | None], ...]

    def frontmatter(self) -> dict[str, object]:
        return {"judge": self.judge, "reason": self.reason, "candidates": [dict(c) for c in self.candidates]}


@dataclass(frozen=True, slots=True)
class Outcome:
    attempt: Attempt
    run: ProcessRun
    result: AgentResult
    finished: float  # wall clock
    merged: str | None = None  # what the merge queue did with its branch (``run/worktrees/merges``)
    added: tuple[str, ...] = ()  # tasks the merge queue added to the plan (a conflict's resolution)
    raced: Raced | None = None  # a hedged task: the attempt this one beat (``run/races/hedge``)
    judged: Judged | None = None  # best of N: how this one was chosen (``run/races/bestof``)

    def beaten(self) -> list[tuple[AgentResult, str | None]]:
        """What the attempts this one beat (and a judge) spent, with the session each continued."""
        found = [(self.raced.spent, self.raced.resumed)] if self.raced is not None else []
        return found + list(self.judged.spent if self.judged is not None else ())


def simulating(executor: Executor, backend: Backend, launch: Launch) -> Launch:
    """``launch`` as ``executor`` runs it: told, when it only simulates (the fake), how its command
    prints an answer, so that what it makes up reads as its backend's own."""
    return dataclasses.replace(launch, simulate=backend.simulated) if executor.can.simulated else launch


_PARAMETERS = (filling.PREFIX, filling.DERIVED)


def build_launch(
    invocation: Invocation,
    job: Job,
    stem: Path,
    env: Mapping[str, str] | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
) -> Launch:
    """The launch of an invocation: logs at ``<stem>.out`` / ``.err``, the stdin text (if any)
    written to ``<stem>.in``; its environment is ``base_env`` (default: ours), then ``env``, the
    settings' and the backend's own."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stdin: Path | None = None
    if invocation.stdin is not None:
        stdin = stem.with_name(stem.name + ".in")
        stdin.write_text(invocation.stdin, encoding="utf-8")
    base = os.environ if base_env is None else base_env
    # Not passed on: the parameters of a run started by a task (not ours), the webhook secret serve
    # was given (no agent needs it); the plan's redact patterns are, for what the attempt's processes write.
    if any(name.startswith(_PARAMETERS) or name in redaction.WITHHELD for name in base):
        base = {n: v for n, v in base.items() if not n.startswith(_PARAMETERS) and n not in redaction.WITHHELD}
    merged = {**base, **redaction.passed_on(), **(env or {}), **job.settings.env, **invocation.env}
    if job.settings.isolation == "worktree" and not job.settings.agent_pushes:  # (it commits; the run delivers)
        merged.update(no_push(merged))
    return Launch(
        job.task.id,
        job.attempt,
        invocation.argv,
        job.cwd,
        merged,
        stdin,
        stem.with_name(stem.name + ".out"),
        stem.with_name(stem.name + ".err"),
        invocation.limits,
        job.task.dependencies,
        (job.settings.backend, *((job.profile.name,) if job.profile is not None else ())),
        asks=job.profile.resources if job.profile is not None else (),
        outputs=job.task.outputs,  # (what a fake attempt makes up: ``executors.fake``)
    )


def _inputs_variable(paths: tuple[Path, ...]) -> dict[str, str]:
    """``$ORCHESTRATOR_INPUTS``, the upstream result files one a line, while one environment entry
    can hold them (some 1,500 paths); past that it is empty (never the runner's own, inherited), and
    ``$ORCHESTRATOR_INPUTS_FILE`` is the way: it is the way always, the variable is kept for scripts
    written before the file was."""
    listed = "\n".join(str(p) for p in paths)
    if len(os.fsencode(listed)) + len(inputs_files.LIST_VARIABLE) + 1 > ARGUMENT_LIMIT:
        listed = ""
    return {inputs_files.LIST_VARIABLE: listed}


class Launcher:
    """Makes the attempts of one run and runs them on its executor."""

    def __init__(
        self,
        workspace: Workspace,
        plan: Plan,
        settings: Mapping[str, Settings],
        profiles: Profiles,
        executor: Executor,
        base_env: Mapping[str, str],
        *,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.workspace = workspace
        self.sandbox = sandbox  # (a run from outside's: its shell and command tasks run in it)
        self.plan = plan
        self.settings = settings
        self.profiles = profiles
        self.executor = executor
        self.base_env = dict(base_env)
        self._backends: dict[str, Backend] = {}
        self.inputs = inputs_files.Book(workspace)  # (each attempt's, as it is prepared)

    def backend(self, name: str) -> Backend:
        found = self._backends.get(name)
        if found is None:
            found = self._backends[name] = backends.get(name)
        return found

    def prepare(
        self,
        task: Task,
        number: int,
        fingerprint: Callable[[str], str],
        *,
        resume: Resumable | None = None,
        on: str | None = None,
        brief_key: Callable[[str], str] | None = None,
    ) -> Attempt:
        """Attempt ``number`` of ``task``, its brief read as it is on disk now (``fingerprint``
        gives the fingerprint of a brief); raises ``CannotInvoke`` with a one-line reason when it
        cannot run as the brief stands.

        ``resume``: the session an interrupted attempt left. It is continued with a short prompt
        when the task is what that attempt was started with; when the brief, settings or inputs
        have changed since, the task starts a new session (the old one holds a stale task).
        ``on``: the fallback backend it runs on instead of its own (``run/limits/failover``)."""
        ws = self.workspace
        own = self.settings[task.id]
        settings = own.on(on or own.backend, task.access)  # ``on``: a fallback (run/limits/failover)
        brief = read_body(ws.brief(task))
        if brief is None:
            raise CannotInvoke(f"its brief {ws.brief_name(task)} is gone: run again to render it")
        backend = self.backend(settings.backend)
        current = fingerprint(brief)
        key = brief_key(brief) if brief_key is not None else ""
        told = time.time()  # (before the channels are read for its prompt)
        session, how = _session(resume, settings.resume_sessions and backend.resumable, current)
        job = Job(
            task=task,
            settings=settings,
            brief=brief,
            prompt=self._prompt(task, brief, settings, backend, how, resume),
            project_dir=ws.project_dir,
            workspace=ws.root,
            attempt=number,
            inputs=tuple(ws.result(upstream) for upstream in self.plan.inputs_of(task)),
            resume_session=session,
            profile=self.profiles.get(task.profile),
            brief_name=ws.brief_name(task),
            channels=cli_command() if settings.context_cap > 0 and backend.reads_prompt else None,
        )
        invocation = backend.invocation(job)
        upstream_ids = tuple(upstream.id for upstream in self.plan.inputs_of(task))
        row = self.plan.tasks[task.row] if task.row is not None else task  # (a row's instances share its inputs)
        written = self.inputs.write(row.slug, tuple(zip(upstream_ids, job.inputs, strict=True)), shared=row is not task)
        env = _environment(ws, self.plan, task, number, written, job.inputs)
        launch = simulating(self.executor, backend, build_launch(invocation, job, ws.log_stem(task, number), env,
                                                                 base_env=self.base_env))  # fmt: skip
        if self.sandbox is not None and backend.sandboxed and not self.executor.can.simulated:
            launch = dataclasses.replace(launch, sandbox=self._sandbox(backend))
        afresh = None
        if session is not None and resume is not None and resume.worker is not None:  # on the worker that has it
            launch = dataclasses.replace(launch, worker=resume.worker)
            afresh = functools.partial(self.prepare, task, number, fingerprint, on=on, brief_key=brief_key)
        return Attempt(
            task, number, settings, backend, job, launch, backend.observer(job), fingerprint=current, session=how,
            told=told, fallback_from=own.backend if settings.backend != own.backend else None, brief=key, afresh=afresh,
        )  # fmt: skip

    def _sandbox(self, backend: Backend) -> Sandbox:
        """The run's sandbox, or ``CannotInvoke`` where none can be made: never run without it."""
        assert self.sandbox is not None
        why = sandbox_missing()
        if why is not None:
            raise CannotInvoke(
                f"this run's values came from outside, so its {backend.name} tasks run in a sandbox, and {why} — "
                f"{SANDBOX_INSTALL}, or set sandbox: off (validate says what that gives up)"
            )
        return self.sandbox

    def _prompt(
        self, task: Task, brief: str, settings: Settings, backend: Backend, how: str, resume: Resumable | None
    ) -> str:
        """What the agent is told: its brief as a prompt (its powers, the channels, its upstream's
        results), or, continuing its session, to go on (with what others discovered meanwhile);
        nothing for a backend that reads no prompt."""
        ws = self.workspace
        if not backend.reads_prompt:
            return ""
        if how == "continued":
            prompt = continuation_prompt(task, ws.brief_name(task))
            if settings.context_cap > 0:  # what other tasks discovered while it was away
                news = discoveries_since(ws, task, resume.since if resume else None, settings.context_cap)
                prompt += "\n\n" + news if news else ""
            return prompt
        powers = backend.powers(settings) if backend.cli() is not None else None  # agents are told
        return build_prompt(
            self.plan,
            ws,
            task,
            brief,
            settings.input_cap,
            powers,
            channels=cli_command(),
            context_cap=settings.context_cap,
            elsewhere=settings.isolation == "worktree" or bool(settings.cwd),
        )

    async def run(
        self,
        attempt: Attempt,
        *,
        on_start: StartCallback | None = None,
        on_line: LineCallback | None = None,
        tell: Callable[[str], None] | None = None,
    ) -> Outcome:
        """Run ``attempt`` to its end (see ``Executor.run``) and interpret what it did. One that
        would resume its agent session on a worker that is gone starts a new session instead,
        and ``tell`` says so."""
        gone = attempt.launch.worker
        if gone is not None and attempt.afresh is not None and not await self.executor.has_worker(gone):
            try:
                fresh = attempt.afresh()  # (its brief read again)
            except CannotInvoke as exc:
                failed = AgentResult(False, error_class=ErrorClass.START, message=str(exc))
                return Outcome(attempt, ProcessRun(None, None, 0.0, start_error=str(exc)), failed, time.time())
            attempt.job, attempt.launch, attempt.observer = fresh.job, fresh.launch, fresh.observer
            attempt.session, attempt.told, attempt.afresh = "moved", fresh.told, None
            if tell is not None:
                tell(f"{attempt.task.id}'s agent session is on worker {gone}, which is gone: it starts a new session")
        observer = attempt.observer

        def feed(line: bytes) -> None:
            observer.feed(line)
            if on_line is not None:
                on_line(line)

        run = await self.executor.run(attempt.launch, on_start=on_start, on_line=feed)
        launch = attempt.launch
        result = attempt.backend.interpret(attempt.job, run, launch.stdout, launch.stderr, observer)
        if run.lost is not None:  # its worker went away mid-attempt: whatever it said, it did not finish
            result = dataclasses.replace(
                result, completed=False, error_class=ErrorClass.TRANSIENT, message=run.describe(launch.limits)
            )
        if result.completed and attempt.task.outputs:  # it must answer with the fields its Output column names
            problem = shape_problem(attempt.task.outputs, output_fields(result.text))
            if problem is not None:
                result.completed, result.error_class = False, ErrorClass.AGENT_ERROR
                result.message = f"{problem} (its Output column: {', '.join(n for n, _ in attempt.task.outputs)})"
        return Outcome(attempt, run, result, time.time())

    def stopped(self, attempt: Attempt) -> AgentResult:
        """What an attempt stopped by a cancel (its processes gone, no ``ProcessRun`` back) had
        reported by then, read from its logs by its backend: what it spent, its session. Nothing,
        when they say nothing of it, or cannot be read."""
        launch = attempt.launch
        try:
            run = ProcessRun(None, signal.SIGTERM, time.time() - attempt.started,
                             stdout_bytes=_size(launch.stdout), stderr_bytes=_size(launch.stderr))  # fmt: skip
            return attempt.backend.interpret(attempt.job, run, launch.stdout, launch.stderr, attempt.observer)
        except Exception:  # (a parser's bug must not lose the cancel: what it spent is then not known)
            return AgentResult(False, error_class=ErrorClass.INTERNAL)

    def internal_error(self, attempt: Attempt, exc: Exception) -> Outcome:
        """The outcome of an attempt the orchestrator itself failed to handle (its processes are
        stopped by then): the task fails with what went wrong, and the run goes on."""
        launch = attempt.launch
        run = ProcessRun(
            None,
            None,
            time.time() - attempt.started,
            stdout_bytes=launch.stdout.stat().st_size if launch.stdout.exists() else 0,
            stderr_bytes=launch.stderr.stat().st_size if launch.stderr.exists() else 0,
        )
        message = f"the orchestrator could not handle this attempt ({type(exc).__name__}: {exc}); please report it"
        return Outcome(attempt, run, AgentResult(False, error_class=ErrorClass.INTERNAL, message=message), time.time())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def call_agent(
    backend: Backend, job: Job, stem: Path, executor: Executor | None = None
) -> tuple[AgentResult, Launch]:
    """One agent call outside a run (``plan``, ``aggregate --agent``): no journal, no retries.
    Raises ``AgentCallError`` when the call cannot be made at all (nothing is started)."""
    try:
        invocation = backend.invocation(job)
    except CannotInvoke as exc:  # (a command line the system would refuse)
        raise AgentCallError(f"could not start {backend.name} for the {job.task.agent}: {exc}") from None
    executor = executor or LocalExecutor()
    launch = simulating(executor, backend, build_launch(invocation, job, stem))
    observer = backend.observer(job)
    run = await executor.run(launch, on_line=observer.feed)
    return backend.interpret(job, run, launch.stdout, launch.stderr, observer), launch


def _session(resume: Resumable | None, resumable: bool, current: str) -> tuple[str | None, str]:
    """The session an attempt goes on with, and how: ``new``; ``resumed`` (one whose brief was not
    recorded); ``continued`` (the task is what it was started with); ``restarted`` (it changed
    since: the old session holds a stale task, so a new one starts)."""
    if resume is None or not resumable:
        return None, "new"
    if resume.fingerprint is None:
        return resume.session_id, "resumed"
    if resume.fingerprint == current:
        return resume.session_id, "continued"
    return None, "restarted"


def _environment(
    ws: Workspace, plan: Plan, task: Task, number: int, written: inputs_files.Inputs, inputs: tuple[Path, ...]
) -> dict[str, str]:
    """What an attempt's process is given beside its backend's own: who and where it is, its
    upstream's results as files, the interpreter that runs the channels, and the values of the
    parameters its text uses (``$ORCHESTRATOR_PARAM_NAME``: its scripts read them there, never
    as text of their own; its brief points an agent there, ``plan/config/filling``)."""
    return {
        **filling.pointed(plan, task),
        **dict(task.environment),
        **attempt_environment(ws.root, task.id, number),
        "ORCHESTRATOR_AGENT": task.agent,
        "ORCHESTRATOR_RESULTS_DIR": str(ws.results_dir),
        inputs_files.FILE_VARIABLE: str(written.listing),
        inputs_files.DIR_VARIABLE: str(written.bodies),
        **_inputs_variable(inputs),
        # The interpreter that runs the orchestrator: a task calls the channels with
        # "$ORCHESTRATOR_PYTHON" -m orchestrator share "$ORCHESTRATOR_TASK_ID" "...".
        "ORCHESTRATOR_PYTHON": sys.executable,
    }
