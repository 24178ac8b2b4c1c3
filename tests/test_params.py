"""A plan's parameters: ``params:`` in its settings, ``{{ params.NAME }}`` in its titles, briefs and
commands, ``run --param``: checked (one line, exit 2, nothing written), shell-quoted in a command,
remembered by the workspace, recorded, and part of each task's fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

from runner_helpers import cli, cli_in_process, result_body, run, statuses

_FRONT = """---
backend: shell
params:
  repo:
    default: "."
    description: the repository to audit
  who:
    description: who asked for it
---
"""

_TABLE = """# Plan

## Task Decomposition

| Task ID | Task Name | Description | Dependencies | Command |
|---|---|---|---|---|
| T-01 | Audit {{ params.repo }} | count files | None | `printf '%s\\n' {{ params.repo }} {{ params.who }}` |
| T-02 | Report | written for {{ params.who }} | T-01 | `echo report` |
| T-03 | Other | no parameter | None | `echo other` |

## Task Details

### T-01 Audit
Look at {{ params.repo | upper }} and nothing else.
"""


def _plan(project: Path, text: str = _FRONT + _TABLE) -> Path:
    workspace = project / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "master_plan.md").write_text(text, encoding="utf-8")
    return workspace


def _listing(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*"))


def test_a_value_with_spaces_and_a_semicolon_is_one_argument_of_the_command(tmp_path: Path) -> None:
    """GitHub's ``${{ inputs.x }}`` in ``run:`` is pasted into the script; here it is shell-quoted:
    ``; touch`` is text the command prints, not a second command."""
    _plan(tmp_path)
    marker = tmp_path / "pwned"
    value = f"a b; touch {marker}"
    done = run(tmp_path, "--param", f"who={value}", "--param", "repo=my repo")
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-01").splitlines() == ["my repo", value]
    assert not marker.exists()
    started = done.events[0]
    assert started["event"] == "run_started" and started["params"] == {"repo": "my repo", "who": value}
    brief = (tmp_path / ".orchestrator/agent_tasks/agent-01.md").read_text(encoding="utf-8")
    assert "**Task Name**: Audit my repo" in brief
    assert "Look at MY REPO and nothing else." in brief
    assert "written for a b; touch" in (tmp_path / ".orchestrator/agent_tasks/agent-02.md").read_text(encoding="utf-8")
    final = (tmp_path / ".orchestrator/final_output.md").read_text(encoding="utf-8")
    assert f'| Parameters | repo="my repo", who="{value}" |' in final
    report = cli_in_process(tmp_path, "report", "--json")
    assert json.loads(report.stdout)["params"] == {"repo": "my repo", "who": value}


def test_a_required_parameter_not_given_is_one_line_and_nothing_runs(tmp_path: Path) -> None:
    """run and validate say the same: the parameter's line in the plan, and how to give it a value.
    validate reads the plan as run will: with its --param values, then those run remembers."""
    _plan(tmp_path)
    before = _listing(tmp_path)
    line = _FRONT.splitlines().index("  who:") + 1
    said = (
        f".orchestrator/master_plan.md:{line}: parameter 'who' (who asked for it) has no default and no value — "
        "give one with `run --param who=…` or a default"
    )
    for command in ("run", "validate", "render"):
        done = cli(tmp_path, command)
        assert done.code == 2, (command, done.stdout)
        assert done.stderr.strip().splitlines() == [said], command
    assert _listing(tmp_path) == before
    assert cli_in_process(tmp_path, "validate", "--param", "who=me").code == 0
    assert cli(tmp_path, "run", "--param", "who=me").code == 0
    assert cli_in_process(tmp_path, "validate").code == 0  # the value run remembers


def test_an_undeclared_parameter_given_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _plan(tmp_path)
    before = _listing(tmp_path)
    for command in ("run", "validate", "status", "render"):
        done = cli(tmp_path, command, "--param", "rpo=x", "--param", "who=me")
        assert done.code == 2, command
        assert done.stderr.strip() == (
            "--param rpo: .orchestrator/master_plan.md declares no parameter 'rpo' (did you mean 'repo'?) "
            "(its parameters: repo, who)"
        )
    bad = cli(tmp_path, "run", "--param", "who")
    assert (bad.code, bad.stderr.strip()) == (2, "--param who: write NAME=VALUE, e.g. --param repo=../other-repo")
    twice = cli(tmp_path, "run", "--param", "who=a", "--param", "who=b")
    assert (twice.code, twice.stderr.strip()) == (2, "--param who: given twice — give each parameter once")
    assert _listing(tmp_path) == before


def test_an_unknown_parameter_in_the_plan_is_its_file_and_line(tmp_path: Path) -> None:
    text = _FRONT + _TABLE.replace("Look at {{ params.repo | upper }}", "Look at {{ params.rep }}")
    _plan(tmp_path, text)
    checked = cli_in_process(tmp_path, "validate", "--param", "who=me")
    assert checked.code == 2
    line = text.splitlines().index("Look at {{ params.rep }} and nothing else.") + 1
    assert checked.stderr.splitlines()[0] == (
        f".orchestrator/master_plan.md:{line}: unknown parameter 'rep' in {{{{ params.rep }}}} (did you mean "
        "'repo'?) (declared: repo, who) — declare it in the settings (params: {rep: {default: ..., "
        "description: ...}}), or fix the name"
    )


def test_a_parameter_quoted_by_hand_is_one_argument_too(tmp_path: Path) -> None:
    """The script holds a reference to the value's variable, quoted for where it stands: inside
    single or double quotes as bare, the value is one argument, as it is."""
    _plan(tmp_path, _FRONT + _TABLE.replace("`printf '%s\\n' {{ params.repo }}", "`printf '%s\\n' '{{ params.repo }}'"))
    done = run(tmp_path, "--param", "who=it's me", "--param", 'repo=my "repo"', "--only", "T-01")
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-01").splitlines() == ['my "repo"', "it's me"]
    in_block = _TABLE + '```bash\nls -d "{{ params.repo }}"\n```\n'
    _plan(tmp_path, _FRONT + in_block)
    assert cli_in_process(tmp_path, "validate", "--param", "who=me").code == 0


def test_other_braces_in_a_plan_are_left_as_written(tmp_path: Path) -> None:
    """A Go template or a workflow's ``${{ secrets.X }}`` is not a parameter."""
    text = _TABLE.replace("`echo other`", "`echo '{{.State}} ${{ secrets.X }}'`")
    _plan(tmp_path, "---\nbackend: shell\nparams: {repo: ., who: me}\n---\n" + text)
    done = run(tmp_path, "--only", "T-03")
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-03").strip() == "{{.State}} ${{ secrets.X }}"


