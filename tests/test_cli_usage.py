"""The command line as a new user meets it: usage errors under ``--json``, help for every option,
``plan``'s arguments, and exit codes that say what the README says."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, write_plan

from orchestrator.cli.commands import COMMAND_MODULES, COMMANDS, HOME, BadArguments, Parser, build_parser
from orchestrator.cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["run", "--max-parallel", "x"],
            "orchestrator run: argument --max-parallel: invalid int value: 'x'",
            id="bad-int",
        ),
        pytest.param(
            ["status", "--no-such-option"], "orchestrator: unrecognized arguments: --no-such-option", id="unknown"
        ),
        pytest.param(
            ["plan", "--timeout", "soon", "Do it"], "orchestrator plan: argument --timeout: 'soon'", id="duration"
        ),
        pytest.param(["plan", "Do", "it", "now"], "plan takes a workspace and one request, not 3 words", id="unquoted"),
    ],
)
def test_a_usage_error_under_json_is_a_json_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli(tmp_path, *args, "--json")
    assert result.code == 2
    error = json.loads(result.stdout)
    assert error["ok"] is False and error["error"] == "UsageError" and error["problems"] == []
    assert error["message"].startswith(message)
    assert result.stderr.startswith(message) and "usage:" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_usage_error_without_json_shows_the_usage(tmp_path: Path) -> None:
    result = cli(tmp_path, "run", "--max-parallel", "x")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: orchestrator run ")
    assert "orchestrator run: argument --max-parallel: invalid int value: 'x' — see `orchestrator run --help`" in (
        result.stderr
    )


def _subcommands() -> dict[str, Parser]:
    parser = build_parser()
    assert parser.commands is not None
    return dict(parser.commands.choices)


def test_every_option_says_what_it_does_and_json_help_fits_its_command() -> None:
    for name, sub in _subcommands().items():
        for action in sub.given:
            assert action.help, f"orchestrator {name}: {action.option_strings or action.dest} has no help"
        json_help = next(a.help for a in sub.given if "--json" in a.option_strings)
        assert json_help is not None
        streams = name in {"run", "watch"}  # one JSON object per event, as they come
        assert ("event" in json_help) == streams, f"{name}: --json help reads {json_help!r}"


def test_a_command_line_that_names_a_command_builds_the_same_parser_for_it() -> None:
    """``main`` builds only the named command's parser (``COMMAND_MODULES``): every command is in
    the map, under the module that registers it, and its help and usage are what the whole
    parser gives; a word that is no command builds the whole parser, which says so."""
    whole = _subcommands()
    assert sorted(whole) == sorted(HOME)
    for name, sub in whole.items():
        alone = build_parser(name)
        assert alone.commands is not None
        assert list(alone.commands.choices) == list(COMMAND_MODULES[HOME[name]]), name
        assert alone.command(name).format_help() == sub.format_help(), name
    mistyped = build_parser("sttaus").commands
    assert mistyped is not None and set(mistyped.choices) == set(whole)


def test_a_command_line_that_names_no_command_lists_each_as_its_module_registers_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--help``, no command at all or a mistyped one: the parser of ``COMMANDS``' names and lines
    alone (no command's module imported) prints what the whole parser prints, each line the one
    the command's module gives it."""
    whole = build_parser()
    assert whole.commands is not None
    assert {name: sub.description for name, sub in whole.commands.choices.items()} == {
        name: line for commands in COMMANDS.values() for name, line in commands.items()
    }
    listing = build_parser(listing=True)
    assert listing.format_help() == whole.format_help() and listing.format_usage() == whole.format_usage()
    for words in ([], ["sttaus"], ["--json"], ["-x", "y"]):  # the same usage and the same error
        said = []
        for parser in (whole, listing):
            with pytest.raises(BadArguments) as bad:
                parser.parse_args(words)
            said.append((bad.value.usage, bad.value.message))
        assert said[0] == said[1], words
    for words in (["--help"], ["-h"]):
        with pytest.raises(SystemExit) as exit_:
            main(words)
        assert exit_.value.code == 0
        assert capsys.readouterr().out == whole.format_help()


def test_plan_takes_the_workspace_as_its_first_argument_like_every_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["plan", "ws", "Summarise this project", "--timeout", "5m"])
    assert args.words == ["ws", "Summarise this project"] and args.timeout == 300.0
    assert "[DIR] REQUEST" in _subcommands()["plan"].format_usage()
    assert "timeout" not in vars(parser.parse_args(["plan", "Do it"]))  # not given: the default holds
    assert parser.parse_args(["plan", "Do it", "--timeout", "none"]).timeout is None


