"""Shared pieces of the agent benchmarks (W6-W8): the real ``claude`` CLI against a fake Messages API.

A workload is an ``AgentDag``: tasks with dependencies, how many API requests each makes (a
``Bash`` tool call of ``echo`` per extra request, then its answer) and how long the API takes to
answer them. ``Answers`` is the fake's script: it finds the task a request belongs to by the
marker its prompt carries (``bench task T-07``), and answers the task's next step after the
latency drawn for it, streamed as the API streams (a first byte, then a chunk every 50 ms).

The orchestrator runs as a user runs it (``orchestrator run`` in the project directory, plan
frontmatter ``backend: claude`` and ``max_parallel``), with the real claude found as the tests
find it (``$ORCHESTRATOR_CLAUDE_BIN``, the repository's ``.cache``, ``PATH``). Its figures come
from its own files: the result files' ``started``/``finished``/``attempts``/``status``, the
journal's ``retry`` lines, the ``--json`` events. Its CPU is read from ``/proc`` the moment it
exits, before it is reaped (``waitid(WNOWAIT)``): its own (``utime + stime``) apart from its
children's (``cutime + cstime``: every agent process it reaped, and theirs).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import REPO, ToolFailed

sys.path.insert(0, str(REPO / "tests"))

from fakeapi import FakeAnthropic, FixedWindow, RateLimit, Reply, RequestLimit, SlidingWindow, claude_env, find_claude

JSON = dict[str, Any]
MARKER = "bench task"
_MARK = re.compile(re.escape(MARKER) + r" (T-\d+)")
FIRST_BYTE = 0.3  # seconds before the first byte of an answer
CHUNK = 0.05  # seconds between streamed chunks of an answer (16 characters each)
FILLER = "The work is done and checked. "

__all__ = [
    "AgentDag",
    "AgentTask",
    "Answers",
    "Deals",
    "FakeAnthropic",
    "FixedWindow",
    "RateLimit",
    "Reply",
    "RequestLimit",
    "SlidingWindow",
    "claude_env",
    "find_claude",
]


# --- workloads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentTask:
    id: str
    deps: tuple[str, ...] = ()
    seconds: float = 1.0  # the API's time to answer all of this task's requests, summed
    requests: int = 1  # API requests it makes: requests - 1 tool calls, then its answer


@dataclass(slots=True)
class AgentDag:
    name: str
    tasks: dict[str, AgentTask] = field(default_factory=dict)  # insertion order: dependencies first

    def add(self, task: AgentTask) -> None:
        self.tasks[task.id] = task

    def __len__(self) -> int:
        return len(self.tasks)

    def levels(self) -> list[list[str]]:
        depth: dict[str, int] = {}
        for task in self.tasks.values():
            depth[task.id] = 1 + max((depth[d] for d in task.deps), default=-1)
        out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for task_id, level in depth.items():
            out[level].append(task_id)
        return out

    def edges(self) -> int:
        return sum(len(t.deps) for t in self.tasks.values())

    def critical_path(self, durations: Mapping[str, float]) -> float:
        finish: dict[str, float] = {}
        for task in self.tasks.values():
            finish[task.id] = durations[task.id] + max((finish[d] for d in task.deps), default=0.0)
        return max(finish.values(), default=0.0)

    def lower_bound(self, durations: Mapping[str, float], concurrency: int) -> float:
        """No schedule of these durations is shorter: max(critical path, total work / concurrency)."""
        return max(self.critical_path(durations), sum(durations.values()) / concurrency)

    def replay(
        self, durations: Mapping[str, float], concurrency: int, weights: Mapping[str, float] | None = None
    ) -> float:
        """The makespan of a scheduler with no overhead at all that orders ready tasks as the
        orchestrator does (longest chain of work to a sink first, then table order), given these
        durations: what ordering alone costs against the bound. ``weights``: what each task weighs
        on a chain, as the orchestrator knows it (the last run's durations; a task not in it the
        median of those); none: every task weighs 1, as in a first run. ``weights=durations`` is
        a scheduler told every duration beforehand."""
        succ: dict[str, list[str]] = {t: [] for t in self.tasks}
        for task in self.tasks.values():
            for dep in task.deps:
                succ[dep].append(task.id)
        typical = statistics.median(weights.values()) if weights else 1.0
        chain: dict[str, float] = {}
        for task_id in reversed(list(self.tasks)):
            own = (weights or {}).get(task_id, typical)
            chain[task_id] = own + max((chain[s] for s in succ[task_id]), default=0.0)
        order = {t: i for i, t in enumerate(self.tasks)}
        waiting = {t.id: len(t.deps) for t in self.tasks.values()}
        ready = sorted((t for t, n in waiting.items() if n == 0), key=lambda t: (-chain[t], order[t]))
        running: list[tuple[float, str]] = []
        now = 0.0
        while ready or running:
            while ready and len(running) < concurrency:
                task_id = ready.pop(0)
                running.append((now + durations[task_id], task_id))
            running.sort()
            now, done = running.pop(0)
            for child in succ[done]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
            ready.sort(key=lambda t: (-chain[t], order[t]))
        return now

    def deals(self, durations: Mapping[str, float], concurrency: int, *, count: int = 2000, seed: int = 1) -> Deals:
        """The same durations dealt to the tasks at random ``count`` times: the replay of a first
        run's order (``replay`` without weights) and of a scheduler told every duration, each over
        its deal's lower bound. How much of one run's ratio is the order's doing and how much is
        which task happened to draw which duration: no first-run order can tell tasks apart by a
        duration it does not know."""
        rng = random.Random(seed)
        pool = list(durations.values())
        first: list[float] = []
        known: list[float] = []
        for _ in range(count):
            rng.shuffle(pool)
            dealt = dict(zip(self.tasks, pool, strict=True))
            bound = self.lower_bound(dealt, concurrency)
            first.append(self.replay(dealt, concurrency) / bound)
            known.append(self.replay(dealt, concurrency, weights=dealt) / bound)
        this = self.replay(durations, concurrency) / self.lower_bound(durations, concurrency)
        return Deals(sorted(first), sorted(known), this)


@dataclass(frozen=True, slots=True)
class Deals:
    """``AgentDag.deals``: ratios to the lower bound, each list sorted."""

    first: list[float]  # the first-run order (a chain counts tasks)
    known: list[float]  # told every duration beforehand
    this: float  # the first-run order on the durations as the run dealt them

    @staticmethod
    def quantile(values: Sequence[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    def within(self, values: Sequence[float], limit: float) -> float:
        return sum(v <= limit for v in values) / len(values)

    def rank(self) -> float:
        """The share of deals on which the first-run order did no better than on the run's own."""
        return sum(v >= self.this for v in self.first) / len(self.first)


