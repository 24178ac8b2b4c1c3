"""A run's delivery (``deliver: [pr, comment]``): real runs of ``orchestrator run`` on a plan of
shell tasks in worktrees, a bare repository on disk as the remote, and the fake of GitHub's API on
127.0.0.1 keeping every pull request and comment, so that a duplicate is there to be counted.

The runner is killed -9 at each moment of a delivery (a task still running, a push sent or landed
unanswered, a pull request sent or made unanswered, a comment sent or made unanswered), then a run
by hand finishes: one pull request, one comment, the remote and the pull request at the final
commit, and ``verify`` holding the chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, Hold
from race_helpers import write_race_plan
from runner_helpers import Spec, cli, start, wait_until, write_plan
from worktree_helpers import INTEGRATION, git, no_git_identity, repository

__all__ = ["no_git_identity"]

REPOSITORY = "acme/app"
ISSUE = 7
LAUNCH = "20261127T100000.000-1"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        monkeypatch.setenv("ORCHESTRATOR_GITHUB_TOKEN", "ghp_test_token_not_real")
        monkeypatch.setenv("ORCHESTRATOR_GITHUB_API", fake.url)
        yield fake


def bare(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=60)
    return remote


def project_with(tmp_path: Path, remote: Path, *, hold: Path | None = None, to: tuple[str, ...] = ("pr", "comment"),
                 **settings: Any) -> Path:  # fmt: skip
    """A repository whose plan's two shell tasks write a file each (T-02, when ``hold`` exists,
    waits there first), delivered to ``remote`` and GitHub's ``acme/app``."""
    project = repository(tmp_path, {"README.md": "hello\n"})
    wait = f"if [ -f {hold} ]; then touch {hold}.here; sleep 60; fi\n" if hold else ""
    deliver = {"to": list(to), "remote": str(remote), "repository": REPOSITORY, "base": "main"}
    write_plan(project, [Spec("T-01", "echo one > a.txt"), Spec("T-02", f"{wait}echo two > b.txt", deps=("T-01",))],
               {"isolation": "worktree", "deliver": deliver, **settings})  # fmt: skip
    return project


def launched_from_an_issue(project: Path) -> None:
    """``state/launches.json`` as ``serve`` leaves it for a run a delivery of issue 7 started."""
    state = project / ".orchestrator" / "state"
    state.mkdir(parents=True, exist_ok=True)
    entry = {"id": LAUNCH, "source": "github", "what": "issues opened", "started": time.time(), "pid": 0,
             "origin": {"repository": REPOSITORY, "issue": ISSUE}}  # fmt: skip
    (state / "launches.json").write_text(json.dumps({"launches": [entry]}), encoding="utf-8")


def remote_tip(remote: Path) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{INTEGRATION}"], cwd=remote,
                          capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    return done.stdout.strip() or None


def effects(project: Path) -> list[dict[str, Any]]:
    lines = (project / ".orchestrator" / "state" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if str(e.get("event", "")).startswith("effect_")]


def delivered_once(project: Path, remote: Path, github: FakeGitHub, *, comments: int = 1) -> None:
    """One pull request ever opened, at the integration branch's tip, which the remote holds; one
    comment on issue 7; the chain whole."""
    tip = git(project, "rev-parse", INTEGRATION).strip()
    assert remote_tip(remote) == tip
    pulls = github.pulls.get(REPOSITORY, [])
    assert len(pulls) == 1, pulls
    assert pulls[0]["head"]["ref"] == INTEGRATION and pulls[0]["base"]["ref"] == "main"
    assert tip[:12] in pulls[0]["body"], (tip, pulls[0]["body"])
    said = github.comments.get(f"{REPOSITORY}#{ISSUE}", [])
    assert len(said) == comments, said
    if comments:
        assert pulls[0]["html_url"] in said[0]["body"]
    verified = cli(project, "verify")
    assert verified.code == 0, verified.stdout + verified.stderr


