"""``isolation: worktree``: what is checked before a run begins, and the refusals of the commands
around it: a directory outside a git repository or not committed yet, an integration branch
checked out elsewhere or conflicting with your HEAD, two workspaces, a workspace git tracks, files
``merge`` would write over, a dirty checkout; and a plan without isolation, as before. (Tasks in
their worktrees, the merge queue and conflicts are test_worktrees.py's.)

Every test works on a real git repository in ``tmp_path`` and the real CLI as a subprocess, git
with no identity configured anywhere (``worktree_helpers.no_git_identity``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, results, run, write_plan
from worktree_helpers import (  # (no_git_identity: autouse, for every test here)
    INTEGRATION,
    block_plan,
    checkout,
    git,
    no_git_identity,  # noqa: F401
    on,
    plan,
    refused,
    repository,
)

from orchestrator.errors import GitError
from orchestrator.git.worktrees import Trees


def test_merge_refuses_a_dirty_working_tree_and_then_merges_as_asked(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "echo one > one.txt")])
    assert run(project).code == 0
    (project / "a.txt").write_text("my own edit\n", encoding="utf-8")
    head = git(project, "rev-parse", "HEAD")
    refused = cli(project, "merge")
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        f"{project}: your working tree has uncommitted changes (1 file: a.txt) — commit them, then run "
        "`orchestrator merge` again; nothing was changed"
    ]
    assert git(project, "rev-parse", "HEAD") == head and not (project / "one.txt").exists()
    assert (project / "a.txt").read_text() == "my own edit\n"
    git(project, "commit", "-qam", "mine")
    assert cli(project, "merge", "--ff-only").code == 2  # the branches parted: no fast-forward
    mine = git(project, "rev-parse", "HEAD").strip()
    branch = git(project, "symbolic-ref", "--short", "HEAD").strip()
    count = int(git(project, "rev-list", "--count", "HEAD..orchestrator/integration"))
    commits = f"{count} commit{'s' if count != 1 else ''}"
    # Before it moves a person's branch: which, from where, by how much; --dry-run only says so.
    dry = cli(project, "merge", "--dry-run")
    assert dry.code == 0 and git(project, "rev-parse", "HEAD").strip() == mine and not (project / "one.txt").exists()
    assert dry.stdout.splitlines() == [
        f"{branch} would move from {mine[:12]} by {commits} of orchestrator/integration (merge commit), in {project}",
        "nothing was changed (--dry-run)",
    ]
    done = cli(project, "merge", "--no-ff", "--json")
    assert done.code == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["how"], answer["before"], answer["commits"], answer["dry_run"]) == (
        "merge commit",
        mine,
        count,
        False,
    )
    assert (project / "one.txt").read_text() == "one\n" and (project / "a.txt").read_text() == "my own edit\n"
    assert git(project, "log", "-1", "--format=%P").count(" ") == 1  # a merge commit: two parents
    # The undo it prints puts the branch back where it was.
    git(project, "reset", "-q", "--hard", mine)
    said = cli(project, "merge").stdout.splitlines()
    assert said[0].startswith(f"{branch} moves from {mine[:12]} by {commits} of orchestrator/integration")
    undo = said[-1].split(": ", 1)[1]
    assert said[-1] == f"to undo it, on {branch} with nothing of yours added since: git reset --hard {mine}"
    subprocess.run(undo.split(), cwd=project, check=True, capture_output=True)
    assert git(project, "rev-parse", "HEAD").strip() == mine and not (project / "one.txt").exists()


def test_validate_outside_a_git_repository_is_one_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "plain"
    project.mkdir()
    plan(project, [Spec("T-01", "true")])
    result = cli_in_process(project, "validate")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(".orchestrator/master_plan.md:")
    assert "isolation: worktree needs a git repository" in lines[0]
    assert lines[1:] == ["1 problem; nothing was written."]
    row = write_plan(project, [Spec("T-01", "true")])  # an Isolation cell says the same, at its row
    row.write_text(
        row.read_text().replace("| Priority |", "| Priority | Isolation |").replace("|----------|", "|---|---|")
        .replace("| P2 |", "| P2 | worktree |"),
        encoding="utf-8",
    )  # fmt: skip
    cell = cli_in_process(project, "validate")
    assert cell.code == 2 and "T-01: isolation: worktree needs a git repository" in cell.stderr


def test_a_plan_without_isolation_runs_in_the_checkout_as_before(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    write_plan(project, [Spec("T-01", "echo here > here.txt")])
    result = run(project)
    assert result.code == 0 and result.finished()["integration_branch"] is None
    assert (project / "here.txt").read_text() == "here\n"
    assert not (project / ".orchestrator/worktrees").exists()
    assert "branch" not in results(project)["T-01"]
    assert os.path.exists(project / ".git")


def line_of(plan_file: Path, prefix: str) -> int:
    """The number of the first line of ``plan_file`` that starts with ``prefix``."""
    lines = plan_file.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if line.startswith(prefix))


def test_a_workspace_beside_the_code_need_not_be_committed_when_its_tasks_run_elsewhere(tmp_path: Path) -> None:
    """A workspace in a new ws/ with cwd: ../src (committed): the tasks run in src/, which every
    worktree has; refusing ws/ refused a setup that worked. With verify, which runs at ws/'s
    place, it is needed again."""
    repo = tmp_path / "project"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("print('app')\n", encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    (repo / ".git" / "info" / "exclude").write_text(".orchestrator/\n", encoding="utf-8")
    project = repo / "ws"
    project.mkdir()
    block_plan(project, [Spec("T-01", "test -f app.py && echo seen > seen.txt")], cwd="../src")
    ran = run(project)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert on(repo, "orchestrator/integration", "src/seen.txt") == "seen\n"
    block_plan(project, [Spec("T-01", "true")], cwd="../src", verify="true")
    line = refused(project, "validate", fresh=False)
    assert "ws/ is not in that commit" in line and ".orchestrator/, which git ignores, is none" in line


def test_a_project_directory_not_committed_yet_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """`init` in a new subdirectory of a repository, not committed: a worktree made from HEAD has
    no such directory, so every task would fail to start. validate and run say so up front."""
    repo = repository(tmp_path, {"b.txt": "b\n"})
    project = repo / "proj"
    project.mkdir()
    block_plan(project, [Spec("T-01", "echo A > a.txt")])
    isolation = line_of(project / ".orchestrator/master_plan.md", "isolation:")
    for command in ("validate", "run"):
        line = refused(project, command)
        assert line.startswith(f".orchestrator/master_plan.md:{isolation}: isolation: worktree runs tasks in proj/ ")
        assert "proj/ is not in that commit" in line and "commit a file in it first" in line
    (project / "README.md").write_text("the project\n", encoding="utf-8")
    git(repo, "add", "proj/README.md")
    git(repo, "commit", "-q", "-m", "proj")
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    assert on(repo, INTEGRATION, "proj/a.txt") == "A\n"  # the task ran at the project's place

    (project / "sub").mkdir()  # a cwd made and not committed: its line is the one blamed
    block_plan(project, [Spec("T-01", "echo A > a.txt")], cwd="sub")
    line = refused(project, "validate", fresh=False)
    cwd = line_of(project / ".orchestrator/master_plan.md", "cwd:")
    assert line.startswith(f".orchestrator/master_plan.md:{cwd}: isolation: worktree runs tasks in proj/sub/ ")


def test_an_integration_branch_checked_out_elsewhere_is_refused_up_front(tmp_path: Path) -> None:
    """`integration_branch: main` with main checked out in the person's checkout: git would
    refuse the integration worktree once the run had begun. validate and run refuse first."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    block_plan(project, [Spec("T-01", "echo one > one.txt")], integration_branch="main")
    named = line_of(project / ".orchestrator/master_plan.md", "integration_branch:")
    for command in ("validate", "run"):
        line = refused(project, command)
        assert line.startswith(
            f".orchestrator/master_plan.md:{named}: integration_branch 'main' is checked out in your checkout"
        )
        assert line.endswith(
            "name a new branch for this workspace alone (integration_branch: orchestrator/project), "
            f"or check another branch out in {project} (git switch)"
        )
    assert git(project, "branch", "--list").split() == ["*", "main"]  # no branch made
    git(project, "switch", "-q", "-c", INTEGRATION)  # the default name, checked out by the person
    path = block_plan(project, [Spec("T-01", "echo one > one.txt")])
    line = refused(project, "validate", fresh=False)
    assert line.startswith(
        f".orchestrator/master_plan.md:{line_of(path, 'isolation:')}: isolation: worktree merges into '{INTEGRATION}' "
        "(the default integration_branch), and it is checked out in your checkout"
    )


