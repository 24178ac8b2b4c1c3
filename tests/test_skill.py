"""The Claude Code skill: SKILL.md's format, its links, ``install-skill``, and the real claude loading it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeapi import FakeAnthropic, Reply, claude_env, claude_missing, find_claude

from orchestrator.cli.agents.skill import SKILL_FILES

ROOT = Path(__file__).resolve().parent.parent
SKILL = ROOT / "SKILL.md"
NAME = "task-orchestrator"
DOCS = ("README.md", *SKILL_FILES)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def frontmatter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert match, f"{path.name} has no YAML frontmatter"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data, match.group(2)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.*)$", text, re.M)}


# --- SKILL.md itself ---------------------------------------------------------------------------


def test_frontmatter_is_claude_codes_format() -> None:
    data, _ = frontmatter(SKILL)
    assert {"name", "description", "allowed-tools"} <= set(data)
    name = data["name"]
    assert isinstance(name, str) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and len(name) <= 64
    assert name == NAME
    description = data["description"]
    assert isinstance(description, str) and 0 < len(description) <= 1024
    for word in ("parallel", "concurrently", "sub-agents", "orchestrate", "break down", "decompose", "3 or more"):
        assert word in description, f"the description does not say when to use it: {word!r}"
    assert "Do not use" in description and "single-step" in description and "quick questions" in description


def test_allowed_tools_are_what_the_workflow_needs() -> None:
    data, _ = frontmatter(SKILL)
    tools = [t.strip() for t in str(data["allowed-tools"]).split(",")]
    assert tools == ["Bash(orchestrator:*)", "Read", "Write", "Edit", "Glob", "Grep"]


def test_body_is_short_and_calls_the_command_on_path() -> None:
    """A project's copy is used on machines without this venv: it calls `orchestrator` as the user's
    shell finds it, never `python -m orchestrator` (a python without the package), and says in
    one line what to do when the command is missing."""
    _, body = frontmatter(SKILL)
    assert len(body.splitlines()) < 500  # the skills guide: a body under about 500 lines
    for command in ("validate", "run", "status", "plan"):
        assert f"`orchestrator {command}" in body or f"\norchestrator {command}" in body
    assert not re.search(r"(?<![\w/.\"$-])python3? -m orchestrator", body)
    missing = next(line for line in body.split("\n\n") if "command not found" in line)
    assert "pipx install task-orchestrator" in missing and "uv tool install" in " ".join(missing.split())


@pytest.mark.parametrize("doc", DOCS)
def test_no_paragraph_says_a_line_twice(doc: str) -> None:
    """A merge that keeps both sides leaves a line twice in a paragraph (SKILL.md said how a loop
    learns what needs you twice, between the lines on blocking): the agent reads a garbled rule."""
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", (ROOT / doc).read_text(encoding="utf-8"), flags=re.S | re.M)
    for paragraph in text.split("\n\n"):
        prose = [line for line in paragraph.splitlines() if not line.startswith("|")]  # (table rows may say alike)
        words = " ".join(prose).split()
        runs = [" ".join(words[i : i + 10]) for i in range(len(words) - 9)]  # ten words in a row
        repeated = sorted({run for run in runs if runs.count(run) > 1})
        assert not repeated, f"{doc}: a paragraph says twice: {repeated[0]}"


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file) if file else path
        assert linked.exists(), f"{doc}: link to {target} does not resolve"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{doc}: no heading for #{anchor} in {linked.name}"


def test_packaged_copies_are_the_top_level_files() -> None:
    for name in SKILL_FILES:
        packaged = ROOT / "orchestrator" / "skill" / name
        assert packaged.is_symlink() and packaged.resolve() == (ROOT / name).resolve()


# Paths that only exist on the machine a text was written or captured on. `/home/me/...` is the
# docs' stand-in for a reader's own path, and `~` the captured outputs' home.
MACHINE_PATH = re.compile(r"/tmp/|/private/var/|/var/folders/|pytest-of-|/root/|/work/|/Users/(?!me/)|/home/(?!me/)")


def test_shipped_docs_and_package_data_name_no_path_of_a_machine() -> None:
    """install-skill --project commits these files into other people's projects, and the wheel
    carries the package data: neither names a path of the machine they were written on."""
    shipped = [ROOT / name for name in DOCS] + [
        path
        for folder in ("templates", "serve/static")
        for path in sorted((ROOT / "orchestrator" / folder).rglob("*"))
        if path.is_file()
    ]
    here = {str(ROOT), str(Path.home()), str(Path(sys.executable).parent)} - {"/"}
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            assert not MACHINE_PATH.search(line), f"{path.relative_to(ROOT)}:{number}: {line[:160]}"
            assert not any(place in line for place in here), f"{path.relative_to(ROOT)}:{number}: {line[:160]}"


# --- install-skill -----------------------------------------------------------------------------


def install(cwd: Path, home: Path, *args: str, config_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    env["HOME"] = str(home)
    if config_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "install-skill", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _outside_fences_and_in_shell_blocks(text: str) -> tuple[str, str]:
    """The lines of ``text`` outside code fences, and those in ``bash`` (or unmarked) blocks."""
    prose: list[str] = []
    shell: list[str] = []
    fence = ""
    kind = ""
    for line in text.split("\n"):
        opened = re.match(r"^(`{3,}|~{3,})\s*(\w*)", line)
        if not fence and opened:
            fence, kind = opened.group(1), opened.group(2)
        elif fence and re.fullmatch(re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*", line):
            fence = ""
        elif not fence:
            prose.append(line)
        elif kind in ("", "bash", "sh"):
            shell.append(line)
    return "\n".join(prose), "\n".join(shell)


def localized(name: str) -> str:
    """SKILL.md as a user install writes it: its commands call this Python."""
    text = (ROOT / name).read_text(encoding="utf-8")
    text = text.replace("Bash(orchestrator:*)", f"Bash({sys.executable} -m orchestrator:*)")
    return re.sub(
        r"(?:^|(?<=`)|(?<=`[A-Z]{3}=\$\())orchestrator(?= )", f"{sys.executable} -m orchestrator", text, flags=re.M
    )


def test_install_project_writes_no_path_of_this_machine_and_protects_edits(tmp_path: Path) -> None:
    """A project's skill is committed and used on other machines: every file is the package's own,
    word for word (the docs not garbled), and nothing names this machine's Python or home."""
    project = tmp_path / "project"
    project.mkdir()
    first = install(project, tmp_path, "--project", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    target = project / ".claude" / "skills" / NAME
    assert report == {"ok": True, "path": str(target), "name": NAME, "unchanged": False}
    for name in SKILL_FILES:
        assert (target / name).read_text(encoding="utf-8") == (ROOT / name).read_text(encoding="utf-8")
    installed = (target / "SKILL.md").read_text(encoding="utf-8")
    assert "allowed-tools: Bash(orchestrator:*)" in installed
    for path in target.iterdir():
        text = path.read_text(encoding="utf-8")
        for machine in (sys.executable, str(Path(sys.executable).parent), str(tmp_path), str(ROOT)):
            assert machine not in text, (path.name, machine)

    again = install(project, tmp_path, "--project")
    assert again.returncode == 0 and "up to date" in again.stdout

    (target / "workflow.md").write_text("my notes\n", encoding="utf-8")
    refused = install(project, tmp_path, "--project")
    assert refused.returncode == 2
    assert "workflow.md" in refused.stderr and "--force" in refused.stderr
    assert (target / "workflow.md").read_text(encoding="utf-8") == "my notes\n"

    forced = install(project, tmp_path, "--project", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (target / "workflow.md").read_text(encoding="utf-8") == (ROOT / "workflow.md").read_text(encoding="utf-8")


def test_an_install_refused_names_each_file_and_why(tmp_path: Path) -> None:
    """QA pass 3: a deleted file was called "(files)", a directory orchestrator never installed
    "modified since it was installed", and with the manifest gone every file was "modified"."""
    project = tmp_path / "project"
    project.mkdir()
    target = project / ".claude" / "skills" / NAME
    assert install(project, tmp_path, "--project").returncode == 0
    (target / "examples.md").unlink()
    (target / "SKILL.md").write_text("mine\n", encoding="utf-8")
    refused = install(project, tmp_path, "--project")
    assert refused.returncode == 2
    assert f"{target}: SKILL.md edited, examples.md deleted since it was installed — pass --force" in refused.stderr

    (target / ".orchestrator-skill.json").unlink()  # the others still match the package's: not "edited"
    refused = install(project, tmp_path, "--project")
    said = "SKILL.md edited, examples.md deleted (no readable .orchestrator-skill.json: compared with this version's)"
    assert said in refused.stderr

    other = project / ".claude" / "skills" / NAME
    for path in other.iterdir():
        path.unlink()
    (other / "README.txt").write_text("someone else's\n", encoding="utf-8")
    refused = install(project, tmp_path, "--project")
    assert refused.returncode == 2
    assert "exists, and holds no skill orchestrator installed — move it aside, or pass --force" in refused.stderr
    assert (other / "README.txt").read_text(encoding="utf-8") == "someone else's\n"


def test_install_user_goes_to_home_or_claude_config_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    result = install(project, tmp_path, "--user")
    assert result.returncode == 0, result.stderr
    target = tmp_path / ".claude" / "skills" / NAME
    assert sorted(p.name for p in target.glob("*.md")) == sorted(SKILL_FILES)
    assert not (project / ".claude").exists()
    # This machine's: SKILL.md calls the Python that has the package, and so do the four docs it
    # links to (they said `orchestrator ...`, outside allowed-tools and maybe not on PATH).
    assert (target / "SKILL.md").read_text(encoding="utf-8") == localized("SKILL.md")
    command = f"{sys.executable} -m orchestrator"
    for name in SKILL_FILES[1:]:
        doc = (target / name).read_text(encoding="utf-8")
        assert doc.replace(command, "orchestrator") == (ROOT / name).read_text(encoding="utf-8")  # that alone
        assert doc.count(command) > 5, name
        prose, shell = _outside_fences_and_in_shell_blocks(doc)
        assert "`orchestrator " not in prose, name
        # A command a code span runs after `$(`, `&&`, `;` too (`API=$(orchestrator add ...)`).
        spans = re.findall(r"`([^`]+)`", prose)
        assert not [s for s in spans if re.search(r"(\$\(|&& |; |\| )orchestrator ", s)], name
        assert not re.search(r"(^\s*|&& |; |\$\()orchestrator ", shell, re.M), name
    # What the CLI printed stays as it printed it (argparse's `orchestrator run: ...`).
    assert "\norchestrator run: argument --max-parallel" in (target / "cli-integration.md").read_text(encoding="utf-8")
    assert f"{command} validate" in (target / "cli-integration.md").read_text(encoding="utf-8")
    installed = (target / "SKILL.md").read_text(encoding="utf-8")
    assert f"{sys.executable} -m orchestrator validate" in installed
    assert f"allowed-tools: Bash({sys.executable} -m orchestrator:*)" in installed
    assert not re.search(r"(?<![\w/.-])python3? -m orchestrator", installed)
    assert "`orchestrator " not in installed and not re.search(r"^orchestrator ", installed, re.M)
    assert "$(orchestrator " not in installed  # (SKILL.md's `API=$(orchestrator add ...)` said the plain command)

    config = tmp_path / "config"
    result = install(project, tmp_path / "elsewhere", config_dir=config)  # --user is the default
    assert result.returncode == 0, result.stderr
    assert (config / "skills" / NAME / "SKILL.md").is_file()
    assert not (tmp_path / "elsewhere" / ".claude").exists()


def test_user_and_project_together_is_a_usage_error(tmp_path: Path) -> None:
    result = install(tmp_path, tmp_path, "--user", "--project")
    assert result.returncode == 2 and "choose one" in result.stderr


# --- the real claude ---------------------------------------------------------------------------

CLAUDE = find_claude()
needs_claude = pytest.mark.skipif(CLAUDE is None, reason=claude_missing())


def run_claude(project: Path, config: Path, api: FakeAnthropic, *args: str) -> list[dict[str, Any]]:
    assert CLAUDE is not None
    result = subprocess.run(
        [CLAUDE, "-p", "--output-format", "stream-json", "--verbose", *args],
        input="Analyse this project with sub-agents in parallel.",
        cwd=project,
        env=claude_env(api.base_url, config, HOME=str(project.parent)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def tool_results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "user":
            for block in event["message"]["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found.append(block)
    return found


@pytest.mark.claude
@needs_claude
def test_claude_lists_loads_and_obeys_the_installed_skill(tmp_path: Path) -> None:
    """claude sees the installed skill, loads SKILL.md, and its allowed-tools let the CLI run unasked."""
    config, project = tmp_path / "config", tmp_path / "project"
    project.mkdir()
    assert install(project, tmp_path, config_dir=config).returncode == 0
    shutil.copytree(ROOT / "examples" / "translate-docs" / ".orchestrator", project / ".orchestrator")
    validate = f"{sys.executable} -m orchestrator validate"
    script = [
        Reply.tool("Skill", {"skill": NAME}),
        Reply.tool("Bash", {"command": validate, "description": "Validate the plan"}),
        Reply.say("The plan is valid."),
    ]
    with FakeAnthropic(script) as api:
        # Headless claude asks before any skill runs; --allowedTools Skill answers yes, and nothing else.
        events = run_claude(project, config, api, "--allowedTools", "Skill")
    init = next(e for e in events if e.get("type") == "system" and e.get("subtype") == "init")
    assert NAME in init["skills"]
    description = frontmatter(SKILL)[0]["description"]
    assert f"{NAME}: {description}" in json.dumps(api.main_requests[0], ensure_ascii=False)

    skill_result, bash_result = tool_results(events)
    assert not skill_result.get("is_error"), skill_result
    loaded = json.dumps(api.main_requests[1], ensure_ascii=False)
    assert "# Task orchestrator" in loaded and validate in loaded  # the localized SKILL.md body
    assert not bash_result.get("is_error"), bash_result  # allowed by the skill, not by a prompt
    assert "OK: 4 tasks" in json.dumps(bash_result)
    assert api.errors == []


@pytest.mark.claude
@needs_claude
def test_plan_command_writes_a_valid_plan_with_claude(tmp_path: Path) -> None:
    """SKILL.md's `orchestrator plan`: claude answers through --json-schema, the plan validates."""
    plan = {
        "goal": "A one-page summary of the project",
        "success_criteria": "Every part of the project is described",
        "tasks": [
            {"id": "T-01", "name": "Survey", "description": "List the main parts", "dependencies": [],
             "priority": "P1", "details": "List the top-level folders and what each holds."},
            {"id": "T-02", "name": "Summary", "description": "Write the summary", "dependencies": ["T-01"],
             "priority": "P2", "details": "Write a one-page summary from the survey."},
        ],
    }  # fmt: skip
    assert CLAUDE is not None
    with FakeAnthropic([Reply.tool("StructuredOutput", plan), Reply.say("Done.")]) as api:
        env = claude_env(api.base_url, tmp_path / "config", ORCHESTRATOR_CLAUDE_BIN=CLAUDE)
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator", "plan", "Summarise this project", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["written"] == ".orchestrator/master_plan.md" and report["attempts"] == 1
    assert [t["id"] for t in report["tasks"]] == ["T-01", "T-02"]
    check = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and check.stdout.startswith("OK: 2 tasks, 1 dependency"), check.stdout