def test_a_run_opens_one_pull_request_and_the_next_updates_it(tmp_path: Path, github: FakeGitHub) -> None:
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote)
    launched_from_an_issue(project)
    first = cli(project, "run", "--launch", LAUNCH)
    assert first.code == 0, first.stdout + first.stderr
    delivered_once(project, remote, github)
    said = [line for line in first.stdout.splitlines() if line.startswith("📬 pull request for acme/app")]
    assert len(said) == 1 and said[0].endswith(": https://github.test/acme/app/pull/1"), first.stdout
    final = (project / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert "## Delivered" in final and "https://github.test/acme/app/pull/1" in final

    before = len(github.requests)
    again = cli(project, "run")  # nothing to do, nothing new to deliver: GitHub is not even asked
    assert again.code == 0, again.stdout + again.stderr
    assert github.requests[before:] == []

    (project / ".orchestrator" / "master_plan.md").write_text(
        (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8").replace("echo two", "echo TWO"),
        encoding="utf-8",
    )
    changed = cli(project, "run")
    assert changed.code == 0, changed.stdout + changed.stderr
    new = [(seen.method, seen.path.split("?")[0]) for seen in github.requests[before:]]
    assert ("POST", "/repos/acme/app/pulls") not in new and ("PATCH", "/repos/acme/app/pulls/1") in new
    delivered_once(project, remote, github)  # (a run by a person, from no issue: no comment of its own)
    assert "no comment: the run came from no pull request or issue" in changed.stdout
    assert git(project, "show", f"{INTEGRATION}:b.txt").strip() == "TWO"


def test_a_run_that_fails_pushes_nothing_and_says_so_where_it_came_from(tmp_path: Path, github: FakeGitHub) -> None:
    remote = bare(tmp_path)
    project = repository(tmp_path, {"README.md": "hello\n"})
    deliver = {"to": ["pr", "comment"], "remote": str(remote), "repository": REPOSITORY}
    write_plan(project, [Spec("T-01", "exit 3")], {"isolation": "worktree", "deliver": deliver})
    launched_from_an_issue(project)
    ran = cli(project, "run", "--launch", LAUNCH)
    assert ran.code == 1, ran.stdout + ran.stderr
    assert "not pushed: the run did not complete its work (exit 1)" in ran.stdout
    assert remote_tip(remote) is None and github.pulls == {}
    said = github.comments[f"{REPOSITORY}#{ISSUE}"]
    assert len(said) == 1 and "ended with exit code 1" in said[0]["body"]


def test_a_delivery_refused_is_one_line_exit_5_and_the_work_stays_local(tmp_path: Path, github: FakeGitHub) -> None:
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote)
    launched_from_an_issue(project)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no pushes today' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    ran = cli(project, "run", "--launch", LAUNCH)
    assert ran.code == 5, ran.stdout + ran.stderr
    said = [line for line in ran.stdout.splitlines() if "not delivered" in line]
    assert len(said) == 1 and "the work stays on orchestrator/integration" in said[0], ran.stdout
    assert git(project, "show", f"{INTEGRATION}:b.txt").strip() == "two" and github.pulls == {}
    assert github.comments == {}  # (nothing said where it came from before the work is out)
    hook.unlink()
    again = cli(project, "run")  # a person's next run delivers what is still undelivered, the comment too
    assert again.code == 0, again.stdout + again.stderr
    delivered_once(project, remote, github)


# --- killed -9 at each moment of a delivery ---------------------------------------------------------


def _push_hold(remote: Path, held: Path) -> None:
    """The remote holds a push in its pre-receive hook until ``held``.go exists (refused with ``held``.no)."""
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ntouch {held}.here\nwhile [ ! -f {held}.go ]; do sleep 0.05; done\n"
                    f"[ -f {held}.no ] && exit 1\nexit 0\n", encoding="utf-8")  # fmt: skip
    hook.chmod(0o755)


