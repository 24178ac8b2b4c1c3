"""``export`` and ``import``: a plan as JSON or YAML and back, exact; a bad document refused at its
key's path with nothing written. ``templates list`` and ``init --template``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import cli, cli_in_process

from orchestrator.plan.model import Plan
from orchestrator.plan.parser import parse_plan, read_plan
from orchestrator.plan.transfer import check, export, write

ROOT = Path(__file__).parent.parent
PLANS = sorted(
    [
        *ROOT.glob("examples/*/.orchestrator/master_plan.md"),
        *ROOT.glob("examples/*/claude/master_plan.md"),
        *ROOT.glob("orchestrator/library/*/master_plan.md"),
        *ROOT.glob("tests/fixtures/render/*/master_plan.md"),
    ]
)
BUNDLED = sorted(p.parent.name for p in ROOT.glob("orchestrator/library/*/master_plan.md"))


def _same(plan: Plan) -> Any:
    """What a plan reads as, apart from where each row is in its file."""
    tasks = {task_id: dataclasses.replace(task, line=0, details_line=0) for task_id, task in plan.tasks.items()}
    return plan.settings, plan.request, plan.goal, tasks, plan.edges()


def test_there_are_plans_to_carry() -> None:
    assert len(PLANS) >= 12 and len(BUNDLED) == 4


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_round_trip_is_exact(path: Path, tmp_path: Path) -> None:
    original = read_plan(path)
    document = export(original)
    written = write(json.loads(json.dumps(document)))
    imported = check(written, tmp_path / "master_plan.md")
    assert export(imported) == document
    assert _same(imported) == _same(original)


def test_unknown_columns_and_settings_are_carried_without_being_known(tmp_path: Path) -> None:
    """Columns another branch adds (Type, Condition...) are cells by header, settings as given."""
    text = (
        "---\nbackend: shell\nparams: {repo: .}\n---\n# Plan\n\n## Original Request\n> Do it.\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies | Colour | Command |\n|---|---|---|---|---|\n"
        "| T-01 | one | None | red \\| blue | `echo {{ params.repo }} \\| wc -c` |\n"
        "| T-02 | two | T-01 | - | `echo two` |\n\n"
        "## Task Details\n\n### T-02 Two\nLonger words.\n\n#### A sub-heading\ntext\n\n## Notes\nKeep this.\n"
    )
    plan = parse_plan(text, tmp_path / "a.md")
    document = export(plan)
    assert document["columns"] == ["Task ID", "Description", "Dependencies", "Colour", "Command"]
    assert document["tasks"][0]["Colour"] == "red | blue"
    assert document["tasks"][1]["details"] == "Longer words.\n\n#### A sub-heading\ntext"
    assert document["notes"] == [{"heading": "Notes", "body": "Keep this."}]
    assert document["settings"] == {"backend": "shell", "params": {"repo": "."}}
    imported = check(write(document), tmp_path / "b.md")
    assert export(imported) == document
    assert _same(imported) == _same(plan)


def _document(tmp_path: Path) -> dict[str, Any]:
    done = cli_in_process(ROOT, "export", "examples/api-endpoints/.orchestrator")
    assert done.code == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tasks"][3].update({"Dependencies": "T-01, T-09"}),
            "tasks[3].Dependencies: unknown task 'T-09'",
        ),
        (lambda d: d["tasks"][1].update({"Owner": "me"}), "tasks[1].Owner: no such column (columns: Task ID, Task"),
        (lambda d: d["settings"].update({"retries": "many"}), "settings.retries: bad value for 'retries'"),
        (lambda d: d["tasks"][0].update({"Description": "two\nlines"}), "tasks[0].Description: a table cell is one"),
        (
            lambda d: d["tasks"][2].update({"details": "### T-09 x\ny"}),
            "tasks[2].details: holds a heading ('### T-09 x'), which would end its details",
        ),
        (lambda d: d.update({"colour": 1}), "colour: unknown key (use format, title"),
        (
            lambda d: d["tasks"][4].update({"Task ID": "T-01"}),
            "tasks[4].Task ID: duplicate task id 'T-01' (tasks[0] has it)",
        ),
        (  # (ids are one whatever their case, as the plan's are; found in a look-up, not a scan of all before)
            lambda d: d["tasks"][4].update({"Task ID": "t-02"}),
            "tasks[4].Task ID: duplicate task id 't-02' (tasks[1] has it)",
        ),
        (lambda d: d["tasks"][0].update({"Dependencies": "T-06"}), "tasks[0]: dependency cycle"),
        # What validate refuses beyond parsing (run/checks/preflight's checks), at its key too:
        (lambda d: d["settings"].update({"backend": "nosuch"}), "settings.backend: unknown backend 'nosuch'"),
    ],
)
def test_a_bad_document_is_refused_at_its_key_and_nothing_is_written(tmp_path: Path, change: Any, message: str) -> None:
    document = _document(tmp_path)
    change(document)
    (tmp_path / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    done = cli(tmp_path, "import", "plan.json")
    assert done.code == 2
    assert done.stderr.startswith(f"plan.json: {message}"), done.stderr
    assert done.stderr.strip().endswith("nothing was written") and len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def _gated(tmp_path: Path) -> dict[str, Any]:
    done = cli_in_process(ROOT, "export", "examples/release-gate/.orchestrator")
    assert done.code == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tasks"][1].update({"Condition": "T-01.failng == 0"}),
            "tasks[1]: T-02: T-01 has no output field 'failng' (did you mean failing?)",
        ),
        (
            lambda d: d["tasks"][1].update({"Condition": "T-01.failing =="}),
            "tasks[1]: T-02: cannot read 'T-01.failing ==': unexpected end of the condition",
        ),
        (
            lambda d: d["tasks"][2].update({"Condition": "T-04 failed"}),
            "tasks[2]: T-03: the condition names T-04, which the task does not depend on",
        ),
    ],
)
def test_a_condition_validate_would_refuse_is_refused_by_import(tmp_path: Path, change: Any, message: str) -> None:
    """import checks a Condition as validate and run do: one that reads a field the upstream's
    Output does not declare, or that cannot be read, is refused at its task's key."""
    document = _gated(tmp_path)
    change(document)
    (tmp_path / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    done = cli(tmp_path, "import", "plan.json")
    assert done.code == 2, done.stdout
    assert done.stderr.startswith(f"plan.json: {message}"), done.stderr
    assert done.stderr.strip().endswith("nothing was written") and len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_export_piped_into_import_writes_a_plan_that_runs(tmp_path: Path) -> None:
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "export",
            str(ROOT / "examples/api-endpoints/.orchestrator"),
            "--format",
            "yaml",
        ],
        capture_output=True,
        check=True,
    )
    project = tmp_path / "copy"
    project.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "import", "-"], input=exported.stdout, cwd=project, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "Wrote .orchestrator/master_plan.md: 6 tasks from stdin\n"
    assert cli_in_process(project, "validate").code == 0
    again = cli(project, "import", "-")
    assert again.code == 2 and "already exists — pass --force to replace it" in again.stderr
    assert cli_in_process(project, "export", "--format", "yaml").stdout == exported.stdout.decode()


