"""The forecast of a run's cost against what it then costs: the real claude CLI against the fake
Messages API, a first run to learn from, then the forecast of the second and its cost.

    python bench/forecast.py [--tasks 40] [--parallel 4] [--new 10]

A plan of ``--tasks`` claude tasks (random dependencies, seed 21; each a tool call then an answer,
the API's tokens for a task drawn from a lognormal law, and varied by a fifth or so from one run
to the next, as an agent's are: ``Priced``) runs once on a
fresh workspace; ``reset --all``; ``run --dry-run --json`` says the forecast of the next run
(p50 and p90) and the run that follows says what it cost (``run_finished``'s ``cost_usd``,
claude's own ``total_cost_usd`` summed). A second figure: the same, with ``--new`` of the tasks
replaced by tasks never run (forecast from the tasks of their kind). Target (issue 77): the
forecast of the second run within ±30% of its cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agentlib import (
    JSON,
    MARKER,
    AgentDag,
    AgentTask,
    Answers,
    FakeAnthropic,
    Reply,
    agent_env,
    find_claude,
    random_dag,
    run_orchestrator,
    task_of,
    tool_results,
)
from benchlib import WORK, cli_command, fresh_dir, machine_line, say, user_env, warm_up

TARGET = 0.30  # the forecast's error, of the cost, at most


class Priced(Answers):
    """The workload's answers, each request billed the tokens of its task (more for a task the API
    takes longer on), times a draw that changes with ``round``: no run costs what the one before did."""

    def __init__(self, dag: AgentDag) -> None:
        super().__init__(dag)
        self.round = 0

    def __call__(self, body: JSON) -> Reply:
        reply = super().__call__(body)
        task_id = task_of(body)
        task = self.dag.tasks.get(task_id) if task_id else None
        if task is None or reply.kind == "error":
            return reply
        noise = random.Random(f"{task_id}:{self.round}:{tool_results(body)}").lognormvariate(0.0, 0.2)
        return dataclasses.replace(reply, input_tokens=int(2000 + 400 * tool_results(body)),
                                   output_tokens=int((150 + 900 * task.seconds) * noise))  # fmt: skip


def _orchestrator(command: list[str], project: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*command, *args], cwd=project, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 4):
        raise SystemExit(f"orchestrator {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return done.stdout


def _cost(events: list[dict[str, object]]) -> float:
    finished = events[-1]
    value = finished.get("cost_usd")
    if not isinstance(value, int | float):
        raise SystemExit(f"the run reported no cost: {finished}")
    return float(value)


def _write(project: Path, dag: AgentDag, parallel: int) -> None:
    rows = "\n".join(
        f"| {t.id} | {MARKER} {t.id}: report on your part in a few lines | {', '.join(t.deps) or 'None'} |"
        for t in dag.tasks.values()
    )
    (project / ".orchestrator").mkdir(parents=True, exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: claude\nmax_parallel: {parallel}\nstatus_blocks: false\n---\n# Forecast\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n" + rows + "\n",
        encoding="utf-8",
    )


def measure(
    command: list[str], claude: str, dag: AgentDag, second: AgentDag, parallel: int, label: str
) -> dict[str, float]:
    """A first run of ``dag``, then the forecast and the cost of a run of ``second`` (the same plan,
    or one with tasks replaced)."""
    directory = fresh_dir(WORK / "runs" / "forecast" / label)
    project = directory / "project"
    both = AgentDag(dag.name, {**dag.tasks, **second.tasks})
    answers = Priced(both)
    with FakeAnthropic(answers) as api:
        env = {**user_env(), **agent_env(api, directory, claude)}
        _write(project, dag, parallel)
        first = run_orchestrator(command, project, env)
        answers.round += 1  # (the next run's tokens drawn afresh)
        _orchestrator(command, project, env, "reset", "--all")
        _write(project, second, parallel)
        dry = json.loads(_orchestrator(command, project, env, "run", "--dry-run", "--json"))
        then = run_orchestrator(command, project, env)
    forecast = dry["forecast"]["cost_usd"] or {"p50": 0.0, "p90": 0.0}
    actual = _cost(then.events)
    bases: dict[str, int] = {}
    for task in dry["forecast"]["per_task"]:
        bases[task["basis"]] = bases.get(task["basis"], 0) + 1
    said = f"forecast p50 ${forecast['p50']:.4f} (p90 ${forecast['p90']:.4f})"
    say(f"  {label}: first run ${_cost(first.events):.4f}; {said}, then spent ${actual:.4f}; based on {bases}")
    return {
        "p50": forecast["p50"],
        "p90": forecast["p90"],
        "actual": actual,
        "error": (forecast["p50"] - actual) / actual,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--orchestrator", default=f"{sys.executable} -m orchestrator")
    args = parser.parse_args(argv)
    claude = find_claude()
    if claude is None:
        print("no claude CLI here (bash tools/install-claude.sh): skipped")
        return 0
    command = cli_command(args.orchestrator)
    warm_up(command)
    dag = random_dag(args.tasks, seed=21, median=1.0, sigma=0.8, requests=2)
    same = measure(command, claude, dag, dag, args.parallel, "same")
    replaced = AgentDag(dag.name, dict(dag.tasks))
    for n, task_id in enumerate(list(dag.tasks)[-args.new :]):  # (the last ones: only they depend on them)
        old = replaced.tasks.pop(task_id)
        new_id = f"T-{101 + n}"  # (the fake answers by the marker's T-NN)
        replaced.add(
            AgentTask(new_id, tuple(d for d in old.deps if d in replaced.tasks), old.seconds * 1.3, old.requests)
        )
    changed = measure(command, claude, dag, replaced, args.parallel, "new")
    print(f"{machine_line()}")
    print(f"{args.tasks} claude tasks (the real CLI, the fake API), max_parallel {args.parallel}:")
    for label, found in (("the same plan again", same), (f"{args.new} tasks replaced by new ones", changed)):
        print(f"  {label}: forecast ${found['p50']:.4f} (p90 ${found['p90']:.4f}), cost ${found['actual']:.4f}, "
              f"error {found['error'] * 100:+.1f}%")  # fmt: skip
    met = abs(same["error"]) <= TARGET
    print(f"  target: the second run's forecast within ±{TARGET:.0%} of its cost — {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
