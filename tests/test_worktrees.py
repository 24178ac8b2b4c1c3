"""``isolation: worktree``: each task in a git worktree of its own, a merge queue into the
integration branch, and the person's checkout untouched until ``orchestrator merge``.

Every test works on a real git repository in ``tmp_path``, with shell tasks that edit files and
the real CLI as a subprocess. Git runs with no identity configured anywhere (no global or system
config): the tool's own commits must carry its fallback identity.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from runner_helpers import Spec, cli, cli_in_process, kill_leftovers, results, run, start, wait_until, write_plan
from worktree_helpers import (  # (no_git_identity: autouse, for every test here)
    INTEGRATION,
    block_plan,
    checkout,
    git,
    no_git_identity,  # noqa: F401
    on,
    plan,
    repository,
)

from orchestrator.output.reporter import describe


def test_tasks_editing_different_files_merge_and_their_dependent_sees_both(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n", "b.txt": "b\n"})
    plan(
        project,
        [
            Spec("T-01", "echo 'from T-01' >> a.txt"),
            Spec("T-02", "echo 'from T-02' >> b.txt"),
            Spec("T-03", "cat a.txt b.txt | tee seen.txt", deps=("T-01", "T-02")),
        ],
    )
    before = checkout(project)
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    found = results(project)
    assert "from T-01" in (project / ".orchestrator/results/agent-03-result.md").read_text()
    assert "from T-02" in (project / ".orchestrator/results/agent-03-result.md").read_text()
    assert found["T-01"]["branch"] == f"{INTEGRATION}-T-01"
    assert found["T-01"]["commit"] == git(project, "rev-parse", f"{INTEGRATION}-T-01").strip()
    assert "a.txt" in found["T-01"]["diffstat"] and "1 insertion" in found["T-01"]["diffstat"]
    assert found["T-01"]["merge"].startswith(f"merged into {INTEGRATION}")
    message = git(project, "log", "-1", "--format=%s|%an", f"{INTEGRATION}-T-01")
    assert message.strip() == "T-01: Task T-01 (attempt 1)|orchestrator"  # names the task; fallback identity
    assert on(project, INTEGRATION, "a.txt") == "a\nfrom T-01\n"
    assert on(project, INTEGRATION, "b.txt") == "b\nfrom T-02\n"
    assert on(project, INTEGRATION, "seen.txt") == "a\nfrom T-01\nb\nfrom T-02\n"
    assert checkout(project) == before  # the person's files, index, HEAD and branch: untouched
    assert result.finished()["integration_branch"] == INTEGRATION  # (QA pass 3: the run never said where)
    line = describe(result.finished())
    assert line is not None and line.endswith(
        f"; the work is on branch {INTEGRATION}: `orchestrator merge` brings it into yours"
    )

    merged = cli(project, "merge", "--json")
    assert merged.code == 0, merged.stderr
    assert json.loads(merged.stdout)["how"] == "fast-forward"
    assert (project / "seen.txt").read_text() == "a\nfrom T-01\nb\nfrom T-02\n"
    assert git(project, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    again = cli(project, "run", "--json")
    assert again.code == 0 and "0 to run" not in again.stderr  # everything is done: nothing reruns
    assert json.loads(again.stdout.splitlines()[0])["to_run"] == 0


def conflicting(project: Path, **settings: Any) -> None:
    """T-01 and T-02 change the same line; T-02 ends once T-01 is merged (so the order is fixed);
    T-03 builds on T-02."""
    wait = f"until git log --format=%s {INTEGRATION} | grep -q 'merge T-01'; do sleep 0.05; done"
    plan(
        project,
        [
            Spec("T-01", "sed -i 's/two/two by T-01/' a.txt"),
            Spec("T-02", f"sed -i 's/two/two by T-02/' a.txt\n{wait}"),
            Spec("T-03", "cat a.txt", deps=("T-02",)),
        ],
        **settings,
    )


def test_tasks_editing_the_same_lines_get_a_resolution_task_never_an_overwrite(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    conflicting(project, retries=2, backoff_base=0.01)
    before = checkout(project)
    first = run(project)
    assert first.code == 1, first.stdout + first.stderr
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01\n"  # T-02's line did not overwrite it
    assert on(project, f"{INTEGRATION}-T-02", "a.txt") == "one\ntwo by T-02\n"  # nor was it lost
    found = results(project)
    assert found["T-02"]["status"] == "completed"
    assert found["T-02"]["merge"] == "conflict in a.txt: resolved by T-02-merge"
    text = (project / ".orchestrator/master_plan.md").read_text()
    assert "| T-02-merge | Merge T-02 |" in text
    assert "| T-03 | Task T-03 | Run the T-03 script | T-02, T-02-merge |" in text  # T-03 waits for it
    brief = next(p for p in (project / ".orchestrator/agent_tasks").iterdir() if "task: T-02-merge\n" in p.read_text())
    hunks = brief.read_text()
    assert "<<<<<<< HEAD" in hunks and "two by T-01" in hunks and "two by T-02" in hunks and ">>>>>>>" in hunks
    # A shell plan has no agent to resolve it: the task waits for a person, T-03 for it.
    assert found["T-02-merge"]["status"] == "failed" and found["T-03"]["status"] == "skipped"
    # Nothing changes between its attempts until a person resolves it: it is not retried (issue 78).
    assert found["T-02-merge"]["attempts"] == 1 and found["T-02"]["attempts"] == 1, found["T-02-merge"]
    listed = json.loads(cli_in_process(project, "worktrees", "--json").stdout)["worktrees"]
    assert {w["task"]: w["state"] for w in listed}["T-02-merge"] == "conflicted"

    resolution = project / ".orchestrator/worktrees/T-02-merge"
    (resolution / "a.txt").write_text("one\ntwo by T-01 and T-02\n", encoding="utf-8")
    second = run(project)
    assert second.code == 0, second.stdout + second.stderr
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01 and T-02\n"
    assert "two by T-01 and T-02" in (project / ".orchestrator/results/agent-03-result.md").read_text()
    assert checkout(project) == before


def test_on_conflict_fail_fails_the_task_and_keeps_everything(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    conflicting(project, on_conflict="fail")
    result = run(project)
    assert result.code == 1
    found = results(project)
    assert found["T-02"]["status"] == "failed" and found["T-02"]["error_class"] == "conflict"
    assert "conflicts with orchestrator/integration in a.txt" in found["T-02"]["reason"]
    assert found["T-03"]["status"] == "skipped"
    assert "T-02-merge" not in (project / ".orchestrator/master_plan.md").read_text()
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01\n"
    assert on(project, f"{INTEGRATION}-T-02", "a.txt") == "one\ntwo by T-02\n"  # its work, committed, kept
    assert (project / ".orchestrator/worktrees/T-02/a.txt").read_text() == "one\ntwo by T-02\n"
    listed = json.loads(cli_in_process(project, "worktrees", "--json").stdout)["worktrees"]
    assert {w["task"]: w["state"] for w in listed} == {None: "clean", "T-01": "merged", "T-02": "conflicted"}


def test_a_failing_verify_undoes_the_merge_and_fails_the_task_with_its_output(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    verify = "if test -e bad.txt; then echo 'verify found bad.txt'; exit 3; fi"
    specs = [Spec("T-01", "echo good > good.txt"), Spec("T-02", "echo bad > bad.txt", deps=("T-01",))]
    plan(project, specs, verify=verify)
    result = run(project)
    assert result.code == 1
    found = results(project)
    assert found["T-01"]["status"] == "completed"
    assert found["T-02"]["status"] == "failed" and found["T-02"]["error_class"] == "verify"
    assert "verify found bad.txt" in found["T-02"]["reason"] and "exit code 3" in found["T-02"]["reason"]
    assert on(project, INTEGRATION, "good.txt") == "good\n"
    assert on(project, INTEGRATION, "bad.txt") is None  # the merge was undone
    assert on(project, f"{INTEGRATION}-T-02", "bad.txt") == "bad\n"  # the work was not
    assert "merge T-02" not in git(project, "log", "--format=%s", INTEGRATION)
    # QA: `logs` showed neither of verify's logs (its output was in the result's reason only)
    shown = cli_in_process(project, "logs", "T-02")
    assert (
        shown.code == 0
        and "── verify stdout: .orchestrator/logs/agent-02.attempt-1.verify.out\nverify found bad.txt" in (shown.stdout)
    ), shown.stdout


def test_a_kill_9_mid_task_loses_nothing_and_the_next_run_goes_on_in_the_same_worktree(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    flag = tmp_path / "started"
    script = f"""