def test_a_file_that_is_not_json_or_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text("tasks: [\n", encoding="utf-8")
    done = cli(tmp_path, "import", "plan.yaml")
    assert done.code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("plan.yaml:")
    assert not (tmp_path / ".orchestrator").exists()


def test_templates_list_names_the_bundled_ones_and_the_users(tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "nightly-audit"
    mine.mkdir(parents=True)
    (mine / "master_plan.md").write_text(
        (ROOT / "examples/repo-analysis/.orchestrator/master_plan.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    env = {"ORCHESTRATOR_TEMPLATES": str(tmp_path / "mine")}
    listed = json.loads(cli_in_process(tmp_path, "templates", "list", "--json", env=env).stdout)
    names = {t["name"]: t for t in listed["templates"]}
    assert set(names) == {*BUNDLED, "nightly-audit"}
    assert names["codebase-analysis"]["params"]["path"]["default"] == "app/"
    assert not names["nightly-audit"]["bundled"]
    made = cli(tmp_path, "init", "--template", "nightly-audit", env=env)
    assert made.code == 0, made.stderr
    unknown = cli(tmp_path, "init", "other", "--template", "nigthly-audit", env=env)
    assert unknown.code == 2
    assert unknown.stderr.startswith(
        "--template nigthly-audit: no such template (did you mean 'nightly-audit'?) — use one of: api-endpoints, "
    )
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("name", BUNDLED)
def test_init_from_each_bundled_template_validates(tmp_path: Path, name: str) -> None:
    if name == "fullstack-feature":  # isolation: worktree: a repository with a commit
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run(["git", *ident, "commit", "-q", "--allow-empty", "-m", "start"], cwd=tmp_path, check=True)
    done = cli(tmp_path, "init", "--template", name)
    assert done.code == 0, done.stderr
    checked = cli_in_process(tmp_path, "validate", "--json")
    assert checked.code == 0, checked.stderr
    assert json.loads(checked.stdout)["params"]


def test_a_template_reused_on_another_repository(tmp_path: Path) -> None:
    """``--param`` at init is remembered: the plan says ``{{ params.path }}``, the briefs src/."""
    done = cli(tmp_path, "init", "--template", "codebase-analysis", "--param", "path=src/")
    assert done.code == 0, done.stderr
    rendered = cli(tmp_path, "render")
    assert rendered.code == 0, rendered.stderr
    brief = (tmp_path / ".orchestrator/agent_tasks/agent-01.md").read_text(encoding="utf-8")
    assert "List every Python file under `src/`" in brief
    assert "{{ params.path }}" in (tmp_path / ".orchestrator/master_plan.md").read_text(encoding="utf-8")
    bad = cli(tmp_path, "init", "x", "--template", "codebase-analysis", "--param", "repo=src/")
    assert bad.code == 2 and "declares no parameter 'repo'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_import_refuses_a_plan_over_the_limit_before_writing_it(tmp_path: Path) -> None:
    """import wrote a plan validate then refused (100 MB): what is over the plan limit is refused
    first, in one line, and nothing is written; so is a file larger than any plan's export."""
    from orchestrator.plan.model import PLAN_LIMIT, READ_LIMIT

    document = export(read_plan(ROOT / "examples/api-endpoints/.orchestrator/master_plan.md"))
    document["tasks"][0]["Description"] = "x" * (PLAN_LIMIT + 1)
    (tmp_path / "big.json").write_text(json.dumps(document), encoding="utf-8")
    done = cli(tmp_path, "import", "big.json")
    assert done.code == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("big.json: (document): the plan it makes holds ")
    assert f"more than the {PLAN_LIMIT:,} a plan may have" in done.stderr and "nothing was written" in done.stderr
    assert not (tmp_path / ".orchestrator").exists()
    (tmp_path / "huge.json").write_bytes(b" " * (READ_LIMIT + 1))
    for args, said in ((["huge.json"], f"huge.json: {READ_LIMIT + 1:,} bytes, more than the {READ_LIMIT:,} bytes"),
                       (["-"], f"-: more than the {READ_LIMIT:,} bytes an export of a plan may be")):  # fmt: skip
        piped = subprocess.run(
            [sys.executable, "-m", "orchestrator", "import", *args], input=b" " * (READ_LIMIT + 1), cwd=tmp_path,
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert piped.returncode == 2 and piped.stderr.decode().startswith(said), piped.stderr
        assert piped.stderr.count(b"\n") == 1
    assert not (tmp_path / ".orchestrator").exists()


def test_a_file_nested_too_deep_is_said_so_not_not_yaml(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")  # past Python's recursion
    (tmp_path / "deep80.json").write_text("[" * 80 + "]" * 80, encoding="utf-8")  # within it, past a plan's
    (tmp_path / "deep.yaml").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    for name in ("deep.json", "deep80.json", "deep.yaml"):
        done = cli(tmp_path, "import", name)
        assert done.code == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "too deeply nested: lists or mappings more than 64 deep" in done.stderr, done.stderr
        assert "not YAML" not in done.stderr
    assert not (tmp_path / ".orchestrator").exists()


def test_export_carries_the_types_of_types_yaml(tmp_path: Path) -> None:
    """A plan whose tasks name types of types.yaml exported without them: imported elsewhere, its
    tasks named an unknown type. They go under the document's types setting, the plan's own
    definitions over the file's, field by field, as the plan reads them."""
    source = tmp_path / "source"
    source.mkdir()
    assert cli(source, "init", "--backend", "shell").code == 0
    workspace = source / ".orchestrator"
    (workspace / "types.yaml").write_text("quick:\n  timeout: 1m\n  retries: 0\nlint:\n  timeout: 30s\n")
    plan = workspace / "master_plan.md"
    plan.write_text(plan.read_text().replace("retries: 2\n", "retries: 2\ntypes: {quick: {retries: 1}}\n"))
    assert cli(source, "update", "T-01", "--type", "quick").code == 0
    assert cli(source, "update", "T-02", "--type", "lint").code == 0
    exported = cli(source, "export")
    assert exported.code == 0, exported.stderr
    assert json.loads(exported.stdout)["settings"]["types"] == {
        "quick": {"timeout": "1m", "retries": 1},
        "lint": {"timeout": "30s"},
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "plan.json").write_text(exported.stdout)
    done = cli(elsewhere, "import", "plan.json")
    assert done.code == 0, done.stderr
    here, there = read_plan(plan), read_plan(elsewhere / ".orchestrator" / "master_plan.md")
    for task_id in ("T-01", "T-02"):
        mine, theirs = here.tasks[task_id], there.tasks[task_id]
        ours, theirs_ = here.settings_for(mine), there.settings_for(theirs)
        assert (ours.timeout, ours.retries) == (theirs_.timeout, theirs_.retries), task_id
    assert (
        there.settings_for(there.tasks["T-01"]).timeout == 60 and there.settings_for(there.tasks["T-01"]).retries == 1
    )
    assert cli(elsewhere, "validate").code == 0