def test_status_graph_and_aggregate_exit_0_with_a_failed_task_and_run_exits_1(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "exit 3"), Spec("T-02", "echo two", deps=["T-01"])])
    assert cli(tmp_path, "run").code == 1
    for command in (["status"], ["status", "--json"], ["graph"], ["aggregate"], ["validate"]):
        result = cli(tmp_path, *command)
        assert result.code == 0, (command, result.stderr)
    statuses = {t["id"]: t["status"] for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    assert statuses == {"T-01": "failed", "T-02": "skipped"}


def test_status_shows_tasks_waiting_while_a_usage_limit_pause_is_in_force(tmp_path: Path) -> None:
    """A pause (``state/pause.json``, left by a runner that hit a usage limit) holds every task
    back: status shows them ⏸️ waiting, as workflow.md says, not 🟡 pending; once it is over,
    pending again."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    state = tmp_path / ".orchestrator" / "state"
    state.mkdir()
    until = time.time() + 3600
    pause = {"until": until, "until_iso": "later", "backend": "claude", "reason": "usage limit reached"}
    (state / "pause.json").write_text(json.dumps(pause), encoding="utf-8")
    shown = cli_in_process(tmp_path, "status")
    assert shown.code == 0, shown.stderr
    assert "T-01  Agent-01  ⏸️ Waiting" in shown.stdout and "T-02  Agent-02  ⏸️ Waiting" in shown.stdout
    assert "⏸️ paused until later: usage limit reached" in shown.stdout
    tasks = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
    assert [t["status"] for t in tasks] == ["waiting", "waiting"]
    (state / "pause.json").write_text(json.dumps({**pause, "until": time.time() - 1}), encoding="utf-8")
    assert "T-01  Agent-01  🟡 Pending" in cli_in_process(tmp_path, "status").stdout


def test_paths_printed_for_people_start_where_they_stand(tmp_path: Path) -> None:
    """The last line of a run named ``.orchestrator/final_output.md``: relative to the project,
    which is nothing the user typed when they ran ``orchestrator run examples/x``."""
    project = tmp_path / "examples" / "demo"
    write_plan(project, [Spec("T-01", "echo one")])
    ran = cli(tmp_path, "run", "examples/demo")
    assert ran.code == 0, ran.stderr
    assert ran.stdout.rstrip().endswith("→ examples/demo/.orchestrator/final_output.md")
    assert cli(tmp_path, "aggregate", "examples/demo").stdout == "Wrote examples/demo/.orchestrator/final_output.md\n"
    rendered = cli(tmp_path, "render", "examples/demo", "--force").stdout
    assert rendered.startswith("Rendered 1 brief into examples/demo/.orchestrator/agent_tasks/: ")
    inside = project / ".orchestrator" / "results"
    again = cli(inside, "run", "../..", "--rerun", "T-01")
    assert again.stdout.rstrip().endswith(f"→ {project / '.orchestrator' / 'final_output.md'}")  # above: absolute
    # Scripts get paths relative to the project directory, as the files record them.
    events = [json.loads(line) for line in cli(tmp_path, "run", "examples/demo", "--json").stdout.splitlines()]
    assert events[-1]["final_output"] == ".orchestrator/final_output.md"


def test_summary_lines_count_one_thing_in_the_singular(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert cli_in_process(tmp_path, "validate").stdout.startswith("OK: 1 task, 0 dependencies, 1 layer;")
    assert cli_in_process(tmp_path, "status").stdout.splitlines()[-1] == "1 task: 1 pending"
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    assert cli_in_process(tmp_path, "validate").stdout.startswith("OK: 2 tasks, 1 dependency, 2 layers;")
    assert cli_in_process(tmp_path, "status").stdout.splitlines()[-1] == "2 tasks: 1 pending, 1 waiting"
    assert json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)["dependencies"] == 1


@pytest.mark.parametrize("args", [["--only", ""], ["--only", ",,"], ["--rerun", " "]], ids=["empty", "commas", "blank"])
def test_an_empty_list_of_tasks_to_run_is_a_usage_error_not_every_task(tmp_path: Path, args: list[str]) -> None:
    """A script's ``run --only "$IDS"`` with an empty list ran the whole plan (and paid for it)."""
    write_plan(tmp_path, [Spec("T-01", "touch ran-1"), Spec("T-02", "touch ran-2")])
    result = cli(tmp_path, "run", *args, "--json")
    assert result.code == 2, result.stdout + result.stderr
    assert json.loads(result.stdout)["message"].startswith(f"{args[0]}: no task id given")
    assert not (tmp_path / "ran-1").exists() and not (tmp_path / "ran-2").exists()
    assert sorted(p.name for p in (tmp_path / ".orchestrator").iterdir()) == ["master_plan.md"]


def test_run_options_replace_the_plans_settings_and_an_unknown_backend_is_the_options_fault(tmp_path: Path) -> None:
    """``--aggregate concat`` was ignored under a plan's ``aggregate: agent``; ``--backend claud``
    was blamed on line 1 of master_plan.md; ``--backend SHELL`` was refused though the plan's
    setting takes any case."""
    write_plan(tmp_path, [Spec("T-01", "touch ran")], {"aggregate": "agent"})
    unknown = cli(tmp_path, "run", "--backend", "claud", "--aggregate", "concat")
    assert unknown.code == 2
    assert unknown.stderr.startswith("--backend claud: no such backend (did you mean 'claude'?)"), unknown.stderr
    assert not (tmp_path / "ran").exists()
    refused = cli(tmp_path, "run")  # a shell plan cannot aggregate by an agent: said before anything runs
    assert refused.code == 2 and "aggregation by an agent" in refused.stderr and not (tmp_path / "ran").exists()
    ran = cli(tmp_path, "run", "--backend", "SHELL", "--aggregate", "concat")
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "ran").exists()