MOMENTS = (
    "task running",  # before any intent
    "push sent, refused",  # intent written, the push lost
    "push landed, unanswered",  # intent written, the remote moved, no outcome written
    "pr sent, lost",  # intent written, GitHub never made it
    "pr made, unanswered",  # intent written, GitHub made it, no outcome written
    "comment sent, lost",  # the pull request's outcome written; the comment's intent, lost
    "comment made, unanswered",
)


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_runner_killed_at_any_moment_of_its_delivery_delivers_once(
    tmp_path: Path, github: FakeGitHub, moment: str
) -> None:
    remote, held = bare(tmp_path), tmp_path / "held"
    project = project_with(tmp_path, remote, hold=held if moment == "task running" else None)
    launched_from_an_issue(project)
    hold: Hold | None = None
    if moment == "task running":
        held.touch()
        arrived = held.with_suffix(".here")
    elif moment.startswith("push"):
        _push_hold(remote, held)
        arrived = held.with_suffix(".here")
    else:
        kind = "/pulls" if moment.startswith("pr") else "/comments"
        hold = github.hold("POST", kind, after=moment.endswith("unanswered"), dropped=moment.endswith("lost"))
    runner = start(project, "--launch", LAUNCH, name="killed")
    try:
        if hold is not None:
            wait_until(hold.arrived.is_set, f"the runner's request held at {moment}", timeout=60)
        else:
            wait_until(arrived.exists, f"the runner held at {moment}", timeout=60)
        runner.kill()
    finally:
        runner.cleanup()
    if moment == "task running":
        held.unlink()  # (the next run stops the attempt the dead runner left, and runs T-02 again)
    elif moment.startswith("push"):
        if moment == "push sent, refused":
            held.with_suffix(".no").touch()
        held.with_suffix(".go").touch()  # (the push the dead runner started ends now, landed or refused)
        wait_until(lambda: _no_push_left(remote), "the dead runner's push to end", timeout=60)
        (remote / "hooks" / "pre-receive").unlink()
    else:
        assert hold is not None
        hold.go.set()
    intended = [e for e in effects(project) if e["event"] == "effect_intended"]
    assert bool(intended) == (moment != "task running"), intended
    if intended:  # (the effect the kill left without its outcome, told as such until a run asks the remote)
        assert "outcome unknown (its run was killed)" in cli(project, "status").stdout
        assert "1 unknown" in cli(project, "verify").stdout
    resumed = cli(project, "run")
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    delivered_once(project, remote, github)
    url = github.pulls[REPOSITORY][0]["html_url"]
    for command in ("status", "history", "verify"):
        shown = cli(project, command).stdout
        assert url in shown and "outcome unknown" not in shown.split("run ")[-1], (command, shown)
    if moment.endswith("unanswered") or moment == "push landed, unanswered":
        assert any(e["event"] == "effect_done" and e.get("found") for e in effects(project)), effects(project)