if [ -e part1.txt ]; then echo resumed > resumed.txt
else echo "half done" > part1.txt; touch {flag}; echo $$ > {tmp_path}/task.pid; sleep 60
fi
"""
    plan(project, [Spec("T-01", script)])
    runner = start(project)
    try:
        wait_until(flag.exists, "the task to start its work")
        tree = project / ".orchestrator/worktrees/T-01"
        runner.kill(signal.SIGKILL)
    finally:
        runner.cleanup()
        pid = int((tmp_path / "task.pid").read_text())
        kill_leftovers(project, [pid])
    assert (tree / "part1.txt").read_text() == "half done\n"  # uncommitted, and kept
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    assert (tree / "resumed.txt").exists()  # the same worktree: it found its own half-done work
    log = git(project, "log", "--format=%s", f"{INTEGRATION}-T-01")
    assert "T-01: work left by an interrupted attempt" in log
    assert on(project, INTEGRATION, "part1.txt") == "half done\n"
    assert on(project, INTEGRATION, "resumed.txt") == "resumed\n"


def test_a_merge_whose_verify_a_kill_9_cut_short_is_verified_by_the_next_run(tmp_path: Path) -> None:
    """The runner killed while ``verify`` checked a merge: the merge stays on the integration
    branch, but its task has no result, so the next run runs it again in its worktree and lands
    it again, and ``verify`` runs on what is then merged: no merge counts as done unverified."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    flag = tmp_path / "verifying"
    hold = (
        f"if [ ! -e {tmp_path}/verified-once ]; then touch {flag}; sleep 60; fi; echo checked >> {tmp_path}/verify.log"
    )
    plan(project, [Spec("T-01", "echo new > new.txt")], verify=hold)
    runner = start(project)
    try:
        wait_until(flag.exists, "verify to start")
        runner.kill(signal.SIGKILL)
    finally:
        runner.cleanup()
    assert on(project, INTEGRATION, "new.txt") == "new\n"  # merged, not verified
    (tmp_path / "verified-once").touch()
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    assert (tmp_path / "verify.log").read_text() == "checked\n"  # verified this time
    found = results(project)["T-01"]
    assert found["status"] == "completed" and found["merge"].startswith(f"merged into {INTEGRATION}")
    assert on(project, INTEGRATION, "new.txt") == "new\n"


