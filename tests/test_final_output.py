"""final_output.md reads as one document: raw output in code blocks, an answer's headings below
its task's heading, and a report that repeats its inputs shown once."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, write_plan

from orchestrator import Workspace
from orchestrator.documents import read_body
from orchestrator.output.final import own, signed, signed_utf8, visible_utf8, write_final_output
from orchestrator.output.markup import as_code_block, demote_headings, looks_like_markdown, output_form, quoted_in
from orchestrator.printable import visible
from orchestrator.state.plans import plan_of

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-old line\n+new line\n same"


@pytest.mark.parametrize(
    ("text", "below", "expected"),
    [
        pytest.param("# Title\ntext\n## Part\nmore", 3, "#### Title\ntext\n##### Part\nmore", id="atx"),
        pytest.param("## Only\n### Deeper", 3, "#### Only\n##### Deeper", id="keeps-gaps-relative"),
        pytest.param("# A\n##### E\n###### F", 3, "#### A\n###### E\n###### F", id="capped-at-6"),
        pytest.param("Title\n=====\n\nPart\n----\nx", 3, "#### Title\n\n##### Part\nx", id="setext"),
        pytest.param("#### Already low", 3, "#### Already low", id="low-enough"),
        pytest.param("```\n# a comment in code\n```\ntext", 3, "```\n# a comment in code\n```\ntext", id="code"),
        pytest.param("> # quoted\n#hashtag\n  ## Indented", 3, "> # quoted\n#hashtag\n  #### Indented", id="nested"),
        pytest.param("# Synthesis head", 2, "### Synthesis head", id="synthesis"),
    ],
)
def test_headings_move_below_the_heading_they_sit_under(text: str, below: int, expected: str) -> None:
    assert demote_headings(text, below) == expected


def test_raw_text_goes_in_a_code_block_nothing_inside_can_close() -> None:
    assert as_code_block(DIFF) == f"```text\n{DIFF}\n```"
    inner = "before\n```\nnot the end\n```\nafter"
    assert as_code_block(inner) == f"````text\n{inner}\n````"


def test_quoted_means_whole_lines_verbatim() -> None:
    assert quoted_in("| a | 1 |\n| b | 2 |", "# Report\n\n| a | 1 |\n| b | 2 |\n\nend")
    assert not quoted_in("ok", "look")  # a word inside a line is no quote
    assert not quoted_in("", "anything") and not quoted_in("\n\n", "\n\n")


def _results(project: Path) -> str:
    text = (project / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    return text[text.index("## Results") :]


def test_shell_output_is_fenced_and_headings_of_markdown_are_demoted(tmp_path: Path) -> None:
    """By default a shell task's stdout is text, in a code block, unless it is plainly markdown:
    then it is shown as markdown, its headings below the task's own. ``result_format: text``
    fences every output; a stray tag or a fence left open keeps markdown-looking output text."""
    specs = [
        Spec("T-01", f"cat <<'EOF'\n{DIFF}\nEOF", name="Diff"),
        Spec("T-02", "printf '# Findings\\n\\n- one\\n'", name="Notes"),
        Spec("T-03", "printf '# Risky\\n\\n<script>alert(1)</script>\\n'", name="Tag"),
        Spec("T-04", "printf '# Open\\n\\n```\\nnever closed\\n'", name="Fence"),
    ]
    write_plan(tmp_path, specs)
    assert cli(tmp_path, "run").code == 0
    results = _results(tmp_path)
    assert "### T-01 Diff (Agent-01, " in results
    assert f"```text\n{DIFF}\n```\n" in results  # lines kept apart; '-old line' is no bullet
    assert "### T-02 Notes (Agent-02, " in results
    assert "\n#### Findings\n\n- one\n" in results  # markdown: below the task's ###, not above it
    assert "```text\n# Risky\n\n<script>alert(1)</script>\n```" in results
    assert "````text\n# Open\n\n```\nnever closed\n````" in results
    write_plan(tmp_path, specs, {"result_format": "text"})  # the same tasks: their results stand
    assert cli(tmp_path, "aggregate").code == 0
    assert "```text\n# Findings\n\n- one\n```" in _results(tmp_path)


@pytest.mark.parametrize(
    ("output", "markdown"),
    [
        ("# Title\n\nSome text.\n\n- a\n- b\n", True),
        ("- T-01: 5 lines\n- T-02: 0 lines", True),
        ("| a | b |\n|---|---|\n| 1 | 2 |\n", True),
        ("1. one\n2. two\n", True),
        ("# Title\n\n```bash\nls\n```\n", True),
        ("a.txt\nb.txt\nc/\n", False),  # ls: lines markdown would merge
        ("hello from T-01, attempt 1", False),  # no structure
        ("#!/bin/bash\n# comment\necho hi\necho there\n", False),  # a script's source
        ("# Title\n<script>alert(1)</script>\n", False),
        ("- item <b>bold</b>\n", False),  # a tag inside a line, too
        ("# Title\n```\nunclosed\n", False),
        ("# Title\n\n    indented code\n", False),
        ("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n- old\n+ new\n", False),
        ("NAME  AGE\n----  ---\nbob   3\nal    4\n", False),
        ("> a quote alone\n", False),
        ("", False),
    ],
)
def test_markdown_is_told_from_text_only_when_it_plainly_is(output: str, markdown: bool) -> None:
    assert looks_like_markdown(output) is markdown
    assert output_form("auto", "shell", output) == ("markdown" if markdown else "text")
    assert output_form("auto", "claude", output) == "markdown"  # agents answer in markdown
    assert output_form("text", "shell", output) == "text" and output_form("markdown", "shell", output) == "markdown"


def test_an_agents_answer_keeps_its_markdown_with_its_headings_demoted(tmp_path: Path) -> None:
    """The command backend stands for an agent CLI: its answer is markdown."""
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(
        '---\nbackend: command\ncommand: ["printf", "# Summary\\\\n\\\\nAll good.\\\\n"]\n---\n'
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Review | None |\n",
        encoding="utf-8",
    )
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "### T-01 Review (Agent-01, " in _results(tmp_path)
    assert "\n#### Summary\n\nAll good.\n" in _results(tmp_path)


def test_a_report_that_repeats_its_inputs_shows_them_once(tmp_path: Path) -> None:
    report = (
        "for file in $ORCHESTRATOR_INPUTS; do echo '## Part'; awk 'n >= 2 { print } /^---$/ { n++ }' \"$file\"; done"
    )
    write_plan(
        tmp_path,
        [
            Spec("T-01", "printf 'alpha 1\\nalpha 2\\n'", name="Alpha"),
            Spec("T-02", "echo beta", name="Beta"),
            Spec("T-03", report, deps=["T-01", "T-02"], name="Report"),
            Spec("T-04", "echo 'alpha 1'", name="Partial"),
            Spec("T-05", "echo 'alpha 1 and more'", deps=["T-04"], name="Other"),
        ],
        {"result_format": "markdown"},
    )
    assert cli(tmp_path, "run").code == 0
    results = _results(tmp_path)
    quoted = "*Quoted in full in the result of T-03 Report, below.*"
    assert results.count(quoted) == 2
    assert results.count("alpha 2") == 1 and results.count("\nbeta\n") == 1
    assert "### T-04 Partial (Agent-04, " in results and "\nalpha 1\n\n### T-05" in results  # not a whole line there


def test_a_failed_results_raw_output_and_stderr_sit_in_code_blocks(tmp_path: Path) -> None:
    """The same for a failed task's result file: its stdout and stderr are text, and a ``` line
    in them closes nothing."""
    write_plan(tmp_path, [Spec("T-01", "printf -- '- gone\\n```\\n'; printf '```\\nboom\\n' >&2; exit 1")])
    assert cli(tmp_path, "run").code == 1
    body = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert "## Output\n````text\n- gone\n```\n````\n" in body
    assert "## Last lines of stderr\n````\n```\nboom\n````\n" in body


def test_a_hand_edited_final_output_is_moved_aside_never_written_over(tmp_path: Path) -> None:
    """QA pass 3: ``aggregate`` and every ``run`` wrote over a final_output.md a person had
    edited, with no copy and no word. The edited file is kept, as final_output.edited.md (then
    .edited.2.md), and both commands say so; the tool's own file is written over quietly."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    ws = tmp_path / ".orchestrator"
    final = ws / "final_output.md"
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "aggregate").code == 0  # its own file, rewritten: nothing kept aside
    assert not list(ws.glob("final_output.edited*"))
    assert final.read_text(encoding="utf-8").endswith("before a new one is written -->\n")

    edited = final.read_text(encoding="utf-8") + "\nMy notes on the result.\n"
    final.write_text(edited, encoding="utf-8")
    aggregated = cli(tmp_path, "aggregate", "--json")
    assert aggregated.code == 0, aggregated.stderr
    assert aggregated.stderr == (
        ".orchestrator/final_output.md was edited by hand since it was written: kept as "
        ".orchestrator/final_output.edited.md, and a new one written\n"
    )
    assert aggregated.stdout.count('"kept_edited": "') == 1
    assert (ws / "final_output.edited.md").read_text(encoding="utf-8") == edited
    assert "My notes" not in final.read_text(encoding="utf-8")

    final.write_text("Rewritten by hand entirely.\n", encoding="utf-8")
    rerun = cli(tmp_path, "run", "--rerun", "T-01", "--json")
    assert rerun.code == 0, rerun.stderr
    notices = [e["message"] for e in rerun.events if e["event"] == "notice"]
    assert notices == [
        ".orchestrator/final_output.md was edited by hand since it was written: kept as "
        ".orchestrator/final_output.edited.2.md, and a new one written"
    ]
    assert (ws / "final_output.edited.2.md").read_text(encoding="utf-8") == "Rewritten by hand entirely.\n"
    assert (ws / "final_output.edited.md").read_text(encoding="utf-8") == edited  # the first kept too