def _no_push_left(remote: Path) -> bool:
    """Whether no process holds a push into ``remote`` any more."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"receive-pack" in cmdline and str(remote).encode() in cmdline:
            return False
    return True


# --- races: one pull request, holding the winners only ---------------------------------------------


@pytest.mark.parametrize("race", ["best of 3", "hedged"])
def test_a_raced_task_delivers_one_pull_request_holding_its_winner_only(
    tmp_path: Path, github: FakeGitHub, race: str
) -> None:
    """Best of 3 (the judge passes candidate 2 alone) and a hedge (the straggling first attempt
    loses to the second): every candidate writes answer.txt; one pull request, whose branch the
    remote holds with the winner's answer, and no branch of a loser pushed."""
    remote = bare(tmp_path)
    project = repository(tmp_path, {"README.md": "hello\n"})
    deliver = {"to": ["pr"], "remote": str(remote), "repository": REPOSITORY, "base": "main"}
    if race == "best of 3":
        script, winner = 'echo "$ORCHESTRATOR_ATTEMPT" > answer.txt', "2"
        write_race_plan(project, "Best of", [("T-01", "3", script)], isolation="worktree",
                        judge="grep -qx 2 answer.txt", deliver=deliver)  # fmt: skip
    else:
        script = 'echo "$ORCHESTRATOR_ATTEMPT" > answer.txt; [ "$ORCHESTRATOR_ATTEMPT" = 1 ] && sleep 30; true'
        winner = "2"
        write_race_plan(project, "Hedge", [("T-01", "1s", script)], isolation="worktree", deliver=deliver)
    ran = cli(project, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    pulls = github.pulls[REPOSITORY]
    assert len(pulls) == 1 and pulls[0]["head"]["ref"] == INTEGRATION
    tip = git(project, "rev-parse", INTEGRATION).strip()
    assert remote_tip(remote) == tip and tip[:12] in pulls[0]["body"]
    shown = subprocess.run(["git", "show", f"{INTEGRATION}:answer.txt"], cwd=remote, capture_output=True,
                           text=True, check=True, timeout=60)  # fmt: skip
    assert shown.stdout == f"{winner}\n"
    heads = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=remote, capture_output=True,
                           text=True, check=True, timeout=60).stdout.split()  # fmt: skip
    assert heads == [f"refs/heads/{INTEGRATION}"]


def test_no_agent_holds_the_token_a_run_delivers_with(tmp_path: Path, github: FakeGitHub) -> None:
    """The token stays the runner's: an attempt that held it could open a pull request itself."""
    write_plan(tmp_path, [Spec("T-01", 'echo "token: ${ORCHESTRATOR_GITHUB_TOKEN:-none}"')])
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert cli(tmp_path, "output", "T-01").stdout.strip() == "token: none"


def test_a_plan_that_pushes_with_no_worktree_is_refused_before_anything_runs(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")], {"deliver": "pr"})
    for command in ("validate", "run"):
        refused = cli(tmp_path, command)
        assert refused.code == 2, refused.stdout + refused.stderr
        assert "deliver: push and pr push the integration branch, which only isolation: worktree makes" in (
            refused.stderr
        )
    assert not (tmp_path / ".orchestrator" / "state" / "events.jsonl").exists()


def test_a_simulated_run_delivers_nothing(tmp_path: Path, github: FakeGitHub) -> None:
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote)
    ran = cli(project, "run", "--executor", "fake")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "nothing delivered: a simulated run's work is made up" in ran.stdout
    assert github.requests == [] and remote_tip(remote) is None


# --- agents commit; the orchestrator delivers -------------------------------------------------------

PUSHES = (
    "echo mine > mine.txt; if git push -q {remote} HEAD:refs/heads/agent 2>err.txt; "
    'then echo pushed; else echo "refused: $(head -1 err.txt)"; fi'
)


