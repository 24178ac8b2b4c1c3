"""A plan read once (issue 66): ``status`` and ``list`` print from a snapshot of what they derive
(``state/snapshot.shown``), kept under the stamp of its sources, and never from a stale one.

Whether a command used the snapshot or derived its view again is read from the file itself: a
snapshot is only ever replaced by a rename, so a command that kept a new one leaves another
inode there, and one that used it leaves the same. What a command shows is held to what the
workspace says now: the same command with no snapshot there at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_helpers import CLI, Spec, cli, cli_in_process, run, start, wait_until, write_plan

from orchestrator.state.snapshots import snapshot, stamps
from orchestrator.state.workspace import Workspace

PLAN = """---
backend: shell
---
# Three tasks

## Task Decomposition
| Task ID | Task Name | Dependencies | Command |
|---|---|---|---|
| T-01 | One | None | true |
| T-02 | Two | T-01 | true |
| T-03 | Three | T-01, T-02 | true |
"""

TICK = 0.05  # longer than a filesystem's clock tick (ext4: 4 ms): what was written before it is settled


def _project(tmp_path: Path, text: str = PLAN) -> Path:
    """A workspace with its state/ (the filesystem's clock is read there) and ``text`` for plan."""
    (tmp_path / ".orchestrator" / "state").mkdir(parents=True)
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")
    time.sleep(TICK)
    return tmp_path


def _kept(project: Path, name: str = "shown") -> Path:
    return project / ".orchestrator" / "state" / f"snapshot.{name}"


def _inode(project: Path) -> int | None:
    try:
        return _kept(project).stat().st_ino
    except FileNotFoundError:
        return None


def _said(project: Path, *words: str) -> str:
    done = cli_in_process(project, *words)
    assert done.code == 0, done.stderr
    return done.stdout


def _truth(project: Path, *words: str) -> str:
    """What ``words`` say of the workspace now, derived with no snapshot there; the snapshot
    put back after, the same file (a test goes on from where it was)."""
    kept = _kept(project)
    aside = kept.with_name("aside")
    held = kept.exists()
    if held:
        kept.rename(aside)
    try:
        return _said(project, *words)
    finally:
        if held:
            aside.rename(kept)


def test_a_second_status_and_list_print_from_the_snapshot(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first = _said(project, "status")
    inode = _inode(project)
    assert inode is not None, "status kept what it derived"
    assert "3 tasks: 1 pending, 2 waiting" in first
    assert _said(project, "status") == first
    assert _said(project, "list") == _truth(project, "list")
    assert json.loads(_said(project, "status", "--json")) == json.loads(_truth(project, "status", "--json"))
    listed = json.loads(_said(project, "list", "--json"))["tasks"]
    assert [(t["id"], t["status"], t["assignee"], t["tags"]) for t in listed] == [
        ("T-01", "pending", None, []),
        ("T-02", "waiting", None, []),
        ("T-03", "waiting", None, []),
    ]
    assert _inode(project) == inode, "each of them printed from the snapshot status kept"


def test_a_workspace_with_no_state_yet_is_left_as_it_was_by_a_command_that_fails(tmp_path: Path) -> None:
    """Before any command made state/, the clock deriving began by is this machine's, a second
    back (``snapshot.MARGIN``: no file is made to read the filesystem's): a plan saved within it
    is not settled, and a command that fails leaves not even a directory's time changed."""
    root = tmp_path / ".orchestrator"
    root.mkdir()
    (root / "master_plan.md").write_text(PLAN.replace("| T-01, T-02 |", "| T-09 |"), encoding="utf-8")
    before = root.stat().st_mtime_ns
    assert cli_in_process(tmp_path, "status").code == 2
    assert sorted(p.name for p in root.iterdir()) == ["master_plan.md"] and root.stat().st_mtime_ns == before
    (root / "master_plan.md").write_text(PLAN, encoding="utf-8")
    assert "3 tasks" in _said(tmp_path, "status")
    assert _inode(tmp_path) is None, "a plan saved within the margin: not settled"
    time.sleep(snapshot.MARGIN / 1e9 + TICK)
    assert "3 tasks" in _said(tmp_path, "status")
    assert _inode(tmp_path) is not None


def test_a_hand_edit_of_the_plan_in_the_same_second_with_the_same_size_and_its_mtime_set_back_is_seen(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    plan = project / ".orchestrator" / "master_plan.md"
    assert "Two" in _said(project, "status")
    before = plan.stat()
    plan.write_text(PLAN.replace("| T-02 | Two |", "| T-02 | Owt |"), encoding="utf-8")  # (the same bytes' count)
    os.utime(plan, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = plan.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    shown = _said(project, "status")
    assert "Owt" in shown and "Two" not in shown
    assert shown == _truth(project, "status")


def test_a_state_file_edited_with_the_same_size_and_its_mtime_set_back_is_seen(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert run(project).code == 0
    time.sleep(TICK)
    first = _said(project, "status", "--json")
    result = project / ".orchestrator" / "results" / "agent-02-result.md"
    text = result.read_text(encoding="utf-8")
    duration = next(line for line in text.splitlines() if line.startswith("duration: "))
    before = result.stat()
    result.write_text(text.replace(duration, "duration: " + "7" * (len(duration) - len("duration: "))), "utf-8")
    os.utime(result, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert result.stat().st_size == before.st_size
    shown = json.loads(_said(project, "status", "--json"))
    assert shown != json.loads(first)
    assert shown == json.loads(_truth(project, "status", "--json"))
    assert str(shown["tasks"][1]["duration"]).startswith("777")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda data: b"not a snapshot at all", id="garbage"),
        pytest.param(lambda data: data[: len(data) // 2], id="cut-short"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"orchsnp0" + data[8:], id="another-version"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="a-byte-changed"),
        pytest.param(lambda data: data[:8] + bytes(20) + data[28:], id="another-key"),
    ],
)
def test_a_snapshot_that_is_not_whole_or_not_this_versions_is_derived_again(tmp_path: Path, spoil: object) -> None:
    project = _project(tmp_path)
    truth = _said(project, "status")
    kept = _kept(project)
    assert callable(spoil)
    kept.write_bytes(spoil(kept.read_bytes()))
    time.sleep(TICK)
    assert _said(project, "status") == truth
    inode = _inode(project)
    assert _said(project, "status") == truth
    assert _inode(project) == inode, "the snapshot derived again is whole: the next status prints from it"


def test_a_snapshot_in_the_way_as_a_directory_or_a_link_is_never_read_through(tmp_path: Path) -> None:
    project = _project(tmp_path)
    truth = _said(project, "status")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(_kept(project).read_bytes())
    _kept(project).unlink()
    _kept(project).symlink_to(elsewhere)
    assert _said(project, "status") == truth
    assert not _kept(project).is_symlink() and elsewhere.read_bytes() != b"", "the link replaced, not written through"
    _kept(project).unlink()
    _kept(project).mkdir()
    assert _said(project, "status") == truth


def test_commands_deriving_at_once_each_print_the_truth_and_leave_a_whole_snapshot(tmp_path: Path) -> None:
    project = _project(tmp_path)
    plan = project / ".orchestrator" / "master_plan.md"
    plan.write_text(PLAN.replace("| T-03 | Three |", "| T-03 | Trois |"), encoding="utf-8")
    time.sleep(TICK)
    children = [
        subprocess.Popen([*CLI, "status"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    said = [child.communicate(timeout=120) for child in children]
    truth = _truth(project, "status")
    assert [out for out, _ in said] == [truth] * 6, [err for _, err in said]
    inode = _inode(project)
    assert _said(project, "status") == truth and _inode(project) == inode


def test_a_not_before_that_comes_ends_what_a_snapshot_holds(tmp_path: Path) -> None:
    soon = time.time() + 2.0
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon + 1))  # (whole seconds: at most 3 s away)
    text = PLAN.replace("| Command |", "| Command | Not before |").replace("|---|---|---|---|", "|---|---|---|---|---|")
    text = text.replace("| T-01 | One | None | true |", f"| T-01 | One | None | true | {moment} |")
    text = text.replace("| T-02 | Two | T-01 | true |", "| T-02 | Two | T-01 | true | |")
    text = text.replace("| T-03 | Three | T-01, T-02 | true |", "| T-03 | Three | T-01, T-02 | true | |")
    project = _project(tmp_path, text)
    waiting = json.loads(_said(project, "status", "--json"))["tasks"][0]
    assert waiting["status"] == "waiting" and waiting["reason"].startswith("not before ")
    assert _inode(project) is not None, "kept, until the moment comes"
    wait_until(lambda: time.time() > soon + 1.1, "T-01's Not before", timeout=10)
    assert json.loads(_said(project, "status", "--json"))["tasks"][0]["status"] == "pending"


def test_a_pause_that_ends_ends_what_a_snapshot_holds(tmp_path: Path) -> None:
    project = _project(tmp_path)
    until = time.time() + 1.0
    state = project / ".orchestrator" / "state"
    pause = {"until": until, "until_iso": "soon", "reason": "usage limit", "backend": "shell"}
    (state / "pause.json").write_text(json.dumps(pause), encoding="utf-8")
    time.sleep(TICK)
    assert "⏸️ paused until soon" in _said(project, "status")
    assert _inode(project) is not None
    wait_until(lambda: time.time() > until, "the pause's end", timeout=10)
    assert "paused" not in _said(project, "status")


def test_a_running_task_is_never_kept_and_its_runner_killed_reads_as_interrupted(tmp_path: Path) -> None:
    """What a running task shows changes when its runner dies, which changes no file: status
    reads it again each time while a task runs."""
    write_plan(tmp_path, [Spec("T-01", "sleep 30")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: _first_status(tmp_path) == "running", "T-01 running")
        workspace = Workspace.find(tmp_path / ".orchestrator")
        assert snapshot.load(workspace, "shown", stamps.sources(workspace.root)) is None, "not kept"
        runner.kill(signal.SIGKILL)
        assert _first_status(tmp_path) == "interrupted"
    finally:
        runner.stop_all()


def _first_status(project: Path) -> str:
    status: str = json.loads(cli(project, "status", "--json").stdout)["tasks"][0]["status"]
    return status


def test_status_given_parameters_keeps_them_apart_from_the_plain_one(tmp_path: Path) -> None:
    text = PLAN.replace("backend: shell\n", "backend: shell\nparams:\n  who:\n    default: nobody\n")
    project = _project(tmp_path, text)
    assert 'who="nobody"' in _said(project, "status")
    assert 'who="me"' in _said(project, "status", "--param", "who=me")
    assert 'who="you"' in _said(project, "status", "--param", "who=you")
    assert 'who="nobody"' in _said(project, "status")
    assert _kept(project, "shown.params").exists()
    remembered = project / ".orchestrator" / "state" / "params.json"  # (what run --param leaves, read by all)
    remembered.write_text(json.dumps({"params": {"who": "them"}, "untrusted": {}}), encoding="utf-8")
    assert 'who="them"' in _said(project, "status")
    remembered.write_text(json.dumps({"params": {"who": "them"}, "untrusted": {"who": "api"}}), encoding="utf-8")
    assert _said(project, "status") == _truth(project, "status")


def test_a_profile_outside_the_workspace_is_a_source(tmp_path: Path) -> None:
    """The user's profiles (``~/.claude/agents``) decide a completed task's settings, and so
    whether run would do it again: a change there is seen as one in the workspace is."""
    home = tmp_path / "home"
    agents = home / ".claude" / "agents"
    agents.mkdir(parents=True)
    profile = agents / "rev.md"
    profile.write_text("---\nname: rev\nmodel: opus\n---\nReview.\n", encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    table = PLAN.replace("| Command |", "| Command | Assignee |").replace("|---|---|---|---|", "|---|---|---|---|---|")
    _project(project, table.replace(" true |", " true | rev |"))
    env = {"HOME": str(home)}
    assert cli(project, "run", env=env).code == 0
    time.sleep(TICK)
    assert "out of date" not in cli_in_process(project, "status", env=env).stdout
    profile.write_text("---\nname: rev\nmodel: sonnet\n---\nReview.\n", encoding="utf-8")
    shown = cli_in_process(project, "status", env=env).stdout
    assert "out of date" in shown


BUSY = """---
backend: shell
---
# A busy workspace

## Task Decomposition
| Task ID | Task Name | Dependencies | Command | Tags | Assignee | Blocked | Approval |
|---|---|---|---|---|---|---|---|
| T-01 | One | None | true | a | rev | | |
| T-02 | Two | T-01 | exit 3 | | lead | | |
| T-03 | Three | T-02 | true | | | | |
| T-04 | Four | None | true | | | legal | |
| T-05 | Five | T-01 | orchestrator discover 'a thing' | | | | |
| T-06 | Six | T-01 | true | | | | before |
| T-07 | Seven | None | true | | | | |
"""

_TRACE = """
import json, os, sys
seen = set()
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, os.PathLike)):
        seen.add(os.path.abspath(os.fspath(args[0])))
sys.addaudithook(hook)
from orchestrator.commands.shown import derive
from orchestrator.state.workspace import Workspace
derive(Workspace.find(sys.argv[1]), {})
print(json.dumps(sorted(seen)))
"""


def test_every_file_status_reads_is_a_source_of_its_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stamps.SOURCES`` names what status reads, not everything in the workspace (after a run
    of 1,000 tasks its logs and inputs are 5,000 files never read): every file a status of a
    busy workspace opens or lists (results, briefs, the journal and the event log, a checkpoint's
    manifest, the discoveries, a template and profiles of the workspace's and the user's, the
    archive) is one its stamp covers."""
    home = tmp_path / "home"
    (home / ".claude" / "agents").mkdir(parents=True)
    (home / ".claude" / "agents" / "lead.md").write_text("---\nname: lead\n---\nLead.\n", encoding="utf-8")
    project = _project(tmp_path / "project", BUSY)
    root = project / ".orchestrator"
    (root / "agents").mkdir()
    (root / "agents" / "rev.md").write_text("---\nname: rev\n---\nReview.\n", encoding="utf-8")
    env = {"HOME": str(home)}
    assert cli(project, "run", env=env).code != 0  # (T-02 fails)
    for words in (("checkpoint", "save", "one"), ("checkpoint", "restore", "one"), ("archive", "T-07")):
        assert cli(project, *words, env=env).code == 0, words
    assert cli(project, "add", "Eight", "--command", "true", env=env).code == 0  # (the plan changed: briefs rendered)
    (root / "templates").mkdir()
    packaged = Path(snapshot.__file__).parents[2] / "templates" / "agent_task.md.j2"
    (root / "templates" / "agent_task.md.j2").write_text(packaged.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", _TRACE, str(root)],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    read = [path for path in json.loads(done.stdout) if path.startswith((str(tmp_path) + os.sep, str(home)))]
    assert any("/results/" in path for path in read) and any("/templates/" in path for path in read), read
    assert any(path.endswith("manifest.json") or "/checkpoints/" in path for path in read), read
    monkeypatch.setenv("HOME", str(home))
    covered = stamps.covered(root) | {str(root / "master_plan.md")}
    # (a file looked for and not there: the listing of its directory tells when it comes)
    missing = [path for path in read if not os.path.exists(path) and Path(path).parent.as_posix() in covered]
    assert [path for path in read if path not in covered and path not in missing] == []


# --- the stamp and the file, in-process ---------------------------------------------------------


def test_the_stamp_changes_with_every_source_and_with_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path)
    root = project / ".orchestrator"
    monkeypatch.chdir(project)
    first = stamps.sources(root)
    assert stamps.sources(root) == first
    (root / "state" / "snapshot.shown").write_bytes(b"x")  # a snapshot is no source of itself
    (root / "state" / ".tmp-params.json.1.0").write_bytes(b"x")  # nor a file still being written
    assert stamps.sources(root) == first
    results = root / "results"
    before = {name: os.environ.get(name) for name in ("ORCHESTRATOR_TIMING", "TZ")}
    changes: list[Callable[[], object]] = [
        lambda: results.mkdir(),
        lambda: (results / "agent-01-result.md").write_text("x", encoding="utf-8"),
        lambda: (results / "agent-01-result.md").write_text("y", encoding="utf-8"),  # (its size and mtime alike)
        lambda: monkeypatch.setenv("ORCHESTRATOR_TIMING", "tick=0.1"),
        lambda: monkeypatch.setenv("TZ", "Asia/Tokyo"),
        lambda: monkeypatch.chdir(root),
    ]
    seen = [stamps.sources(root).key]
    for change in changes:
        time.sleep(TICK)  # (two writes in one tick of the filesystem's clock: ``settled`` is for them)
        change()
        key = stamps.sources(root).key
        assert key not in seen, f"change {changes.index(change)} left the stamp as it was"
        seen.append(key)
    monkeypatch.chdir(project)
    for name, value in before.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    (results / "agent-01-result.md").unlink()
    assert stamps.sources(root).key == seen[1], "the same sources again: the same stamp"
    assert stamps.sources(root, extra=["--param", "a=b"]).key not in seen


def test_a_source_changed_after_the_clock_is_not_settled(tmp_path: Path) -> None:
    project = _project(tmp_path)
    root = project / ".orchestrator"
    began = stamps.clock(root)
    assert stamps.sources(root).settled(began)
    (root / "master_plan.md").write_text(PLAN + "\n", encoding="utf-8")
    assert not stamps.sources(root).settled(began)


def test_what_was_derived_while_a_source_changed_is_shown_and_not_kept(tmp_path: Path) -> None:
    project = _project(tmp_path)
    workspace = Workspace.find(project / ".orchestrator")
    plan = workspace.plan_file

    def derive() -> snapshot.Derived:
        plan.write_text(PLAN.replace("One", "Uno"), encoding="utf-8")  # (a person saves as it is read)
        return {"said": "one"}, snapshot.FOREVER

    assert snapshot.cached(workspace, "test", derive) == {"said": "one"}
    assert not _kept(project, "test").exists()
    time.sleep(TICK)
    assert snapshot.cached(workspace, "test", lambda: ({"said": "uno"}, snapshot.FOREVER)) == {"said": "uno"}
    assert snapshot.cached(workspace, "test", lambda: ({"said": "never asked"}, snapshot.FOREVER)) == {"said": "uno"}


def test_a_snapshot_of_another_version_of_the_orchestrator_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path)
    workspace = Workspace.find(project / ".orchestrator")
    assert snapshot.cached(workspace, "test", lambda: ({"v": 1}, snapshot.FOREVER)) == {"v": 1}
    assert snapshot.cached(workspace, "test", lambda: ({"v": 2}, snapshot.FOREVER)) == {"v": 1}
    monkeypatch.setattr(stamps, "__version__", "99.0")
    assert snapshot.cached(workspace, "test", lambda: ({"v": 3}, snapshot.FOREVER)) == {"v": 3}


def test_the_code_is_its_files_never_its_directories_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command importing a module for the first time makes a ``__pycache__`` beside it: that
    is no change of the code, and a process that read the code before agrees with one started
    after (CI: a status in the test's process then found the snapshot six others had kept under
    another key). A file written in place (an editor's save) is one, though no directory's time
    moves."""
    package = tmp_path / "package"
    (package / "inner").mkdir(parents=True)
    module = package / "inner" / "module.py"
    module.write_text("A = 1\n", encoding="utf-8")
    (package / "top.py").write_text("B = 2\n", encoding="utf-8")
    root = _project(tmp_path / "project") / ".orchestrator"
    monkeypatch.setattr(stamps, "_PACKAGE", package)

    def now() -> bytes:
        stamps._CODE.clear()  # (as a process started now finds the code)
        return stamps.sources(root).key

    monkeypatch.setattr(stamps, "_CODE", [])
    first = now()
    time.sleep(TICK)
    (package / "inner" / "__pycache__").mkdir()
    (package / "inner" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"compiled")
    assert now() == first, "a __pycache__ made is not a change of the code"
    with module.open("r+", encoding="utf-8") as saved:  # (in place: the same inode, the directory untouched)
        saved.write("A = 3\n")
    assert now() != first, "a module saved in place is"


def test_nothing_is_kept_where_the_state_directory_leads_out_of_the_workspace(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / ".orchestrator" / "state").rmdir()
    (project / ".orchestrator" / "state").symlink_to(outside)
    workspace = Workspace.find(project / ".orchestrator")
    assert snapshot.cached(workspace, "test", lambda: ({"v": 1}, snapshot.FOREVER)) == {"v": 1}
    assert list(outside.iterdir()) == []