def test_two_workspaces_keeping_the_default_integration_branch_are_told_apart(tmp_path: Path) -> None:
    """Two workspaces of one repository both keep the default branch name: the second is
    refused up front (naming the isolation line), while the first, whose own integration
    worktree holds the branch from its earlier run, runs again as before."""
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
    isolation = line_of(second / ".orchestrator/master_plan.md", "isolation:")
    for command in ("validate", "run"):
        line = refused(second, command)
        assert line.startswith(
            f".orchestrator/master_plan.md:{isolation}: isolation: worktree merges into '{INTEGRATION}' "
            "(the default integration_branch), and it is the integration branch of the workspace a/.orchestrator in"
        )
        assert "add `integration_branch: orchestrator/b` to the frontmatter" in line
    (first / "one.txt").write_text("again\n", encoding="utf-8")  # the first workspace: as before
    assert cli_in_process(first, "validate").code == 0
    assert run(first, "--rerun", "T-01").code == 0
    block_plan(second, [Spec("T-01", "echo two > two.txt")], integration_branch="orchestrator/b")
    result = run(second)
    assert result.code == 0, result.stdout + result.stderr
    assert on(repo, "orchestrator/b", "b/two.txt") == "two\n"
    assert on(repo, INTEGRATION, "b/two.txt") is None


