"""What rendering writes, byte for byte, and which templates run in the sandbox.

The expected files under ``fixtures/render/`` were written by the orchestrator; a change of how
rendering works must write the very same bytes (the status blocks of master_plan.md changed on
purpose when they got their markers). ``VERSION`` stands for the package version.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
from jinja2.sandbox import SandboxedEnvironment

from orchestrator import PlanError, Workspace, __version__, load_plan
from orchestrator.output.briefs import render_brief, render_briefs
from orchestrator.output.sections import update_plan_file
from orchestrator.output.templates import Templates
from orchestrator.state import store

FIXTURES = Path(__file__).parent / "fixtures" / "render"
PACKAGED = Path(__file__).parent.parent / "orchestrator" / "templates"


def workspace_with(root: Path, plan_text: str) -> Workspace:
    (root / ".orchestrator").mkdir(parents=True)
    (root / ".orchestrator" / "master_plan.md").write_text(plan_text, encoding="utf-8")
    return Workspace(root / ".orchestrator")


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_render_writes_the_same_bytes_as_before(name: str, tmp_path: Path) -> None:
    source = FIXTURES / name
    ws = workspace_with(tmp_path / "project", (source / "master_plan.md").read_text(encoding="utf-8"))
    update_plan_file(load_plan(ws.root), ws)
    report = render_briefs(load_plan(ws.root), ws)
    assert report.kept_edited == [] and report.unchanged == []

    version = f"rendered_by: orchestrator {__version__}\n".encode()
    expected = {
        path: data.replace(b"rendered_by: orchestrator VERSION\n", version)
        for path, data in tree(source / "expected").items()
    }
    assert tree(ws.root) == expected

    again = render_briefs(load_plan(ws.root), ws)
    assert again.written == [] and len(again.unchanged) == len(report.written)


def test_one_brief_renders_as_in_a_whole_render(tmp_path: Path) -> None:
    """render_brief spells each input's file name itself; render_briefs looks them up once for all."""
    ws = workspace_with(tmp_path, (FIXTURES / "varied" / "master_plan.md").read_text(encoding="utf-8"))
    plan = load_plan(ws.root)
    render_briefs(plan, ws)
    for task in plan.tasks.values():
        assert render_brief(plan, ws, task, Templates.of(ws)) == ws.brief(task).read_text(encoding="utf-8")


# --- the sandbox ---------------------------------------------------------------------------------


def test_packaged_templates_reference_no_other_template() -> None:
    """A packaged template runs outside the sandbox; an include, extends or import in it could
    load an override from the workspace into that unsandboxed environment."""
    env = jinja2.Environment()
    for path in sorted(PACKAGED.glob("*.j2")):
        ast = env.parse(path.read_text(encoding="utf-8"))
        assert list(jinja2.meta.find_referenced_templates(ast)) == [], path.name


def test_packaged_templates_run_outside_the_sandbox_and_overrides_inside(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, (FIXTURES / "norequest" / "master_plan.md").read_text(encoding="utf-8"))
    ws.templates_dir.mkdir()
    (ws.templates_dir / "assignment.md.j2").write_text("{{ rows | length }}\n", encoding="utf-8")
    templates = Templates(ws)
    assert isinstance(templates.get("assignment.md.j2").environment, SandboxedEnvironment)
    for name in ("agent_task.md.j2", "result.md.j2", "final_output.md.j2", "dependency_graph.md.j2"):
        assert not isinstance(templates.get(name).environment, SandboxedEnvironment), name
    assert not isinstance(Templates(None).get("master_plan.md.j2").environment, SandboxedEnvironment)


# OBJ is an object and LIST a list the template is given; PWNED a file no template may create.
ESCAPES = [
    pytest.param("{{ OBJ.__class__.__mro__ }}", id="dunder-attribute"),
    pytest.param("{{ OBJ.__init__.__globals__ }}", id="function-globals"),
    pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="subclasses"),
    pytest.param("{{ cycler.__init__.__globals__.os.system('touch PWNED') }}", id="cycler-globals"),
    pytest.param("{{ lipsum.__globals__['os'].system('touch PWNED') }}", id="lipsum-globals"),
    pytest.param("{{ LIST.append(1) }}", id="mutate-a-list"),
    pytest.param("{{ 'x'.format.__globals__ }}", id="method-globals"),
]
VARIABLES = {"agent_task.md.j2": ("task", "inputs"), "assignment.md.j2": ("rows[0]", "rows")}