def test_a_final_output_without_the_tools_last_line_is_kept_too(tmp_path: Path) -> None:
    """One written before the last line existed, or by anyone else, cannot be told from an
    edited one: it is kept, not lost."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    ws = tmp_path / ".orchestrator"
    (ws / "final_output.md").write_text("# 📦 Final Output\n\nWritten some other way.\n", encoding="utf-8")
    assert cli(tmp_path, "run").code == 0
    assert (ws / "final_output.edited.md").read_text(encoding="utf-8").endswith("Written some other way.\n")


def test_a_failed_synthesis_names_the_logs_it_wrote_not_one_it_did_not(tmp_path: Path) -> None:
    """QA pass 3: the failure pointed at logs/aggregator.err, which an agent that wrote nothing to
    stderr never made; it names the logs that are there."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert cli(tmp_path, "run").code == 0
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    agent = '{backend: command, command: [bash, -c, "cat > /dev/null; echo half an answer; exit 3"],'
    plan.write_text(plan.read_text(encoding="utf-8").replace("{backend: shell,", agent), encoding="utf-8")
    failed = cli(tmp_path, "aggregate", "--agent")
    assert failed.code == 1, failed.stderr
    assert "the aggregating agent failed: exit code 3" in failed.stderr
    assert failed.stderr.rstrip().endswith("(see .orchestrator/logs/aggregator.out)")
    assert (tmp_path / ".orchestrator" / "logs" / "aggregator.out").is_file()