def test_a_workspace_git_tracks_is_told_before_the_run_and_named_when_merge_refuses(tmp_path: Path) -> None:
    """master_plan.md committed: a worktree run writes its status blocks in the person's checkout,
    so validate and run say so once (a notice, not an error), and merge's refusal names the files."""
    project = repository(tmp_path, {name: f"{name}\n" for name in ("a.txt", "b.txt", "c.txt", "d.txt")})
    (project / ".git" / "info" / "exclude").write_text("", encoding="utf-8")
    plan(project, [Spec("T-01", "echo one > one.txt")])
    git(project, "add", ".orchestrator/master_plan.md")
    git(project, "commit", "-q", "-m", "the plan")
    checked = cli_in_process(project, "validate")
    assert checked.code == 0, checked.stderr
    notice = checked.stderr.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith(
        ".orchestrator/ has files git tracks that a run writes (master_plan.md): your checkout will show them changed"
    )
    assert "git rm -r --cached .orchestrator" in notice[0] and '"Worktrees and the merge queue"' in notice[0]
    assert json.loads(cli_in_process(project, "validate", "--json").stdout)["notices"] == [notice[0]]
    above = cli_in_process(tmp_path, "validate", "project")  # the git command it gives works from where it is said
    assert "(git -C project rm -r --cached .orchestrator, then" in above.stderr, above.stderr
    said = subprocess.run(["git", "-C", "project", "rm", "-r", "-q", "--cached", "--dry-run", ".orchestrator"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)  # fmt: skip
    assert said.returncode == 0, said.stderr
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    told = [e["message"] for e in result.events if e.get("event") == "notice"]
    assert told == [notice[0]]  # once
    changed = git(project, "status", "--porcelain", "--untracked-files=no").split()
    assert changed == ["M", ".orchestrator/master_plan.md"]

    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (project / name).write_text("changed\n", encoding="utf-8")
    refused = cli(project, "merge")
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        f"{project}: your working tree has uncommitted changes (5 files: .orchestrator/master_plan.md, a.txt, "
        "b.txt and 2 more) — commit them, then run `orchestrator merge` again; nothing was changed "
        "(.orchestrator/ is tracked by git, and a run writes there: keep it out of git, "
        "git rm -r --cached .orchestrator and add it to .gitignore)"
    ]
    git(project, "commit", "-qam", "mine")
    assert cli(project, "merge").code == 0
    assert (project / "one.txt").read_text() == "one\n"

    # A plan kept in git as the docs allow: status blocks off, conflicts failing, nothing else
    # of the workspace tracked: the run writes nothing git tracks, and nothing is said.
    plan(project, [Spec("T-01", "echo one > one.txt")], status_blocks=False, on_conflict="fail")
    quiet = cli_in_process(project, "validate")
    assert quiet.code == 0 and quiet.stderr == "", quiet.stderr