@pytest.mark.parametrize("source", ESCAPES)
@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_an_override_cannot_reach_python(name: str, source: str, tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, (FIXTURES / "varied" / "master_plan.md").read_text(encoding="utf-8"))
    ws.templates_dir.mkdir()
    pwned = tmp_path / "pwned"
    obj, items = VARIABLES[name]
    text = source.replace("OBJ", obj).replace("LIST", items).replace("PWNED", str(pwned))
    (ws.templates_dir / name).write_text(text, encoding="utf-8")
    plan = load_plan(ws.root)
    with pytest.raises(PlanError) as caught:
        if name == "agent_task.md.j2":
            render_briefs(plan, ws)
        else:
            update_plan_file(plan, ws)
    message = str(caught.value)
    assert f"templates/{name}" in message and "unsafe" in message
    assert not pwned.exists()
    assert not ws.tasks_dir.exists()


def test_an_override_that_includes_a_packaged_template_keeps_it_in_the_sandbox(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, (FIXTURES / "norequest" / "master_plan.md").read_text(encoding="utf-8"))
    ws.templates_dir.mkdir()
    (ws.templates_dir / "agent_task.md.j2").write_text('{% include "dependency_graph.md.j2" %}', encoding="utf-8")
    (ws.templates_dir / "dependency_graph.md.j2").write_text("{{ mermaid.__class__ }}", encoding="utf-8")
    with pytest.raises(PlanError, match="unsafe"):
        render_briefs(load_plan(ws.root), ws)


def test_plan_text_is_never_template_source(tmp_path: Path) -> None:
    """With the packaged templates outside the sandbox, plan text must still be only data."""
    pwned = tmp_path / "pwned"
    attack = f"{{{{ cycler.__init__.__globals__.os.system('touch {pwned}') }}}}"
    plan_text = (FIXTURES / "norequest" / "master_plan.md").read_text(encoding="utf-8")
    plan_text = plan_text.replace("| do a |", f"| {attack} |")
    plan_text = plan_text.replace("# Plan\n", f"# Plan\n\n## Original Request\n{attack}\n")
    ws = workspace_with(tmp_path, plan_text)
    plan = load_plan(ws.root)
    assert attack in plan.request and attack in plan.tasks["A"].description
    update_plan_file(plan, ws)
    render_briefs(plan, ws)
    brief = (ws.tasks_dir / "agent-01.md").read_text(encoding="utf-8")
    assert f"## Task Description\n{attack}\n" in brief
    assert f"> {attack}" in brief
    assert not pwned.exists()


