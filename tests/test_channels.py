"""The channels (``share``, ``note``, ``discover``, ``sync``, ``context``): real CLI processes,
real files in ``.orchestrator/context/``, real runs whose tasks call them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import CLI, HANG_GUARD, Result, Spec, cli_in_process, run, write_plan

from orchestrator.state import context, events
from orchestrator.state.workspace import Workspace

CALL = '"$ORCHESTRATOR_PYTHON" -m orchestrator'  # how a shell task calls the channels


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without the variables of an attempt (the suite may itself run as a task);
    the test clocks kept (``ORCHESTRATOR_TIMING``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_") or k == "ORCHESTRATOR_TIMING"}
    return {**env, **extra}


def cli(project: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    done = subprocess.run(
        [*CLI, *args],
        cwd=project,
        env=env or clean_env(),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def ws(project: Path) -> Workspace:
    return Workspace(project / ".orchestrator")


def entries(project: Path, kind: context.Kind, task: str | None = None) -> list[context.Entry]:
    return context.read_kind(ws(project), kind, task)


def diamond(project: Path, settings: dict[str, Any] | None = None) -> None:
    """T-01 ─▶ T-02 ─▶ T-03, and T-04 beside them: not upstream of T-03."""
    specs = [
        Spec("T-01", "echo one"),
        Spec("T-02", "echo two", deps=["T-01"]),
        Spec("T-03", "echo three", deps=["T-02"]),
        Spec("T-04", "echo four"),
    ]
    write_plan(project, specs, settings)


# --- the commands -------------------------------------------------------------------------------


def test_each_command_records_its_entry_in_its_file_and_the_events(tmp_path: Path) -> None:
    diamond(tmp_path)
    assert cli(tmp_path, "share", "T-01", "listed 40 files").code == 0
    assert cli(tmp_path, "note", "T-02", "private thought").code == 0
    assert cli(tmp_path, "discover", "t-02", "the API pages at 100").code == 0  # ids as logs takes them
    assert cli(tmp_path, "sync", "survey done").code == 0
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / ".orchestrator" / "context").rglob("*.md"))
    assert files == [
        ".orchestrator/context/discoveries.md",
        ".orchestrator/context/notes/T-02.md",
        ".orchestrator/context/shared.md",
        ".orchestrator/context/sync.md",
    ]
    shared = (tmp_path / ".orchestrator" / "context" / "shared.md").read_text(encoding="utf-8")
    assert re.fullmatch(r"# Shared updates\n\n## \S+ · T-01 · share\n\nlisted 40 files\n", shared), shared
    [found] = entries(tmp_path, context.Kind.DISCOVER)
    assert (found.task, found.kind, found.text) == ("T-02", context.Kind.DISCOVER, "the API pages at 100")
    [synced] = entries(tmp_path, context.Kind.SYNC)
    assert (synced.task, synced.text) == (None, "survey done")
    logged = events.read_all(ws(tmp_path).events_file)
    assert [(e["event"], e["task"], e["text"], e["run"]) for e in logged] == [
        ("shared", "T-01", "listed 40 files", None),
        ("discovered", "T-02", "the API pages at 100", None),
        ("synced", None, "survey done", None),
    ]  # no note: its text is the task's own
    assert "private thought" not in ws(tmp_path).events_file.read_text(encoding="utf-8")


def test_json_shapes(tmp_path: Path) -> None:
    diamond(tmp_path)
    for kind, words in (
        ("share", ["T-01", "shared"]),
        ("note", ["T-01", "noted"]),
        ("discover", ["T-01", "found"]),
        ("sync", ["--task", "T-01", "synced"]),
    ):
        done = cli(tmp_path, kind, *words, "--json")
        assert done.code == 0, done.stderr
        data = json.loads(done.stdout)
        assert set(data) == {"ok", "time", "task", "kind", "text", "author", "file", "run"}
        assert (data["ok"], data["task"], data["kind"], data["text"], data["author"], data["run"]) == (
            True, "T-01", kind, words[-1], None, None,
        )  # fmt: skip
        assert (tmp_path / data["file"]).is_file()
    shown = json.loads(cli(tmp_path, "context", "T-01", "--json").stdout)
    assert set(shown) == {"ok", "task", "upstream", "shared", "discoveries", "notes"}
    assert [e["text"] for e in shown["shared"]] == ["shared"]
    assert shown["notes"] == [
        {"time": shown["notes"][0]["time"], "task": "T-01", "kind": "note", "text": "noted", "author": None}
    ]
    status = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert status["discoveries"]["count"] == 1
    assert [e["text"] for e in status["discoveries"]["latest"]] == ["found"]
    human = cli_in_process(tmp_path, "status").stdout
    assert "Discoveries: 1" in human and "💡 T-01: found" in human


def test_context_shows_the_upstream_and_its_own_notes_only(tmp_path: Path) -> None:
    diamond(tmp_path)
    for task in ("T-01", "T-02", "T-03", "T-04"):
        assert cli(tmp_path, "share", task, f"share of {task}").code == 0
        assert cli(tmp_path, "note", task, f"note of {task}").code == 0
    assert cli(tmp_path, "discover", "T-04", "found by T-04").code == 0  # not upstream: everyone's anyway
    data = json.loads(cli(tmp_path, "context", "T-03", "--json").stdout)
    assert data["upstream"] == ["T-01", "T-02"]
    assert [e["text"] for e in data["shared"]] == ["share of T-01", "share of T-02", "share of T-03"]
    assert [e["text"] for e in data["discoveries"]] == ["found by T-04"]
    assert [e["text"] for e in data["notes"]] == ["note of T-03"]
    text = cli(tmp_path, "context", "T-03").stdout
    assert "share of T-01" in text and "share of T-02" in text and "note of T-03" in text
    assert "found by T-04" in text
    assert "share of T-04" not in text and "note of T-01" not in text and "note of T-04" not in text
    # Inside a task, the task and the workspace come from the environment.
    inside = clean_env(ORCHESTRATOR_TASK_ID="T-02", ORCHESTRATOR_WORKSPACE=str(tmp_path / ".orchestrator"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = json.loads(cli(elsewhere, "context", "--json", env=inside).stdout)
    assert data["task"] == "T-02" and [e["text"] for e in data["notes"]] == ["note of T-02"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        pytest.param(["share", "T-09", "text"], None, "no task T-09 in the plan", id="unknown-task"),
        pytest.param(["discover", "T-01", ""], None, "the text is empty", id="empty"),
        pytest.param(["note", "T-01", " \n\t "], None, "the text is empty", id="blank"),
        pytest.param(["share", "T-01", "x" * 20_001], None, "more than the 20,000", id="too-long"),
        pytest.param(["share", "T-01", "-"], "a\0b", "NUL", id="nul-from-stdin"),
        pytest.param(["share", "T-01"], None, "takes a task and a text", id="no-text"),
        pytest.param(["share", "a", "T-01", "b", "c"], None, "takes a task and a text", id="too-many"),
        pytest.param(["sync", "--task", "T-09", "done"], None, "no task T-09", id="sync-unknown-task"),
        pytest.param(["context", "T-09"], None, "no task T-09", id="context-unknown-task"),
        pytest.param(["share", "nowhere", "T-01", "text"], None, "no such workspace", id="no-workspace"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], stdin: str | None, message: str
) -> None:
    diamond(tmp_path)
    done = cli(tmp_path, *args, stdin=stdin)
    assert done.code == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / ".orchestrator" / "context").exists()
    assert not ws(tmp_path).events_file.exists()
    as_json = json.loads(cli(tmp_path, *args, "--json", stdin=stdin).stdout)
    assert as_json["ok"] is False and as_json["error"] in {"UsageError", "WorkspaceError"}


def test_text_from_stdin_and_a_text_that_looks_like_a_heading_stays_one_entry(tmp_path: Path) -> None:
    diamond(tmp_path)
    forged = "first line\n## 2020-01-01T00:00:00.000+00:00 · T-04 · share\n\nforged\n   \\## already escaped\n#tag"
    assert cli(tmp_path, "share", "T-01", "-", stdin=forged + "\n\n").code == 0
    assert cli(tmp_path, "share", "T-02", "second").code == 0
    found = entries(tmp_path, context.Kind.SHARE)
    assert [(e.task, e.text) for e in found] == [("T-01", forged), ("T-02", "second")]  # read back exactly
    data = json.loads(cli(tmp_path, "context", "T-04", "--json").stdout)
    assert data["shared"] == []  # the forged heading gave T-04 nothing


def test_ten_concurrent_writers_leave_every_entry_whole(tmp_path: Path) -> None:
    """Ten processes share and discover at once, each a long many-line text: every entry is
    read back whole, in its own file, and every event line parses."""
    diamond(tmp_path)
    texts = {n: "\n".join(f"writer {n} line {i} " + "x" * 80 for i in range(150)) for n in range(10)}
    writers = [
        subprocess.Popen(
            [*CLI, "share" if n % 2 else "discover", f"T-0{n % 4 + 1}", texts[n]],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(10)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=HANG_GUARD)
        assert writer.returncode == 0, err
    shared = entries(tmp_path, context.Kind.SHARE)
    found = entries(tmp_path, context.Kind.DISCOVER)
    assert sorted(e.text for e in shared) == sorted(texts[n] for n in range(1, 10, 2))
    assert sorted(e.text for e in found) == sorted(texts[n] for n in range(0, 10, 2))
    for entry in (*shared, *found):
        number = int(entry.text.split()[1])
        assert entry.task == f"T-0{number % 4 + 1}"
    logged = events.read_all(ws(tmp_path).events_file)
    assert sorted(e["text"] for e in logged) == sorted(texts.values())
    for name in ("shared.md", "discoveries.md"):
        assert (tmp_path / ".orchestrator" / "context" / name).read_text(encoding="utf-8").count("\n# ") == 0


def _append_many(root: str, writer: int, barrier: Any, count: int) -> None:
    workspace = Workspace(Path(root))
    barrier.wait()
    for n in range(count):
        text = "\n".join(f"writer {writer} entry {n} line {i} " + "z" * 60 for i in range(40))
        context.append(workspace, context.Kind.SHARE, f"T-0{writer % 4 + 1}", text)


def test_appends_at_the_same_moment_never_mix(tmp_path: Path) -> None:
    """Ten processes released together by a barrier append 20 entries each to one file: all 200
    are read back whole (an entry written in more than one write() would be torn apart here)."""
    import multiprocessing

    diamond(tmp_path)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(10)
    root = str(tmp_path / ".orchestrator")
    workers = [spawn.Process(target=_append_many, args=(root, w, barrier, 20)) for w in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(HANG_GUARD)
        assert worker.exitcode == 0
    found = entries(tmp_path, context.Kind.SHARE)
    assert len(found) == 200
    for entry in found:
        writer, number = int(entry.text.split()[1]), int(entry.text.split()[3])
        expected = "\n".join(f"writer {writer} entry {number} line {i} " + "z" * 60 for i in range(40))
        assert entry.text == expected and entry.task == f"T-0{writer % 4 + 1}"
    assert len({e.text for e in found}) == 200


# --- in a run -----------------------------------------------------------------------------------


def test_every_backend_gets_the_task_the_workspace_and_the_python(tmp_path: Path) -> None:
    """A shell task and a command task see the variables; the channel call inside a task needs
    neither the workspace nor PATH: it runs from another directory with an empty PATH."""
    record = 'echo "$ORCHESTRATOR_TASK_ID|$ORCHESTRATOR_WORKSPACE|$ORCHESTRATOR_PYTHON" > "env-$ORCHESTRATOR_TASK_ID"'
    script = f'{record}\nmkdir -p sub && cd sub && PATH= {CALL} share T-01 "from $ORCHESTRATOR_TASK_ID"'
    write_plan(tmp_path, [Spec("T-01", script)], {"backend": "shell"})
    done = run(tmp_path)
    assert done.code == 0, done.stdout + done.stderr
    workspace = str((tmp_path / ".orchestrator").resolve())
    assert (tmp_path / "env-T-01").read_text() == f"T-01|{workspace}|{sys.executable}\n"
    assert [e.text for e in entries(tmp_path, context.Kind.SHARE)] == ["from T-01"]
    command = ["bash", "-c", f'cat > /dev/null; {record}; {CALL} note "$ORCHESTRATOR_TASK_ID" "noted"']
    write_plan(tmp_path, [Spec("T-02", "unused")], {"backend": "command", "command": command})
    done = run(tmp_path)
    assert done.code == 0, done.stdout + done.stderr
    assert (tmp_path / "env-T-02").read_text() == f"T-02|{workspace}|{sys.executable}\n"
    assert [e.text for e in entries(tmp_path, context.Kind.NOTE, "T-02")] == ["noted"]


def test_a_discovery_reaches_tasks_that_start_later_and_reruns_nothing(tmp_path: Path) -> None:
    """T-01 (shell) discovers; T-02 (an agent: the command backend, whose stdin is its prompt)
    starts after it and is told; T-03, started before the discovery, is not. The discovery's
    event carries the run's name. A later discovery makes no completed task run again."""
    gate = tmp_path / "gate"
    # T-03 starts first and holds its prompt; T-01 discovers once T-03 has started.
    specs = [
        Spec("T-03", "unused"),
        Spec("T-01", "unused"),
        Spec("T-02", "unused", deps=["T-01"]),
    ]
    agent = (
        'if [ "$ORCHESTRATOR_TASK_ID" = T-01 ]; then '
        f'while [ ! -e {gate} ]; do sleep 0.05; done; {CALL} discover T-01 "DISCOVERY-42 the API pages at 100"; '
        f'elif [ "$ORCHESTRATOR_TASK_ID" = T-03 ]; then touch {gate}; fi; cat > /dev/null; echo done'
    )
    write_plan(tmp_path, specs, {"backend": "command", "command": ["bash", "-c", agent], "max_parallel": 2})
    done = run(tmp_path)
    assert done.code == 0, done.stdout + done.stderr
    logs = tmp_path / ".orchestrator" / "logs"
    told = (logs / "agent-03.attempt-1.in").read_text(encoding="utf-8")  # T-02 is Agent-03
    assert "## Discoveries so far" in told and "DISCOVERY-42 the API pages at 100" in told
    assert "DISCOVERY-42" not in (logs / "agent-01.attempt-1.in").read_text(encoding="utf-8")  # T-03: before
    assert "## Channels" in told and "-m orchestrator discover T-02" in told
    [event] = [e for e in events.read_all(ws(tmp_path).events_file) if e["event"] == "discovered"]
    started = next(e for e in done.events if e["event"] == "run_started")
    [recorded] = [e for e in events.read_all(ws(tmp_path).events_file) if e["event"] == "run_started"]
    assert event["run"] == recorded["run"] and event["task"] == "T-01"
    assert started["to_run"] == 3
    # A discovery after the run: nothing completed runs again (prompts are not fingerprinted).
    assert cli(tmp_path, "discover", "T-02", "something new").code == 0
    again = run(tmp_path)
    assert again.code == 0
    assert next(e for e in again.events if e["event"] == "run_started")["to_run"] == 0