def ids(count: int) -> list[str]:
    return [f"T-{i:02d}" for i in range(1, count + 1)]


def random_dag(
    count: int, *, seed: int, median: float, sigma: float, fan: tuple[int, int] = (0, 2), requests: int = 1
) -> AgentDag:
    """``count`` tasks, each depending on ``fan`` (0-2) tasks drawn from those before it; the API's
    time for each task drawn from a lognormal law (``median`` seconds, shape ``sigma``): most
    answers come quickly, a few take many times longer, as agents' do."""
    rng = random.Random(seed)
    dag = AgentDag(f"{count} tasks, each depending on {fan[0]}–{fan[1]} tasks before it (seed {seed})")
    before: list[str] = []
    for task_id in ids(count):
        deps = tuple(sorted(rng.sample(before, min(len(before), rng.randint(*fan))))) if before else ()
        dag.add(AgentTask(task_id, deps, round(rng.lognormvariate(math.log(median), sigma), 2), requests))
        before.append(task_id)
    return dag


def layered_dag(levels: int, width: int, *, seed: int, seconds: float, requests: int) -> AgentDag:
    """``levels`` x ``width`` tasks, each after the first level depending on 1-2 tasks of the
    level before; every task makes ``requests`` requests, answered in ``seconds`` in all."""
    rng = random.Random(seed)
    names = iter(ids(levels * width))
    dag = AgentDag(
        f"{levels * width} tasks in {levels} levels of {width}, each after the first depending on 1–2 tasks "
        f"of the level before (seed {seed})"
    )
    previous: list[str] = []
    for _ in range(levels):
        current = [next(names) for _ in range(width)]
        for task_id in current:
            deps = tuple(sorted(rng.sample(previous, rng.randint(1, 2)))) if previous else ()
            dag.add(AgentTask(task_id, deps, seconds, requests))
        previous = current
    return dag


# --- the fake's script ----------------------------------------------------------------------------


def task_of(body: Mapping[str, Any]) -> str | None:
    """The task a request is for: the first marker in its messages (the task's brief comes before
    its upstream results, which carry none)."""
    found = _MARK.search(json.dumps(body.get("messages") or []))
    return found.group(1) if found else None


def tool_results(body: Mapping[str, Any]) -> int:
    """How many tool calls the conversation has had answered: the step a request is at."""
    count = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for block in content if isinstance(block, dict) and block.get("type") == "tool_result")
    return count