def test_prune_removes_only_merged_clean_worktrees(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "echo one > one.txt"), Spec("T-02", "echo two > two.txt")])
    assert run(project).code == 0
    dirty = project / ".orchestrator/worktrees/T-01"
    (dirty / "notes.txt").write_text("work nobody committed\n", encoding="utf-8")
    listed = json.loads(cli_in_process(project, "worktrees", "--json").stdout)["worktrees"]
    assert {w["task"]: w["state"] for w in listed} == {None: "clean", "T-01": "dirty", "T-02": "merged"}
    assert all(w["bytes"] > 0 for w in listed)
    pruned = cli(project, "worktrees", "prune", "--json")
    assert pruned.code == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert [t["task"] for t in report["removed"]] == ["T-02"] and report["freed_bytes"] > 0
    waits = "1 task worktree kept, whose work merges into it"
    assert report["kept"] == [
        {"task": None, "branch": INTEGRATION, "state": "clean", "why": waits},
        {"task": "T-01", "branch": f"{INTEGRATION}-T-01", "state": "dirty", "why": "dirty: uncommitted changes"},
    ]
    assert (dirty / "notes.txt").read_text() == "work nobody committed\n"
    assert not (project / ".orchestrator/worktrees/T-02").exists()
    text = cli(project, "worktrees", "prune")
    assert text.code == 0 and "kept .orchestrator/worktrees/T-01: dirty" in text.stdout and "freed 0 B" in text.stdout


def test_a_task_added_mid_run_gets_its_own_worktree_and_is_merged(tmp_path: Path) -> None:
    """`orchestrator add` during an isolated run: the new task works in a worktree of its own,
    never in the person's checkout, and its work reaches the integration branch."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    go = tmp_path / "go"
    plan(project, [Spec("T-01", f"until [ -e {go} ]; do sleep 0.05; done; echo 'from T-01' >> a.txt")])
    before = checkout(project)
    runner = start(project)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in runner.events()), "T-01 to start")
        added = cli(project, "add", "--json", "Note", "--after", "T-01", "--command", "pwd > where.txt")
        assert added.code == 0, added.stderr
        assert json.loads(added.stdout)["taken"] is True
        go.touch()
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.cleanup()
        go.touch()
    assert not (project / "where.txt").exists()  # not in the person's checkout
    where = on(project, INTEGRATION, "where.txt")
    assert where is not None and where.strip().endswith(".orchestrator/worktrees/T-02")
    assert on(project, INTEGRATION, "a.txt") == "a\nfrom T-01\n"
    assert checkout(project)[:3] == before[:3]  # HEAD, branch and index (runner.out is the test's)


def test_verify_runs_at_the_project_directorys_place_in_the_integration_worktree(tmp_path: Path) -> None:
    """As the docs say: a project in a subdirectory of its repository verifies in that
    subdirectory of the integration worktree (its own paths work there), and not at ``cwd``,
    where its tasks run."""
    repo = repository(tmp_path, {"top.txt": "t\n"})
    project = repo / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "sub" / "keep.txt").write_text("k\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "proj")
    verify = f"pwd > {tmp_path}/verified-in"
    plan(project, [Spec("T-01", f"pwd > {tmp_path}/ran-in; echo x > x.txt")], cwd="sub", verify=verify)
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    worktrees = (project / ".orchestrator/worktrees").resolve()
    assert Path((tmp_path / "ran-in").read_text().strip()) == worktrees / "T-01/proj/sub"
    assert Path((tmp_path / "verified-in").read_text().strip()) == worktrees / ".integration/proj"
    assert on(repo, INTEGRATION, "proj/sub/x.txt") == "x\n"


AGENT_GIT = "git -c user.name=Agent -c user.email=agent@example.org"  # a task's own commits


def test_a_task_that_switches_branch_or_detaches_head_has_that_work_merged(tmp_path: Path) -> None:
    """T-01 commits on a branch of its own making, then leaves a file uncommitted; T-02 commits on
    a detached HEAD. Both build on their task branch: the branch is fast-forwarded to what the task
    left, and that is what is committed, recorded and merged (the tool once committed on the
    agent's branch, recorded that commit, and merged the task branch, which had not moved:
    "nothing to merge", and T-03 found nothing). The agent's own branch stays where it left it."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    feature = (
        f"git switch -q -c my-feature\necho precious > x.txt\ngit add x.txt\n{AGENT_GIT} commit -qm 'feature work'\n"
        "echo more > y.txt"
    )
    detached = f"git checkout -q --detach\necho d > d.txt\ngit add d.txt\n{AGENT_GIT} commit -qm detached"
    plan(
        project,
        [
            Spec("T-01", feature),
            Spec("T-02", detached),
            Spec("T-03", "cat x.txt y.txt d.txt > seen.txt", deps=("T-01", "T-02")),
        ],
    )
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    assert on(project, INTEGRATION, "seen.txt") == "precious\nmore\nd\n"
    found = results(project)
    for task in ("T-01", "T-02"):
        branch = f"{INTEGRATION}-{task}"
        assert found[task]["commit"] == git(project, "rev-parse", branch).strip()  # the tip of what was merged
        assert found[task]["merge"].startswith(f"merged into {INTEGRATION}")
        tree = project / ".orchestrator/worktrees" / task
        assert git(tree, "symbolic-ref", "HEAD").strip() == f"refs/heads/{branch}"  # back on its branch
    assert "x.txt" in found["T-01"]["diffstat"] and "y.txt" in found["T-01"]["diffstat"]
    assert git(project, "log", "--format=%s", "my-feature").splitlines() == ["feature work", "start"]  # kept as left
    assert git(project, "log", "-1", "--format=%s", f"{INTEGRATION}-T-02").strip() == "detached"


