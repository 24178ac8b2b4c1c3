"""Input that once crashed or hung the runner: each is one clear line, exit 2, and nothing written.

A plan that is a FIFO, /dev/zero or a directory; YAML that nests or aliases without end; NUL bytes;
text too long for a command line; a ``cwd`` that is not there; a plan broken (or replaced by a
FIFO) while a run goes on; briefs and results that are not plain files. The plans in
``tests/bad_plans/`` cover the problems inside a plan file; these are the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from runner_helpers import (
    Spec,
    cli,
    cli_in_process,
    result_body,
    results,
    run,
    start,
    statuses,
    wait_until,
    workspace,
    write_plan,
)

from orchestrator import documents, yamlio
from orchestrator.backends.base import CannotInvoke, Job
from orchestrator.backends.claude import ClaudeBackend
from orchestrator.cli.main import main
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task

Snapshot = dict[str, tuple[str, bytes, int]]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` with its kind, bytes (regular files only) and mtime; links not followed."""
    found: Snapshot = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path).encode(), st.st_mtime_ns)
        elif path.is_file():
            found[rel] = ("file", path.read_bytes(), st.st_mtime_ns)
        else:
            found[rel] = ("other", b"", st.st_mtime_ns)
    return found


def _one_line(stderr: str, *substrings: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert " — " in lines[0], lines[0]  # what, then what to do
    for substring in substrings:
        assert substring in lines[0], lines[0]


# --- master_plan.md that is not a plain file ------------------------------------------------------


def _plan_not_a_file(project: Path, kind: str) -> None:
    plan = workspace(project) / "master_plan.md"
    plan.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(plan)
    elif kind == "dev-zero":
        plan.symlink_to("/dev/zero")
    else:
        plan.mkdir()


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        pytest.param("fifo", "is a FIFO (named pipe), not a regular file", id="fifo"),
        pytest.param("dev-zero", "is a character device, not a regular file", id="symlink-to-dev-zero"),
        pytest.param("directory", "is a directory, not a regular file", id="directory"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run", "status", "render", "validate .orchestrator/master_plan.md"])
def test_a_plan_that_is_not_a_plain_file_is_refused_at_once(tmp_path: Path, kind: str, said: str, command: str) -> None:
    """Read as it was, a FIFO blocked for ever, /dev/zero was read until memory ran out, and a
    directory given by its path was taken for a workspace (".../master_plan.md/master_plan.md")."""
    _plan_not_a_file(tmp_path, kind)
    before = snapshot(tmp_path)
    result = cli(tmp_path, *command.split(), timeout=30)
    assert result.code == 2, result.stdout + result.stderr
    _one_line(result.stderr, f".orchestrator/master_plan.md: {said}", "plain text file")  # as opened from here
    assert snapshot(tmp_path) == before


def test_a_plan_beyond_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    monkeypatch.setattr("orchestrator.plan.parser.PLAN_LIMIT", 100)
    monkeypatch.setattr("orchestrator.plan.model.PLAN_LIMIT", 100)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    problem, count = err.strip().splitlines()
    _one_line(problem, "master_plan.md: holds ", "bytes outside its status blocks, more than the 100 a plan may have")
    assert count == "1 problem; nothing was written."
    assert snapshot(tmp_path) == before


# --- YAML that nests or aliases without end -------------------------------------------------------


def _laughs(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "problem", "line"),
    [
        pytest.param("model: " + "[" * 5000 + "]" * 5000, "nested more than 64 deep", 1, id="5000-deep"),
        # 100,000 levels: libyaml's composer used to recurse until the interpreter crashed.
        pytest.param("model: " + "[" * 100_000 + "]" * 100_000, "nested more than 64 deep", 1, id="100000-deep"),
        pytest.param("a:\n" + "".join("  " * n + f"k{n}:\n" for n in range(1, 80)) + "  x: 1", "nested", 65, id="bl"),
        pytest.param(_laughs(10), "more than 100,000 values", 5, id="billion-laughs"),
        pytest.param("a: &a [1, *a]", "the alias *a stands for a value that holds it", 1, id="recursive"),
        pytest.param("a: " + "x" * (1024 * 1024), "characters of YAML", None, id="too-long"),
    ],
)
def test_yaml_beyond_its_bounds_is_refused_before_it_is_built(text: str, problem: str, line: int | None) -> None:
    with pytest.raises(yaml.YAMLError) as info:
        yamlio.safe_load(text)
    assert problem in str(info.value)
    mark = getattr(info.value, "problem_mark", None)
    assert (mark.line + 1 if mark is not None else None) == line


def test_yaml_within_its_bounds_reads_as_before() -> None:
    text = "env: &env {A: '1'}\nother: *env\nlist: " + "[" * 60 + "1" + "]" * 60 + "\n" + _laughs(3)
    assert yamlio.safe_load(text) == yaml.safe_load(text)


def test_a_hand_edited_result_full_of_aliases_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "agent-01-result.md"
    path.write_text("---\n# edited\n" + _laughs(10) + "---\n\nbody\n", encoding="utf-8")
    assert documents.read_metadata(path) is None
    assert documents.read_document(path) is None
    assert documents.read_body(path) == "body"


# --- argv, environment and directory: caught by validate, not by every task failing ---------------


def test_a_profile_prompt_too_long_for_a_command_line_is_refused(tmp_path: Path) -> None:
    agents = workspace(tmp_path) / "agents"
    agents.mkdir(parents=True)
    (agents / "writer.md").write_text("---\nname: writer\n---\n" + "Write well. " * 20_000, encoding="utf-8")
    (agents / "nul.md").write_text("---\nname: nul\n---\nA NUL: \0 here.\n", encoding="utf-8")
    plan = workspace(tmp_path) / "master_plan.md"
    plan.write_text(
        "# P\n\n## Task Decomposition\n| Task ID | Description | Dependencies | Profile |\n|---|---|---|---|\n"
        "| T-01 | Write | None | writer |\n| T-02 | Read | None | nul |\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 2
    assert (
        ".orchestrator/agents/writer.md:1: the prompt is 239,999 bytes; it is given to the agent as one argument"
        in result.stderr
    )
    assert ".orchestrator/agents/nul.md:1: the prompt holds a NUL byte" in result.stderr
    assert snapshot(tmp_path) == before


def test_a_profile_whose_yaml_is_broken_or_endless_is_one_line_with_its_line(tmp_path: Path) -> None:
    agents = workspace(tmp_path) / "agents"
    agents.mkdir(parents=True)
    (agents / "typo.md").write_text("---\nname: typo\nmodel: a: b\n---\nReview.\n", encoding="utf-8")
    (agents / "laughs.md").write_text("---\nname: laughs\n" + _laughs(10) + "---\nReview.\n", encoding="utf-8")
    (workspace(tmp_path) / "master_plan.md").write_text(
        "# P\n\n## Task Decomposition\n| Task ID | Description | Dependencies | Profile |\n|---|---|---|---|\n"
        "| T-01 | Review | None | typo |\n| T-02 | Review | None | laughs |\n",
        encoding="utf-8",
    )
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert lines == [
        ".orchestrator/agents/laughs.md:7: cannot read profile: frontmatter is not valid YAML: "
        "more than 100,000 values, each alias counted as all it stands for — fix its YAML frontmatter",
        ".orchestrator/agents/typo.md:3: cannot read profile: frontmatter is not valid YAML: "
        "mapping values are not allowed in this context — fix its YAML frontmatter",
        "2 problems; nothing was written.",
    ]


def test_a_brief_edited_to_hold_what_bash_cannot_take_fails_its_task_plainly(tmp_path: Path) -> None:
    """The plan was fine; a hand edit of a brief put a NUL byte, or a script too long for one
    argument, in it: that task fails saying so, not as an error of the orchestrator's own."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert cli(tmp_path, "render").code == 0
    briefs = workspace(tmp_path) / "agent_tasks"
    one, two = sorted(briefs.iterdir())
    one.write_text(one.read_text(encoding="utf-8").replace("echo one", "echo o\0ne"), encoding="utf-8")
    two.write_text(two.read_text(encoding="utf-8").replace("echo two", "echo " + "x" * 200_000), encoding="utf-8")
    result = run(tmp_path)
    assert result.code == 1
    reasons = {task: meta["reason"] for task, meta in results(tmp_path).items()}
    assert reasons["T-01"].startswith(".orchestrator/agent_tasks/agent-01.md: the script holds a NUL byte")
    assert "the script is 200,005 bytes, and bash takes it as one argument" in reasons["T-02"]
    assert not any("please report it" in reason for reason in reasons.values())


def test_a_task_with_more_inputs_than_its_environment_can_name_reads_them_from_a_file(tmp_path: Path) -> None:
    """$ORCHESTRATOR_INPUTS names every dependency's result file: for 170 of them under a long
    project path it is longer than one environment variable may be. The task is not refused: it
    reads them from $ORCHESTRATOR_INPUTS_FILE, one a line, and their bodies from
    $ORCHESTRATOR_INPUTS_DIR, while the variable is left empty (never half a list)."""
    project = tmp_path / ("p" * 240) / ("q" * 240) / ("r" * 240)
    project.mkdir(parents=True)
    count = 170
    script = (
        'wc -l < "$ORCHESTRATOR_INPUTS_FILE"\n'
        'head -1 "$ORCHESTRATOR_INPUTS_FILE" | xargs -d "\\n" basename\n'
        'cat "$ORCHESTRATOR_INPUTS_DIR/S-0007.md"\n'
        'ls "$ORCHESTRATOR_INPUTS_DIR" | wc -l\n'
        'echo "[$ORCHESTRATOR_INPUTS]"'
    )
    specs = [Spec(f"S-{n:04d}", f"echo {n}") for n in range(count)]
    write_plan(project, [*specs, Spec("ALL", script, deps=[spec.id for spec in specs])], {"max_parallel": 8})
    assert cli_in_process(project, "validate").code == 0
    result = run(project, timeout=240)
    assert result.code == 0, result.stderr
    assert result_body(project, "ALL").split("\n") == [str(count), "agent-001-result.md", "7", str(count), "[]"]


FAKE_CLAUDE = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"


def _claude_plan(project: Path, front: str, profile: str | None = None) -> None:
    plan = workspace(project) / "master_plan.md"
    plan.parent.mkdir(parents=True)
    if profile is not None:
        (workspace(project) / "agents").mkdir()
        (workspace(project) / "agents" / "writer.md").write_text(profile, encoding="utf-8")
    plan.write_text(
        f"---\nbackend: claude\n{front}---\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies | Profile |\n|---|---|---|---|\n"
        f"| T-01 | Say hello | None | {'writer' if profile is not None else ''} |\n",
        encoding="utf-8",
    )


def _environment_short_of(limit: int, short: int) -> dict[str, str]:
    """Variables that bring ours to ``short`` bytes below ``limit`` (each string counted with its
    NUL and its pointer): a program with a short command line starts, one with a long one not."""
    room = limit - short - sum(len(f"{k}={v}".encode()) + 9 for k, v in os.environ.items())
    sizes = [100_000] * (room // 100_000) + [room % 100_000 - 20]
    return {f"BIG_{n}": "x" * (size - len(f"BIG_{n}=") - 9) for n, size in enumerate(sizes)}


def test_a_claude_system_prompt_too_long_for_its_one_argument_is_refused_before_the_run(tmp_path: Path) -> None:
    """A profile's prompt and the plan's append_system_prompt each fit in one argument, but claude
    is given them together in one (--append-system-prompt): the system would refuse to start it,
    and every such task would fail with "Argument list too long". The run refuses before it starts."""
    _claude_plan(
        tmp_path,
        f"append_system_prompt: {'Be brief. ' * 8_000}\n",
        "---\nname: writer\n---\n" + "Write well. " * 6_000,
    )
    before = snapshot(tmp_path)
    for command in ("validate", "run"):
        result = cli(tmp_path, command, env={"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE)})
        assert result.code == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[1:] == ["1 problem; nothing was written."] and "Traceback" not in result.stderr
        assert lines[0].startswith(
            ".orchestrator/master_plan.md:8: T-01: the system prompt (the profile's prompt and append_system_prompt, "
            "together) is 152,000 bytes, and claude takes it as one argument (--append-system-prompt), of at most "
            "131,071 — "
        ), lines[0]
        assert snapshot(tmp_path) == before  # nothing started, nothing written


def test_a_claude_command_line_and_environment_over_arg_max_are_refused_before_the_run(tmp_path: Path) -> None:
    """The profile's prompt fits in its one argument, but with the environment claude inherits
    (here nearly all the system allows: the runner itself starts with it) it comes to more than
    the system gives a program to start (ARG_MAX)."""
    limit = os.sysconf("SC_ARG_MAX")
    _claude_plan(tmp_path, "", "---\nname: writer\n---\n" + "Write well. " * 10_000)
    inherited = _environment_short_of(limit, 60_000)
    before = snapshot(tmp_path)
    result = cli(tmp_path, "run", env={"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE), **inherited})
    assert result.code == 2, result.stdout + result.stderr
    _one_line(
        result.stderr.strip().splitlines()[0],
        ".orchestrator/master_plan.md:7: T-01: claude's command line and environment come to ",
    )
    assert f"and the system starts no program given more than {limit:,} (ARG_MAX) — " in result.stderr
    assert snapshot(tmp_path) == before


def test_a_claude_attempt_whose_command_line_the_system_would_refuse_is_not_started(tmp_path: Path) -> None:
    """What the run's start could not see (the planner's, an attempt of a plan changed since)
    is refused when its attempt is made: one line, not "Argument list too long" from exec."""
    job = Job(
        task=Task("T-01", "", "Say hello"),
        settings=Settings(append_system_prompt="Be brief. " * 20_000),
        brief="Say hello",
        prompt="Say hello",
        project_dir=tmp_path,
        workspace=workspace(tmp_path),
        attempt=1,
    )
    with pytest.raises(CannotInvoke) as refused:
        ClaudeBackend().invocation(job)
    assert str(refused.value).startswith(
        "the system prompt (the profile's prompt and append_system_prompt, together) is 200,000 bytes, and claude "
        "takes it as one argument (--append-system-prompt), of at most 131,071 — shorten it"
    )


def test_an_agent_call_outside_a_run_whose_command_line_the_system_would_refuse_is_one_line(tmp_path: Path) -> None:
    """``aggregate --agent`` (like ``plan``) makes one agent call: one the system would refuse to
    start is one line, exit 1, and no traceback."""
    _claude_plan(tmp_path, f"append_system_prompt: {'Be brief. ' * 12_000}\n")
    inherited = _environment_short_of(os.sysconf("SC_ARG_MAX"), 60_000)
    result = cli(tmp_path, "aggregate", "--agent", env={"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE), **inherited})
    assert result.code == 1, result.stdout + result.stderr
    _one_line(result.stderr, "could not start claude for the aggregator: claude's command line and environment come to")


# --- a run's own files, changed under it ------------------------------------------------------------


def test_a_brief_that_is_a_fifo_is_refused_and_a_result_that_is_one_is_replaced(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert cli(tmp_path, "render").code == 0
    (brief,) = (workspace(tmp_path) / "agent_tasks").iterdir()
    brief.unlink()
    os.mkfifo(brief)
    refused = run(tmp_path)
    assert refused.code == 2
    _one_line(refused.stderr, "agent-01.md: is a FIFO (named pipe), not a regular file — move it aside")
    brief.unlink()
    result_file = workspace(tmp_path) / "results" / "agent-01-result.md"
    result_file.parent.mkdir(exist_ok=True)
    os.mkfifo(result_file)
    assert cli_in_process(tmp_path, "status").code == 0
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-01") == "one"


@pytest.mark.parametrize("edit", ["not-utf8", "fifo"])
def test_a_run_outlives_any_edit_of_its_plan(tmp_path: Path, edit: str) -> None:
    """While T-01 runs, master_plan.md stops being UTF-8 (half-typed Latin-1), or is replaced by
    a FIFO: the run goes on with the plan it loaded, says so once, keeps the person's bytes,
    and ends with every result and final_output.md."""
    specs = [Spec("T-01", "until [ -e go ]; do sleep 0.05; done; echo one"), Spec("T-02", "echo two", deps=["T-01"])]
    plan = write_plan(tmp_path, specs)
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in runner.events()), "T-01 to start")
        if edit == "not-utf8":
            with plan.open("ab") as handle:
                handle.write(b"\nR\xe9sum\xe9 of my notes\n")
        else:
            plan.unlink()
            os.mkfifo(plan)
        edited = plan.read_bytes() if edit == "not-utf8" else None
        # (the run tells of it when it next has a status to show there: T-01's end)
        (tmp_path / "go").touch()
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.cleanup()
    events = runner.events()
    notices = [e["message"] for e in events if e["event"] == "notice"]
    assert len(notices) == 1 and "the run goes on with the plan it loaded" in notices[0], notices
    assert [e["event"] for e in events][-1] == "run_finished"
    assert statuses(tmp_path) == {"T-01": "completed", "T-02": "completed"}
    assert (workspace(tmp_path) / "final_output.md").is_file()
    if edited is not None:
        assert plan.read_bytes() == edited  # the person's bytes, as they left them
    else:
        assert not plan.is_file() and plan.exists()  # still their FIFO
