"""Delivery under kill -9: the runner killed at random moments of a run's delivery, then run again
until a run ends by itself, round after round; what came of it counted.

    python bench/deliver.py [--kills 100] [--seed 1] [--delay 0.05]

Each round: a git repository with a plan of two shell tasks in worktrees, ``deliver: [pr, comment]``
to a bare repository on disk and to ``acme/app`` on the fake of GitHub's API (``tests/fake_github``,
on 127.0.0.1, each request taking ``--delay`` seconds), its run started as a webhook's delivery of
issue 7 starts one (``run --launch``). The runner is killed with SIGKILL at a random moment from
just before its first effect's intent to just after its last effect's outcome (``--window``
seconds from the first intent, drawn uniformly), then started again by hand (``orchestrator
run``), killed again with probability one half, until a run exits by itself. Then:

- **duplicate pull requests**: pull requests opened beyond the first;
- **duplicate comments**: comments on issue 7 beyond the first;
- **lost**: a round that ends without one pull request at the integration branch's tip, the remote
  holding that tip, and one comment;
- **delivery time**: in a round not killed (every fifth), from its run's first effect's intent to
  its last effect's outcome (the issue's target: at most 1 s against the fake API).

Exit status 1 when any count is not zero.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_github import FakeGitHub  # noqa: E402

REPOSITORY, ISSUE, LAUNCH, BRANCH = "acme/app", 7, "20261127T100000.000-1", "orchestrator/integration"
PLAN = """---
backend: shell
retries: 0
isolation: worktree
deliver: {{to: [pr, comment], remote: {remote}, repository: {repository}, base: main}}
---
# Delivered

## Original Request
> Deliver the work once.

## Task Decomposition
| Task ID | Task Name | Description | Dependencies |
|---|---|---|---|
| T-01 | One | Write one | None |
| T-02 | Two | Write two | T-01 |

## Task Details

### T-01 One
```bash
echo "one {round}" > one.txt
```

### T-02 Two
```bash
echo "two {round}" > two.txt
```
"""


@dataclass(slots=True)
class Tally:
    rounds: int = 0
    runs: int = 0
    kills: int = 0
    duplicate_prs: int = 0
    duplicate_comments: int = 0
    lost: list[str] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    seconds: float = 0.0
    moments: Counter[str] = field(default_factory=Counter)  # where each kill came: the log's last effect line

    def line(self) -> str:
        took = f"{statistics.median(self.delivery):.3f} s (max {max(self.delivery):.3f} s)" if self.delivery else "-"
        return (f"{self.rounds} rounds, {self.runs} runs, {self.kills} kills in {self.seconds:.0f} s: "
                f"{self.duplicate_prs} duplicate pull requests, {self.duplicate_comments} duplicate comments, "
                f"{len(self.lost)} lost; delivery in a round not killed: median {took}")  # fmt: skip

    def where(self) -> str:
        return "kills after: " + ", ".join(f"{moment} {n}" for moment, n in sorted(self.moments.items()))


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=cwd,
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    return done.stdout.strip()


def _project(base: Path, number: int) -> tuple[Path, Path]:
    project, remote = base / "project", base / "remote.git"
    project.mkdir()
    _git(project, "init", "-q", "-b", "main")
    (project / "README.md").write_text("hello\n", encoding="utf-8")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "start")
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\n", encoding="utf-8")
    _git(base, "init", "-q", "--bare", str(remote))
    workspace = project / ".orchestrator"
    (workspace / "state").mkdir(parents=True)
    plan = PLAN.format(remote=remote, repository=REPOSITORY, round=number)
    (workspace / "master_plan.md").write_text(plan, encoding="utf-8")
    launch = {"id": LAUNCH, "source": "github", "what": "issues opened", "started": time.time(), "pid": 0,
              "origin": {"repository": REPOSITORY, "issue": ISSUE}}  # fmt: skip
    (workspace / "state" / "launches.json").write_text(json.dumps({"launches": [launch]}), encoding="utf-8")
    return project, remote


def _effects(project: Path) -> list[dict[str, object]]:
    path = project / ".orchestrator" / "state" / "events.jsonl"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [e for e in map(json.loads, text[: text.rfind("\n") + 1].splitlines()) if "effect_" in str(e["event"])]


def _start(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "run", *args], cwd=project, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def _killed(runner: subprocess.Popen[bytes], project: Path, rng: random.Random, window: float, since: int) -> bool:
    """Kill ``runner`` -9 at a moment drawn from its delivery (``False``: it ended first)."""
    deadline = time.monotonic() + 120
    while len(_effects(project)) <= since and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, window) if rng.random() < 0.9 else 0)  # (one in ten: at its first intent)
    if runner.poll() is not None:
        return False
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    return True


def _moment(project: Path, since: int) -> str:
    """Where a kill came: the last effect line the killed run wrote (``-``: none yet)."""
    found = _effects(project)[since:]
    return f"{str(found[-1]['event']).removeprefix('effect_')} {found[-1]['kind']}" if found else "-"


def _delivery_seconds(project: Path, since: int) -> float | None:
    found = _effects(project)[since:]
    if not found:
        return None
    times = [datetime.fromisoformat(str(e["time"])).timestamp() for e in found]
    return max(times) - min(times)


def one_round(number: int, rng: random.Random, tally: Tally, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-deliver-") as directory, FakeGitHub(args.delay) as github:
        project, remote = _project(Path(directory), number)
        env = {**os.environ, "ORCHESTRATOR_GITHUB_TOKEN": "bench-token-not-real", "ORCHESTRATOR_GITHUB_API": github.url}
        first, code = True, None
        while code is None:
            before = len(_effects(project))
            runner = _start(project, env, *(["--launch", LAUNCH] if first else []))
            tally.runs += 1
            control = number % 5 == 0  # (a round not killed: what delivery takes)
            kill = not control and tally.kills < args.kills and (first or rng.random() < 0.5)
            first = False
            if kill and _killed(runner, project, rng, args.window, before):
                tally.kills += 1
                tally.moments[_moment(project, before)] += 1
                continue
            code = runner.wait(timeout=300)
            took = _delivery_seconds(project, before)
            if control and took is not None:
                tally.delivery.append(took)
        pulls, comments = github.pulls.get(REPOSITORY, []), github.comments.get(f"{REPOSITORY}#{ISSUE}", [])
        tally.duplicate_prs += max(0, len(pulls) - 1)
        tally.duplicate_comments += max(0, len(comments) - 1)
        tip = _git(project, "rev-parse", BRANCH)
        held = subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/heads/{BRANCH}"], cwd=remote,
                              capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
        if code != 0 or len(pulls) != 1 or len(comments) != 1 or held != tip or tip[:12] not in pulls[0]["body"]:
            tally.lost.append(f"round {number}: exit {code}, {len(pulls)} PRs, {len(comments)} comments, "
                              f"remote {held[:12]} vs {tip[:12]}")  # fmt: skip
        tally.rounds += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--kills", type=int, default=100, help="kill -9s in all (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each request to the fake API takes")
    parser.add_argument("--window", type=float, default=0.35, help="seconds after the first intent a kill may come")
    args = parser.parse_args()
    rng, tally, began = random.Random(args.seed), Tally(), time.monotonic()
    number = 0
    while tally.kills < args.kills:
        number += 1
        one_round(number, rng, tally, args)
        tally.seconds = time.monotonic() - began
        print(tally.line(), flush=True)
    print(tally.where())
    for lost in tally.lost:
        print(f"  lost: {lost}")
    return 1 if tally.duplicate_prs or tally.duplicate_comments or tally.lost else 0


if __name__ == "__main__":
    sys.exit(main())
