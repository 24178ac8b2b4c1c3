"""``orchestrator report`` and the timeline in final_output.md, against the result files of a real run.

The plan: A (sleep 1.2) and B (sleep 0.3) at once, then C (sleep 0.6) after A: the critical path
is A -> C whatever the machine's speed, as the sleeps are far apart; the figures are checked
against the result files' own numbers, not against the sleeps.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli_in_process, open_attempts, results, run, wait_until, write_plan
from runner_helpers import start as start_runner

from orchestrator.plan.config.settings import format_duration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report")
    specs = [
        Spec("T-01", "sleep 1.2", name="A"),
        Spec("T-02", "sleep 0.3", name="B"),
        Spec("T-03", "sleep 0.6", deps=["T-01"], name="C"),
    ]
    write_plan(path, specs, {"retries": 1})
    assert run(path).code == 0
    return path


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _union(spans: list[tuple[float, float]]) -> float:
    total, (begin, end) = 0.0, spans[0]
    for start, finish in spans[1:]:
        if start > end:
            total, begin = total + end - begin, start
        end = max(end, finish)
    return total + end - begin


def test_the_figures_are_the_result_files(project: Path) -> None:
    found = cli_in_process(project, "report", "--json")
    assert found.code == 0, found.stderr
    report: dict[str, Any] = json.loads(found.stdout)
    records = {meta["task"]: meta for meta in results(project).values()}
    work = sum(r["duration"] for r in records.values())
    spans = sorted((_stamp(r["started"]), _stamp(r["finished"])) for r in records.values())
    wall = _union(spans)  # time during which a task ran
    assert report["work_seconds"] == pytest.approx(work, abs=0.01)
    assert report["wall_seconds"] == pytest.approx(wall, abs=0.01)
    assert report["speedup"] == pytest.approx(work / wall, abs=0.01)
    assert report["speedup"] > 1.0  # B ran beside A
    assert report["parallel_efficiency"] == pytest.approx(work / wall / 4, abs=0.01)
    assert report["critical_path"]["tasks"] == ["T-01", "T-03"]
    length = records["T-01"]["duration"] + records["T-03"]["duration"]
    assert report["critical_path"]["seconds"] == pytest.approx(length, abs=0.01)
    assert report["retries"] == 0 and report["cost_usd"] is None and report["tokens"] is None
    assert report["backends"] == {
        "shell": {"tasks": 3, "attempts": 3, "seconds": pytest.approx(work, abs=0.01), "cost_usd": None, "tokens": None}
    }
    tasks = {t["id"]: t for t in report["tasks"]}
    assert set(tasks) == {"T-01", "T-02", "T-03"}
    assert [tasks[t]["critical"] for t in ("T-01", "T-02", "T-03")] == [True, False, True]
    for task_id, task in tasks.items():
        assert task["duration"] == records[task_id]["duration"] and task["attempts"] == 1 and task["retries"] == 0
    assert report["svg"] == ".orchestrator/report.svg"


def test_html_holds_the_svg_and_the_svg_file_is_written(project: Path) -> None:
    page = cli_in_process(project, "report", "--format", "html")
    assert page.code == 0
    assert page.stdout.startswith("<!DOCTYPE html>") and "<script" not in page.stdout
    assert "http" not in page.stdout.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    svg = re.search(r"<svg .*?</svg>", page.stdout, re.S)
    assert svg is not None
    for task in ("T-01 A", "T-02 B", "T-03 C"):
        assert task in svg.group(0)
    assert svg.group(0).count("<rect x=") == 3
    written = (project / ".orchestrator" / "report.svg").read_text()
    assert written.startswith("<svg ") and written.strip().endswith("</svg>")


def test_markdown_has_the_figures_and_a_mermaid_gantt(project: Path) -> None:
    text = cli_in_process(project, "report").stdout
    assert "| Critical path (longest in time) | T-01 -> T-03 (" in text and "| Speed-up | " in text
    assert "![timeline](report.svg)" in text
    assert "| shell | 3 | 3 |" in text and "| T-01 ⭐ | completed | shell |" in text


def test_final_output_has_a_valid_mermaid_gantt(project: Path) -> None:
    text = (project / ".orchestrator" / "final_output.md").read_text()
    assert "| Speed-up vs sequential |" in text  # the summary is still there
    block = re.search(r"## Timeline\n```mermaid\n(.*?)\n```", text, re.S)
    assert block is not None, text
    lines = block.group(1).splitlines()
    assert lines[:3] == ["gantt", "    dateFormat x", "    axisFormat %H:%M:%S"]
    sections = [line.strip() for line in lines if line.strip().startswith("section ")]
    assert sections == ["section Layer 1", "section Layer 2"]
    records = {meta["task"]: meta for meta in results(project).values()}
    tasks = [line.strip() for line in lines[3:] if not line.strip().startswith("section ")]
    assert len(tasks) == 3
    for line in tasks:
        # name :tags, id, start, end  (epoch milliseconds, as dateFormat x reads them)
        match = re.fullmatch(r"(T-0\d) [A-C] :((?:done|crit|active), )*t\d, (\d{13}), (\d{13})", line)
        assert match is not None, line
        record = records[match.group(1)]
        assert int(match.group(3)) == round(_stamp(record["started"]) * 1000)
        assert int(match.group(4)) == round(_stamp(record["finished"]) * 1000)
    by_task = {line[:4]: line for line in tasks}
    assert "crit" in by_task["T-03"] and "crit" not in by_task["T-02"]


def _as_mermaid_reads(text: str) -> str:
    """``text`` as mermaid's lexer sees it: before parsing, mermaid swaps every ``#word;`` (an
    entity code) for a placeholder free of ``#`` and ``;`` (``encodeEntities``); here, ``@``."""
    return re.sub(r"#\w+;", "@", text)