def test_a_task_that_leaves_work_its_branch_cannot_take_fails_and_keeps_all_of_it(tmp_path: Path) -> None:
    """T-01 commits on its branch, then switches to a branch made from before that commit and
    commits there, and leaves a file uncommitted: no fast-forward brings that onto its branch.
    The task fails with one line saying what it found and what to do; nothing is merged or
    moved, nothing is committed on the agent's branch, and the next run refuses to start it until
    a person has followed that advice, after which its work is merged."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    script = (
        "if [ -e s.txt ]; then exit 0; fi\n"
        f"echo mine > m.txt\ngit add m.txt\n{AGENT_GIT} commit -qm mine\n"
        f"git switch -q -c side HEAD~1\necho s > s.txt\ngit add s.txt\n{AGENT_GIT} commit -qm side\n"
        "echo left > left.txt"
    )
    plan(project, [Spec("T-01", script), Spec("T-02", "cat m.txt s.txt", deps=("T-01",))])
    branch, tree = f"{INTEGRATION}-T-01", project / ".orchestrator/worktrees/T-01"
    first = run(project)
    assert first.code == 1, first.stdout + first.stderr
    found = results(project)
    assert found["T-01"]["status"] == "failed" and found["T-01"]["error_class"] == "conflict"
    side = git(project, "rev-parse", "side").strip()
    reason = found["T-01"]["reason"]
    assert "\n" not in reason and reason.startswith("its worktree ") and "T-01 is on branch side (" in reason
    assert reason.endswith(
        f", not on its branch {branch}, and that does not build on it: nothing of it was merged, and all of it is kept"
        f" there — bring that work onto {branch} (git switch {branch}, then git merge side), then run again"
    ), reason
    assert side[:12] in reason
    assert found["T-01"]["commit"] == git(project, "rev-parse", branch).strip()  # its branch's tip, never side's
    assert found["T-02"]["status"] == "skipped"
    assert on(project, INTEGRATION, "m.txt") is None and on(project, INTEGRATION, "s.txt") is None
    assert git(project, "log", "--format=%s", "side").splitlines() == ["side", "start"]  # nothing added to it
    assert git(tree, "status", "--porcelain").strip() == "?? left.txt"  # left as it was
    again = run(project)  # refused to start, again with nothing moved
    assert again.code == 1
    assert "not on its branch" in results(project)["T-01"]["reason"]
    assert git(project, "rev-parse", "side").strip() == side and (tree / "left.txt").read_text() == "left\n"

    git(tree, "switch", "-q", branch)  # the advice, followed
    git(tree, "merge", "-q", "--no-edit", "side")
    done = run(project)
    assert done.code == 0, done.stdout + done.stderr
    for name, text in (("m.txt", "mine\n"), ("s.txt", "s\n"), ("left.txt", "left\n")):
        assert on(project, INTEGRATION, name) == text


def test_a_running_task_or_a_failed_one_that_changed_nothing_is_empty_never_merged(tmp_path: Path) -> None:
    """`worktrees` read a task branch that is an ancestor of the integration branch as merged: a
    task still running with nothing committed yet, or one that failed having changed nothing,
    was called merged though it never was. They are `empty`; `prune` takes them (no work is
    there), and keeps a failed task's branch that holds work."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    go = tmp_path / "go"
    plan(
        project,
        [
            Spec("T-01", "echo one > one.txt"),
            Spec("T-02", f"until [ -e {go} ]; do sleep 0.05; done; echo two > two.txt"),
            Spec("T-03", "exit 5"),
            Spec("T-04", "echo partial > partial.txt; exit 5"),
        ],
    )

    def states() -> dict[str | None, str]:
        listed = cli_in_process(project, "worktrees", "--json")
        assert listed.code == 0, listed.stderr
        return {w["task"]: w["state"] for w in json.loads(listed.stdout)["worktrees"]}

    runner = start(project)
    try:
        ended = {"task_completed", "task_failed"}
        wait_until(lambda: sum(e["event"] in ended for e in runner.events()) == 3, "T-01, T-03 and T-04 to end")
        during = {None: "clean", "T-01": "merged", "T-02": "empty", "T-03": "empty", "T-04": "clean"}
        wait_until(lambda: states() == during, "T-01's merge")  # (its merge may follow its event by a moment)
        go.touch()
        assert runner.wait() == 1, runner.stderr.read_text()
    finally:
        runner.cleanup()
        go.touch()
    assert states() == {None: "clean", "T-01": "merged", "T-02": "merged", "T-03": "empty", "T-04": "clean"}
    text = cli_in_process(project, "worktrees")
    assert any(line.split()[:3] == ["T-03", f"{INTEGRATION}-T-03", "empty"] for line in text.stdout.splitlines())
    pruned = cli(project, "worktrees", "prune", "--json")
    assert pruned.code == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert [t["task"] for t in report["removed"]] == ["T-01", "T-02", "T-03"]
    assert [(k["task"], k["state"]) for k in report["kept"]] == [(None, "clean"), ("T-04", "clean")]
    assert on(project, f"{INTEGRATION}-T-04", "partial.txt") == "partial\n"  # the failed task's work, kept
    assert git(project, "branch", "--list", f"{INTEGRATION}-T-03").strip() == ""  # an empty branch: no work lost


