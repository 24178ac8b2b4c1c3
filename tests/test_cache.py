"""The cache with early cutoff: a task whose inputs (its brief, settings, and its upstreams'
outputs) are those of a result kept earlier reuses it, and no process starts. Each test proves
"no process" with a script that appends a line to a file outside the workspace's results."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli, cli_in_process, git, run, write_plan

from orchestrator.output.reporter import describe
from orchestrator.plan.table.times import spoken, spoken_in

RAN = "ran.log"  # each task's script appends its id here: a line is a process that ran


def write(project: Path, specs: list[Spec], settings: dict[str, Any] | None = None) -> Path:
    """The plan, with ``cache: true``: these tasks' scripts note that they ran (what the tests
    count), and their answers are their work (``run/resume/reuse.cache_rule``)."""
    return write_plan(project, specs, {"cache": True, **(settings or {})})


def ran(project: Path) -> list[str]:
    path = project / RAN
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def spec(task: str, output: str, deps: tuple[str, ...] = ()) -> Spec:
    return Spec(task, f'echo "$ORCHESTRATOR_TASK_ID" >> {RAN}\necho "{output}"', deps=deps)


def tasks(project: Path) -> dict[str, dict[str, Any]]:
    done = cli_in_process(project, "status", "--json")
    assert done.code == 0, done.stderr
    return {t["id"]: t for t in json.loads(done.stdout)["tasks"]}


def fresh_log(project: Path) -> None:
    (project / RAN).unlink(missing_ok=True)


def test_a_moment_is_said_as_people_read_time_on_this_machine_s_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
        assert spoken(dt.datetime.fromisoformat("2026-11-25T13:02:33.116+00:00"), now) == "25 Nov 14:02"
        assert spoken(dt.datetime.fromisoformat("2025-01-05T04:07:59Z"), now) == "5 Jan 2025 05:07"  # another year
        this_year = dt.datetime.now(dt.UTC).replace(month=6, day=1, hour=8, minute=5).isoformat()
        why = f"T-01 ran again with the same output: same inputs as the run of {this_year}"
        assert spoken_in(why) == "T-01 ran again with the same output: same inputs as the run of 1 Jun 10:05"
        for text in ("same inputs as the run of an earlier run", "2026-13-45T14:37:56+00:00", "2026-11-25T14:37"):
            assert spoken_in(text) == text  # no moment, not a moment, no zone: left as written
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_brief_changed_and_changed_back_reuses_the_first_result(tmp_path: Path) -> None:
    write(tmp_path, [spec("T-01", "v1")])
    assert run(tmp_path).code == 0
    write(tmp_path, [spec("T-01", "v2")])
    assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01", "T-01"]
    write(tmp_path, [spec("T-01", "v1")])
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    assert ran(tmp_path) == ["T-01", "T-01"], "v1 again: its result reused, no process"
    view = tasks(tmp_path)["T-01"]
    assert view["status"] == "completed" and view["up_to_date"] is True
    assert view["reused"].startswith("same inputs as the run of ")
    result = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    body = result.split("\n---\n", 1)[1]
    assert "v1" in body and "v2" not in body
    completed = [e for e in done.events if e["event"] == "task_completed"]
    assert [e.get("reused") for e in completed] == [view["reused"]]
    assert "task_started" not in done.kinds("T-01")
    # Said as people read time wherever people read it (the exact moment stays in --json's `reused`):
    # the one formatter, plan/table/times.spoken_in, which the dashboard shows too (status --json's reused_said).
    said = view["reused_said"]
    assert said == spoken_in(view["reused"]) and re.fullmatch(r"same inputs as the run of \d+ \w{3} \d\d:\d\d", said)
    assert f"♻️ reused: {said}" in cli_in_process(tmp_path, "status").stdout
    assert f"reused: {said}" in (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"♻️ reused: {said}" in cli_in_process(tmp_path, "report").stdout
    assert describe(completed[0]) == f"♻️ T-01 [Agent-01] reused: {said}"  # the run's line, and the dashboard's
    assert not re.search(r"\d{4}-\d\d-\d\dT", cli_in_process(tmp_path, "status").stdout)
    # A run with nothing changed does nothing, and says nothing is reused: the result is up to date.
    assert run(tmp_path).code == 0 and ran(tmp_path) == ["T-01", "T-01"]


def test_an_upstream_that_prints_the_same_again_leaves_its_dependent_alone(tmp_path: Path) -> None:
    # T-01 changes (a comment) but prints the same: T-02 keeps its result (early cutoff). Then
    # T-01 prints something else: T-02 runs.
    plan = [spec("T-01", "same"), spec("T-02", "two", deps=("T-01",))]
    write(tmp_path, plan)
    assert run(tmp_path).code == 0
    fresh_log(tmp_path)
    write(tmp_path, [Spec("T-01", plan[0].script + "\n# edited"), plan[1]])
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    assert ran(tmp_path) == ["T-01"], "T-01 ran, and printed the same: T-02 not run again"
    assert tasks(tmp_path)["T-02"]["reused"] and tasks(tmp_path)["T-01"]["reused"] is None
    fresh_log(tmp_path)
    write(tmp_path, [spec("T-01", "different"), plan[1]])
    assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01", "T-02"]
    assert tasks(tmp_path)["T-02"]["reused"] is None


def test_rerun_and_cache_false_run_for_real(tmp_path: Path) -> None:
    write(tmp_path, [spec("T-01", "v1")])
    assert run(tmp_path).code == 0
    write(tmp_path, [spec("T-01", "v2")])
    assert run(tmp_path).code == 0
    write(tmp_path, [spec("T-01", "v1")])
    assert run(tmp_path, "--rerun", "T-01").code == 0
    assert ran(tmp_path) == ["T-01"] * 3, "--rerun runs it for real"
    assert tasks(tmp_path)["T-01"]["reused"] is None
    write(tmp_path, [spec("T-01", "v2")], {"cache": False})
    assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01"] * 4, "cache: false: never reused"
    write(tmp_path, [spec("T-01", "v1")])
    assert cli(tmp_path, "reset", "T-01").code == 0
    assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01"] * 5, "reset: its kept results forgotten, it runs for real"


def test_a_simulated_result_is_never_reused_by_a_real_run(tmp_path: Path) -> None:
    write(tmp_path, [spec("T-01", "v1")])
    assert run(tmp_path, "--executor", "fake").code == 0
    write(tmp_path, [spec("T-01", "v2")])
    assert run(tmp_path).code == 0
    write(tmp_path, [spec("T-01", "v1")])
    assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01", "T-01"], "the fake run's v1 is no result of a real one"
    assert tasks(tmp_path)["T-01"]["simulated"] is False


def test_rerun_of_an_upstream_that_prints_the_same_reuses_its_dependent(tmp_path: Path) -> None:
    # `--rerun T-01` runs T-01 for real; T-02 downstream goes through the cache (early cutoff):
    # T-01 printing what it printed before leaves T-02 reused, said so; printing another thing runs it.
    (tmp_path / "value.txt").write_text("same\n", encoding="utf-8")
    reads = Spec("T-01", f'echo "$ORCHESTRATOR_TASK_ID" >> {RAN}\ncat value.txt')
    write(tmp_path, [reads, spec("T-02", "two", deps=("T-01",))])
    assert run(tmp_path).code == 0
    fresh_log(tmp_path)
    done = run(tmp_path, "--rerun", "T-01")
    assert done.code == 0, done.stderr
    assert ran(tmp_path) == ["T-01"], "T-01 ran again and printed the same: T-02 reused"
    assert "task_started" not in done.kinds("T-02")
    [completed] = [e for e in done.events if e["event"] == "task_completed" and e["task"] == "T-02"]
    assert completed["reused"].startswith("T-01 ran again with the same output: same inputs as the run of ")
    assert tasks(tmp_path)["T-02"]["reused"] and tasks(tmp_path)["T-01"]["reused"] is None
    fresh_log(tmp_path)
    (tmp_path / "value.txt").write_text("changed\n", encoding="utf-8")
    done = run(tmp_path, "--rerun", "T-01")
    assert done.code == 0, done.stderr
    assert ran(tmp_path) == ["T-01", "T-02"], "T-01 printed something else: T-02 runs"
    assert tasks(tmp_path)["T-02"]["reused"] is None
    fresh_log(tmp_path)
    assert run(tmp_path, "--rerun", "T-01,T-02").code == 0
    assert ran(tmp_path) == ["T-01", "T-02"], "named, T-02 runs for real whatever T-01 prints"
    # The README's line for --rerun says so (it said the dependents ran "for real").
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [line] = [line for line in readme.splitlines() if line.startswith("orchestrator run --rerun ")]
    assert "for real" not in line and "dependents run through the cache" in line, line


def test_a_scheduled_firing_runs_the_roots_for_real_and_cuts_off_below(tmp_path: Path) -> None:
    # `schedule fire` reruns every task: the roots for real, their dependents through the cache;
    # a dependent with `cache: false` (it reads outside state) runs every time.
    plan = [
        spec("T-01", "one"),
        spec("T-02", "two", deps=("T-01",)),
        Spec("T-03", f'echo "$ORCHESTRATOR_TASK_ID" >> {RAN}\necho three', deps=("T-02",), name="Digest"),
    ]
    path = write(tmp_path, plan, {"types": {"digest": {"cache": False}}})
    rows = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(rows):  # a Type column: T-03 is a digest
        if line.startswith("| Task ID") or line.startswith("|----") or line.startswith("| T-0"):
            cell = "Type" if line.startswith("| Task ID") else "---" if line.startswith("|-") else "-"
            rows[number] = f"{line} {'digest' if line.startswith('| T-03') else cell} |"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cli(tmp_path, "schedule", "fire").code == 0
    assert ran(tmp_path) == ["T-01", "T-02", "T-03"]
    fresh_log(tmp_path)
    fired = cli(tmp_path, "schedule", "fire", "--json")
    assert fired.code == 0, fired.stderr
    assert ran(tmp_path) == ["T-01", "T-03"], "the root for real, T-02 reused, T-03 (cache: false) run"
    assert tasks(tmp_path)["T-02"]["reused"] and tasks(tmp_path)["T-03"]["reused"] is None


def test_the_nightly_audit_example_audits_a_repository_again_not_from_the_cache(tmp_path: Path) -> None:
    # examples/nightly-audit reads a git repository the cache key does not cover (its path only):
    # repo=A, then B, then A again must audit A as it is now, not reuse A's first audit.
    example = Path(__file__).parent.parent / "examples" / "nightly-audit" / ".orchestrator" / "master_plan.md"
    project = tmp_path / "audit"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_bytes(example.read_bytes())
    repos = {name: tmp_path / name for name in ("a", "b")}
    for repo in repos.values():
        repo.mkdir()
        (repo / "x.py").write_text("# TODO one\n", encoding="utf-8")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "one")
    for name in ("a", "b"):
        assert run(project, "--param", f"repo={repos[name]}").code == 0
    (repos["a"] / "x.py").write_text("# TODO one\n# TODO two\n", encoding="utf-8")
    git(repos["a"], "commit", "-q", "-am", "two")
    again = run(project, "--param", f"repo={repos['a']}")
    assert again.code == 0, again.stderr
    assert "- x.py:2" in cli_in_process(project, "output", "T-02").stdout, "A as it is now: two markers"
    assert not [e for e in again.events if e.get("reused")]


def test_a_command_whose_work_is_beside_its_answer_is_run_again_not_reused(tmp_path: Path) -> None:
    """The issue's case: ``printf out-a | tee file.txt``, changed to out-b, then back to out-a. A
    reused answer would leave file.txt holding out-b: by default a command runs, as its work may
    be more than what it prints."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    text = (
        "---\nbackend: shell\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies |\n|---|---|---|\n| T-01 | {} | None |\n"
    )
    for word in ("out-a", "out-b", "out-a"):
        plan.write_text(text.format(f"printf {word} \\| tee file.txt"), encoding="utf-8")
        done = run(tmp_path)
        assert done.code == 0, done.stderr
        assert (tmp_path / "file.txt").read_text(encoding="utf-8") == word
    assert not [e for e in done.events if e.get("reused")] and done.tasks("task_started") == ["T-01"]
    assert tasks(tmp_path)["T-01"]["reused"] is None


