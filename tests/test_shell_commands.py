"""A shell task runs only a command written as one (its Command cell, or the first code block of
its Task Details), never its description; ``validate`` says so by line, and ``init --backend
shell`` writes a plan that runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runner_helpers import cli, cli_in_process, result_body, run, statuses


def _plan(project: Path, table: str, details: str = "", frontmatter: str = "backend: shell\n") -> Path:
    workspace = project / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    text = f"---\n{frontmatter}---\n# Plan\n\n## Task Decomposition\n{table}"
    if details:
        text += f"\n## Task Details\n\n{details}"
    (workspace / "master_plan.md").write_text(text, encoding="utf-8")
    return workspace


def test_a_shell_task_with_only_a_description_is_a_plan_error_and_never_runs(tmp_path: Path) -> None:
    """The description is prose for people: run as bash it did whatever its words spelt
    (``Grep: command not found`` at best)."""
    workspace = _plan(
        tmp_path,
        "| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | touch pwned | None |\n"
        "| T-02 | Grep the logs for errors | T-01 |\n",
        "### T-02 Grep\nGrep the logs for errors and count them.\n",
    )
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 2
    lines = checked.stderr.splitlines()
    assert lines[0] == (
        ".orchestrator/master_plan.md:9: T-01 is a shell task with no command: its description is not run as a "
        "script — give it one: `orchestrator update T-01 --command 'CMD'`, or a ```bash block under '### T-01' in "
        "Task Details"
    )
    assert lines[1].startswith(".orchestrator/master_plan.md:10: T-02 is a shell task with no command")
    assert "Traceback" not in checked.stderr
    ran = run(tmp_path)
    assert ran.code == 2
    assert [e.get("error") for e in ran.events] == ["PlanError"]  # the --json error, no event of a run
    assert not (tmp_path / "pwned").exists()
    assert sorted(p.name for p in workspace.iterdir()) == ["master_plan.md"]  # nothing written


def test_a_command_cell_runs_and_a_details_code_block_runs(tmp_path: Path) -> None:
    _plan(
        tmp_path,
        "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n"
        "| T-01 | Count the words | None | `printf 'a b\\nc\\n' \\| wc -w` |\n"
        "| T-02 | Say what T-01 found | T-01 | - |\n",
        '### T-02 Report\nThe script below prints a line.\n\n```bash\necho "words: done"\n```\n',
    )
    assert cli_in_process(tmp_path, "validate").code == 0
    ran = run(tmp_path)
    assert ran.code == 0, ran.stderr
    assert result_body(tmp_path, "T-01").strip() == "3"
    assert result_body(tmp_path, "T-02").strip() == "words: done"
    assert next(e["name"] for e in ran.events if e["event"] == "task_started") == "Count the words"


def test_a_table_of_commands_needs_no_description(tmp_path: Path) -> None:
    _plan(tmp_path, "| Task ID | Command | Dependencies |\n|---|---|---|\n| T-01 | echo hi | None |\n")
    ran = run(tmp_path)
    assert ran.code == 0, ran.stderr
    [started] = [e for e in ran.events if e["event"] == "task_started"]
    assert started["name"] == "echo hi"  # the title: the start of its command


def test_a_brief_edited_down_to_prose_fails_without_running_it(tmp_path: Path) -> None:
    table = "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n| T-01 | One | None | true |\n"
    _plan(tmp_path, table)
    assert cli(tmp_path, "render").code == 0
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-01.md"
    text = brief.read_text(encoding="utf-8")
    head = text[: text.index("## Task Description")]
    brief.write_text(head + "## Task Description\ntouch pwned\n", encoding="utf-8")
    ran = run(tmp_path)
    assert ran.code == 1
    failed = next(e for e in ran.events if e["event"] == "task_failed")
    assert failed["reason"].startswith(
        ".orchestrator/agent_tasks/agent-01.md: no code block under '## Task Description'"
    )
    assert not (tmp_path / "pwned").exists()


def test_a_command_cell_on_an_agent_task_is_a_plan_error(tmp_path: Path) -> None:
    _plan(
        tmp_path,
        "| Task ID | Description | Dependencies | Backend | Command |\n|---|---|---|---|---|\n"
        "| T-01 | List | None | shell | ls |\n"
        "| T-02 | Review it | T-01 | claude | ls -l |\n",
        frontmatter="backend: claude\n",
    )
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 2
    assert checked.stderr.startswith(
        ".orchestrator/master_plan.md:10: T-02 has a Command but runs on 'claude', which does not run commands"
    )


def test_run_backend_shell_on_a_plan_of_prose_is_refused(tmp_path: Path) -> None:
    table = "| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Survey | None |\n"
    _plan(tmp_path, table, frontmatter="")
    ran = run(tmp_path, "--backend", "shell")
    assert ran.code == 2
    assert "T-01 is a shell task with no command" in ran.stderr


@pytest.mark.parametrize("backend", ["shell", "command"])
def test_init_with_a_backend_that_runs_commands_makes_a_plan_that_runs(tmp_path: Path, backend: str) -> None:
    made = cli(tmp_path, "init", "--backend", backend)
    assert made.code == 0, made.stderr
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 0, checked.stderr
    ran = run(tmp_path)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert statuses(tmp_path) == {"T-01": "completed", "T-02": "completed", "T-03": "completed"}


def test_init_elsewhere_says_the_next_commands_with_the_workspace_they_need(tmp_path: Path) -> None:
    made = cli(tmp_path, "init", "my plan", "--backend", "shell")
    assert made.code == 0, made.stderr
    last = made.stdout.strip().splitlines()[-1]
    assert last.endswith("then `orchestrator validate 'my plan'` and `orchestrator run 'my plan'`."), last
    assert cli_in_process(tmp_path, "validate", "my plan").code == 0  # as it says


def test_init_refuses_an_unknown_backend(tmp_path: Path) -> None:
    made = cli(tmp_path, "init", "--backend", "bash")
    assert made.code == 2
    known = "claude, codex, command, gemini, opencode, shell"
    assert made.stderr.startswith(f"--backend: no backend 'bash' — use one of: {known}")
    assert not (tmp_path / ".orchestrator").exists()


def test_a_shell_task_reads_its_upstream_bodies_and_result_list_from_files(tmp_path: Path) -> None:
    """Each attempt gets $ORCHESTRATOR_INPUTS_FILE (its upstream result files, one a line, in the
    order of its Dependencies) and $ORCHESTRATOR_INPUTS_DIR (each upstream's output alone, as
    <task id>.md: no YAML header to strip, a '---' line of the output kept), under a project
    path with spaces; a body of a task it no longer depends on is gone at its next attempt."""
    project = tmp_path / "my project"
    table = (
        "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n"
        "| T-01 | one | None | printf 'first\\n---\\nname: not a header\\n' |\n"
        "| T-02 | two | None | echo second |\n"
        "| T-03 | reads | T-02, T-01 | - |\n"
    )
    script = (
        "```bash\n"
        'while IFS= read -r file; do basename "$file"; done < "$ORCHESTRATOR_INPUTS_FILE"\n'
        'for body in "$ORCHESTRATOR_INPUTS_DIR"/*.md; do echo "== ${body##*/}"; cat "$body"; done\n'
        "```\n"
    )
    workspace = _plan(project, table, f"### T-03 reads\n{script}")
    ran = run(project)
    assert ran.code == 0, ran.stderr
    assert result_body(project, "T-03").splitlines() == [
        "agent-02-result.md",
        "agent-01-result.md",
        "== T-01.md",
        "first",
        "---",
        "name: not a header",
        "== T-02.md",
        "second",
    ]
    plan = workspace / "master_plan.md"
    plan.write_text(plan.read_text(encoding="utf-8").replace("| T-02, T-01 |", "| T-02 |"), encoding="utf-8")
    again = run(project)
    assert again.code == 0, again.stderr
    assert result_body(project, "T-03").splitlines() == ["agent-02-result.md", "== T-02.md", "second"]


def test_the_shell_skeleton_reads_its_inputs_safely_under_a_path_with_spaces(tmp_path: Path) -> None:
    """`init --backend shell`, then `run`, in a project whose path holds spaces: T-03 reads each
    upstream's output alone through $ORCHESTRATOR_INPUTS_FILE and $ORCHESTRATOR_INPUTS_DIR (no
    word-splitting of paths, no YAML header to strip), and its markdown list shows as markdown in
    final_output.md while T-01's listing stays text. The skeleton points to what a user has."""
    project = tmp_path / "my project"
    project.mkdir()
    (project / "a file.txt").write_text("TODO: write it\n", encoding="utf-8")
    (project / "notes.md").write_text("nothing\n", encoding="utf-8")
    assert cli(project, "init", "--backend", "shell").code == 0
    plan = (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "`orchestrator --help`" in plan and "orchestrator install-skill" in plan
    assert "result_format: auto" in plan
    ran = run(project)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert result_body(project, "T-01").splitlines() == ["a file.txt", "notes.md"]
    assert result_body(project, "T-03") == "- T-01: 2 lines\n- T-02: 1 lines"
    final = (project / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert "```text\na file.txt\nnotes.md\n```" in final
    assert "\n- T-01: 2 lines\n- T-02: 1 lines\n" in final and "```text\n- T-01" not in final


def test_a_script_bash_e_stopped_names_the_line_and_the_command(tmp_path: Path) -> None:
    """Under ``bash -e`` a script stops at the first command that fails, and says nothing: ``test
    -f``, a ``grep`` that matches nothing left "exit code 1" and an empty stderr. The line and the
    command are named on stderr, in the result's reason and in the run's line; a script that
    turned -e off, or ended with ``exit``, is told of as before; the script's own line numbers,
    ``$0`` and arguments are its own."""
    details = (
        '### T-01 Check\n```bash\necho "line $LINENO of $0 with $# arguments"\nif true; then\n'
        "  grep -q needle haystack.txt\nfi\necho never\n```\n\n"
        "### T-02 Nested\n```bash\ncheck() {\n  test -d build\n}\n(check)\n```\n\n"
        "### T-03 Tolerant\n```bash\nset +e\nfalse\necho went on\nexit 3\n```\n"
    )
    table = (
        "| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | Check | None |\n| T-02 | Nested | None |\n| T-03 | Tolerant | None |\n"
    )
    _plan(tmp_path, table, details, "backend: shell\nretries: 0\n")
    (tmp_path / "haystack.txt").write_text("hay\n")
    done = cli(tmp_path, "run")
    assert done.code == 1
    results = statuses(tmp_path)
    assert results == {"T-01": "failed", "T-02": "failed", "T-03": "failed"}
    reasons = {task: line.split(" failed: ", 1)[1] for line in done.stdout.splitlines() if " failed: " in line
               for task in [line.split()[1]]}  # fmt: skip
    assert reasons == {
        "T-01": "exit code 1 at line 3 of the script: `grep -q needle haystack.txt` failed, and bash -e stops there",
        "T-02": "exit code 1 at line 2 of the script: `test -d build` failed, and bash -e stops there",  # (the first)
        "T-03": "exit code 3",
    }
    assert "│ [orchestrator] line 3: `grep -q needle haystack.txt` exited with 1" in done.stdout
    assert "\nline 1 of bash with 0 arguments\n" in result_body(tmp_path, "T-01")
    assert "\nwent on\n" in result_body(tmp_path, "T-03")
    record = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert 'reason: "exit code 1 at line 3 of the script: `grep -q needle haystack.txt` failed' in record
    logged = tmp_path / ".orchestrator" / "logs" / "agent-03.attempt-1.err"
    assert not logged.exists()  # (nothing on stderr: -e was off, and exit is no failing command)


def test_the_shell_skeleton_and_the_skill_say_a_script_runs_under_bash_e(tmp_path: Path) -> None:
    assert cli(tmp_path, "init", "--backend", "shell").code == 0
    plan = (tmp_path / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "# Each task's script runs under `bash -e`: the first command that fails stops it" in plan
    skill = (Path(__file__).resolve().parent.parent / "SKILL.md").read_text(encoding="utf-8")
    assert "The script runs under `bash -e`: the first command that fails" in " ".join(skill.split())


PRINTED = "   1016 subject/pretty.py\n    42 subject/x.py\n"  # (as `wc -l` aligns its counts)


def test_what_a_task_printed_is_passed_on_byte_for_byte_its_first_line_indented_too(tmp_path: Path) -> None:
    """What a task printed is its output everywhere it goes: ``output`` (and ``--json``), the
    inputs file a later task reads, final_output.md, a result approved after its gate, and one
    the cache gives back. The first line lost its indentation in each (`   1016 x` became `1016
    x`), the later ones kept theirs: tables and YAML passed on came out misaligned."""
    import json

    (tmp_path / "count.sh").write_text("printf '%s' '" + PRINTED + "'\n", encoding="utf-8")
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    table = (
        "---\nbackend: shell\nretries: 0\ncache: true\n---\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies | Approval | Command |\n|---|---|---|---|---|\n"
        "| T-01 | count | None | | `bash count.sh` |\n"
        '| T-02 | copy | T-01 | | `cp "$ORCHESTRATOR_INPUTS_DIR/T-01.md" got.txt` |\n'
        '| T-03 | pass on | T-01 | | `cat "$ORCHESTRATOR_INPUTS_DIR/T-01.md"` |\n'
        "| T-04 | gated | None | after | `bash count.sh` |\n"
    )
    plan.write_text(table, encoding="utf-8")
    ran = cli(tmp_path, "run")
    assert ran.code == 4, ran.stdout + ran.stderr  # (T-04's result awaits its approval)
    for task in ("T-01", "T-03"):
        shown = cli(tmp_path, "output", task)
        assert (shown.code, shown.stdout) == (0, PRINTED), shown.stderr
    assert json.loads(cli(tmp_path, "output", "T-01", "--json").stdout)["output"] == PRINTED
    assert (tmp_path / "got.txt").read_text(encoding="utf-8") == PRINTED  # the inputs file T-02 read
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"```text\n{PRINTED}```" in final
    # Approved after its gate, its result is rewritten completed: its output as it was.
    assert cli(tmp_path, "approve", "T-04").code == 0
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "output", "T-04").stdout == PRINTED
    # Given back by the cache: T-01's command changed and changed back reuses the first result.
    plan.write_text(table.replace("`bash count.sh` |\n| T-02", "`bash count.sh  # v2` |\n| T-02"), encoding="utf-8")
    assert cli(tmp_path, "run").code == 0
    plan.write_text(table, encoding="utf-8")
    again = cli(tmp_path, "run")
    assert again.code == 0 and "♻️ T-01" in again.stdout, again.stdout
    assert cli(tmp_path, "output", "T-01").stdout == PRINTED


def test_a_word_said_at_a_terminal_with_no_user_in_its_environment_is_by_its_account(tmp_path: Path) -> None:
    """cron, a container or ``env -i`` sets no ``$USER``: the word is by the process's account, not by ''."""
    import json
    import pwd
    import subprocess
    import sys

    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(
        "---\nbackend: shell\n---\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies | Approval | Command |\n|---|---|---|---|---|\n"
        "| T-01 | gated | None | before | `echo gated` |\n",
        encoding="utf-8",
    )
    assert cli(tmp_path, "run").code == 4
    bare = {name: value for name, value in os.environ.items() if name not in ("USER", "LOGNAME")}
    said = subprocess.run([sys.executable, "-m", "orchestrator", "approve", "T-01"], cwd=tmp_path, env=bare,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert said.returncode == 0, said.stderr
    lines = (tmp_path / ".orchestrator" / "state" / "approvals.jsonl").read_text(encoding="utf-8").splitlines()
    word = json.loads(lines[-1])
    assert (word["decision"], word["by"]) == ("approved", pwd.getpwuid(os.getuid()).pw_name)