def test_prune_after_a_runner_died_keeps_the_worktree_its_open_attempt_still_works_in(tmp_path: Path) -> None:
    """The runner killed, its task still at work: the lock is free, so `prune` ran, found the
    worktree empty (nothing committed yet) and removed it, and the task's later writes failed.
    A task the journal shows with an attempt open keeps its worktree, and the integration
    branch's, and prune says why."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    go, wrote = tmp_path / "go", tmp_path / "wrote"
    script = f"until [ -e {go} ]; do sleep 0.05; done; echo work > w.txt && touch {wrote}"
    plan(project, [Spec("T-01", f"touch {tmp_path}/started; {script}")])
    runner = start(project)
    try:
        wait_until((tmp_path / "started").exists, "the task to start")
        runner.kill(signal.SIGKILL)
        pruned = cli(project, "worktrees", "prune", "--json")
        assert pruned.code == 0, pruned.stderr
        report = json.loads(pruned.stdout)
        why = "T-01 has an attempt still open (its runner died: `orchestrator run` settles it)"
        assert report["removed"] == []
        assert [(k["task"], k["why"]) for k in report["kept"]] == [(None, why), ("T-01", why)]
        text = cli(project, "worktrees", "prune")
        assert f"kept .orchestrator/worktrees/T-01: {why}" in text.stdout.splitlines()
        go.touch()
        wait_until(wrote.exists, "the orphaned task to write its work")
        assert (project / ".orchestrator/worktrees/T-01/w.txt").read_text() == "work\n"
    finally:
        go.touch()
        runner.stop_all()


def test_files_a_task_writes_that_git_ignores_are_told_and_keep_its_worktree(tmp_path: Path) -> None:
    """A task's output in paths the repository's .gitignore ignores was in no commit, named
    nowhere, its worktree read as merged, and `prune` deleted it. They are still never committed
    (build outputs would bloat every branch), but the run and the result tell of them, the
    worktree's state is `ignored`, and `prune` keeps it, saying why."""
    project = repository(tmp_path, {".gitignore": "out/\n*.log\n", "a.txt": "a\n"})
    script = 'mkdir -p out; echo "expensive report" > out/report.md; echo notes > build.log; echo src > src.txt'
    plan(project, [Spec("T-01", script), Spec("T-02", "echo two > two.txt")])
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    note = "left 2 files git ignores (build.log, out/report.md), not merged — they stay in .orchestrator/worktrees/T-01"
    found = results(project)
    assert found["T-01"]["merge"].endswith(f"; {note}") and found["T-01"]["reason"] == note
    assert "ignores" not in found["T-02"]["merge"] and found["T-02"].get("reason") is None
    completed = [e for e in result.events if e["event"] == "task_completed" and e["task"] == "T-01"]
    assert completed[0]["warning"] == note  # the run tells it as the task completes
    assert on(project, INTEGRATION, "src.txt") == "src\n" and on(project, INTEGRATION, "out/report.md") is None
    listed = json.loads(cli_in_process(project, "worktrees", "--json").stdout)["worktrees"]
    assert {w["task"]: w["state"] for w in listed} == {None: "clean", "T-01": "ignored", "T-02": "merged"}
    pruned = cli(project, "worktrees", "prune")
    assert pruned.code == 0, pruned.stderr
    tree = project / ".orchestrator/worktrees/T-01"
    assert (
        f"kept .orchestrator/worktrees/T-01: ignored: 2 files git ignores (build.log, out/report.md), never committed "
        f"nor merged — take what you need, then remove it yourself (git worktree remove --force {tree})"
    ) in pruned.stdout.splitlines()
    assert "removed .orchestrator/worktrees/T-02" in pruned.stdout
    assert (tree / "out/report.md").read_text() == "expensive report\n" and (tree / "build.log").exists()