def test_the_worktree_commands_outside_a_repository_say_what_fits_the_command(tmp_path: Path) -> None:
    """`worktrees`, `worktrees prune` and `merge` outside a git repository: one line saying what
    there is not, and why; "isolation: worktree needs one" only when the plan uses it."""
    project = tmp_path / "plain"
    project.mkdir()
    write_plan(project, [Spec("T-01", "true")])
    said = {
        ("worktrees",): "no worktrees to list",
        ("worktrees", "prune"): "no worktrees to prune",
        ("merge",): "no integration branch to merge",
    }
    for args, nothing in said.items():
        result = cli(project, *args)
        assert result.code == 2
        assert result.stderr.strip().splitlines() == [
            f"{project} is not in a git repository: {nothing} (the plan runs its tasks in place, "
            "without isolation: worktree)"
        ]
    plan(project, [Spec("T-01", "true")])
    for args, nothing in said.items():
        result = cli(project, *args, "--json")
        assert result.code == 2
        message = json.loads(result.stdout)["message"]
        assert message == (
            f"{project} is not in a git repository: {nothing} (isolation: worktree needs one: "
            "run `git init` there and commit)"
        )


def test_merge_names_the_files_it_would_write_over_that_git_does_not_track(tmp_path: Path) -> None:
    """Files of the person's at paths the integration branch adds: an untracked one (git refused
    with only "Aborting") and an ignored one (git wrote over it without a word). merge refuses as
    it does uncommitted changes: one line naming them and what to do, exit 2, nothing changed."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "echo one > one.txt; mkdir out; echo theirs > out/run.log")])
    assert run(project).code == 0
    (project / "one.txt").write_text("mine\n", encoding="utf-8")
    (project / "out").mkdir()
    (project / "out" / "run.log").write_text("my log\n", encoding="utf-8")
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\nout/\n", encoding="utf-8")
    before = checkout(project)
    said = (
        f"{project}: your working tree has files git does not track where {INTEGRATION} adds files (2 files: "
        "one.txt, out/run.log) — move them out of the way, then run `orchestrator merge` again; nothing was changed"
    )
    refused = cli(project, "merge")
    assert refused.code == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [said]
    as_json = cli(project, "merge", "--json")
    assert as_json.code == 2 and json.loads(as_json.stdout)["message"] == said
    assert checkout(project) == before  # both files as the person left them
    (project / "one.txt").rename(tmp_path / "one.mine")
    (project / "out").rename(tmp_path / "out.mine")
    done = cli(project, "merge")
    assert done.code == 0, done.stderr
    assert (project / "one.txt").read_text() == "one\n" and (project / "out/run.log").read_text() == "theirs\n"


def test_your_head_conflicting_with_the_integration_branch_is_refused_before_a_run_begins(tmp_path: Path) -> None:
    """The person's own commit conflicts with what an earlier run merged. A run began (run_started,
    then no run_finished: `watch` called the runner dead) and sent them to `orchestrator merge`,
    which only said the conflict again. validate and run refuse it first, with advice that works:
    git merge in the checkout, resolve, commit, run again; merge's own conflict says the same."""
    project = repository(tmp_path, {"a.txt": "one\ntwo\n"})
    path = block_plan(project, [Spec("T-01", "sed -i 's/two/two by T-01/' a.txt")])
    assert run(project).code == 0
    (project / "a.txt").write_text("one\ntwo by me\n", encoding="utf-8")
    git(project, "commit", "-qam", "mine")
    events = project / ".orchestrator/state/events.jsonl"
    kept = events.read_text(encoding="utf-8")
    advice = (
        f"run `git merge {INTEGRATION}` in your checkout ({project}), resolve those files and commit, "
        "then `orchestrator run` again"
    )
    for command in ("validate", "run"):
        line = refused(project, command, fresh=False)
        assert line == (
            f".orchestrator/master_plan.md:{line_of(path, 'isolation:')}: isolation: worktree brings your HEAD "
            f"into {INTEGRATION} first, and they conflict (1 file: a.txt) — {advice}"
        )
    assert events.read_text(encoding="utf-8") == kept  # no run_started: no runner for `watch` to call dead
    merged = cli(project, "merge")
    assert merged.code == 1
    said = merged.stdout.strip().splitlines()
    assert said[0].startswith("main moves from ") and len(said) == 2  # what it was about to do, then why not
    assert said[1] == (
        f"{INTEGRATION} conflicts with main in a.txt: nothing was changed — run `git merge {INTEGRATION}` "
        f"in your checkout ({project}), resolve those files and commit"
    )
    with pytest.raises(GitError) as caught:  # a HEAD moved between that check and the run's own merge
        Trees.of(project, project / ".orchestrator", INTEGRATION).prepare()
    assert str(caught.value) == f"your HEAD conflicts with {INTEGRATION} in a.txt — {advice}"

    git(project, "merge", INTEGRATION, check=False)  # the advice, followed
    (project / "a.txt").write_text("one\ntwo by me and T-01\n", encoding="utf-8")
    git(project, "commit", "-qam", "both")
    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    assert on(project, INTEGRATION, "a.txt") == "one\ntwo by me and T-01\n"
    assert cli(project, "merge").stdout.strip() == f"main already has everything on {INTEGRATION}"