def test_a_sync_inside_a_task_is_that_tasks_and_the_runs(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f'{CALL} sync "halfway there"')])
    done = run(tmp_path)
    assert done.code == 0, done.stdout + done.stderr
    [entry] = entries(tmp_path, context.Kind.SYNC)
    assert (entry.task, entry.text) == ("T-01", "halfway there")
    logged = events.read_all(ws(tmp_path).events_file)
    [synced] = [e for e in logged if e["event"] == "synced"]
    assert synced["run"] == logged[0]["run"] and synced["task"] == "T-01"


def prompt_of(project: Path, cap: int | None) -> str:
    settings: dict[str, Any] = {"backend": "command", "command": ["bash", "-c", "cat > /dev/null; echo ok"]}
    if cap is not None:
        settings["context_cap"] = cap
    write_plan(project, [Spec("T-01", "unused")], settings)
    done = run(project, "--rerun", "T-01")
    assert done.code == 0, done.stdout + done.stderr
    logs = (project / ".orchestrator" / "logs").glob("agent-01.attempt-*.in")
    last = max(logs, key=lambda p: int(p.name.split(".")[1].removeprefix("attempt-")))
    return last.read_text(encoding="utf-8")


def test_the_cap_keeps_the_newest_and_says_what_it_left_out(tmp_path: Path) -> None:
    diamond(tmp_path)
    for n in range(1, 6):
        assert cli(tmp_path, "discover", "T-04", f"finding {n} " + "y" * 250).code == 0
    # Each discovery takes about 320 characters in the prompt: 1,000 hold the newest three.
    told = prompt_of(tmp_path, 1000)
    section = told[told.index("## Discoveries so far") :]
    assert [int(n) for n in re.findall(r"finding (\d)", section)] == [5, 4, 3]
    blocks = section.split("\n### ")[1:]
    assert sum(len("### " + b) for b in blocks) <= 1000 + 200  # the blocks, and the line after them
    assert "… 2 earlier discoveries left out: `" in section
    assert re.search(r"`\S+ -m orchestrator context T-01` shows them all", section)
    # The newest alone longer than the cap: as much of it as fits.
    told = prompt_of(tmp_path, 100)
    section = told[told.index("## Discoveries so far") :]
    assert "finding 5 yyy" in section and "finding 4" not in section and "…" in section
    assert "… 4 earlier discoveries left out" in section
    # 0: nothing of the channels.
    told = prompt_of(tmp_path, 0)
    assert "## Channels" not in told and not re.search(r"finding \d", told)
    # The default holds all five (about 1,600 characters).
    told = prompt_of(tmp_path, None)
    assert all(f"finding {n}" in told for n in range(1, 6)) and "left out" not in told