def test_prune_keeps_the_integration_worktree_until_its_work_is_merged_into_your_branch(tmp_path: Path) -> None:
    """`prune` removed the integration worktree while its branch held work not merged into the
    person's branch: that freed the branch for another workspace of the repository (validate and
    run refuse a branch checked out in another workspace's integration worktree), whose `merge`
    would then bring the first one's work along. It stays until `orchestrator merge` took it."""
    repo = repository(tmp_path, {"top.txt": "t\n"})
    for name in ("a", "b"):
        (repo / name).mkdir()
        (repo / name / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two projects")
    first, second = repo / "a", repo / "b"
    block_plan(first, [Spec("T-01", "echo one > one.txt")])
    block_plan(second, [Spec("T-01", "echo two > two.txt")])
    assert run(first).code == 0
    pruned = cli(first, "worktrees", "prune", "--json")
    assert pruned.code == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert [t["task"] for t in report["removed"]] == ["T-01"]
    why = f"{INTEGRATION} has work not merged into main — `orchestrator merge` brings it"
    assert report["kept"] == [{"task": None, "branch": INTEGRATION, "state": "clean", "why": why}]
    assert f"kept the integration worktree: {why}" in cli(first, "worktrees", "prune").stdout.splitlines()
    assert cli_in_process(second, "validate").code == 2  # the guard holds: the branch is still this workspace's
    assert cli(first, "merge").code == 0
    pruned = cli(first, "worktrees", "prune", "--json")
    assert [t["task"] for t in json.loads(pruned.stdout)["removed"]] == [None]  # all merged: it goes now
    assert not (first / ".orchestrator/worktrees/.integration").exists()
    assert git(repo, "rev-parse", "--verify", "-q", INTEGRATION).strip()  # the branch itself stays


GUIDE = "# Resolving conflicts\n\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n"


def test_a_file_a_task_writes_with_marker_lines_merges_and_a_resolution_left_with_them_does_not(
    tmp_path: Path,
) -> None:
    """Conflict markers are looked for only where a merge into the branch left a conflict: a guide
    to git that T-01 writes merges (it failed, and could never complete); T-02-merge's resolution
    committed with a.txt's markers left is refused, naming a.txt alone (guide.md is on its branch too)."""
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    merged = f"git log --format=%s {INTEGRATION} | grep -q 'merge T-01'"
    wait = f"for _ in $(seq 200); do {merged} && break; sleep 0.05; done"  # (T-01 failing: not forever)
    guide = GUIDE.replace("\n", "\\n")
    plan(
        project,
        [
            Spec("T-01", f"sed -i 's/two/two by T-01/' a.txt\nprintf '{guide}' > guide.md"),
            Spec("T-02", f"sed -i 's/two/two by T-02/' a.txt\n{wait}"),
        ],
    )
    first = run(project)
    found = results(project)
    assert found["T-01"]["status"] == "completed", found["T-01"].get("reason")
    assert on(project, INTEGRATION, "guide.md") == GUIDE
    assert found["T-02"]["merge"] == "conflict in a.txt: resolved by T-02-merge"
    assert first.finished()["integration_branch"] == INTEGRATION

    # The resolution committed by hand with a.txt's markers still in it, its script made to pass.
    resolution = project / ".orchestrator/worktrees/T-02-merge"
    assert "<<<<<<<" in (resolution / "a.txt").read_text()
    git(resolution, "commit", "-q", "-am", "resolved (not really)")
    plan_file = project / ".orchestrator/master_plan.md"
    text = plan_file.read_text()
    head, _, details = text.partition("### T-02-merge")
    script = details[details.index("```bash") : details.index("```\n", details.index("```bash") + 7) + 4]
    plan_file.write_text(head + "### T-02-merge" + details.replace(script, "```bash\ntrue\n```\n"))
    second = run(project)
    assert second.code == 1, second.stdout + second.stderr
    refused = results(project)["T-02-merge"]
    assert refused["status"] == "failed" and refused["error_class"] == "conflict"
    assert "conflict markers are left in a.txt:" in refused["reason"] and "guide.md" not in refused["reason"]
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01\n"  # nothing of it merged
    assert second.finished()["integration_branch"] is None


def test_a_run_that_merged_nothing_does_not_send_you_to_the_integration_branch(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "echo more >> a.txt\nexit 1")], retries=0)
    result = run(project)
    assert result.code == 1, result.stdout + result.stderr
    assert results(project)["T-01"]["status"] == "failed"
    assert git(project, "rev-parse", INTEGRATION) == git(project, "rev-parse", "main")  # nothing on it
    assert result.finished()["integration_branch"] is None
    line = describe(result.finished())
    assert line is not None and "1 failed" in line and "the work is on branch" not in line


def test_a_failed_tasks_branch_that_only_took_in_the_integration_branch_is_empty(tmp_path: Path) -> None:
    """CI: a task whose attempt began after the integration branch moved gets that branch merged
    into its own first; failing with no change of its own, it read `clean` (unmerged work), and
    prune kept it. Nothing of its own is `empty`, whatever it took in."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    flag = tmp_path / "flag"
    plan(project, [Spec("T-01", f"[ -e {flag} ] && echo one > one.txt"), Spec("T-03", "exit 5")])
    assert run(project).code == 1  # both fail, changing nothing
    flag.touch()
    assert run(project, "--only", "T-01").code == 0  # the integration branch moves
    assert run(project).code == 1  # T-03 again: the integration branch is merged into its own first
    assert on(project, f"{INTEGRATION}-T-03", "one.txt") == "one\n"  # (it took it in)
    listed = cli_in_process(project, "worktrees", "--json")
    states = {w["task"]: w["state"] for w in json.loads(listed.stdout)["worktrees"]}
    assert states["T-03"] == "empty", states


def test_a_task_in_its_worktree_reads_its_upstream_bodies_from_the_workspace(tmp_path: Path) -> None:
    """The files naming an attempt's inputs are the workspace's, by absolute path: a task in its
    own worktree reads its upstream's output alone as any other task does."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(
        project,
        [
            Spec("T-01", "echo 'from T-01'"),
            Spec("T-02", 'cat "$ORCHESTRATOR_INPUTS_DIR/T-01.md"\nwc -l < "$ORCHESTRATOR_INPUTS_FILE"', deps=("T-01",)),
        ],
    )
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    body = (project / ".orchestrator/results/agent-02-result.md").read_text(encoding="utf-8").split("---\n")[-1]
    assert body.split() == ["from", "T-01", "1"]