def test_validate_says_which_tasks_are_cached_and_why(tmp_path: Path) -> None:
    """Cached: a task that declares its Output, one that says ``cache: true`` (its type here),
    a read-only agent (``Access: read``). Not: a command, an agent that may edit, a gate."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(
        "---\nbackend: shell\ntypes: {pure: {cache: true}}\n---\n## Task Decomposition\n"
        "| Task ID | Description | Command | Backend | Access | Type | Output | Approval | Dependencies |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| T-01 | Note it | printf out \\| tee file.txt | | | | | | None |\n"
        """| T-02 | Count | `echo '{"n": 1}'` | | | | n:int | | None |\n"""
        "| T-03 | Say it | echo pure | | | pure | | | None |\n"
        "| T-04 | Review the code | | claude | read | | | | None |\n"
        "| T-05 | Fix the code | | claude | edit | | | | None |\n"
        "| T-06 | Deploy | echo deploy | | | | n:int | before | None |\n",
        encoding="utf-8",
    )
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert (
        "Cached (reused while its inputs are the same): T-02 (declares its Output), T-03 (cache: true), "
        "T-04 (read-only agent)" in lines
    ), checked.stdout
    [never] = [line for line in lines if line.startswith("Not reused from the cache")]
    assert never.startswith(
        "Not reused from the cache (runs again when its inputs change): T-01 (a command: it may do more than answer), "
        "T-05 (an agent that may edit: it may do more than answer), T-06 (approval before) — "
        "declare its Output, or say cache: true"
    ), never
    data = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)
    assert [c["task"] for c in data["cached"]] == ["T-02", "T-03", "T-04"]
    assert [u["task"] for u in data["uncached"]] == ["T-01", "T-05", "T-06"]
    # The plan's own `cache: true` caches every task but the gated one; `cache: auto` is the default.
    plan.write_text(plan.read_text(encoding="utf-8").replace("backend: shell\n", "backend: shell\ncache: true\n"))
    data = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)
    assert [u["task"] for u in data["uncached"]] == ["T-06"]
    plan.write_text(plan.read_text(encoding="utf-8").replace("cache: true\n", "cache: auto\n"))
    assert [u["task"] for u in json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)["uncached"]] == [
        "T-01",
        "T-05",
        "T-06",
    ]


def test_what_validate_says_of_a_task_not_cached_is_what_runs_do(tmp_path: Path) -> None:
    """A task the cache never serves is not run every time (validate said "each runs every time"):
    completed and up to date, it is left as it is; its inputs changed, it runs again."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    table = "---\nbackend: shell\n---\n## Task Decomposition\n| Task ID | Command | Dependencies |\n|---|---|---|\n"
    plan.write_text(table + "| T-01 | echo run >> runs.txt | None |\n", encoding="utf-8")
    said = cli_in_process(tmp_path, "validate").stdout.splitlines()
    assert (
        "Not reused from the cache (runs again when its inputs change): T-01 (a command: it may do more than "
        "answer) — declare its Output, or say cache: true (the plan's setting, or its type's), where its answer "
        "is all it does"
    ) in said, said
    for _ in range(2):
        assert cli(tmp_path, "run").code == 0
    assert (tmp_path / "runs.txt").read_text() == "run\n"  # unchanged: not run again
    plan.write_text(table + "| T-01 | echo again >> runs.txt | None |\n", encoding="utf-8")
    assert cli(tmp_path, "run").code == 0
    assert (tmp_path / "runs.txt").read_text() == "run\nagain\n"  # its inputs changed: it runs