def test_json_before_the_command_is_the_same_as_after_it(tmp_path: Path) -> None:
    """`orchestrator --json status` was refused: scripts put a global flag first as often as last."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    before, after = cli_in_process(tmp_path, "--json", "status"), cli_in_process(tmp_path, "status", "--json")
    assert before.code == 0, before.stderr
    first, second = json.loads(before.stdout), json.loads(after.stdout)
    assert first["eta"] is None  # (nothing learned yet: no estimate)
    assert first == second
    bad = cli(tmp_path, "--json", "nonesuch")
    assert bad.code == 2 and json.loads(bad.stdout)["ok"] is False  # still JSON, and still refused


def test_validate_names_each_column_the_tool_does_not_read(tmp_path: Path) -> None:
    """A `Colour` column passed validate without a word: a plan's writer may think it sets something."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    lines = plan.read_text(encoding="utf-8").splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("| Task ID"))
    lines[header] += " Colour | Owner |"
    lines[header + 1] += "---|---|"
    for n in (header + 2, header + 3):
        lines[n] += " red | me |"
    plan.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shown = cli_in_process(tmp_path, "validate")
    assert shown.code == 0 and shown.stdout.startswith("OK: 2 tasks"), shown.stderr
    said = [line for line in shown.stderr.splitlines() if "is none the tool reads" in line]
    assert said == [
        f".orchestrator/master_plan.md:{header + 1}: column '{name}' is none the tool reads: kept for templates "
        f'only (task.extra["{name}"]); it sets nothing'
        for name in ("Colour", "Owner")
    ]
    notices = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)["notices"]
    assert [n for n in notices if "none the tool reads" in n] == said


def test_every_reading_command_takes_the_workspace_in_each_of_its_three_forms(tmp_path: Path) -> None:
    """The README: every command takes the workspace as the project folder, its ``.orchestrator/``
    or the path of its ``master_plan.md``, with or without the task that follows. ``status`` and
    ``history`` read the third form as a task id (issue 78)."""
    from orchestrator.commands.table import COMMANDS as TABLE

    write_plan(tmp_path / "project", [Spec("T-01", "echo one")])
    assert cli(tmp_path / "project", "run").code == 0
    reading = sorted(name for name, command in TABLE.items() if command.read_only)
    assert {"status", "history", "list", "validate"} <= set(reading), reading
    forms = ("project", "project/.orchestrator", "project/.orchestrator/master_plan.md")
    for name in reading:
        task = ["T-01"] if (TABLE[name].thing or "").strip("[]") == "TASK" else []
        answers = {form: cli_in_process(tmp_path, name, form, *task, "--json") for form in forms}
        for form, done in answers.items():
            said = done.stdout + done.stderr
            assert "no such workspace" not in said and "no task" not in said, (name, form, said[:300])
        codes = {done.code for done in answers.values()}
        assert len(codes) == 1, (name, {form: (done.code, done.stderr[:200]) for form, done in answers.items()})


def test_no_module_reads_argparses_private_names() -> None:
    """argparse's ``_actions``, ``_SubParsersAction``... may change under us in any Python release:
    the parser keeps what it is given (``Parser.given``, ``Parser.commands``) and the code reads
    that (issue 78)."""
    from pathlib import Path as _Path

    package = _Path(__file__).resolve().parent.parent / "orchestrator"
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 100
    for module in modules:
        text = module.read_text(encoding="utf-8")
        found = re.findall(r"argparse\._\w+|\._actions\b|\._choices_actions\b|\._option_string_actions\b", text)
        assert not found, (module.relative_to(package), found)