@pytest.mark.parametrize("command", ["validate", "render"])
def test_validate_and_render_do_not_import_asyncio(tmp_path: Path, command: str) -> None:
    """They load the backends (to check a plan's backend names) but run no process: importing
    asyncio and anyio was a tenth of their start-up."""
    plan = (
        "---\nbackend: shell\n---\n# Two tasks\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n| T-01 | One | None | true |\n"
        "| T-02 | Two | T-01 | true |\n"
    )
    ws = workspace_with(tmp_path, plan)
    script = (
        "import sys, contextlib, io\n"
        "from orchestrator import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = cli.main([{command!r}, {str(ws.root)!r}])\n"
        "print(code, sorted(name for name in ('asyncio', 'anyio') if name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "0 []"
    if command == "render":
        assert len(list(ws.tasks_dir.iterdir())) == len(load_plan(ws.root).tasks)


# --- writing many files --------------------------------------------------------------------------


def test_write_many_keeps_modes_and_gives_new_files_the_usual_one(tmp_path: Path) -> None:
    kept = {"private.md": 0o600, "shared.md": 0o640, "script.md": 0o755}
    for name, mode in kept.items():
        (tmp_path / name).write_text("old\n", encoding="utf-8")
        (tmp_path / name).chmod(mode)
    items = [(tmp_path / name, "new\n") for name in kept] + [(tmp_path / "deep" / "er" / "fresh.md", "new\n")]
    assert store.write_many(items) == 4
    umask = os.umask(0o022)
    os.umask(umask)
    for name, mode in kept.items():
        assert (tmp_path / name).stat().st_mode & 0o7777 == mode, name
    assert (tmp_path / "deep" / "er" / "fresh.md").stat().st_mode & 0o7777 == 0o666 & ~umask
    assert all(path.read_text(encoding="utf-8") == "new\n" for path, _ in items)
    assert not list(tmp_path.rglob(".tmp-*"))


def test_write_many_takes_a_listing_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """render lists agent_tasks/ itself: write_many uses that listing instead of a second one."""
    (tmp_path / "private.md").write_text("old\n", encoding="utf-8")
    (tmp_path / "private.md").chmod(0o600)

    def no_listing(path: object) -> list[str]:
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr(os, "listdir", no_listing)
    items = [(tmp_path / "private.md", "new\n"), (tmp_path / "fresh.md", "new\n")]
    assert store.write_many(items, listed={tmp_path: {"private.md"}}) == 2
    assert (tmp_path / "private.md").stat().st_mode & 0o7777 == 0o600
    assert all(path.read_text(encoding="utf-8") == "new\n" for path, _ in items)


def test_write_many_steps_over_a_dead_writers_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp names are pid + counter; a leftover of a dead process that had our pid is skipped."""
    monkeypatch.setattr(store, "_TEMP_NUMBERS", itertools.count(7))
    leftover = tmp_path / f".tmp-a.md.{os.getpid()}.7"
    leftover.write_bytes(b"a dead writer's half file")
    store.write_many([(tmp_path / "a.md", "mine\n")])
    assert (tmp_path / "a.md").read_text(encoding="utf-8") == "mine\n"
    assert leftover.read_bytes() == b"a dead writer's half file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.md", leftover.name])


def test_a_forked_writer_names_its_temp_files_by_its_own_pid(tmp_path: Path) -> None:
    """The pid in temp names is read once, and again in a forked child: two live writers never
    share a name stem."""

    def temp_name(name: str) -> str:
        return os.path.basename(store.write_temp(tmp_path / name, b"", sync=False))

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os._exit(0 if os.write(write, temp_name("x.md").encode()) else 1)
    os.close(write)
    name = os.read(read, 4096).decode()
    os.close(read)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert name.startswith(f".tmp-x.md.{child}.")
    assert temp_name("y.md").startswith(f".tmp-y.md.{os.getpid()}.")


KILLED_BATCH = """
import os, signal, sys
from collections.abc import Callable
from pathlib import Path
from orchestrator.state import store

directory, kill_at = Path(sys.argv[1]), int(sys.argv[2])
calls = {"sync": 0, "replace": 0}
real_replace, real_sync = os.replace, store.sync_filesystems

def counted(name, real):
    def call(*args):
        if sum(calls.values()) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        calls[name] += 1
        return real(*args)
    return call

os.replace, store.sync_filesystems = counted("replace", real_replace), counted("sync", real_sync)
store.write_many([(directory / f"f{i}.md", f"new {i}\\n" * 500) for i in range(6)])
"""


@pytest.mark.parametrize("kill_at", [0, 1, 2, 4, 7])
def test_write_many_killed_at_any_step_leaves_each_file_old_or_new(kill_at: int, tmp_path: Path) -> None:
    """Killed before the sync, during the renames or after them: every file whole, old or new."""
    for i in range(3):  # f0-f2 exist, f3-f5 are new
        (tmp_path / f"f{i}.md").write_text(f"old {i}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", KILLED_BATCH, str(tmp_path), str(kill_at)], timeout=60, check=False)
    assert proc.returncode == (-9 if kill_at < 7 else 0)
    replaced = max(0, kill_at - 1)  # the sync comes first, then one replace a file
    for i in range(6):
        path = tmp_path / f"f{i}.md"
        if i < replaced:
            assert path.read_text(encoding="utf-8") == f"new {i}\n" * 500
        elif i < 3:
            assert path.read_text(encoding="utf-8") == f"old {i}\n"
        else:
            assert not path.exists()
    store.clean_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}.md" for i in range(max(3, replaced))]


def test_write_many_into_a_missing_or_empty_directory_puts_it_in_place_whole(tmp_path: Path) -> None:
    """A first render: every file is written into a new directory that then replaces the missing
    or empty one in one rename, so the files appear all at once. The files get the usual mode,
    an existing directory keeps its own, and nothing is left beside it."""
    umask = os.umask(0o022)
    os.umask(umask)
    empty = tmp_path / "empty"
    empty.mkdir()
    empty.chmod(0o750)
    before = empty.stat().st_ino
    for directory in (tmp_path / "missing" / "deeper", empty):
        items = [(directory / f"agent-{i:02d}.md", f"brief {i}\n") for i in range(5)]
        assert store.write_many(items, whole=True) == 5
        assert sorted(p.name for p in directory.iterdir()) == [f"agent-{i:02d}.md" for i in range(5)]
        assert all(path.read_text(encoding="utf-8") == text for path, text in items)
        assert all(path.stat().st_mode & 0o7777 == 0o666 & ~umask for path, _ in items)
    assert empty.stat().st_ino != before, "the empty directory was written into, not replaced"
    assert empty.stat().st_mode & 0o7777 == 0o750
    assert not list(tmp_path.rglob(".tmp-*"))
    kept = tmp_path / "kept"  # not asked for: written into, as any other (a skill's directory)
    kept.mkdir()
    before = kept.stat().st_ino
    assert store.write_many([(kept / "SKILL.md", "skill\n")]) == 1
    assert kept.stat().st_ino == before and (kept / "SKILL.md").read_text(encoding="utf-8") == "skill\n"


def test_write_many_writes_through_a_symlinked_or_no_longer_empty_directory(tmp_path: Path) -> None:
    """A directory that is a symlink stays one (its target gets the files), and one that was
    listed empty but is not any more keeps what appeared in it: the files go in one by one."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "agent_tasks"
    link.symlink_to(target, target_is_directory=True)
    assert store.write_many([(link / "a.md", "a\n")], whole=True) == 1
    assert link.is_symlink() and (target / "a.md").read_text(encoding="utf-8") == "a\n"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "theirs.md").write_text("theirs\n", encoding="utf-8")
    assert store.write_many([(busy / "b.md", "b\n")], listed={busy: set()}, whole=True) == 1
    assert sorted(p.name for p in busy.iterdir()) == ["b.md", "theirs.md"]
    assert (busy / "theirs.md").read_text(encoding="utf-8") == "theirs\n"
    assert not list(tmp_path.rglob(".tmp-*"))