def _as_mermaid_shows(text: str) -> str:
    """What mermaid draws of ``text``: each entity code ``#58;`` as its character."""
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def test_a_task_name_with_colon_hash_and_semicolon_survives_both_mermaid_charts(tmp_path: Path) -> None:
    """A gantt line is ``taskTxt taskData``, its name ``[^#:\\n;]+`` (mermaid's gantt.jison): the
    name's ``:``, ``#`` and ``;`` were dropped for spaces. They are written as entity codes, which
    mermaid 11 was seen to draw as the characters in headless Chromium. In the flowchart a bare
    ``#2;`` was read as the entity code of the control character 2."""
    name = "Build: parse #2; emit"
    write_plan(tmp_path, [Spec("T-01", "true", name=name), Spec("T-02", "true", deps=["T-01"], name="Plain")])
    assert run(tmp_path).code == 0
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    report = cli_in_process(tmp_path, "report").stdout
    for text in (final, report):
        block = re.search(r"```mermaid\n(gantt\n.*?)\n```", text, re.S)
        assert block is not None, text
        line = next(line for line in block.group(1).splitlines() if "T-01" in line)
        task = re.fullmatch(r"\s*([^#:\n;]+)(:[^#\n;]+)", _as_mermaid_reads(line))
        assert task is not None, line  # one name, one bar's data: what the gantt lexer accepts
        assert _as_mermaid_shows(line.split(" :")[0].strip()) == f"T-01 {name}"
    graph = cli_in_process(tmp_path, "graph", "--format", "mermaid")
    assert graph.code == 0, graph.stderr
    label = re.search(r'n0\["(.*)"\]', graph.stdout)
    assert label is not None, graph.stdout
    assert "#" not in _as_mermaid_reads(label.group(1)) and '"' not in label.group(1)
    assert _as_mermaid_shows(label.group(1)).endswith(f"T-01: {name}")


def test_report_of_no_workspace_is_2(tmp_path: Path) -> None:
    assert cli_in_process(tmp_path, "report").code == 2


def test_a_workspace_report_cannot_write_to_still_gets_its_report(tmp_path: Path) -> None:
    """A read-only workspace (a CI artifact, another user's) made ``report`` exit 2 for want of
    report.svg; here a directory stands where the file goes, which the system refuses the same way."""
    write_plan(tmp_path, [Spec("T-01", "true", name="A")])
    assert run(tmp_path).code == 0
    (tmp_path / ".orchestrator" / "report.svg").mkdir()
    as_json = cli_in_process(tmp_path, "report", "--json")
    assert as_json.code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["svg"] is None
    assert as_json.stderr.startswith(".orchestrator/report.svg: ") and "without its timeline file" in as_json.stderr
    text = cli_in_process(tmp_path, "report")
    assert text.code == 0 and "| Critical path (longest in time) | T-01 (" in text.stdout
    assert "report.svg)" not in text.stdout  # no link to a file that is not there


def test_a_run_stopped_before_any_task_ended_says_so_for_its_critical_path(tmp_path: Path) -> None:
    """It read "Critical path | - (-)"."""
    write_plan(tmp_path, [Spec("T-01", "echo started; sleep 60", name="A")])
    runner = start_runner(tmp_path)
    try:
        wait_until(lambda: bool(open_attempts(tmp_path)), "T-01 to start")
        runner.kill(signal.SIGINT)
        assert runner.wait() == 130
    finally:
        runner.cleanup()
    text = cli_in_process(tmp_path, "report").stdout
    assert "| Critical path (longest in time) | - (no task ran to an end) |" in text, text