def test_a_shell_task_gets_no_prompt_but_reads_the_context(tmp_path: Path) -> None:
    diamond(tmp_path)
    assert cli(tmp_path, "discover", "T-01", "known before").code == 0
    write_plan(tmp_path, [Spec("T-01", f'{CALL} context "$ORCHESTRATOR_TASK_ID" --json > seen.json')])
    assert run(tmp_path).code == 0
    assert not list((tmp_path / ".orchestrator" / "logs").glob("*.in"))
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert [e["text"] for e in seen["discoveries"]] == ["known before"]


def test_an_unreadable_discoveries_file_does_not_stop_a_task(tmp_path: Path) -> None:
    """A directory where discoveries.md should be: the agent task runs without discoveries, and
    ``discover`` says what is wrong in one line (exit 2)."""
    (tmp_path / ".orchestrator" / "context" / "discoveries.md").mkdir(parents=True)
    told = prompt_of(tmp_path, None)
    assert "## Channels" in told and "## Discoveries so far" not in told
    done = cli(tmp_path, "discover", "T-01", "x")
    assert done.code == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    status = cli_in_process(tmp_path, "status", "--json")  # the tasks are reported all the same
    assert status.code == 0 and "discoveries.md" in json.loads(status.stdout)["discoveries"]["problem"]


def test_a_channel_command_names_its_file_from_where_it_was_called(tmp_path: Path) -> None:
    """QA pass 3: called from another directory (a task with cwd, a worktree), ``share`` printed
    `.orchestrator/context/shared.md`, which is not there from where it ran."""
    project = tmp_path / "project"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        "---\nbackend: shell\n---\n## Task Decomposition\n| Task ID | Command | Dependencies |\n|---|---|---|\n"
        "| T-01 | echo one | None |\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "ORCHESTRATOR_WORKSPACE": str(project / ".orchestrator")}
    said = subprocess.run(
        [sys.executable, "-m", "orchestrator", "share", "T-01", "via env", "--json"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert said.returncode == 0, said.stderr
    named = json.loads(said.stdout)["file"]  # (not below the current directory: absolute)
    assert named == str(project.resolve() / ".orchestrator" / "context" / "shared.md")
    assert Path(elsewhere, named).is_file()