KILLED_FIRST_RENDER = """
import os, signal, sys
from collections.abc import Callable
from pathlib import Path
from orchestrator.state import store

directory, kill_at = Path(sys.argv[1]), int(sys.argv[2])
calls = [0]
real_replace, real_sync = os.replace, store.sync_filesystems

def counted(real):
    def call(*args):
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        calls[0] += 1
        return real(*args)
    return call

os.replace, store.sync_filesystems = counted(real_replace), counted(real_sync)
store.write_many([(directory / f"f{i}.md", f"new {i}\\n" * 500) for i in range(6)], whole=True)
"""


@pytest.mark.parametrize("kill_at", [0, 1, 2])
def test_a_first_render_killed_at_any_step_leaves_no_file_or_every_file(kill_at: int, tmp_path: Path) -> None:
    """Killed before the sync, before the rename or after it: the directory is still empty, or
    holds every file whole; what a killed writer left beside it goes with clean_temp_files."""
    directory = tmp_path / "agent_tasks"
    directory.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_FIRST_RENDER, str(directory), str(kill_at)], timeout=60, check=False
    )
    assert proc.returncode == (-9 if kill_at < 2 else 0)
    names = sorted(p.name for p in directory.iterdir())
    if kill_at < 2:
        assert names == []
        assert [p.name for p in tmp_path.glob(".tmp-agent_tasks.*")], "no staging directory was left to clean"
    else:
        assert names == [f"f{i}.md" for i in range(6)]
        assert all((directory / f"f{i}.md").read_text(encoding="utf-8") == f"new {i}\n" * 500 for i in range(6))
    store.clean_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent_tasks"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_batched_writes_flush_only_their_own_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch (write_many, a first render, sync_files past a handful) ends with one syncfs of
    the file system it wrote to, never a global sync, which would wait on every disk and mount
    of the machine (for ever behind a dead network mount)."""

    def no_global_sync() -> None:
        raise AssertionError("os.sync() was called")

    flushed: list[tuple[int, bool]] = []
    real_syncfs = store._syncfs

    def recorded(fd: int) -> bool:
        done = real_syncfs(fd)
        flushed.append((os.fstat(fd).st_dev, done))
        return done

    monkeypatch.setattr(os, "sync", no_global_sync)
    monkeypatch.setattr(store, "_syncfs", recorded)
    device = tmp_path.stat().st_dev
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "old.md").write_text("old\n", encoding="utf-8")
    assert store.write_many([(tmp_path / "kept" / f"f{i}.md", f"{i}\n") for i in range(3)]) == 3
    assert flushed == [(device, True)]
    assert store.write_many([(tmp_path / "first" / f"f{i}.md", f"{i}\n") for i in range(3)], whole=True) == 3
    assert flushed[1:] == [(device, True)]
    many = []
    for i in range(12):
        path = tmp_path / ("a" if i % 2 else "b") / f"r{i}.md"
        store.write_text(path, f"{i}\n", durable=False)
        many.append(path)
    store.sync_files(many)
    assert flushed[2:] == [(device, True)], "two directories on one file system: one syncfs"
    assert (tmp_path / "first" / "f2.md").read_text(encoding="utf-8") == "2\n"


def test_without_syncfs_a_batch_falls_back_to_one_global_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where syncfs is not to be had (not Linux, or an old libc) the batch still ends flushed,
    with one global sync."""
    syncs: list[int] = []
    monkeypatch.setattr(os, "sync", lambda: syncs.append(1))
    monkeypatch.setattr(store, "_LIBC_SYNCFS", [None])
    assert store.write_many([(tmp_path / f"f{i}.md", f"{i}\n") for i in range(3)]) == 3
    assert syncs == [1]
    assert store.write_many([(tmp_path / "new" / f"f{i}.md", f"{i}\n") for i in range(3)], whole=True) == 3
    assert syncs == [1, 1]
    assert [p.read_text(encoding="utf-8") for p in sorted((tmp_path / "new").iterdir())] == ["0\n", "1\n", "2\n"]


