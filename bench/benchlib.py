"""Shared pieces of the benchmark suite: workloads, each tool's input files, timing and tables.

A workload is a ``Dag`` of shell commands with nominal durations. Every tool gets the same DAG in
its own format (master_plan.md, Makefile, dodo.py, Snakefile, a JSON file for the asyncio
reference scripts in ``dagrun.py``) in a fresh directory per run (the last run's files deleted
right before, as a user would), and is timed from the outside with ``time.perf_counter`` around
``subprocess.run`` (so its own start-up is included), in the environment a user's shell gives it
(``user_env``).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
DAGRUN = BENCH_DIR / "dagrun.py"
GNU_TIME = Path("/usr/bin/time")


# --- workloads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    cmd: str
    seconds: float  # nominal duration, for the lower bound
    deps: tuple[str, ...] = ()


@dataclass(slots=True)
class Dag:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)  # insertion order = table order

    def add(self, node: Node) -> None:
        self.nodes[node.id] = node

    def __len__(self) -> int:
        return len(self.nodes)

    def critical_path(self) -> float:
        finish: dict[str, float] = {}
        for node in self.nodes.values():  # nodes are added after their dependencies
            finish[node.id] = node.seconds + max((finish[d] for d in node.deps), default=0.0)
        return max(finish.values(), default=0.0)

    def total_work(self) -> float:
        return sum(n.seconds for n in self.nodes.values())

    def lower_bound(self, concurrency: int) -> float:
        """No schedule can be shorter: max(critical path, total work / concurrency)."""
        return max(self.critical_path(), self.total_work() / concurrency)

    def levels(self) -> list[list[str]]:
        depth: dict[str, int] = {}
        for node in self.nodes.values():
            depth[node.id] = 1 + max((depth[d] for d in node.deps), default=-1)
        out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for node_id, level in depth.items():
            out[level].append(node_id)
        return out

    def edges(self) -> int:
        return sum(len(n.deps) for n in self.nodes.values())


def _ids(count: int) -> list[str]:
    width = max(4, len(str(count)))
    return [f"T-{i:0{width}d}" for i in range(1, count + 1)]


def independent(count: int, cmd: str = "true", name: str = "no-op") -> Dag:
    """``count`` tasks without dependencies (W1)."""
    dag = Dag(name)
    for task_id in _ids(count):
        dag.add(Node(task_id, cmd, 0.0))
    return dag


def layered(
    layers: int,
    width: int,
    cmd: str,
    seconds: float,
    *,
    seed: int = 42,
    fan: tuple[int, int] = (2, 3),
    name: str = "layered",
) -> Dag:
    """``layers`` x ``width`` tasks; each task after the first layer depends on 2-3 random tasks of
    the layer before it (fixed seed, so every tool and every run gets the same DAG)."""
    rng = random.Random(seed)
    ids = iter(_ids(layers * width))
    dag = Dag(name)
    previous: list[str] = []
    for _ in range(layers):
        current: list[str] = []
        for _ in range(width):
            task_id = next(ids)
            deps: tuple[str, ...] = ()
            if previous:
                count = min(len(previous), rng.randint(*fan))
                deps = tuple(sorted(rng.sample(previous, count)))
            dag.add(Node(task_id, cmd, seconds, deps))
            current.append(task_id)
        previous = current
    return dag


def skewed(chains: int = 3, length: int = 15, step: float = 0.1, long: float = 2.0) -> Dag:
    """One ``long`` task beside ``chains`` chains of ``length`` short tasks, then one join task.

    Ready-queue schedule: the long task and the chains run side by side; makespan = long + join.
    Level by level: the long task holds up level 0, then the chains run one level at a time.
    """
    dag = Dag("skewed")
    ids = iter(_ids(1 + chains * length + 1))
    long_id = next(ids)
    dag.add(Node(long_id, f"sleep {long:g}", long))
    tails = [long_id]
    for _ in range(chains):
        before: str | None = None
        for _ in range(length):
            task_id = next(ids)
            dag.add(Node(task_id, f"sleep {step:g}", step, (before,) if before else ()))
            before = task_id
        assert before is not None
        tails.append(before)
    dag.add(Node(next(ids), "sleep 0.05", 0.05, tuple(tails)))
    return dag


# --- each tool's input ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# Not the defaults: no retries, no timeouts. Only in rows labelled "tuned".
TUNED_SETTINGS = "retries: 0\ntimeout: none\ninactivity_timeout: none\n"
TUNED_LABEL = "tuned: retries 0, timeouts off"


def plan_text(dag: Dag, concurrency: int, *, tuned: bool = False) -> str:
    """The plan as a user writes it: ``backend: shell`` and ``max_parallel``, every other setting
    left at its default (``tuned`` adds ``TUNED_SETTINGS``)."""
    rows = "\n".join(
        f"| {n.id} | {_cell(n.cmd)} | {', '.join(n.deps) if n.deps else 'None'} |" for n in dag.nodes.values()
    )
    return (
        "---\nbackend: shell\n"
        f"max_parallel: {concurrency}\n"
        f"{TUNED_SETTINGS if tuned else ''}---\n"
        f"# Benchmark: {dag.name}\n\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies |\n|---|---|---|\n"
        f"{rows}\n"
    )


def write_plan(dag: Dag, project: Path, concurrency: int, *, tuned: bool = False) -> Path:
    """``project/.orchestrator/master_plan.md``; returns the project directory."""
    (project / ".orchestrator").mkdir(parents=True, exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        plan_text(dag, concurrency, tuned=tuned), encoding="utf-8"
    )
    return project


def write_makefile(dag: Dag, path: Path) -> None:
    lines = [".PHONY: all " + " ".join(dag.nodes), "all: " + " ".join(dag.nodes), ""]
    for node in dag.nodes.values():
        lines += [f"{node.id}: {' '.join(node.deps)}".rstrip(), f"\t@{node.cmd}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_dodo(dag: Dag, path: Path) -> None:
    tasks = {n.id: [n.cmd, list(n.deps)] for n in dag.nodes.values()}
    path.write_text(
        "# Generated by bench/benchlib.py: one doit task per DAG node.\n"
        f"TASKS = {json.dumps(tasks)}\n"
        "DOIT_CONFIG = {'verbosity': 0, 'backend': 'json', 'dep_file': '.doit-db.json'}\n\n\n"
        "def task_bench():\n"
        "    for name, (cmd, deps) in TASKS.items():\n"
        "        yield {'basename': name, 'actions': [cmd], 'task_dep': deps, 'uptodate': [False]}\n",
        encoding="utf-8",
    )


def write_snakefile(dag: Dag, path: Path) -> None:
    deps = {n.id: list(n.deps) for n in dag.nodes.values()}
    cmds = {n.id: n.cmd for n in dag.nodes.values()}
    path.write_text(
        "# Generated by bench/benchlib.py: one job per DAG node; outputs are marker files.\n"
        f"DEPS = {json.dumps(deps)}\n"
        f"CMDS = {json.dumps(cmds)}\n\n"
        'wildcard_constraints:\n    t="T-[0-9]+"\n\n'
        "rule all:\n"
        '    input: [f"out/{t}.done" for t in DEPS]\n\n'
        "rule task:\n"
        '    output: touch("out/{t}.done")\n'
        '    input: lambda wc: [f"out/{d}.done" for d in DEPS[wc.t]]\n'
        "    params: cmd=lambda wc: CMDS[wc.t]\n"
        '    shell: "{params.cmd}"\n',
        encoding="utf-8",
    )


def write_dag_json(dag: Dag, path: Path) -> None:
    data = [{"id": n.id, "cmd": n.cmd, "deps": list(n.deps)} for n in dag.nodes.values()]
    path.write_text(json.dumps(data), encoding="utf-8")


def write_lines(dag: Dag, path: Path) -> None:
    """Input for xargs / GNU parallel: one argument per task (``true 1``, ``true 2``, ...)."""
    path.write_text("".join(f"{i}\n" for i in range(1, len(dag) + 1)), encoding="utf-8")


# --- measuring ------------------------------------------------------------------------------------


class ToolFailed(Exception):
    """A tool exited non-zero or timed out: a crash, not a missed target."""


@dataclass(slots=True)
class Sample:
    wall: float
    makespan: float | None = None  # from the tool's own records, where it keeps them
    rss_mb: float | None = None
    stdout: bytes = b""


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    cwd: Path


Setup = Callable[[Dag, Path, int], Invocation]
Makespan = Callable[[Path, bytes], float]


@dataclass(frozen=True, slots=True)
class Tool:
    """One competitor: how to lay out its input in a fresh directory and what to run."""

    name: str
    setup: Setup
    makespan: Makespan | None = None


def _rss_argv(argv: list[str], report: Path) -> list[str]:
    if GNU_TIME.exists():
        return [str(GNU_TIME), "-v", "-o", str(report), *argv]
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call(sys.argv[2:])\n"
        "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
        "sys.exit(code)\n"
    )
    return [sys.executable, "-c", wrapper, str(report), *argv]


def _read_rss(report: Path) -> float | None:
    """Peak RSS in MB from ``/usr/bin/time -v`` output, or from the wrapper's plain number (KB)."""
    try:
        text = report.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if match:
        return int(match.group(1)) / 1024
    return int(text.strip()) / 1024 if text.strip().isdigit() else None


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path``: what was there (the last run's files) is deleted first, as a
    user deletes a run's files before the next one (``rm -rf``).

    On ext4 without a journal (this project's machines) a file created in the first minutes after
    many were deleted nearby costs 200-800 us instead of 20-40 (freed inodes are skipped, each
    after a read of the inode table), and the orchestrator creates a few files a task where most
    other tools create none. That is what a user gets; the figures are taken that way.
    """
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def disk_probe(directory: Path, files: int = 200) -> float:
    """Microseconds to create one small file in a new directory under ``directory``: the median
    of ``files`` creations, each as the orchestrator creates its briefs and results (open with
    O_CREAT|O_EXCL, write, close)."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = Path(tempfile.mkdtemp(prefix="disk-probe-", dir=directory))
    times: list[float] = []
    for index in range(files):
        began = time.perf_counter()
        fd = os.open(probe / f"f{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 64)
        os.close(fd)
        times.append(time.perf_counter() - began)
    shutil.rmtree(probe)
    return statistics.median(times) * 1e6


def disk_line(directory: Path) -> str:
    """How fast files are created in ``directory`` now, for the report's header (nothing waits for
    it: a disk still slow from a deletion is measured as it is)."""
    return f"file creation in the work directory at the start: {disk_probe(directory):.0f} µs a file (median of 200)"


def user_env() -> dict[str, str]:
    """The environment of the measured commands: this one less ``PYTHONDONTWRITEBYTECODE``, which
    this project's machines set and a user's do not. Python then writes the orchestrator's
    bytecode on its first command (``warm_up``) and reads it after, as on a user's machine."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(argv: list[str], cwd: Path, log: Path, *, rss: bool = False, timeout: float = 1800.0) -> Sample:
    """Run ``argv`` once: wall time from the outside, peak RSS of the process if asked. Its stdout is
    returned in the sample and, with its stderr, kept in ``log``."""
    report = log.with_suffix(".rss")
    if rss:
        argv = _rss_argv(argv, report)
    with log.open("wb") as sink:
        began = time.perf_counter()
        try:
            completed = subprocess.run(
                argv,
                cwd=cwd,
                env=user_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=sink,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ToolFailed(f"{argv[0]}: timed out after {timeout:g}s") from None
        except OSError as exc:
            raise ToolFailed(f"{argv[0]}: cannot start: {exc}") from None
        wall = time.perf_counter() - began
        sink.write(completed.stdout)
    if completed.returncode != 0:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip()[:200] if lines else "no output"
        raise ToolFailed(f"exit code {completed.returncode}: {last} (log: {log})")
    return Sample(wall, None, _read_rss(report) if rss else None, completed.stdout)


def run_once(
    tool: Tool, dag: Dag, directory: Path, concurrency: int, *, rss: bool = False, timeout: float = 1800.0
) -> Sample:
    fresh_dir(directory)
    invocation = tool.setup(dag, directory, concurrency)
    try:
        sample = timed(invocation.argv, invocation.cwd, directory / "tool.log", rss=rss, timeout=timeout)
    except ToolFailed as exc:
        raise ToolFailed(f"{tool.name}: {exc}") from None
    if tool.makespan is not None:
        try:
            sample.makespan = tool.makespan(directory, sample.stdout)
        except (ValueError, KeyError, OSError, IndexError) as exc:
            raise ToolFailed(f"{tool.name}: cannot read its makespan: {exc!r}") from None
    return sample


def measure(
    tool: Tool,
    dag: Dag,
    concurrency: int,
    runs: int,
    *,
    label: str,
    rss: bool = False,
    timeout: float = 1800.0,
) -> Outcome:
    """``runs`` timed runs, each in a fresh ``.work/runs/<label>/<tool>`` directory; a crash is
    recorded in the ``Outcome``, not raised."""
    directory = run_dir(label, tool.name)
    say(f"  {label}: {tool.name} x{runs} ({len(dag)} tasks, concurrency {concurrency})")
    outcome = Outcome(tool.name)
    try:
        for _ in range(runs):
            outcome.samples.append(run_once(tool, dag, directory, concurrency, rss=rss, timeout=timeout))
    except ToolFailed as exc:
        outcome.error = str(exc)
        say(f"  !! {exc}")
    return outcome


def measure_rounds(
    tools: Sequence[Tool], dag: Dag, concurrency: int, runs: int, *, label: str, timeout: float = 1800.0
) -> list[Outcome]:
    """Like ``measure`` for each tool, but in rounds: every tool runs once, then every tool again.

    This machine drifts (the same tool's figures move by a quarter over an hour), and a tool whose
    runs all came in a slow minute would look slower than it is. In rounds, each comparison is
    between runs minutes apart at most. A tool that crashes sits out the rounds after."""
    outcomes = [Outcome(tool.name) for tool in tools]
    for number in range(1, runs + 1):
        say(f"  {label}: round {number} of {runs} ({len(dag)} tasks, concurrency {concurrency})")
        for tool, outcome in zip(tools, outcomes, strict=True):
            if outcome.error is not None:
                continue
            try:
                outcome.samples.append(
                    run_once(tool, dag, run_dir(label, tool.name), concurrency, rss=False, timeout=timeout)
                )
            except ToolFailed as exc:
                outcome.error = str(exc)
                say(f"  !! {exc}")
    return outcomes


def run_dir(label: str, tool: str) -> Path:
    return WORK / "runs" / label / re.sub(r"[^A-Za-z0-9_.-]+", "_", tool)


@dataclass(slots=True)
class Outcome:
    """One tool on one workload: its samples, or why there are none (skipped or crashed)."""

    tool: str
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None  # crashed
    skipped: str | None = None  # not run, and why

    @property
    def ok(self) -> bool:
        return bool(self.samples) and self.error is None

    def wall(self) -> Stats:
        return Stats.of([s.wall for s in self.samples])

    def span(self) -> Stats:
        """Makespan from the tool's own records where it has them, else its wall time."""
        return Stats.of([s.makespan if s.makespan is not None else s.wall for s in self.samples])

    def rss(self) -> Stats | None:
        values = [s.rss_mb for s in self.samples if s.rss_mb is not None]
        return Stats.of(values) if values else None

    def problem(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        return f"CRASHED: {(self.error or '').splitlines()[0]}"


def skipped(tool: str, reason: str) -> Outcome:
    say(f"  skipping {tool}: {reason}")
    return Outcome(tool, skipped=reason)


# --- the tools ------------------------------------------------------------------------------------


def _iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


_STAMP = re.compile(r"^(started|finished): ['\"]?([^'\"\n]+)['\"]?\s*$", re.MULTILINE)


def result_files(project: Path) -> list[Path]:
    """Every result file of ``project``'s workspace: a task's in results/, a row's items' in the
    row's folder there (``results/agent-03-items/``)."""
    results = project / ".orchestrator" / "results"
    return sorted([*results.glob("*-result.md"), *results.glob("*-items/*-result.md")])


def orchestrator_makespan(project: Path) -> float:
    """First ``started`` to last ``finished`` over every result file the run wrote."""
    starts: list[float] = []
    ends: list[float] = []
    for path in result_files(project):
        head = path.read_text(encoding="utf-8").split("\n---", 1)[0]
        for key, value in _STAMP.findall(head):
            (starts if key == "started" else ends).append(_iso(value))
    if not starts or not ends:
        raise ToolFailed(f"no result files with timestamps under {project}")
    return max(ends) - min(starts)


def orchestrator_tool(command: Sequence[str], name: str = "orchestrator", *, tuned: bool = False) -> Tool:
    """``command`` is how to call the CLI (the venv's ``orchestrator`` or ``python -m orchestrator``).
    The plan holds ``max_parallel``; ``tuned`` adds ``TUNED_SETTINGS`` (label the row so)."""

    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        project = write_plan(dag, directory / "project", concurrency, tuned=tuned)
        # ``orchestrator run`` in the project directory, as the README and the skill run it (the
        # workspace defaults to ./.orchestrator), and as every other tool here runs in the
        # directory its commands run in.
        return Invocation([*command, "run"], project)

    def makespan(directory: Path, _: bytes) -> float:
        return orchestrator_makespan(directory / "project")

    return Tool(name, setup, makespan)


def dagrun_tool(python: str, mode: str, *, via_bash: bool, name: str) -> Tool:
    """The reference scripts in ``dagrun.py`` (floor / levels / ready / minimal)."""

    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_dag_json(dag, directory / "dag.json")
        argv = [python, str(DAGRUN), mode, str(directory / "dag.json"), "-j", str(concurrency)]
        return Invocation([*argv, "--via-bash"] if via_bash else argv, directory)

    def makespan(_: Path, stdout: bytes) -> float:
        return float(json.loads(stdout.decode().strip().splitlines()[-1])["makespan"])

    return Tool(name, setup, makespan)


def make_tool() -> Tool:
    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_makefile(dag, directory / "Makefile")
        return Invocation(["make", "-s", f"-j{concurrency}", "-f", "Makefile", "all"], directory)

    return Tool("make", setup)


def xargs_tool() -> Tool:
    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_lines(dag, directory / "args.txt")
        return Invocation(["xargs", "-a", "args.txt", f"-P{concurrency}", "-n1", "true"], directory)

    return Tool("xargs", setup)


def parallel_tool() -> Tool:
    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_lines(dag, directory / "args.txt")
        return Invocation(["parallel", "--will-cite", f"-j{concurrency}", "-a", "args.txt", "true"], directory)

    return Tool("GNU parallel", setup)


def doit_tool(doit: str) -> Tool:
    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_dodo(dag, directory / "dodo.py")
        return Invocation([doit, "run", "-n", str(concurrency), "-f", "dodo.py"], directory)

    return Tool("doit", setup)


def snakemake_tool(snakemake: str) -> Tool:
    def setup(dag: Dag, directory: Path, concurrency: int) -> Invocation:
        write_snakefile(dag, directory / "Snakefile")
        return Invocation([snakemake, "-s", "Snakefile", "-j", str(concurrency), "--quiet", "all"], directory)

    return Tool("snakemake", setup)


def bench_python() -> str:
    """The bench venv's interpreter (``run.py`` makes it) when there is one, else this one."""
    venv = WORK / "venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def warm_up(command: Sequence[str]) -> None:
    """Untimed: ``validate``, ``run`` and ``status`` of a 3-task plan with the orchestrator's CLI,
    in ``user_env``, so that Python writes the bytecode of the modules they import, as it does on a
    user's machine at their first command. Raises ``ToolFailed`` if a command fails."""
    directory = fresh_dir(WORK / "runs" / "warm-up")
    project = write_plan(independent(3), directory / "project", 2)
    for name in ("validate", "run", "status"):
        timed([*command, name], project, directory / f"{name}.log")


def cli_command(text: str) -> list[str]:
    """``--orchestrator`` text as argv; a relative path to a program is made absolute (runs chdir)."""
    argv = shlex.split(text)
    if argv and os.sep in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = os.path.abspath(argv[0])
    return argv


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


# --- numbers and tables ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 3, scale: float = 1.0) -> str:
        mid = f"{self.median * scale:.{digits}f}"
        if self.count == 1:
            return mid
        return f"{mid} ({self.low * scale:.{digits}f}–{self.high * scale:.{digits}f})"


@dataclass(frozen=True, slots=True)
class Target:
    """One target checked: what, the measured value as text, and whether it was met."""

    name: str
    value: str
    ok: bool


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def have(program: str) -> bool:
    return shutil.which(program) is not None


def scratch(prefix: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=WORK))


def machine_line() -> str:
    return (
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}"
    )


def marked_section(path: Path, begin: str, end: str) -> str | None:
    """The section of a report between ``begin`` and ``end``, markers included, if it holds one
    (``bench/run.py`` keeps such sections, written by other scripts, when it rewrites the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if begin not in text or end not in text:
        return None
    return begin + text.split(begin, 1)[1].split(end, 1)[0] + end


def put_marked_section(path: Path, begin: str, end: str, body: str) -> None:
    """``body`` as the report's section between ``begin`` and ``end``: in place of the one it
    holds, else at its end; the rest of the file is kept."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    section = f"{begin}\n{body.strip()}\n{end}"
    old = marked_section(path, begin, end)
    text = text.replace(old, section) if old else text.rstrip("\n") + ("\n\n" if text.strip() else "") + section + "\n"
    path.write_text(text, encoding="utf-8")
