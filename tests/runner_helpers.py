"""Shared helpers for the runner tests: write a plan, run the real CLI as a subprocess, read what it left.

Everything here works on real processes and real files: the CLI runs as
``python -m orchestrator`` in the project directory, tasks are bash scripts (``backend: shell``),
and the tests read the workspace files and the ``--json`` event stream afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from orchestrator.state import journal

CLI = (sys.executable, "-m", "orchestrator")
HANG_GUARD = 60.0  # seconds any one CLI call may take before the test fails as hung

# The waits the tests run with: short, but long enough for a loaded machine (a run's answer to a
# cancel, a worker to be found, are left at the product's own).
TEST_TIMING = {
    "flush": 0.25,
    "tick": 0.25,
    "live_poll": 0.05,
    "batch": 0.1,
    "drain": 0.5,
    "orphan_poll": 0.05,
    "cluster_first_poll": 0.1,
    "cluster_poll": 0.05,
    "cluster_orphan_poll": 0.1,
    "cluster_stop_poll": 0.05,
    "worker_poll": 0.05,
    "announce": 0.25,
    "placement_poll": 0.2,
    "request_poll": 0.05,
    "follow_poll": 0.05,
    "start_poll": 0.02,
    "notify_retry": 0.1,
    "notify_poll": 0.05,
    "serve_poll": 0.05,
}


def timing_text(**waits: float) -> str:
    """``$ORCHESTRATOR_TIMING``'s text for the test clocks with ``waits`` over them."""
    return ",".join(f"{name}={seconds:g}" for name, seconds in {**TEST_TIMING, **waits}.items())


# Settings every test plan starts from; each test overrides what it is about.
BASE_SETTINGS: dict[str, Any] = {
    "backend": "shell",
    "max_parallel": 4,
    "retries": 0,
    "backoff_base": 0.05,
    "kill_grace": 1,
    "timeout": 120,
    "inactivity_timeout": "none",
}


@dataclass(frozen=True, slots=True)
class Spec:
    """One task of a test plan: its script (a bash ``-e`` script run in the project directory)."""

    id: str
    script: str
    deps: Sequence[str] = ()
    priority: str = "P2"
    name: str = ""
    retries: int | None = None  # the task's own Retries cell (the plan's setting when None)
    inline: bool = False  # the script is the Command cell (one line, no '|'), with no Task Details


def stamped(body: str) -> str:
    """``body`` between two lines appended to ``times.log``: ``<task> start|end <epoch seconds>``."""
    return (
        'echo "$ORCHESTRATOR_TASK_ID start $EPOCHREALTIME" >> times.log\n'
        f"{body.strip()}\n"
        'echo "$ORCHESTRATOR_TASK_ID end $EPOCHREALTIME" >> times.log\n'
    )


def plan_text(
    specs: Sequence[Spec],
    settings: Mapping[str, Any] | None = None,
    *,
    between: str = "",
    after: str = "",
) -> str:
    """The text of a master_plan.md: frontmatter, a task table, and each script in Task Details.

    ``between`` goes between the task table and Task Details, ``after`` at the very end.
    """
    merged = {**BASE_SETTINGS, **(settings or {})}
    front = yaml.safe_dump(merged, sort_keys=False, default_flow_style=None)
    lines = [
        "---",
        front.rstrip("\n"),
        "---",
        "# Test plan",
        "",
        "## Original Request",
        "> Exercise the runner.",
        "",
        "## Task Decomposition",
    ]
    retries = any(spec.retries is not None for spec in specs)
    commands = any(spec.inline for spec in specs)
    lines.append(
        "| Task ID | Task Name | Description | Dependencies | Priority |"
        + (" Retries |" if retries else "")
        + (" Command |" if commands else "")
    )
    lines.append(
        "|---------|-----------|-------------|--------------|----------|"
        + ("---|" if retries else "")
        + ("---|" if commands else "")
    )
    for spec in specs:
        name = spec.name or f"Task {spec.id}"
        deps = ", ".join(spec.deps) if spec.deps else "None"
        row = f"| {spec.id} | {name} | Run the {spec.id} script | {deps} | {spec.priority} |"
        if retries:
            row += f" {'-' if spec.retries is None else spec.retries} |"
        if commands:
            row += f" {spec.script.strip() if spec.inline else '-'} |"
        lines.append(row)
    lines.append("")
    if between:
        lines.append(between.rstrip("\n"))
        lines.append("")
    lines.append("## Task Details")
    for spec in specs:
        if not spec.inline:
            lines += ["", f"### {spec.id} {spec.name or 'Task ' + spec.id}", "```bash", spec.script.strip("\n"), "```"]
    text = "\n".join(lines) + "\n"
    if after:
        text += "\n" + after.rstrip("\n") + "\n"
    return text