def test_a_task_retried_in_its_run_is_counted_from_its_first_attempt(tmp_path: Path) -> None:
    """QA: the result file tells of the last attempt only, and report (and final_output.md) took
    it for the task: a retried task's bar began at its second attempt, and its first attempt's
    time was in neither the wall time, the task times nor the critical path. Its ``span`` runs
    from its first attempt's start to its last's end, and is what those count; its ``duration``
    is its last attempt's, as ``status`` and its result say."""
    write_plan(tmp_path, [Spec("T-01", "sleep 0.4; exit 3", retries=1)], {"backoff_base": 0.05})
    assert run(tmp_path).code == 1
    shown = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    [task] = shown["tasks"]
    lines = [json.loads(x) for x in (tmp_path / ".orchestrator" / "state" / "attempts.jsonl").read_text().splitlines()]
    starts = [_stamp(e["at"]) for e in lines if e["event"] == "start"]
    ends = [_stamp(e["at"]) for e in lines if e["event"] == "end"]
    assert len(starts) == len(ends) == 2 and task["attempts"] == 2
    assert _stamp(task["started"]) == pytest.approx(starts[0], abs=0.002)  # the first attempt's
    assert task["duration"] == pytest.approx(ends[1] - starts[1], abs=0.1) and task["duration"] < 0.8
    assert task["span"] == pytest.approx(ends[1] - starts[0], abs=0.1) and task["span"] >= 0.8  # the backoff too
    assert shown["work_seconds"] == task["span"] and shown["critical_path"]["seconds"] == task["span"]
    assert shown["wall_seconds"] == pytest.approx(task["span"], abs=0.01)
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    [bar] = [line for line in final.splitlines() if line.strip().startswith("T-01 ") and ":crit" in line]
    assert bar.split(", ")[-2] == str(round(starts[0] * 1000)), bar  # its gantt bar too


def test_a_tasks_duration_means_its_last_attempt_everywhere_and_its_span_is_named_apart(tmp_path: Path) -> None:
    """A task's duration meant two things: its last attempt's time in ``status``, its result and
    ``history --stats``, from its first start to its last end in ``report`` (whose critical path
    used it). Now ``duration`` is the last attempt's in every view, final_output.md's heading and
    ``report``'s Duration column too, and the first start to the last end is ``span``: report's
    Span column, the critical path and the sum it divides the wall time by."""
    write_plan(
        tmp_path,
        [Spec("T-01", "[ -f once ] || { touch once; sleep 0.6; exit 3; }; sleep 0.2", retries=1), Spec("T-02", "true")],
        {"backoff_base": 0.3},
    )
    assert run(tmp_path).code == 0
    status = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    result = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    recorded = float(re.search(r"^duration: ([\d.]+)$", result, re.M)[1])  # type: ignore[index]
    stats = json.loads(cli_in_process(tmp_path, "history", "--stats", "--json").stdout)["tasks"]["T-01"]
    report = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "report", "--json").stdout)["tasks"]}
    last = status["T-01"]["duration"]
    assert 0.15 < last < 0.55, last  # the second attempt's sleep 0.2, not the first's 0.6
    assert recorded == last and report["T-01"]["duration"] == last
    assert stats["median_seconds"] == pytest.approx(last, abs=0.05)
    span = report["T-01"]["span"]
    assert span >= 0.6 + 0.2 and span > last  # both attempts and the wait between them
    text = cli_in_process(tmp_path, "report").stdout
    assert "| Task | Status | Backend | Duration | Span | Attempts | Cost | Tokens |" in text
    assert f"| {format_duration(last)} | {format_duration(span)} | 2 |" in text, text
    assert "| Sum of task spans |" in text and "Sum of task times" not in text
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"(Agent-01, {format_duration(last)})" in final, final
    assert "| Sum of task spans |" in final


def test_parallel_efficiency_counts_the_slots_the_run_had_not_the_plans(tmp_path: Path) -> None:
    """``run --max-parallel 1`` replaces the plan's 4: two tasks one after the other kept its one
    slot busy, which is 100% (it read 25% of 4 slots); a later run with nothing left to run does
    not change what the results were made with."""
    write_plan(tmp_path, [Spec("T-01", "sleep 0.3"), Spec("T-02", "sleep 0.3")], {"max_parallel": 4})
    assert run(tmp_path, "--max-parallel", "1").code == 0
    assert run(tmp_path).code == 0  # (nothing to run: its 4 slots made no result)
    report: dict[str, Any] = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    assert report["max_parallel"] == 1 and report["plan_max_parallel"] == 4
    assert report["parallel_efficiency"] == pytest.approx(report["speedup"], abs=0.001)
    assert report["parallel_efficiency"] == pytest.approx(1.0, abs=0.05)  # one slot, busy all the time
    text = cli_in_process(tmp_path, "report").stdout
    assert "of 1 slot (the run's max_parallel, as --max-parallel set it; the plan's is 4) |" in text, text
