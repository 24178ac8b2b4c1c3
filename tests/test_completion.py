"""Shell completion as a person meets it: the script ``orchestrator completion bash`` prints,
sourced in a real bash, its function called as bash calls it at a Tab (``COMP_WORDS``,
``COMP_CWORD``), and what it offers read from ``COMPREPLY``: commands, options, their choices,
and the task ids of the workspace's plan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, write_plan

BIN = Path(sys.executable).parent  # where the `orchestrator` console script of this install is


def _tab(project: Path, *words: str, shell: str = "bash") -> list[str]:
    """What a Tab after ``orchestrator WORDS`` offers (the last word is the one being typed)."""
    if not (project / f"completion.{shell}").exists():
        script = cli_in_process(project, "completion", shell)
        assert script.code == 0, script.stderr
        (project / f"completion.{shell}").write_text(script.stdout)
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in ("orchestrator", *words))
    call = (
        f"source completion.bash; COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; "
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; _orchestrator_complete; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", call],
        cwd=project,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_plan(tmp_path, [Spec("T-01", "true"), Spec("T-02", "true", deps=["T-01"]), Spec("X-10", "true")])
    return tmp_path


def test_bash_completes_commands_and_their_options(project: Path) -> None:
    assert _tab(project, "sp") == ["spawn"]
    assert {"run", "status", "spawn", "add", "completion"} <= set(_tab(project, ""))
    assert "__complete" not in _tab(project, "")  # what the script calls is no command to offer
    assert _tab(project, "spawn", "--de") == ["--detach", "--depends-on"]
    assert _tab(project, "spawn", "--la") == ["--label"]
    assert "--task" not in _tab(project, "spawn", "--")  # --detach's own runner's: hidden
    assert _tab(project, "list", "--group-by", "") == ["assignee", "priority", "status", "tag"]
    assert _tab(project, "list", "--status", "c") == ["completed", "cancelled"]
    assert _tab(project, "list", "--status", "o") == ["open"]
    assert _tab(project, "run", "--backend", "c") == ["claude", "codex", "command"]
    assert _tab(project, "completion", "") == ["bash", "zsh", "fish"]
    assert _tab(project, "--json", "sta") == ["status"]


def test_bash_completes_the_task_ids_of_the_workspaces_plan(project: Path) -> None:
    assert _tab(project, "cancel", "") == ["T-01", "T-02", "X-10"]
    assert _tab(project, "logs", "t-") == ["T-01", "T-02"]  # ids are not case-sensitive
    assert _tab(project, "reset", "T-01", "") == ["T-02", "X-10"]  # reset takes several: each once
    assert _tab(project, "spawn", "--after", "T-01,") == ["T-01,T-02", "T-01,X-10"]  # a comma list goes on
    assert _tab(project, "run", "--only", "=", "X") == ["X-10"]  # bash splits --only=X at the '='
    assert _tab(project, "history", ".orchestrator", "T-0") == ["T-01", "T-02"]  # after a workspace named
    # Another workspace's ids, when the command line names it.
    other = project / "other"
    write_plan(other, [Spec("A-1", "true")])
    assert _tab(project, "output", "other", "") == ["A-1"]


def test_bash_completes_the_values_a_scripted_queue_uses(project: Path) -> None:
    """Priorities, the states a person sets, and the tags, labels and assignees the plan and its
    history use: what a script in the style of the task managers types after each option."""
    for edit in (("T-01", "--tag", "db,backend"), ("T-02", "--tag", "Front", "--assignee", "db_specialist")):
        assert cli(project, "update", *edit).code == 0
    everything = ["critical", "high", "normal", "low", "P0", "P1", "P2", "P3"]
    assert _tab(project, "add", "x", "-p", "") == everything
    assert _tab(project, "update", "T-01", "--priority", "P") == ["P0", "P1", "P2", "P3"]
    assert _tab(project, "update", "T-01", "--status", "") == ["blocked", "pending"]  # the run sets the others
    assert _tab(project, "archive", "") == ["T-01", "T-02", "X-10"]
    assert _tab(project, "archive", "T-01", "T-") == ["T-02"]  # archive takes several: each once
    assert _tab(project, "list", "--tag", "") == ["backend", "db", "Front"]
    assert _tab(project, "list", "--label", "f") == ["Front"]
    assert _tab(project, "spawn", "--label", "") == ["backend", "db", "Front"]
    assert _tab(project, "update", "T-01", "--untag", "") == ["db", "backend"]  # the task's own
    assert _tab(project, "update", "T-01", "--tag", "") == ["Front"]  # the ones it has not
    assert _tab(project, "list", "--assignee", "") == ["db_specialist"]  # a label in use, no profile file
    spawned = cli(project, "spawn", "--id", "S-1", "--label", "nightly", "--backend", "shell", "--command", "true", "x")
    assert spawned.code == 0, spawned.stderr
    assert cli(project, "archive", "S-1").code == 0  # out of the table: history still has it
    assert _tab(project, "history", "--label", "n") == ["nightly"]


def test_bash_falls_back_to_files_where_a_path_goes(project: Path) -> None:
    (project / "brief.txt").write_text("x")
    assert _tab(project, "add", "--details-file", "bri") == ["brief.txt"]
    assert _tab(project, "run", ".orch") == [".orchestrator"]
    assert set(_tab(project, "status", "")) == {path.name for path in project.iterdir()}  # the shell's own listing


def test_no_workspace_offers_no_ids_and_no_error(tmp_path: Path) -> None:
    assert _tab(tmp_path, "cancel", "T") == []
    broken = tmp_path / ".orchestrator"
    broken.mkdir()
    (broken / "master_plan.md").write_text("not a plan")
    assert _tab(tmp_path, "cancel", "T") == []


def test_completion_prints_each_shells_script(tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete -F"), ("zsh", "compdef _orchestrator"), ("fish", "complete -c")):
        shown = cli_in_process(tmp_path, "completion", shell)
        assert shown.code == 0 and marker in shown.stdout and "__complete" in shown.stdout
    as_json = json.loads(cli_in_process(tmp_path, "completion", "zsh", "--json").stdout)
    assert as_json["shell"] == "zsh" and as_json["script"].startswith("#compdef orchestrator")
    refused = cli_in_process(tmp_path, "completion", "tcsh")
    assert refused.code == 2 and "invalid choice: 'tcsh'" in refused.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed here")
def test_zsh_completes_task_ids(project: Path) -> None:
    script = cli_in_process(project, "completion", "zsh").stdout
    (project / "completion.zsh").write_text(script)
    call = (
        "autoload -U compinit && compinit -u; source completion.zsh; "
        "words=(orchestrator cancel T-0); CURRENT=3; "
        "compadd() { shift $(( ${@[(i)--]} )); print -l -- $@; }; _orchestrator"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", call],
        cwd=project,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["T-01", "T-02"], done.stderr
