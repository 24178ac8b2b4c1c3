"""``checkpoint save``, ``list`` and ``restore``: results and state kept and brought back, what a
restore replaces kept as a checkpoint of its own, the history never rewound, and each refusal
one line with nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runner_helpers import Spec, cli, cli_in_process, git, run, start, wait_until, write_plan


def output(project: Path, task: str) -> str:
    done = cli_in_process(project, "output", task)
    assert done.code == 0, done.stderr
    return done.stdout.strip()


def tree(project: Path) -> dict[str, bytes]:
    root = project / ".orchestrator"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_restore_brings_the_results_back_and_keeps_what_it_replaced(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo good")])
    assert run(tmp_path).code == 0
    saved = cli(tmp_path, "checkpoint", "save", "good", "--json")
    assert saved.code == 0, saved.stderr
    assert json.loads(saved.stdout)["results"] == 1
    good_plan = (tmp_path / ".orchestrator" / "master_plan.md").read_bytes()
    write_plan(tmp_path, [Spec("T-01", "echo bad"), Spec("T-02", "echo extra")])
    assert run(tmp_path).code == 0
    assert output(tmp_path, "T-01") == "bad"

    done = cli(tmp_path, "checkpoint", "restore", "good")
    assert done.code == 0, done.stderr
    assert output(tmp_path, "T-01") == "good"
    assert (tmp_path / ".orchestrator" / "master_plan.md").read_bytes() == good_plan
    assert not (tmp_path / ".orchestrator" / "results" / "agent-02-result.md").exists()
    listed = json.loads(cli_in_process(tmp_path, "checkpoint", "list", "--json").stdout)["checkpoints"]
    before = [c for c in listed if c["name"].startswith("before-restore-")]
    assert listed[0]["name"] == "good" and len(before) == 1
    assert "results/agent-02-result.md" in before[0]["files"]  # what the restore replaced, kept
    assert before[0]["name"] in done.stderr
    # The history is not rewound: the runs since are still in it, and so is the restore.
    history = cli_in_process(tmp_path, "history", "--json")
    assert history.code == 0, history.stderr
    lines = (tmp_path / ".orchestrator" / "state" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["event"] for line in lines]
    assert kinds.count("run_started") == 2 and kinds[-1] == "checkpoint_restored"
    # And back again: the restore of what the restore replaced.
    assert cli(tmp_path, "checkpoint", "restore", before[0]["name"]).code == 0
    assert output(tmp_path, "T-01") == "bad" and output(tmp_path, "T-02") == "extra"


def test_a_brief_edited_by_hand_goes_back_with_the_restore(tmp_path: Path) -> None:
    """A checkpoint kept the results and the plan, not the briefs: after a brief rewritten by
    hand, a restore left the rewrite, and its task out of date. The brief goes back now; what the
    restore replaced (the rewrite) is kept in the before-restore checkpoint."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=("T-01",))])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "v1").code == 0
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-02.md"
    rendered = brief.read_bytes()
    brief.write_bytes(rendered + b"\nAlso: mind the edge cases.\n")  # a rewrite, by hand

    def up_to_date() -> dict[str, bool]:
        return {
            t["id"]: t["up_to_date"] for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
        }

    assert up_to_date() == {"T-01": True, "T-02": False}

    done = cli(tmp_path, "checkpoint", "restore", "v1", "--json")
    assert done.code == 0, done.stderr
    assert brief.read_bytes() == rendered
    assert up_to_date() == {"T-01": True, "T-02": True}
    before = json.loads(done.stdout)["before"]
    assert "agent_tasks/agent-02.md" in before["files"]
    assert cli(tmp_path, "checkpoint", "restore", before["name"]).code == 0  # and back to the rewrite
    assert brief.read_bytes().endswith(b"mind the edge cases.\n")