def test_on_conflict_fail_advice_followed_to_the_letter_keeps_both_sides(tmp_path: Path) -> None:
    """The whole flow of ``on_conflict: fail``: the task fails with what to do; a run before it is
    done says so again and runs nothing; the person does exactly what it says, with git; the next
    run merges the branch without running the task again (T-02's script writes the whole file: run
    again on the resolution, it would write T-01's line away), its dependent sees both sides, and
    ``orchestrator merge`` brings both into the person's branch."""
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    wait = f"until git log --format=%s {INTEGRATION} | grep -q 'merge T-01'; do sleep 0.05; done"
    plan(
        project,
        [
            Spec("T-01", "sed -i 's/two/two by T-01/' a.txt"),
            Spec("T-02", f"printf 'one\\ntwo by T-02\\n' > a.txt\necho T-02 ran >> ran.log\necho said by T-02\n{wait}"),
            Spec("T-03", "cat a.txt", deps=("T-02",)),
        ],
        on_conflict="fail",
    )
    first = run(project, "--json")
    assert first.code == 1, first.stdout + first.stderr
    failed = results(project)["T-02"]
    worktree = project / ".orchestrator/worktrees/T-02"
    said = failed["reason"]
    assert f"conflicts with {INTEGRATION} in a.txt" in said
    assert f"in {worktree}, run `git merge {INTEGRATION}`, resolve those files, `git add` them and `git commit`" in said
    assert "then `orchestrator run` merges it, both sides kept, without running T-02 again" in said
    assert said in cli_in_process(project, "status").stdout.replace("\n", "")  # (the table's reason: the same words)
    assert f"── not merged: {said}\n" in cli_in_process(project, "logs", "T-02").stdout  # where `next:` sends you
    assert "T-02" in cli_in_process(project, "check").stdout

    # Run again before doing it: nothing runs, it stays failed as it was, and says so again.
    early = run(project, "--json")
    assert early.code == 1, early.stdout + early.stderr
    assert results(project)["T-02"] == failed
    told = [e for e in early.events if e.get("event") == "task_failed" and e.get("task") == "T-02"]
    assert told and f"still conflicts with {INTEGRATION} in a.txt" in told[0]["reason"]
    assert (worktree / "ran.log").read_text() == "T-02 ran\n"

    # To the letter: in the worktree, git merge, resolve the file, git add, git commit (first
    # committed as git left it, by mistake: that is said, and nothing runs or merges).
    assert git(worktree, "merge", INTEGRATION, check=False) is not None
    assert "<<<<<<<" in (worktree / "a.txt").read_text()
    midway = run(project, "--json")  # (the merge not committed yet: said, and left as it is)
    told = [e for e in midway.events if e.get("event") == "task_failed" and e.get("task") == "T-02"]
    assert told and f"the resolution in {worktree} is not committed yet" in told[0]["reason"]
    assert "<<<<<<<" in (worktree / "a.txt").read_text() and results(project)["T-02"] == failed
    git(worktree, "add", "a.txt")
    git(worktree, "commit", "-q", "--no-edit")
    marked = run(project, "--json")
    assert marked.code == 1 and results(project)["T-02"] == failed, marked.stdout + marked.stderr
    told = [e for e in marked.events if e.get("event") == "task_failed" and e.get("task") == "T-02"]
    assert told and "conflict markers are left in a.txt:2" in told[0]["reason"]
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01\n"
    (worktree / "a.txt").write_text("one\ntwo by T-01 and by T-02\n", encoding="utf-8")
    git(worktree, "commit", "-q", "-am", "the marker line out")

    second = run(project, "--json")
    assert second.code == 0, second.stdout + second.stderr
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01 and by T-02\n"  # both sides, nothing lost
    assert (worktree / "ran.log").read_text() == "T-02 ran\n"  # not run again
    found = results(project)
    assert found["T-02"]["status"] == "completed"
    assert found["T-02"]["merge"].startswith(f"merged into {INTEGRATION}")
    assert "not run again" in found["T-02"]["reason"]
    assert "said by T-02" in (project / ".orchestrator/results/agent-02-result.md").read_text()  # its output kept
    assert "two by T-01 and by T-02" in (project / ".orchestrator/results/agent-03-result.md").read_text()

    # orchestrator merge, on a scratch branch: both sides in the person's branch too.
    git(project, "switch", "-q", "-c", "scratch")
    merged = cli(project, "merge", "--json")
    assert merged.code == 0, merged.stdout + merged.stderr
    assert (project / "a.txt").read_text() == "one\ntwo by T-01 and by T-02\n"


