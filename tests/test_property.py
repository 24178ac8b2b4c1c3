"""Any valid plan written as markdown parses back to the same tasks and edges, and still does after
``render`` has rewritten the tool-owned sections of master_plan.md."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import Workspace, load_plan, parse_plan
from orchestrator.output.briefs import render_briefs
from orchestrator.output.sections import update_plan_file
from orchestrator.plan.table.cells import id_problem

_NOT_IDS = {"none", "na", "nil", "null", "no", "and"}


def _valid_id(value: str) -> bool:
    # "_x_" is markdown emphasis around x, so the parser reads it as "x"
    return id_problem(value) is None and value.lower() not in _NOT_IDS and not (value[0] == value[-1] == "_")


ids = st.from_regex(r"[A-Za-z0-9._-]{1,24}", fullmatch=True).filter(_valid_id)

# Cell text: anything but '|', line breaks and control characters; with jinja syntax, markdown and
# the characters str.splitlines() would split at.
_ALPHABET = st.characters(
    blacklist_categories=("Cc", "Cs"),
    blacklist_characters="|\n\r",
)
_PIECES = st.sampled_from(
    ["{{ 7*7 }}", "{% for x in y %}", "{% endfor %}", "{# c #}", "**bold**", "`code`", "<b>", "&amp;", "---",
     "\x0c", "\x85", "\u2028", "\u2029", "\t", "# not a heading", "✅", "漢字", "🙂", " "]
)  # fmt: skip
cell_text = st.lists(st.one_of(st.text(_ALPHABET, max_size=12), _PIECES), max_size=6).map("".join)

PRIORITIES = {
    0: ["P0", "critical", "urgent", "0"],
    1: ["P1", "high", "HIGH", "1"],
    2: ["P2", "normal", "medium", "2", ""],
    3: ["P3", "low", "3"],
    7: ["7"],
}
ID_HEADERS = ["Task ID", "ID", "task id"]
NAME_HEADERS = ["Task Name", "Name", "Title"]
DEPS_HEADERS = ["Dependencies", "Depends On", "Deps"]
NO_DEPS = ["None", "-", "—", "", "none"]
SEPARATORS = [", ", ",", " ", " , ", ",  "]
HEADINGS = ["## Task Decomposition", "## 📋 task decomposition", "## TASK DECOMPOSITION:"]


@dataclass(frozen=True)
class Row:
    id: str
    name: str
    description: str
    deps: tuple[str, ...]
    priority: int
    priority_cell: str
    separator: str
    no_deps: str
    case_flip: bool  # write dependency ids in another case


@dataclass(frozen=True)
class Spec:
    rows: tuple[Row, ...]
    id_header: str
    name_header: str | None
    deps_header: str
    priority_column: bool
    heading: str
    newline: str
    bom: bool
    with_sections: bool


@st.composite
def plans(draw: st.DrawFn) -> Spec:
    task_ids = draw(st.lists(ids, min_size=1, max_size=10, unique_by=str.lower))
    rows: list[Row] = []
    for index, task_id in enumerate(task_ids):
        earlier = task_ids[:index]
        deps = tuple(draw(st.lists(st.sampled_from(earlier), unique=True, max_size=4))) if earlier else ()
        level = draw(st.sampled_from(sorted(PRIORITIES)))
        rows.append(
            Row(
                id=task_id,
                name=draw(cell_text),
                description=draw(cell_text),
                deps=deps,
                priority=level,
                priority_cell=draw(st.sampled_from(PRIORITIES[level])),
                separator=draw(st.sampled_from(SEPARATORS)),
                no_deps=draw(st.sampled_from(NO_DEPS)),
                case_flip=draw(st.booleans()),
            )
        )
    return Spec(
        rows=tuple(rows),
        id_header=draw(st.sampled_from(ID_HEADERS)),
        name_header=draw(st.sampled_from([None, *NAME_HEADERS])),
        deps_header=draw(st.sampled_from(DEPS_HEADERS)),
        priority_column=draw(st.booleans()),
        heading=draw(st.sampled_from(HEADINGS)),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        bom=draw(st.booleans()),
        with_sections=draw(st.booleans()),
    )


def markdown(spec: Spec) -> str:
    header = [spec.id_header]
    if spec.name_header:
        header.append(spec.name_header)
    header += ["Description", spec.deps_header]
    if spec.priority_column:
        header.append("Priority")
    lines = ["---", "backend: shell", "---", "# Plan", "", "## Original Request", "> {{ request }}", "", spec.heading]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in spec.rows:
        cells = [row.id]
        if spec.name_header:
            cells.append(row.name)
        deps = [d.swapcase() if row.case_flip else d for d in row.deps]
        cells += [row.description, row.separator.join(deps) if deps else row.no_deps]
        if spec.priority_column:
            cells.append(row.priority_cell)
        lines.append("| " + " | ".join(cells) + " |")
    if spec.with_sections:
        lines += ["", "## Agent Assignment", "stale", "", "## Dependency Graph", "stale", "", "## Notes", "keep me"]
    return spec.newline.join(lines) + spec.newline


def check(plan_text: str, spec: Spec, source: str) -> None:
    plan = parse_plan(plan_text)
    assert list(plan.tasks) == [row.id for row in spec.rows], source
    for row in spec.rows:
        task = plan.tasks[row.id]
        assert task.dependencies == row.deps
        assert task.description == row.description.strip()
        assert task.name == (row.name.strip() if spec.name_header else "")
        assert task.priority == (row.priority if spec.priority_column else 2)
    expected = {(dep, row.id) for row in spec.rows for dep in row.deps}
    assert set(plan.graph.edges) == expected
    assert [t.agent for t in plan.tasks.values()] == [f"Agent-{i:02d}" for i in range(1, len(spec.rows) + 1)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_markdown_round_trip(spec: Spec) -> None:
    text = markdown(spec)
    check(text, spec, text)

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / ".orchestrator"
        root.mkdir()
        data = text.encode()
        (root / "master_plan.md").write_bytes((b"\xef\xbb\xbf" if spec.bom else b"") + data)
        ws = Workspace(root)
        plan = load_plan(root)
        report = render_briefs(plan, ws)
        assert len(report.written) == len(spec.rows)
        assert update_plan_file(plan, ws)
        written = (root / "master_plan.md").read_bytes()
        assert written.startswith(b"\xef\xbb\xbf" if spec.bom else data[:1])
        rewritten = written.decode("utf-8-sig")
        # Every byte the person wrote stays, their own sections named like the tool's included;
        # the tool's blocks come after, between their markers.
        assert rewritten.startswith(text)
        assert "<!-- orchestrator:begin status" in rewritten[len(text) :]
        check(rewritten, spec, rewritten)

        again = load_plan(root)
        assert not update_plan_file(again, ws)
        second = render_briefs(again, ws)
        assert second.written == [] and second.kept_edited == []