def _failing_syncfs(code: int) -> Callable[[int], int]:
    def syncfs(fd: int) -> int:
        ctypes.set_errno(code)
        return -1

    return syncfs


def test_a_batch_whose_flush_fails_replaces_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs reporting a write-back error (EIO, ENOSPC) means the new bytes may not be on disk: a
    global sync would not say so, and renaming them over the old files could lose both after a
    power cut. The batch stops with an error naming the directory, and every old file stays."""
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("os.sync() hid the error"))
    monkeypatch.setattr(store, "_LIBC_SYNCFS", [_failing_syncfs(errno.EIO)])
    files = [tmp_path / f"f{i}.md" for i in range(3)]
    for path in files:
        path.write_text("old\n", encoding="utf-8")
    with pytest.raises(OSError) as caught:
        store.write_many([(path, "new\n") for path in files])
    assert caught.value.errno == errno.EIO and caught.value.filename == os.fspath(tmp_path)
    assert [path.read_text(encoding="utf-8") for path in files] == ["old\n"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.md", "f1.md", "f2.md"], "no temp file left"
    with pytest.raises(OSError):
        store.write_many([(tmp_path / "new" / f"f{i}.md", "new\n") for i in range(3)], whole=True)
    assert not (tmp_path / "new").exists() or not list((tmp_path / "new").iterdir())


def test_a_kernel_without_syncfs_falls_back_to_a_global_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs: list[int] = []
    monkeypatch.setattr(os, "sync", lambda: syncs.append(1))
    monkeypatch.setattr(store, "_LIBC_SYNCFS", [_failing_syncfs(errno.ENOSYS)])
    assert store.write_many([(tmp_path / f"f{i}.md", f"{i}\n") for i in range(3)]) == 3
    assert syncs == [1]
    assert (tmp_path / "f2.md").read_text(encoding="utf-8") == "2\n"


def test_clean_temp_files_leaves_a_live_writers_temp_file_alone(tmp_path: Path) -> None:
    """A runner cleans temp files at its start, holding the workspace lock; a command that takes
    no lock (``serve`` keeping a webhook delivery's id, ``approve``) may be mid-write in the same
    directory. Its temp file (a live pid in the name) stays, so its rename still finds it; a dead
    writer's goes."""
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        mine = tmp_path / f".tmp-deliveries.json.{live.pid}.3"
        gone = tmp_path / f".tmp-deliveries.json.{dead.pid}.4"
        for path in (mine, gone):
            path.write_bytes(b"{}")
        store.clean_temp_files(tmp_path)
        assert mine.exists() and not gone.exists()
        store.replace(mine, tmp_path / "deliveries.json")  # (the live writer's rename, after the clean)
        assert (tmp_path / "deliveries.json").read_bytes() == b"{}"
    finally:
        live.kill()
        live.wait()