def test_a_waiting_tasks_row_naming_a_task_the_run_did_not_take_is_refused_in_one_line(tmp_path: Path) -> None:
    """A run that started with no worktree does not take a row added with ``Isolation: worktree``;
    a waiting task's row edited to depend on it names a task the run does not have: one notice,
    and the task runs as its row was (after T-01 alone)."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    write_plan(
        project, [Spec("T-01", "while [ ! -f go ]; do sleep 0.05; done"), Spec("T-02", "echo two", deps=["T-01"])]
    )
    plan_file = project / ".orchestrator/master_plan.md"
    runner = start(project)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in runner.events()), "T-01 to start")
        text = plan_file.read_text(encoding="utf-8").replace("| Priority |\n|", "| Priority | Isolation |\n|---|")
        text = text.replace("| None | P2 |", "| None | P2 | |").replace("| T-01 | P2 |", "| T-01, T-04 | P2 | |")
        row = "| T-04 | Elsewhere | Run the T-04 script | None | P2 | worktree |\n"
        text = text.replace("\n\n## Task Details", f"\n{row}\n## Task Details").replace(
            "## Task Details\n", "## Task Details\n\n### T-04 Elsewhere\n```bash\necho four\n```\n", 1
        )
        plan_file.write_text(text, encoding="utf-8")
        wait_until(lambda: sum(e["event"] == "notice" for e in runner.events()) == 2, "the two notices")
        (project / "go").touch()
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        (project / "go").touch()
        runner.cleanup()
    told = [e["message"] for e in runner.events() if e["event"] == "notice"]
    assert told == [
        "T-04 runs in a git worktree, and this run started with none: it runs in the next run",
        "T-02's row changed in .orchestrator/master_plan.md, and this run keeps it as it was: it names T-04, a task "
        "this run does not have — it runs in the next run",
    ]
    assert not [e for e in runner.events() if e["event"] == "task_changed"]
    assert results(project)["T-02"]["status"] == "completed"


def test_a_failed_task_whose_branch_conflicts_when_it_runs_again_says_what_to_do_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """T-02 failed; T-01, merged since, changed the same line: T-02's next attempt cannot bring the
    integration branch into its worktree, and says what to do. Done to the letter (with git), the
    run after that runs T-02 on the resolution, and both sides reach the integration branch."""
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    wait = f"until git log --format=%s {INTEGRATION} | grep -q 'merge T-01'; do sleep 0.05; done"
    plan(
        project,
        [
            Spec("T-01", "sed -i 's/^two$/two by T-01/' a.txt"),
            Spec("T-02", f"sed -i 's/^two$/two by T-02/' a.txt\n{wait}\ntest -f {tmp_path}/ok"),
        ],
    )
    assert run(project).code == 1
    assert results(project)["T-02"]["error_class"] == "exit"
    (tmp_path / "ok").touch()
    second = run(project)
    assert second.code == 1, second.stdout + second.stderr
    worktree = project / ".orchestrator/worktrees/T-02"
    said = results(project)["T-02"]["reason"]
    assert f"conflicts with {INTEGRATION} in a.txt — resolve it in {worktree} (`git merge {INTEGRATION}`, " in said
    assert "resolve those files, `git add` them and `git commit`), then run again" in said
    git(worktree, "merge", INTEGRATION, check=False)
    (worktree / "a.txt").write_text("one\ntwo by T-01 and by T-02\n", encoding="utf-8")
    git(worktree, "add", "a.txt")
    git(worktree, "commit", "-q", "--no-edit")
    third = run(project)
    assert third.code == 0, third.stdout + third.stderr
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by T-01 and by T-02\n"


def test_a_failed_task_whose_branch_took_the_integration_branch_in_is_empty_and_prune_deletes_its_branch(
    tmp_path: Path,
) -> None:
    """A task whose worktree is made while an upstream's merge moves the integration branch takes
    it in with a merge commit of its own before its attempt (`Trees.open`): a CI run under load saw
    such a failed task, which changed nothing, listed `empty` and reported removed by `prune`,
    while its branch stayed. An empty branch holds no work: it goes with its worktree."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "exit 5")])
    assert run(project).code == 1
    tree = project / ".orchestrator" / "worktrees" / "T-01"
    integration = project / ".orchestrator" / "worktrees" / ".integration"
    assert tree.is_dir() and integration.is_dir(), sorted(p.name for p in tree.parent.iterdir())
    (integration / "b.txt").write_text("b\n", encoding="utf-8")  # the integration branch moves on
    git(integration, "add", "b.txt")
    git(integration, "commit", "-q", "-m", "an upstream's merge")
    git(tree, "merge", "--no-ff", "--no-edit", "-q", INTEGRATION)  # as `open` takes it in
    assert git(project, "merge-base", "--is-ancestor", f"{INTEGRATION}-T-01", INTEGRATION, check=False) == ""
    listed = cli_in_process(project, "worktrees", "--json")
    assert {w["task"]: w["state"] for w in json.loads(listed.stdout)["worktrees"]}["T-01"] == "empty"
    pruned = cli(project, "worktrees", "prune", "--json")
    assert pruned.code == 0, pruned.stderr
    assert [t["task"] for t in json.loads(pruned.stdout)["removed"]] == ["T-01"]
    assert not tree.exists()
    assert git(project, "branch", "--list", f"{INTEGRATION}-T-01").strip() == ""