def test_one_run_one_wall_time(tmp_path: Path) -> None:
    """final_output.md's wall time is the run line's figure (the run's), not another measure under
    the same name; the time with a task running, which the speed-up divides by, has its own row."""
    write_plan(tmp_path, [Spec("T-01", "sleep 0.3"), Spec("T-02", "echo two", deps=["T-01"])])
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stderr
    said = next(line for line in ran.stdout.splitlines() if line.startswith("■ run finished in "))
    wall = said.removeprefix("■ run finished in ").split(":")[0]
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"| Wall time | {wall} |" in final
    assert "| Time with a task running | " in final
    assert "| Critical path (longest in time) | T-01 -> T-02 (" in final
    assert "deepest chain (2 tasks): T-01 -> T-02" in cli_in_process(tmp_path, "validate").stdout


GATED = """---
backend: shell
retries: 0
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition | Approval | Output | Blocked |
|---------|---------|--------------|-----------|----------|--------|---------|
| T-01 | `echo '{"severity": "low"}'` | None | | | severity | |
| T-02 | echo urgent | T-01 | T-01.severity == "high" | | | |
| T-03 | echo after-urgent | T-02 | | | | |
| T-04 | echo deployed | T-01 | | before | | |
| T-05 | echo held | None | | | | waiting for the keys |
| T-06 | exit 3 | None | | | | |
"""