def test_restore_never_touches_unmerged_work_on_a_worktree_branch(tmp_path: Path) -> None:
    """A real ``isolation: worktree`` task whose commit could not be merged (a conflict, with
    ``on_conflict: fail``): a restore to before the run removes its result, never its branch, its
    commit nor its worktree directory."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\n", encoding="utf-8")
    integration = "orchestrator/integration"
    wait = f"until git log --format=%s {integration} | grep -q 'merge T-01'; do sleep 0.05; done"
    specs = [
        Spec("T-01", "sed -i 's/two/two by T-01/' a.txt"),
        Spec("T-02", f"sed -i 's/two/two by T-02/' a.txt\n{wait}"),
    ]
    write_plan(project, specs, {"isolation": "worktree", "on_conflict": "fail"})
    assert cli(project, "checkpoint", "save", "before-run").code == 0
    done = run(project)
    assert done.code == 1, done.stdout + done.stderr  # T-02 failed: its work conflicts
    branch = f"{integration}-T-02"
    commit = git(project, "rev-parse", branch)
    tree = project / ".orchestrator" / "worktrees" / "T-02"
    assert (tree / "a.txt").read_text(encoding="utf-8") == "one\ntwo by T-02\n"
    merged = subprocess.run(["git", "merge-base", "--is-ancestor", commit, integration], cwd=project, check=False)
    assert merged.returncode == 1, "T-02's commit is not merged: work a restore must leave alone"

    restored = cli(project, "checkpoint", "restore", "before-run")
    assert restored.code == 0, restored.stderr
    assert not (project / ".orchestrator" / "results" / "agent-02-result.md").exists()
    assert git(project, "rev-parse", branch) == commit  # the branch and its unmerged commit
    assert git(project, "show", f"{commit}:a.txt") == "one\ntwo by T-02"
    assert (tree / "a.txt").read_text(encoding="utf-8") == "one\ntwo by T-02\n"  # the worktree, as it was
    assert str(tree) in git(project, "worktree", "list")


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "first").code == 0
    untouched = tree(tmp_path)
    for args, words in (
        (("save", "../escape"), "checkpoint name '../escape'"),
        (("save", "first"), "checkpoint 'first' exists"),
        (("restore", "nope"), "no checkpoint 'nope'"),
    ):
        done = cli(tmp_path, "checkpoint", *args)
        assert done.code == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and words in done.stderr and "Traceback" not in done.stderr
        assert tree(tmp_path) == untouched, args


def test_no_restore_while_a_run_goes_on(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "first").code == 0
    write_plan(tmp_path, [Spec("T-01", "until [ -e go ]; do sleep 0.02; done; echo two")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: "task_started" in [e["event"] for e in runner.events()], "the run to start T-01")
        untouched = tree(tmp_path)
        done = cli(tmp_path, "checkpoint", "restore", "first")
        assert done.code == 3 and done.stderr.count("\n") == 1, done.stderr
        kept = ("results/", "checkpoints/")  # (the run goes on writing its own: logs, status blocks)
        assert {k: v for k, v in tree(tmp_path).items() if k.startswith(kept)} == {
            k: v for k, v in untouched.items() if k.startswith(kept)
        }
    finally:
        (tmp_path / "go").touch()
        try:
            runner.wait()
        except subprocess.TimeoutExpired:
            runner.stop_all()
    assert output(tmp_path, "T-01") == "two"


def test_two_restores_in_one_second_keep_both_replaced_states(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo good")])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "good").code == 0
    first = cli(tmp_path, "checkpoint", "restore", "good", "--json")
    second = cli(tmp_path, "checkpoint", "restore", "good", "--json")
    assert first.code == 0 and second.code == 0, second.stderr
    names = [
        c["name"] for c in json.loads(cli_in_process(tmp_path, "checkpoint", "list", "--json").stdout)["checkpoints"]
    ]
    assert len([n for n in names if n.startswith("before-restore-")]) == 2


def test_status_and_report_say_the_workspace_was_restored_until_the_next_run(tmp_path: Path) -> None:
    """A restore was told only by `checkpoint list` and the event log: `status` showed the
    checkpoint's results as if a run had made them. It says so now, until a run starts."""
    write_plan(tmp_path, [Spec("T-01", "echo good")])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "v1").code == 0
    write_plan(tmp_path, [Spec("T-01", "echo bad")])
    assert run(tmp_path).code == 0
    assert "restored" not in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    done = json.loads(cli(tmp_path, "checkpoint", "restore", "v1", "--json").stdout)
    before, saved = done["before"]["name"], done["restored"]["saved"]

    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    restored = shown["restored"]
    assert restored == {"checkpoint": "v1", "saved": saved, "time": done["before"]["saved"], "before": before}
    line = (
        f"⏪ restored from checkpoint v1 (saved {saved}) at {restored['time']}; what it replaced is kept as "
        f"checkpoint {before} (`orchestrator checkpoint restore {before}` goes back)"
    )
    assert line in shown["notes"]
    assert line in cli_in_process(tmp_path, "status").stdout.splitlines()
    report = cli_in_process(tmp_path, "report")
    assert f"| Restored | {line.removeprefix('⏪ ')} |" in report.stdout.splitlines(), report.stdout
    figures = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    assert figures["restored"] == restored and figures["restored_note"] == line
    assert "Restored" in cli_in_process(tmp_path, "report", "--format", "html").stdout

    assert run(tmp_path).code == 0  # the next run: from here on, its own record tells
    assert "restored" not in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert (
        "⏪" not in cli_in_process(tmp_path, "status").stdout
        and "| Restored |" not in cli_in_process(tmp_path, "report").stdout
    )