def test_a_task_that_declares_its_output_is_cached_by_default(tmp_path: Path) -> None:
    """Its answer is its work: a brief changed and changed back reuses the first result, no
    ``cache: true`` needed."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    text = (
        "---\nbackend: shell\n---\n## Task Decomposition\n"
        "| Task ID | Command | Output | Dependencies |\n|---|---|---|---|\n"
        """| T-01 | `echo "T-01" >> {ran}; echo '{{"v": "{v}"}}'` | v | None |\n"""
    )
    for version in ("v1", "v2", "v1"):
        plan.write_text(text.format(ran=RAN, v=version), encoding="utf-8")
        assert run(tmp_path).code == 0
    assert ran(tmp_path) == ["T-01", "T-01"], "v1 again: reused"
    assert tasks(tmp_path)["T-01"]["reused"]


def test_a_read_only_agent_is_one_its_settings_keep_from_changing_anything() -> None:
    """What each backend's own settings guarantee, and nothing else: claude with only reading
    tools or in plan mode, codex's read-only sandbox, gemini's plan mode; an Access: read cell
    gives each of these."""
    from orchestrator import backends
    from orchestrator.plan.config.settings import Settings
    from orchestrator.plan.table.access import access_settings

    for name in ("claude", "codex", "gemini"):
        backend = backends.get(name)
        assert backend.read_only(Settings(backend=name, **access_settings(name, "read"))), name
        assert not backend.read_only(Settings(backend=name, **access_settings(name, "edit"))), name
        assert not backend.read_only(Settings(backend=name)), name
    assert backends.get("claude").read_only(Settings(backend="claude", permission_mode="plan"))
    assert not backends.get("claude").read_only(Settings(backend="claude", tools=("Read", "Bash")))
    assert not backends.get("shell").read_only(Settings(backend="shell"))
