"""Rendering briefs: user text stays literal, a re-render is a no-op, hand edits are kept, templates
can be overridden and a broken override is a clean error that writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import PlanError, Workspace, documents, load_plan
from orchestrator.cli.main import main
from orchestrator.output.briefs import brief_was_edited, render_briefs
from orchestrator.output.sections import update_plan_file

PLAN = """---
backend: claude
---
# Plan

## Original Request
> Print {{ 7*7 }} and {% raw %}x{% endraw %} literally.

## Task Decomposition
| Task ID | Task Name | Description | Dependencies | Priority |
|---------|-----------|-------------|--------------|----------|
| T-01 | Scan {{ name }} | echo {{ 7*7 }} {% for i in range(3) %}{{ i }}{% endfor %} | None | P1 |
| T-02 | Sum | {# not a comment #} ünïcödé ✅ | T-01 | P2 |
| T-03 | Report | Combine | T-01, T-02 | P3 |

## Task Details

### T-03 Report
{% include "/etc/passwd" %}
{{ settings.__class__.__init__.__globals__ }}
"""

Tree = dict[str, tuple[bytes, int, int]]


def snapshot(root: Path) -> Tree:
    """Every file and directory under ``root`` with its bytes, mtime and mode; the workspace lock
    (which render takes, writing its pid, and empties on release) only by its presence."""
    return {
        p.relative_to(root).as_posix(): (b"" if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        if p.name != "runner.lock"
        else (b"", 0, 0)
        for p in [root, *sorted(root.rglob("*"))]
    }


def make_workspace(root: Path, text: str = PLAN) -> Workspace:
    (root / ".orchestrator").mkdir(parents=True, exist_ok=True)
    (root / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")
    return Workspace(root / ".orchestrator")


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=root,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def cli(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def brief_body(path: Path) -> str:
    return documents.parse(path.read_text(encoding="utf-8"))[1]


# --- user text is data, never template code ------------------------------------------------------


def test_jinja_syntax_in_plan_is_literal(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    plan = load_plan(ws.root)
    report = render_briefs(plan, ws)
    assert report.written == [f".orchestrator/agent_tasks/agent-0{i}.md" for i in (1, 2, 3)]
    b1 = brief_body(ws.tasks_dir / "agent-01.md")
    assert "echo {{ 7*7 }} {% for i in range(3) %}{{ i }}{% endfor %}" in b1
    assert "Scan {{ name }}" in b1
    assert "> Print {{ 7*7 }} and {% raw %}x{% endraw %} literally." in b1
    assert "49" not in b1 and "012" not in b1
    b2 = brief_body(ws.tasks_dir / "agent-02.md")
    assert "{# not a comment #} ünïcödé ✅" in b2
    b3 = brief_body(ws.tasks_dir / "agent-03.md")
    assert '{% include "/etc/passwd" %}\n{{ settings.__class__.__init__.__globals__ }}' in b3
    assert "root:" not in b3
    meta = documents.parse((ws.tasks_dir / "agent-03.md").read_text(encoding="utf-8"))[0]
    assert meta["task"] == "T-03" and meta["agent"] == "Agent-03"
    assert meta["dependencies"] == ["T-01", "T-02"]
    assert meta["inputs"] == [".orchestrator/results/agent-01-result.md", ".orchestrator/results/agent-02-result.md"]
    assert meta["priority"] == "P3"


def test_jinja_syntax_survives_the_plan_file_rewrite(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    plan = load_plan(ws.root)
    assert update_plan_file(plan, ws)
    text = ws.plan_file.read_text(encoding="utf-8")
    assert text.startswith(PLAN)
    assert "T-01: Scan {{ name }}" in text  # the mermaid node label
    again = load_plan(ws.root)
    assert list(again.tasks) == list(plan.tasks)
    assert again.tasks["T-01"].description == plan.tasks["T-01"].description
    assert set(again.graph.edges) == set(plan.graph.edges)


# --- idempotence ---------------------------------------------------------------------------------


def test_render_twice_writes_nothing_subprocess(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    first = run_cli(tmp_path, "render")
    assert first.returncode == 0, first.stderr
    assert "3 written, 0 unchanged" in first.stdout
    before = snapshot(tmp_path)
    second = run_cli(tmp_path, "render", "--json")
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert json.loads(second.stdout) == {
        "ok": True,
        "written": [],
        "unchanged": [f".orchestrator/agent_tasks/agent-0{i}.md" for i in (1, 2, 3)],
        "kept_edited": [],
        "changed_under_edit": [],
        "moved_aside": [],
    }
    assert snapshot(tmp_path) == before
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_render_idempotent_with_details_and_line_endings(
    tmp_path: Path, newline: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PLAN.replace("\n", newline)
    ws = tmp_path / ".orchestrator"
    ws.mkdir()
    (ws / "master_plan.md").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert cli(tmp_path, capsys, monkeypatch, "render")[0] == 0
    before = snapshot(tmp_path)
    code, out, err = cli(tmp_path, capsys, monkeypatch, "render")
    assert code == 0
    assert err == ""
    assert "0 written, 3 unchanged, 0 kept" in out
    assert snapshot(tmp_path) == before
    data = (ws / "master_plan.md").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf" + text.encode())  # BOM and line endings kept
    if newline == "\r\n":
        assert b"\n" not in data.replace(b"\r\n", b"")
    assert "{{ settings.__class__" in brief_body(ws / "agent_tasks" / "agent-03.md")


def test_changed_plan_rewrites_only_changed_briefs(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    render_briefs(load_plan(ws.root), ws)
    mtimes = {p.name: p.stat().st_mtime_ns for p in ws.tasks_dir.iterdir()}
    changed = PLAN.replace("| Sum |", "| Total |").replace("| Combine |", "| Combine all |")
    ws.plan_file.write_text(changed, encoding="utf-8")
    report = render_briefs(load_plan(ws.root), ws)
    assert report.written == [".orchestrator/agent_tasks/agent-02.md"]  # T-03's Task Details win over its description
    assert report.kept_edited == []
    assert report.unchanged == [".orchestrator/agent_tasks/agent-01.md", ".orchestrator/agent_tasks/agent-03.md"]
    assert (ws.tasks_dir / "agent-01.md").stat().st_mtime_ns == mtimes["agent-01.md"]
    assert (ws.tasks_dir / "agent-03.md").stat().st_mtime_ns == mtimes["agent-03.md"]
    assert "**Task Name**: Total" in brief_body(ws.tasks_dir / "agent-02.md")
    assert not brief_was_edited((ws.tasks_dir / "agent-02.md").read_text(encoding="utf-8"))


# --- hand edits ----------------------------------------------------------------------------------


def test_hand_edited_brief_is_kept_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path)
    assert cli(tmp_path, capsys, monkeypatch, "render")[0] == 0
    brief = ws.tasks_dir / "agent-02.md"
    edited = brief.read_text(encoding="utf-8").replace("## Task Description", "## Task Description\nAlso lint.")
    brief.write_text(edited, encoding="utf-8")
    assert brief_was_edited(edited)

    # Plan unchanged: kept and named on stderr.
    code, out, err = cli(tmp_path, capsys, monkeypatch, "render")
    assert code == 0
    assert ".orchestrator/agent_tasks/agent-02.md" in err and "--force" in err
    assert "1 kept (edited by hand)" in out
    assert brief.read_text(encoding="utf-8") == edited

    # Plan changed for that task: still kept, still reported; the other briefs follow the plan.
    ws.plan_file.write_text(PLAN.replace("| Sum |", "| Total |").replace("| Combine |", "| Merge |"), encoding="utf-8")
    code, out, err = cli(tmp_path, capsys, monkeypatch, "render")
    assert code == 0
    assert err.count("agent-02.md") == 1 and "agent-01.md" not in err
    assert brief.read_text(encoding="utf-8") == edited

    # --force re-renders it.
    code, out, err = cli(tmp_path, capsys, monkeypatch, "render", "--force")
    assert code == 0 and err == ""
    assert "Also lint." not in brief.read_text(encoding="utf-8")
    assert "**Task Name**: Total" in brief_body(brief)
    assert not brief_was_edited(brief.read_text(encoding="utf-8"))


def test_hand_edit_reported_by_subprocess(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    render_briefs(load_plan(ws.root), ws)
    brief = ws.tasks_dir / "agent-01.md"
    brief.write_text(brief.read_text(encoding="utf-8") + "\nMy note.\n", encoding="utf-8")
    proc = run_cli(tmp_path, "render")
    assert proc.returncode == 0
    assert ".orchestrator/agent_tasks/agent-01.md: edited by hand" in proc.stderr
    assert brief.read_text(encoding="utf-8").endswith("My note.\n")


def test_unparseable_brief_counts_as_edited(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.tasks_dir.mkdir()
    (ws.tasks_dir / "agent-01.md").write_text("my own brief, no frontmatter\n", encoding="utf-8")
    report = render_briefs(load_plan(ws.root), ws)
    assert report.kept_edited == [".orchestrator/agent_tasks/agent-01.md"]
    assert (ws.tasks_dir / "agent-01.md").read_text(encoding="utf-8") == "my own brief, no frontmatter\n"
    assert render_briefs(load_plan(ws.root), ws, force=True).written == [".orchestrator/agent_tasks/agent-01.md"]


def test_a_brief_that_is_not_utf8_is_an_error_not_overwritten(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.tasks_dir.mkdir()
    mine = "my own brief in Latin-1: café\n".encode("latin-1")
    (ws.tasks_dir / "agent-01.md").write_bytes(mine)
    proc = run_cli(tmp_path, "render")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        ".orchestrator/agent_tasks/agent-01.md: not UTF-8 text (byte 28)"
        " — fix the brief, or delete it to render it again"
    ]
    assert "Traceback" not in proc.stderr
    assert (ws.tasks_dir / "agent-01.md").read_bytes() == mine
    assert not (ws.tasks_dir / "agent-02.md").exists()  # nothing half-written
    assert run_cli(tmp_path, "render", "--force").returncode == 0
    assert brief_body(ws.tasks_dir / "agent-01.md").startswith("# ")


# --- template overrides --------------------------------------------------------------------------


def test_template_override_is_used(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / "agent_task.md.j2").write_text(
        "CUSTOM {{ task.id }} by {{ task.agent }}\n{{ task.instructions }}\n"
        "{% for i in inputs %}<{{ i.path }}>{% endfor %}\n",
        encoding="utf-8",
    )
    render_briefs(load_plan(ws.root), ws)
    body = brief_body(ws.tasks_dir / "agent-02.md")
    assert body == "CUSTOM T-02 by Agent-02\n{# not a comment #} ünïcödé ✅\n<.orchestrator/results/agent-01-result.md>"
    assert "echo {{ 7*7 }}" in brief_body(ws.tasks_dir / "agent-01.md")


def test_override_with_surrounding_whitespace_is_not_mistaken_for_an_edit(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / "agent_task.md.j2").write_text("   {{ task.instructions }}   \n\n", encoding="utf-8")
    render_briefs(load_plan(ws.root), ws)
    for brief in ws.tasks_dir.iterdir():
        assert not brief_was_edited(brief.read_text(encoding="utf-8")), brief.name
    ws.plan_file.write_text(PLAN.replace("| Combine |", "| Merge |").replace("| Sum |", "| Add |"), encoding="utf-8")
    report = render_briefs(load_plan(ws.root), ws)
    assert report.kept_edited == []


def test_override_of_the_plan_sections(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / "assignment.md.j2").write_text(
        "{% for row in rows %}- {{ row.id }} → {{ row.agent }}\n{% endfor %}", encoding="utf-8"
    )
    update_plan_file(load_plan(ws.root), ws)
    text = ws.plan_file.read_text(encoding="utf-8")
    block = "\n- T-01 → Agent-01\n- T-02 → Agent-02\n- T-03 → Agent-03\n<!-- orchestrator:end status -->\n"
    assert "## Agent Assignment\n<!-- orchestrator:begin status " in text and block in text


BROKEN: dict[str, tuple[str | bytes, str]] = {
    "syntax": ("line one\n{{ task.id \n", "templates/agent_task.md.j2:2: template error:"),
    "unclosed-block": ("{% for x in inputs %}\n", "templates/agent_task.md.j2:"),
    "unknown-attribute": ("ok\n{{ task.nope }}\n", "templates/agent_task.md.j2:2: template error:"),
    "unknown-filter": ("{{ task.id | shout }}\n", "No filter named 'shout'"),
    "division-by-zero": ("a\nb\n{{ 1 / 0 }}\n", "templates/agent_task.md.j2:3: template error: ZeroDivisionError"),
    "range-too-big": ("{{ range(10**9) | list | length }}\n", "template error: OverflowError"),
    "missing-include": (
        'x\n{% include "nothere.j2" %}\n',
        "agent_task.md.j2:2: template error: no template named 'nothere.j2'",
    ),
    "sandbox-escape": ("{{ task.__class__.__mro__ }}\n", "unsafe"),
    "not-utf8": (b"ok\n\xff\n", "templates/agent_task.md.j2:2: template error: not valid UTF-8 (byte 0xff)"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_override_is_a_clean_error_and_writes_nothing(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, expected = BROKEN[kind]
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    data = source if isinstance(source, bytes) else source.encode()
    (ws.templates_dir / "agent_task.md.j2").write_bytes(data)
    before = snapshot(tmp_path)
    code, out, err = cli(tmp_path, capsys, monkeypatch, "render")
    assert code == 2
    assert out == ""
    assert expected in err
    assert " — fix the template or delete it to use the packaged one" in err
    assert "Traceback" not in err
    assert err.endswith("1 problem; nothing was written.\n")
    assert snapshot(tmp_path) == before
    with pytest.raises(PlanError):
        render_briefs(load_plan(ws.root), ws)


@pytest.mark.parametrize("name", ["assignment.md.j2", "dependency_graph.md.j2"])
def test_broken_section_template_writes_no_brief(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / name).write_text("{{ nothing_here.at_all }}\n", encoding="utf-8")
    before = snapshot(tmp_path)
    code, _, err = cli(tmp_path, capsys, monkeypatch, "render")
    assert code == 2
    assert f"templates/{name}:1: template error:" in err
    assert snapshot(tmp_path) == before


def test_broken_override_subprocess(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / "agent_task.md.j2").write_text("{% if %}\n", encoding="utf-8")
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "render")
    assert proc.returncode == 2
    assert proc.stderr.startswith(".orchestrator/templates/agent_task.md.j2:1: template error:")
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before


def _late_workspace(tmp_path: Path, files: dict[str, str], command: str = "touch ran") -> None:
    """A one-task shell plan with ``files`` as the workspace's templates."""
    ws = tmp_path / ".orchestrator"
    (ws / "templates").mkdir(parents=True)
    (ws / "master_plan.md").write_text(
        "---\nbackend: shell\n---\n## Task Decomposition\n| Task ID | Command | Dependencies |\n|---|---|---|\n"
        f"| T-01 | {command} | None |\n",
        encoding="utf-8",
    )
    for name, text in files.items():
        (ws / "templates" / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", ["assignment.md.j2", "dependency_graph.md.j2", "final_output.md.j2"])
def test_a_broken_template_the_run_renders_late_stops_it_before_any_task(tmp_path: Path, name: str) -> None:
    """The status blocks and final_output.md are rendered after tasks start: a broken override
    stopped the run there, having run (and paid for) tasks, and said "nothing was written"."""
    _late_workspace(tmp_path, {name: "fine\n{{ nope }}\n"})
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f".orchestrator/templates/{name}:2: template error: 'nope' is undefined")
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    assert snapshot(tmp_path) == before  # no task ran, no file was written


def test_a_late_template_that_needs_results_is_not_refused_before_there_are_any(tmp_path: Path) -> None:
    """Rendered before the run to find it broken, ``(completed | last)`` failed on a fresh
    workspace ("No last item"), and such a workspace could never run: names are checked, not values."""
    ws = tmp_path / ".orchestrator"
    _late_workspace(tmp_path, {"final_output.md.j2": "# Last\n{{ (completed | last).id }}\n"}, "echo done")
    proc = run_cli(tmp_path, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = (ws / "final_output.md").read_text(encoding="utf-8")
    assert written.startswith("# Last\nT-01\n\n<!-- written by orchestrator")  # (its last line: the digest)


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{% if extra is defined %}{{ extra }}{% endif %}{{ title | default('Result') }}\n", id="guarded"),
        pytest.param(
            "{% if summary %}{% set t = 1 %}{% else %}{% set t = 2 %}{% endif %}{{ t }}\n", id="set-in-branches"
        ),
        pytest.param(
            "{% macro row(x) %}{{ x.id }}{% endmacro %}{% for t in completed %}{{ row(t) }}{% endfor %}\n", id="macro"
        ),
        pytest.param('{% include "part.j2" %}\n', id="include"),
    ],
)
def test_a_late_template_that_renders_is_not_refused_by_its_check(tmp_path: Path, template: str) -> None:
    """Names a template sets itself, guards with `is defined` or `default`, or leaves to an
    include that is fine, are no misspelt names (the check refused the first two kinds)."""
    _late_workspace(tmp_path, {"final_output.md.j2": template, "part.j2": "{{ summary | length }}\n"})
    proc = run_cli(tmp_path, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("part", "said"),
    [
        pytest.param(
            "line\n{{ summry.total }}\n", "templates/part.j2:2: template error: 'summry' is undefined", id="name"
        ),
        pytest.param("{% if %}\n", "templates/part.j2:1: template error: Expected an expression", id="syntax"),
        pytest.param(None, "templates/final_output.md.j2:2: template error: no template named 'part.j2'", id="missing"),
    ],
)
def test_what_a_late_template_includes_is_checked_before_any_task(tmp_path: Path, part: str | None, said: str) -> None:
    """A broken included template was found only after every task had run."""
    files = {"final_output.md.j2": '# Report\n{% include "part.j2" %}\n', **({"part.j2": part} if part else {})}
    _late_workspace(tmp_path, files)
    proc = run_cli(tmp_path, "run")
    assert proc.returncode == 2 and proc.stderr.startswith(f".orchestrator/{said}"), proc.stderr
    assert not (tmp_path / ".orchestrator" / "results").exists()