def test_validate_says_a_task_without_isolation_does_not_see_its_worktree_upstreams_files(tmp_path: Path) -> None:
    """A plain task after a worktree task never saw that task's work, and validate said OK."""
    project = repository(tmp_path, {"a.txt": "a\n"})
    plan(project, [Spec("T-01", "echo one > one.txt"), Spec("T-02", "cat one.txt", deps=["T-01"])])
    plan_file = project / ".orchestrator" / "master_plan.md"
    text = plan_file.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| T-02 ")]
    text = text.replace("| Priority |", "| Priority | Isolation |", 1).replace("|----------|", "|---|---|", 1)
    text = text.replace(rows[0], rows[0] + " none |").replace("| P2 |\n", "| P2 | |\n", 1)
    plan_file.write_text(text, encoding="utf-8")
    shown = cli_in_process(project, "validate")
    assert shown.code == 0, shown.stderr
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("| T-02 "))
    assert (
        f".orchestrator/master_plan.md:{line}: T-02 depends on T-01 (isolation: worktree) but has no isolation itself: "
        "it runs in your checkout and sees only their results, not their files"
    ) in shown.stderr
    plan(project, [Spec("T-01", "echo one > one.txt"), Spec("T-02", "cat one.txt", deps=["T-01"])])
    assert "has no isolation itself" not in cli_in_process(project, "validate").stderr  # both isolated: nothing to say