class Answers:
    """The fake's script for a workload: each request of a task gets the task's next step, after
    its share of the task's latency."""

    def __init__(self, dag: AgentDag) -> None:
        self.dag = dag
        self.unknown = 0  # requests that named no task of the workload

    def __call__(self, body: JSON) -> Reply:
        task_id = task_of(body)
        task = self.dag.tasks.get(task_id) if task_id else None
        if task is None:
            self.unknown += 1
            return Reply.say("No task here.")
        step = tool_results(body)
        share = task.seconds / task.requests
        if step < task.requests - 1:
            command = {"command": f"echo step {step + 1}", "description": "Record a step"}
            return Reply.tool("Bash", command, delay_seconds=share)
        chunks = max(1, round((share - FIRST_BYTE) / CHUNK))
        text = (FILLER * (chunks * 16 // len(FILLER) + 1))[: chunks * 16]
        return Reply.say(text, delay_seconds=min(FIRST_BYTE, share), chunk_seconds=CHUNK)


# --- the orchestrator, as a user runs it ------------------------------------------------------------


def plan_text(dag: AgentDag, max_parallel: int, *, settings: str = "") -> str:
    rows = "\n".join(
        f"| {t.id} | {MARKER} {t.id}: report on your part in a few lines | {', '.join(t.deps) or 'None'} |"
        for t in dag.tasks.values()
    )
    return (
        f"---\nbackend: claude\nmax_parallel: {max_parallel}\n{settings}---\n"
        f"# Benchmark: {dag.name}\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies |\n|---|---|---|\n"
        f"{rows}\n"
    )


def agent_env(api: FakeAnthropic, directory: Path, claude: str, *, auth: str = "api_key") -> dict[str, str]:
    """A user's environment (``user_env``: ours less ``PYTHONDONTWRITEBYTECODE``) with claude
    pointed at the fake (``claude_env``: our own ``ANTHROPIC_*``/``CLAUDE_*`` variables dropped,
    a dummy API key or, with ``auth="oauth"``, a subscriber's token), its config directory and
    HOME under ``directory``."""
    config = directory / "claude-config"
    config.mkdir(parents=True, exist_ok=True)
    env = claude_env(api.base_url, config, auth="oauth" if auth == "oauth" else "api_key")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["ORCHESTRATOR_CLAUDE_BIN"] = claude
    env["HOME"] = str(directory)
    return env


@dataclass(slots=True)
class Record:
    """What one result file says (the fields the benchmarks read)."""

    task: str
    status: str
    attempts: int
    started: float | None
    finished: float | None
    error_class: str | None
    reason: str | None


@dataclass(slots=True)
class OrchestratorRun:
    exit_code: int
    wall: float  # seconds, from the outside
    own_cpu: float  # seconds of CPU of the runner process itself
    children_cpu: float  # of the processes it started and reaped (the agents), theirs included
    records: dict[str, Record]
    events: list[JSON]
    journal: list[JSON]
    directory: Path

    def makespan(self) -> float:
        starts = [r.started for r in self.records.values() if r.started is not None]
        ends = [r.finished for r in self.records.values() if r.finished is not None]
        if not starts or not ends:
            raise ToolFailed(f"no result files with timestamps under {self.directory}")
        return max(ends) - min(starts)

    def durations(self) -> dict[str, float]:
        """Each task's measured time: its last attempt's start to its finish."""
        return {t: r.finished - r.started for t, r in self.records.items() if r.started is not None and r.finished}

    def retries(self) -> int:
        """Retries spent: the journal's ``retry`` lines (a usage-limit pause writes none)."""
        return sum(1 for line in self.journal if line.get("event") == "retry")

    def count(self, status: str) -> int:
        return sum(1 for r in self.records.values() if r.status == status)


_FIELD = re.compile(r"^(task|status|attempts|started|finished|error_class|reason): ?(.*)$", re.MULTILINE)


def _scalar(text: str) -> str | None:
    text = text.strip()
    if text in ("", "null", "~"):
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def read_records(project: Path) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for path in sorted((project / ".orchestrator" / "results").glob("*-result.md")):
        head = path.read_text(encoding="utf-8").split("\n---", 1)[0]
        data = {key: _scalar(value) for key, value in _FIELD.findall(head)}
        task = data.get("task")
        if not task:
            continue
        started, finished = data.get("started"), data.get("finished")
        out[task] = Record(
            task,
            data.get("status") or "?",
            int(data.get("attempts") or 0),
            datetime.fromisoformat(started).timestamp() if started else None,
            datetime.fromisoformat(finished).timestamp() if finished else None,
            data.get("error_class"),
            data.get("reason"),
        )
    return out


def _cpu_of_zombie(pid: int) -> tuple[float, float]:
    """(own, children's) CPU seconds of an exited, not yet reaped process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / ticks, (cutime + cstime) / ticks


def run_orchestrator(
    command: Sequence[str], project: Path, env: Mapping[str, str], *, timeout: float = 900.0, args: Sequence[str] = ()
) -> OrchestratorRun:
    """``orchestrator run --json ARGS`` in ``project``; its events go to ``run.jsonl`` beside it."""
    out_path = project.parent / "run.jsonl"
    err_path = project.parent / "run.err"
    began = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([*command, "run", "--json", *args], cwd=project, env=dict(env), stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:  # waitid(WNOWAIT) has no timeout: poll it
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
            if info is not None and info.si_pid == proc.pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise ToolFailed(f"orchestrator run timed out after {timeout:.0f} s (see {err_path})")
            time.sleep(0.05)
        wall = time.perf_counter() - began
        own, children = _cpu_of_zombie(proc.pid)
        code = proc.wait()
    events = _json_lines(out_path)
    if not events or events[-1].get("event") != "run_finished":
        raise ToolFailed(f"orchestrator run ended without run_finished (exit {code}; see {err_path})")
    journal = _json_lines(project / ".orchestrator" / "state" / "attempts.jsonl")
    return OrchestratorRun(code, wall, own, children, read_records(project), events, journal, project.parent)


def _json_lines(path: Path) -> list[JSON]:
    out: list[JSON] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


def write_project(dag: AgentDag, directory: Path, max_parallel: int, *, settings: str = "") -> Path:
    project = directory / "project"
    (project / ".orchestrator").mkdir(parents=True, exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        plan_text(dag, max_parallel, settings=settings), encoding="utf-8"
    )
    return project


# --- what people run today -----------------------------------------------------------------------


def prompt(task_id: str) -> str:
    """What the plan's description of the task says, as another tool passes it to ``claude -p``."""
    return f"{MARKER} {task_id}: report on your part in a few lines"


@dataclass(slots=True)
class PlainRun:
    """A fleet of ``claude -p`` processes run by another tool: which ended well, and the wall time."""

    tool: str
    wall: float
    ok: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # claude exited non-zero
    skipped: set[str] = field(default_factory=set)  # not run: a dependency failed

    @property
    def lost(self) -> int:
        return len(self.failed) + len(self.skipped)


def run_xargs(dag: AgentDag, directory: Path, env: Mapping[str, str], parallel: int, claude: str) -> PlainRun:
    """``xargs -P N`` over ``claude -p``, one xargs a level in order (a plan run by hand): each
    task's answer to ``out/T-NN.txt``, its exit status to ``out/T-NN.rc``."""
    out = directory / "out"
    out.mkdir(parents=True, exist_ok=True)
    inner = f'"$CLAUDE" -p "{prompt("$1")}" > "out/$1.txt" 2> "out/$1.err"; echo $? > "out/$1.rc"'
    lines = [
        f"printf '%s\\n' {' '.join(level)} | xargs -P {parallel} -I{{}} sh -c '{inner}' _ {{}}"
        for level in dag.levels()
    ]
    script = directory / "run.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    began = time.perf_counter()
    done = subprocess.run(["bash", str(script)], cwd=directory, env={**env, "CLAUDE": claude}, check=False)
    run = PlainRun("xargs", time.perf_counter() - began)
    if done.returncode not in (0, 123):  # 123: some command failed, which the .rc files tell
        raise ToolFailed(f"xargs script exited {done.returncode} (see {script})")
    for task_id in dag.tasks:
        rc = out / f"{task_id}.rc"
        (run.ok if rc.exists() and rc.read_text().strip() == "0" else run.failed).add(task_id)
    return run


def run_levels(dag: AgentDag, directory: Path, env: Mapping[str, str], parallel: int, claude: str) -> PlainRun:
    """A level-by-level runner, as a short script does it: each dependency level through a pool
    of ``parallel`` threads, one ``claude -p`` a task, the next level once the whole level has
    ended; a task whose dependency failed is not run."""
    from concurrent.futures import ThreadPoolExecutor

    out = directory / "out"
    out.mkdir(parents=True, exist_ok=True)

    def one(task_id: str) -> int:
        with (out / f"{task_id}.txt").open("wb") as stdout, (out / f"{task_id}.err").open("wb") as stderr:
            argv = [claude, "-p", prompt(task_id)]
            return subprocess.run(
                argv, cwd=directory, env=dict(env), stdout=stdout, stderr=stderr, check=False
            ).returncode

    began = time.perf_counter()
    run = PlainRun("level-by-level", 0.0)
    for level in dag.levels():
        todo = [t for t in level if not set(dag.tasks[t].deps) & (run.failed | run.skipped)]
        run.skipped |= set(level) - set(todo)
        with ThreadPoolExecutor(parallel) as pool:
            for task_id, code in zip(todo, pool.map(one, todo), strict=True):
                (run.ok if code == 0 else run.failed).add(task_id)
    run.wall = time.perf_counter() - began
    return run