def test_tasks_waiting_for_a_person_and_bypassed_ones_each_have_their_own_table(tmp_path: Path) -> None:
    """A task at its gate and a blocked one are listed with what to do; a false condition is no
    failure: bypassed tasks sit under their own heading with the condition and what it saw, and
    "Failed and skipped tasks" holds the failure alone."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(GATED, encoding="utf-8")
    assert cli(tmp_path, "run").code == 1
    text = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    waiting = text[text.index("## Waiting for a person") :].split("\n## ")[0]
    assert "| T-04 | ✋ Awaiting approval | awaiting approval before it starts: `orchestrator approve T-04`" in waiting
    assert (
        "| T-05 | 🚧 Blocked | blocked: waiting for the keys — "
        "`orchestrator update T-05 --status pending` releases it |" in waiting
    )
    bypassed = text[text.index("## Bypassed tasks") :].split("\n## ")[0]
    assert '| T-02 | `T-01.severity == "high"` | false: T-01 completed, T-01.severity = "low" |' in bypassed
    assert "| T-03 | - | upstream T-02 was bypassed |" in bypassed
    problems = text[text.index("## Failed and skipped tasks") :].split("\n## ")[0]
    assert "| T-06 | ❌ Failed |" in problems
    assert not any(f"| {task} |" in problems for task in ("T-02", "T-03", "T-04", "T-05"))
    # report gives a bypassed task's reason too, as status does.
    report = cli_in_process(tmp_path, "report", "--json")
    tasks = {t["id"]: t for t in json.loads(report.stdout)["tasks"]}
    assert tasks["T-02"]["reason"].startswith('condition false: T-01.severity == "high"')
    shown = cli_in_process(tmp_path, "report").stdout
    assert '| T-02 | bypassed: condition false: T-01.severity == "high" (T-01 completed, ' in shown


def test_final_output_is_made_visible_and_utf8_a_piece_at_a_time_as_its_whole_text_is() -> None:
    """final_output.md is written from the template's pieces as they come (``visible_utf8``):
    the same bytes as its whole text made visible, wherever the pieces break (a ``\\r\\n`` across
    two is one newline still); ``signed_utf8`` signs those bytes as ``signed`` signs the text."""
    text = "# 📦 Out\r\n\x1b[31mred\x1b[0m\r\r\nok\ttab\r\n\r\nend ⚠️\r"
    for cut in range(len(text) + 1):
        for second in range(cut, len(text) + 1):
            pieces = [text[:cut], text[cut:second], "", text[second:]]
            assert bytes(visible_utf8(iter(pieces))) == visible(text).encode("utf-8"), (cut, second)
    plain = "# 📦 Out\nno control characters\n"
    assert bytes(visible_utf8(iter([plain[:5], plain[5:]]))) == plain.encode("utf-8")
    for body in ("a\n", "a", "a\n\n\n", "", "⚠️ x\n"):
        signed_text = signed(body)
        assert signed_utf8(bytearray(body.encode("utf-8"))) == signed_text.encode("utf-8")
        assert own(signed_text) and signed_text.startswith(body.rstrip("\n") + "\n\n<!-- written by orchestrator ")


def test_final_output_holds_no_copy_of_every_result_while_it_is_written(tmp_path: Path) -> None:
    """Writing final_output.md holds the results it shows (read once) and its bytes, not also each
    result fenced, every section's fields and the whole text as a ``str`` (2 or 4 bytes a
    character once one such is in it): under 2.5 times the results' size in memory at its
    peak, where it held over 7 times that."""
    size = 400_000
    specs = [Spec(f"T-{n:02d}", f"printf '⚠️ {n} %.0s' $(seq 1 {size // 8})") for n in range(1, 9)]
    write_plan(tmp_path, specs)
    assert cli(tmp_path, "run").code == 0
    ws = Workspace.find(tmp_path)
    plan = plan_of(ws)
    held = sum(sys.getsizeof(read_body(ws.result(task))) for task in plan.tasks.values())
    assert held > 3_500_000  # (8 results of 250,000 characters, 2 bytes each)
    write_final_output(plan, ws)  # (what it imports and compiles the first time, once)
    tracemalloc.start()
    try:
        write_final_output(plan, ws)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * held, (peak, held)  # (it was 7.4 times)
    assert "⚠️ 8 ⚠️ 8" in (ws.root / "final_output.md").read_text(encoding="utf-8")