@pytest.mark.parametrize("allowed", [False, True])
def test_an_agent_in_a_worktree_commits_but_pushes_only_where_its_plan_lets_it(tmp_path: Path, allowed: bool) -> None:
    remote = bare(tmp_path)
    project = repository(tmp_path, {"README.md": "hello\n"})
    write_plan(project, [Spec("T-01", PUSHES.format(remote=remote))],
               {"isolation": "worktree", **({"agent_pushes": True} if allowed else {})})  # fmt: skip
    validated = cli(project, "validate")
    assert validated.code == 0, validated.stdout + validated.stderr
    assert ("T-01 may push and open pull requests itself (agent_pushes: true)" in validated.stderr) is allowed
    ran = cli(project, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    said = cli(project, "output", "T-01").stdout.strip()
    pushed = subprocess.run(["git", "rev-parse", "-q", "--verify", "refs/heads/agent"], cwd=remote,
                            capture_output=True, text=True, check=False, timeout=60).stdout.strip()  # fmt: skip
    if allowed:
        assert said == "pushed" and pushed
    else:
        assert said.startswith("refused: fatal: '/dev/null/no-push-from-an-agent-the-orchestrator-delivers/"), said
        assert pushed == ""
    assert git(project, "show", f"{INTEGRATION}:mine.txt").strip() == "mine"  # (its commit merged all the same)


@pytest.mark.slow
def test_the_dashboard_shows_each_effect_with_its_link(tmp_path: Path, github: FakeGitHub) -> None:
    from dashboard_helpers import browser_missing, chromium, http_get, served

    remote = bare(tmp_path)
    project = project_with(tmp_path, remote, to=("pr",))
    ran = cli(project, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    status = json.loads(cli(project, "status", "--json").stdout)
    url = github.pulls[REPOSITORY][0]["html_url"]
    assert [e["url"] for e in status["effects"] if e["kind"] == "pr"] == [url]
    with served(project) as server:
        state = http_get(server.port, "/api/state").json()
        assert state["effects"] == status["effects"]  # (the page's state is status's)
        reason = browser_missing()
        if reason:
            pytest.skip(reason)
        with chromium(tmp_path / "chromium-profile") as driver:
            driver.get(server.url)
            wait_until(lambda: driver.find_elements("css selector", "#effects a"), "the effects' links", 60)
            links = {a.get_attribute("href"): a.text for a in driver.find_elements("css selector", "#effects a")}
            pr = next(e for e in status["effects"] if e["kind"] == "pr")
            assert links == {url: pr["said"]}, links
        assert server.errors() == ""


def _changed(project: Path, old: str, new: str) -> None:
    plan = project / ".orchestrator" / "master_plan.md"
    plan.write_text(plan.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_new_work_after_its_pull_request_was_merged_opens_one_new_pull_request(
    tmp_path: Path, github: FakeGitHub
) -> None:
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote, to=("pr",))
    assert cli(project, "run").code == 0
    github.pulls[REPOSITORY][0]["state"] = "closed"  # (merged by a person)
    _changed(project, "echo two", "echo TWO")
    second = cli(project, "run")
    assert second.code == 0, second.stdout + second.stderr
    first, new = github.pulls[REPOSITORY]
    assert first["state"] == "closed" and new["state"] == "open" and new["number"] == 2
    assert "TWO" not in first["body"] and git(project, "rev-parse", INTEGRATION).strip()[:12] in new["body"]
    before = len(github.requests)
    assert cli(project, "run").code == 0 and github.requests[before:] == []  # (nothing new: nothing asked)
    _changed(project, "echo TWO", "echo three")
    assert cli(project, "run").code == 0
    asked = [(seen.method, seen.path) for seen in github.requests[before:]]
    assert asked == [("GET", "/repos/acme/app/pulls/2"), ("PATCH", "/repos/acme/app/pulls/2")], asked
    assert len(github.pulls[REPOSITORY]) == 2 and remote_tip(remote) == git(project, "rev-parse", INTEGRATION).strip()


def test_a_task_whose_type_delivers_opens_a_pull_request_of_its_own_branch(tmp_path: Path, github: FakeGitHub) -> None:
    """The plan delivers its integration branch as one pull request; T-02's type, ``publish``, its
    own branch as another: two pull requests, each once, each head at its branch's commit."""
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote, to=("pr",))
    deliver = {"to": ["push", "pr"], "remote": str(remote), "repository": REPOSITORY, "base": "main"}  # (its own)
    _changed(
        project,
        "isolation: worktree\n",
        f"isolation: worktree\ntypes: {{publish: {{deliver: {json.dumps(deliver)}}}}}\n",
    )
    plan = project / ".orchestrator" / "master_plan.md"
    text = plan.read_text(encoding="utf-8").replace("| Priority |\n", "| Priority | Type |\n", 1)
    text = text.replace("|----------|\n", "|----------|---|\n", 1)
    text = text.replace("| T-01 | P2 |", "| T-01 | P2 | publish |").replace("| None | P2 |", "| None | P2 | - |")
    plan.write_text(text, encoding="utf-8")
    for _ in range(2):  # (a second run: nothing new, nothing asked)
        ran = cli(project, "run")
        assert ran.code == 0, ran.stdout + ran.stderr
    pulls = {p["head"]["ref"]: p for p in github.pulls[REPOSITORY]}
    assert sorted(pulls) == [INTEGRATION, f"{INTEGRATION}-T-02"], pulls
    for branch, pull in pulls.items():
        tip = git(project, "rev-parse", branch).strip()
        assert tip[:12] in pull["body"]
        held = subprocess.run(["git", "rev-parse", f"refs/heads/{branch}"], cwd=remote, capture_output=True,
                              text=True, check=True, timeout=60).stdout.strip()  # fmt: skip
        assert held == tip
    assert "T-02 Task T-02" in pulls[f"{INTEGRATION}-T-02"]["title"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("prr", "bad value for 'deliver': 'prr' is not a delivery: give pr, push or comment (or none)"),
        ({"to": "pr", "remote": "-x"}, "bad value for 'deliver': remote: '-x' starts with -"),
        ({"to": "pr", "repository": "acme"}, "bad value for 'deliver': repository: 'acme' is not OWNER/NAME"),
        ({"pr": True}, "bad value for 'deliver': unknown key 'pr' — it takes to, remote, repository, branch, base"),
    ],
)
def test_a_bad_deliver_setting_is_one_line_naming_its_line(tmp_path: Path, value: object, said: str) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")], {"isolation": "worktree", "deliver": value})
    refused = cli(tmp_path, "validate")
    assert refused.code == 2, refused.stdout + refused.stderr
    [line, summary] = refused.stderr.strip().splitlines()
    assert line.startswith(".orchestrator/master_plan.md:") and said in line, line
    assert summary == "1 problem; nothing was written."