def gate_first_before(plan: Path) -> None:
    """``write_plan``'s plan of a T-01 first and a T-02 after it, T-01 gated before it starts (an
    Approval column added: ``before`` for T-01, none for the task that depends on it)."""
    text = plan.read_text(encoding="utf-8").replace("| Priority |\n", "| Priority | Approval |\n", 1)
    text = text.replace("|----------|\n", "|----------|---|\n", 1)
    text = text.replace("| T-01 | P2 |", "| T-01 | P2 | before |").replace("| None | P2 |", "| None | P2 | - |")
    plan.write_text(text, encoding="utf-8")


def write_plan(
    project: Path,
    specs: Sequence[Spec],
    settings: Mapping[str, Any] | None = None,
    **extra: str,
) -> Path:
    """Write ``project/.orchestrator/master_plan.md``; returns its path."""
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan_text(specs, settings, **extra), encoding="utf-8")
    return path


# --- running the CLI ----------------------------------------------------------------------------


def parse_events(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line; fails the test on a line that is not one."""
    events: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"line {number} of the event stream is not JSON: {line!r}") from exc
        assert isinstance(event, dict), line
        events.append(event)
    return events


@dataclass(slots=True)
class Result:
    code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def kinds(self, task: str | None = None) -> list[str]:
        return [e["event"] for e in self.events if task is None or e.get("task") == task]

    def tasks(self, kind: str) -> list[str]:
        """Task ids of the events of one kind, in stream order."""
        return [str(e["task"]) for e in self.events if e["event"] == kind]

    def finished(self) -> dict[str, Any]:
        assert self.events and self.events[-1]["event"] == "run_finished", self.stdout[-2000:] + self.stderr[-2000:]
        return self.events[-1]


def cli(project: Path, *args: str, timeout: float = HANG_GUARD, env: Mapping[str, str] | None = None) -> Result:
    """Run ``python -m orchestrator ARGS`` in ``project``; parses the output as events when ``--json``."""
    completed = subprocess.run(
        [*CLI, *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    if "--json" in args and args and args[0] == "run":
        result.events = parse_events(completed.stdout)
    return result


def cli_in_process(project: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """``cli`` without a new interpreter, for the quick commands a test calls often: the same
    ``main(ARGS)`` the ``python -m orchestrator`` process runs, here, in ``project``, with ``env``
    over the environment and stdin empty; its exit code, and stdout and stderr as that process's
    pipes would have given them (UTF-8, ``backslashreplace`` on stderr, newlines as ``text=True``
    reads them). What would have ended that process with a traceback (exit 1) ends here so too.
    ``test_in_process.py`` holds it to the subprocess's answers; a test about the process itself
    (signals, imports, start-up, exit) uses ``cli``."""
    from orchestrator.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
        io.TextIOWrapper(io.BytesIO(), encoding="utf-8"),
    )
    saved_streams, saved_env, saved_cwd = (sys.stdout, sys.stderr, sys.stdin), dict(os.environ), os.getcwd()
    try:
        os.environ.update(env or {})
        os.chdir(project)
        sys.stdout, sys.stderr, sys.stdin = streams
        try:
            code = main(list(args))
        except SystemExit as exc:  # (argparse's --help and --version)
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except Exception:  # as the interpreter ends a process on an uncaught exception
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Result(code, _as_piped(out.getvalue()), _as_piped(err.getvalue()))


def _as_piped(data: bytes) -> str:
    """Bytes a process wrote to a pipe, as ``subprocess.run(text=True)`` reads them."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def run(project: Path, *args: str, timeout: float = HANG_GUARD) -> Result:
    """``orchestrator run --json ARGS`` in ``project``."""
    return cli(project, "run", "--json", *args, timeout=timeout)


@dataclass(slots=True)
class Background:
    """A runner started in its own session, its output going to files in the project."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    project: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self) -> list[dict[str, Any]]:
        text = self.stdout.read_text(encoding="utf-8") if self.stdout.exists() else ""
        complete = text[: text.rfind("\n") + 1]  # a line being written is not an event yet
        return parse_events(complete)

    def wait(self, timeout: float = HANG_GUARD) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the runner process itself (not its group) and reap it."""
        os.kill(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.wait(timeout=HANG_GUARD)

    def cleanup(self) -> None:
        """Kill the runner if it still runs. What its attempts left running stays, as a killed
        runner leaves it to the next run (tests of that rely on it): ``stop_all`` kills it too."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=HANG_GUARD)

    def stop_all(self) -> None:
        """``cleanup``, and every process its attempts left running: a test that ends early,
        and starts no next run, leaves no task behind."""
        self.cleanup()
        if self.project is not None:
            kill_attempts(self.project)


def kill_attempts(project: Path) -> None:
    """SIGKILL every process started for an attempt of ``project``'s workspace (the runner gives
    each its ``ORCHESTRATOR_WORKSPACE``), wherever it went: a test leaves no task behind."""
    marker = f"ORCHESTRATOR_WORKSPACE={(project / '.orchestrator').resolve()}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)


def start(project: Path, *args: str, name: str = "runner") -> Background:
    """Start ``orchestrator run --json ARGS`` in the background, in a new session."""
    stdout, stderr = project / f"{name}.out", project / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*CLI, "run", "--json", *args],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Background(process, stdout, stderr, project)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# --- reading the workspace ----------------------------------------------------------------------


def workspace(project: Path) -> Path:
    return project / ".orchestrator"


def results(project: Path) -> dict[str, dict[str, Any]]:
    """Task id -> frontmatter of its result file, for every result file (parsed by python-frontmatter)."""
    found: dict[str, dict[str, Any]] = {}
    directory = workspace(project) / "results"
    if not directory.is_dir():
        return found
    for path in sorted([*directory.glob("*-result.md"), *directory.glob("*-items/*-result.md")]):
        post = frontmatter.load(str(path))
        meta = dict(post.metadata)
        found[str(meta["task"])] = meta
    return found


def statuses(project: Path) -> dict[str, str]:
    return {task: str(meta["status"]) for task, meta in results(project).items()}


def completed_count(project: Path) -> int:
    """Result files saying completed; tolerant of files being replaced while it reads."""
    directory = workspace(project) / "results"
    count = 0
    for path in [*directory.glob("*-result.md"), *directory.glob("*-items/*-result.md")] if directory.is_dir() else []:
        try:
            head = path.read_text(encoding="utf-8")[:2000]
        except OSError:
            continue
        count += "\nstatus: completed\n" in head
    return count


def result_body(project: Path, task_id: str) -> str:
    directory = workspace(project) / "results"
    for path in sorted([*directory.glob("*-result.md"), *directory.glob("*-items/*-result.md")]):
        post = frontmatter.load(str(path))
        if post.metadata.get("task") == task_id:
            return str(post.content)
    raise AssertionError(f"no result file for {task_id}")


def open_attempts(project: Path) -> list[dict[str, Any]]:
    """The attempts ``state/attempts.jsonl`` has open now (started, not ended), in start order. An
    attempt whose start line is not written yet (a spawn line only: the process may already run
    and write files) is not listed: it has no process group to name yet."""
    state = journal.read(workspace(project) / "state" / "attempts.jsonl")
    return [
        {"task": a.task, "agent": a.agent, "attempt": a.attempt, "pgid": (a.handle or {}).get("pgid", 0),
         "pgid_start": (a.handle or {}).get("pgid_start"), "session_id": a.session_id,
         "runner_pid": state.runner_pid}
        for a in state.open.values()
        if a.handle
    ]  # fmt: skip


def read_times(project: Path) -> dict[str, tuple[float, float]]:
    """``times.log`` (see ``stamped``) as task -> (start, end); every task must have both."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for line in (project / "times.log").read_text(encoding="utf-8").splitlines():
        task, what, stamp = line.split()
        (starts if what == "start" else ends)[task] = float(stamp)
    assert set(starts) == set(ends), f"unfinished intervals: {set(starts) ^ set(ends)}"
    return {task: (starts[task], ends[task]) for task in starts}


def peak_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end at t comes before a start at t)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    open_now = peak = 0
    for _, step in points:
        open_now += step
        peak = max(peak, open_now)
    return peak


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` from /proc (R, S, Z, ...), or ``None`` when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pid_gone(pid: int) -> bool:
    """No such process, or only a zombie left (it no longer runs; init reaps it when it can)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return process_state(pid) in {None, "Z", "X"}


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pid_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kill_leftovers(project: Path, pids: Iterable[int]) -> None:
    """Test cleanup: SIGKILL each of ``pids`` still running in ``project`` (its working directory).

    The working directory check keeps a pid that was reused meanwhile by some other process safe.
    """
    home = project.resolve()
    for pid in pids:
        if pid <= 0 or pid_gone(pid):
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd == home or home in cwd.parents:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def read_pids(project: Path, pattern: str = "*.pid") -> dict[str, int]:
    """Pid files the scripts wrote in the project (name -> pid)."""
    found: dict[str, int] = {}
    for path in sorted(project.glob(pattern)):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            found[path.name] = int(text.splitlines()[-1])
    return found


def as_if_the_runner_died_before_recording(workspace: Path, agent: str) -> None:
    """Turn a finished run into what a runner killed (kill -9) in the moment after it copied the
    agent's last line to the log, and before it wrote the result, leaves: the attempt open in the
    journal (no ``end``, no ``finished``), its log whole, no result file. The log is the agent's
    real output; only the runner's record of its end is taken away."""
    attempts = workspace / "state" / "attempts.jsonl"
    lines = attempts.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["event"] not in ("end", "finished")]
    assert len(kept) == len(lines) - 2
    attempts.write_text("".join(kept), encoding="utf-8")
    result = workspace / "results" / f"{agent}-result.md"
    task = str(frontmatter.loads(result.read_text(encoding="utf-8")).metadata["task"])
    result.unlink()
    shutil.rmtree(workspace / "cache" / task, ignore_errors=True)  # (kept after the result is written)


def catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (``SigCgt`` in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) >> (sig - 1) & 1)


def git(repo: Path, *args: str) -> str:
    """``git ARGS`` in ``repo`` with an identity of its own (a fresh machine has none), its output
    stripped; a failure fails the test with git's own words."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=repo, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def modules_calling(method: str) -> set[str]:
    """The package's modules (``state/approvals.py``) that call a method or function named ``method``
    as an attribute (``x.method(...)``): where a rule is read, for the tests that hold it to one place."""
    import ast

    import orchestrator

    package = Path(orchestrator.__file__).parent
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
                found.add(path.relative_to(package).as_posix())
    return found