def test_another_value_runs_again_what_uses_it_and_what_depends_on_that(tmp_path: Path) -> None:
    _plan(tmp_path)
    first = run(tmp_path, "--param", "who=ann")
    assert first.code == 0, first.stderr
    assert sorted(first.tasks("task_completed")) == ["T-01", "T-02", "T-03"]
    # Remembered: a run without --param, status and the report read the plan with ann.
    again = run(tmp_path)
    assert again.tasks("task_completed") == []
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["params"] == {"repo": ".", "who": "ann"}
    changed = run(tmp_path, "--param", "repo=elsewhere")
    assert sorted(changed.tasks("task_completed")) == ["T-01", "T-02"]  # T-03 names no parameter
    assert result_body(tmp_path, "T-01").splitlines() == ["elsewhere", "ann"]
    assert set(statuses(tmp_path).values()) == {"completed"}
    stale = cli_in_process(tmp_path, "status", "--json", "--param", "repo=.")
    assert {t["id"] for t in json.loads(stale.stdout)["tasks"] if t["out_of_date"]} == {"T-01", "T-02"}
    # Shown where the plan is: the dashboard, the graph, validate.
    from orchestrator.serve.board import Board
    from orchestrator.state.workspace import Workspace

    board = Board(Workspace.find(tmp_path))
    assert board.snapshot({}, [], [])["params"] == {"repo": "elsewhere", "who": "ann"}
    assert cli_in_process(tmp_path, "graph").stdout.splitlines()[-1] == 'Parameters: repo="elsewhere", who="ann"'
    checked = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)["params"]
    assert checked["who"] == {"default": None, "description": "who asked for it", "choices": [], "value": "ann"}


def test_a_value_in_a_details_code_block_is_quoted_and_in_prose_as_given(tmp_path: Path) -> None:
    """A shell task runs the first code block of its Task Details: the same quoting as a Command."""
    marker = tmp_path / "pwned"
    _plan(
        tmp_path,
        "---\nbackend: shell\nparams: {who: {description: who}}\n---\n# Plan\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | greet {{ params.who }} | None |\n\n"
        "## Task Details\n\n### T-01 Greet\nSay hello to {{ params.who }}.\n"
        "```bash\necho hello {{ params.who }}\n```\n",
    )
    done = run(tmp_path, "--param", f"who=ann; touch {marker}")
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-01").strip() == f"hello ann; touch {marker}"
    assert not marker.exists()
    brief = (tmp_path / ".orchestrator/agent_tasks/agent-01.md").read_text(encoding="utf-8")
    assert f"Say hello to ann; touch {marker}." in brief


def test_a_value_not_among_its_choices_is_refused(tmp_path: Path) -> None:
    """As a GitHub ``type: choice`` input: the values it may take, checked before anything runs."""
    _plan(tmp_path, _FRONT.replace("    description: who asked for it\n", "    choices: [ann, bob]\n") + _TABLE)
    before = _listing(tmp_path)
    done = cli(tmp_path, "run", "--param", "who=eve")
    assert (done.code, done.stderr.strip()) == (2, "--param who=eve: not one of ann, bob")
    assert _listing(tmp_path) == before
    checked = json.loads(cli_in_process(tmp_path, "validate", "--json", "--param", "who=ann").stdout)
    assert checked["params"]["who"]["choices"] == ["ann", "bob"]
    default_outside = _FRONT.replace("    description: who asked for it\n", "    default: eve\n    choices: [ann]\n")
    _plan(tmp_path, default_outside + _TABLE)
    bad = cli_in_process(tmp_path, "validate")
    assert bad.code == 2
    assert "params.who: its default 'eve' is not one of its choices" in bad.stderr