def test_a_comment_alone_needs_no_worktree_and_is_said_once_per_outcome(tmp_path: Path, github: FakeGitHub) -> None:
    """``deliver: comment`` in a plan without worktrees: keyed by what the run ended with (its tasks'
    states and results), so a rerun that changes nothing says nothing again, and one that does, says it."""
    write_plan(tmp_path, [Spec("T-01", "echo one")], {"deliver": "comment"})
    launched_from_an_issue(tmp_path)
    assert cli(tmp_path, "run", "--launch", LAUNCH).code == 0
    assert cli(tmp_path, "run", "--launch", LAUNCH).code == 0  # (nothing ran again: the same outcome)
    said = github.comments[f"{REPOSITORY}#{ISSUE}"]
    assert len(said) == 1 and "**1 of 1 task completed**" in said[0]["body"], said
    assert cli(tmp_path, "run", "--launch", LAUNCH, "--rerun", "T-01").code == 0  # (a new result: told)
    assert len(github.comments[f"{REPOSITORY}#{ISSUE}"]) == 2


@pytest.mark.parametrize(
    ("params", "follow_up", "said"),
    [
        ({"check": {"default": ""}, "check_log": {"default": ""}}, "T-9", "deliver.on_failed_check: no task T-9"),
        ({}, "T-01", "deliver.on_failed_check gives T-01 the parameters check and check_log — declare them: params:"),
    ],
)
def test_a_follow_up_the_plan_cannot_run_is_refused_by_validate(
    tmp_path: Path, params: dict[str, Any], follow_up: str, said: str
) -> None:
    project = repository(tmp_path, {"README.md": "hello\n"})
    deliver = {"to": ["push"], "remote": str(bare(tmp_path)), "on_failed_check": follow_up}
    write_plan(project, [Spec("T-01", "echo one")], {"isolation": "worktree", "params": params, "deliver": deliver})
    refused = cli(project, "validate")
    assert refused.code == 2 and said in refused.stderr, refused.stdout + refused.stderr