def test_what_each_late_template_is_given_is_what_the_packaged_one_uses() -> None:
    """The names the check allows are those the run passes: the packaged templates use them all."""
    import jinja2.meta

    from orchestrator.output import final, sections
    from orchestrator.output.templates import packaged_environment

    env = packaged_environment()
    for name, given in [*sections.GIVEN.items(), ("final_output.md.j2", final.GIVEN)]:
        assert env.loader is not None
        used = jinja2.meta.find_undeclared_variables(env.parse(env.loader.get_source(env, name)[0]))
        assert used == set(given), name


# --- file modes ----------------------------------------------------------------------------------


def test_render_keeps_the_plan_file_mode(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    ws.plan_file.chmod(0o640)
    render_briefs(load_plan(ws.root), ws)
    assert update_plan_file(load_plan(ws.root), ws)
    assert ws.plan_file.stat().st_mode & 0o777 == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    assert (ws.tasks_dir / "agent-01.md").stat().st_mode & 0o777 == 0o666 & ~umask


def test_render_writes_the_plan_file_as_it_is_once_it_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What changed in master_plan.md while render was still rendering (a
    run that ended then, a hand edit) is kept: its sections are made again under the lock."""
    from orchestrator.state import lock

    workspace = make_workspace(tmp_path)
    real_acquire = lock.WorkspaceLock.acquire

    def acquire_after_an_edit(self: lock.WorkspaceLock) -> None:
        with workspace.plan_file.open("a", encoding="utf-8") as plan:
            plan.write("\nAdded while render was rendering.\n")
        real_acquire(self)

    monkeypatch.setattr(lock.WorkspaceLock, "acquire", acquire_after_an_edit)
    assert main(["render", str(workspace.root)]) == 0
    text = workspace.plan_file.read_text(encoding="utf-8")
    assert "Added while render was rendering." in text
    assert "## Agent Assignment" in text
