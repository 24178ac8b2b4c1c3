"""The docs are proven, not claimed: every ``# runnable`` block of the README and the skill's docs runs.

A fenced ``bash`` block whose first line is ``# runnable`` (or ``# runnable: exit N``) is run with
``bash -e -o pipefail`` from the root of a fresh copy of the repository (a git repository, since
the bundled repo-analysis example uses ``git ls-files``), with this interpreter's environment first
on PATH and HOME inside the temporary directory. The convention is documented at the end of
cli-integration.md. The other tests here keep the docs and the examples in step with the code.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import load_plan
from orchestrator.cli.commands import build_parser
from orchestrator.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "SKILL.md", "workflow.md", "templates.md", "cli-integration.md", "examples.md")
MARKER = re.compile(r"#\s*runnable(?::\s*exit\s+(\d+))?\s*")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
# Offline examples: every one must be run by a runnable block. examples/claude-review needs a real
# claude; tests/test_claude_backend.py runs it against the fake Messages API instead.
EXAMPLES = sorted(
    p.parent.parent.name
    for p in ROOT.glob("examples/*/.orchestrator/master_plan.md")
    if p.parent.parent.name != "claude-review"
)
CLAUDE_PLANS = sorted(p.parent.parent.name for p in ROOT.glob("examples/*/claude/master_plan.md"))
BLOCK_TIMEOUT = 120


@dataclass(frozen=True, slots=True)
class Fenced:
    doc: str
    line: int  # 1-based line of the opening fence
    info: str
    body: str
    before: str  # the line just before the opening fence


@dataclass(frozen=True, slots=True)
class Block:
    doc: str
    line: int
    code: str
    exit_code: int
    captured: Fenced | None = None  # the ```text block right after it: what it printed, captured

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks(doc: str) -> Iterator[Fenced]:
    """Every fenced code block of ``doc`` (CommonMark rules: a closing fence is at least as long)."""
    lines = (ROOT / doc).read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence = match.group(1)
        closing = re.compile(f"{re.escape(fence[0])}{{{len(fence)},}}\\s*")
        end = index + 1
        while end < len(lines) and not closing.fullmatch(lines[end]):
            end += 1
        before = lines[index - 1] if index else ""
        yield Fenced(doc, index + 1, match.group(2), "\n".join(lines[index + 1 : end]) + "\n", before)
        index = end + 1


def runnable_blocks() -> list[Block]:
    """Every ``# runnable`` block, with the ``text`` block that follows it after one blank line:
    its output as `python tests/capture_docs.py` captured it, which the block's run must match."""
    found: list[Block] = []
    for doc in DOCS:
        blocks = list(fenced_blocks(doc))
        for block, following in zip(blocks, [*blocks[1:], None], strict=True):
            first = block.body.split("\n", 1)[0]
            match = MARKER.fullmatch(first)
            if match is not None:
                assert block.info in {"bash", "sh", "shell"}, f"{doc}:{block.line}: a runnable block must be bash"
                closing = block.line + block.body.count("\n") + 1  # the closing fence's line
                after = following is not None and following.info == "text" and following.line == closing + 2
                captured = following if after else None
                found.append(Block(doc, block.line, block.body, int(match.group(1) or 0), captured))
    return found


# What differs from one run of a block to the next, and from one machine to another, is masked
# before a captured output is compared with a new run: where it ran, times, durations, commit ids,
# speed-ups, sizes, process ids; and the lines are compared in any order (parallel tasks print in
# the order they end). What is left, every word and number of the output, must match.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d(?::\d\d)?\b"), "<clock>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<date>"),  # (the day's archive file)
    (re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?: \d{4})?\b"), "<day>"),  # 25 Nov
    (re.compile(r"<?\b\d+(?:\.\d+)?(?:h\d+m\d*s?|m\d+s|ms|s)\b"), "<duration>"),  # <0.01s too
    (re.compile(r"before-restore-\d{8}T\d{6}(?:-\d+)?"), "before-restore-<stamp>"),  # (a checkpoint's)
    (re.compile(r"\b[0-9a-f]{7,64}\b"), "<sha>"),
    (re.compile(r"\d+(?:\.\d+)?[×x%](?!\w)"), "<ratio>"),
    (re.compile(r"(\"(?:duration|bytes|freed_bytes|pid|wall_seconds|elapsed|seconds)\": )[\d.]+"), r"\1<n>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:[KMG]i?B|bytes)\b"), "<size>"),
    (re.compile(r"\b(pid|process) \d+"), r"\1 <n>"),
    # Which of two tasks of the same work took longest is chance: the critical path's tasks.
    (re.compile(r"(Critical path[^|]*\| )[^|(]*"), r"\1<path> "),
    (re.compile(r" ⭐"), ""),
    (re.compile(r"(~/\.venv/bin/python)3\b"), r"\1"),  # (captured where the venv's python was python3)
    (re.compile(r"(by )\d+( commits?)"), r"\1<n>\2"),  # merge commits: as the tasks landed
    (re.compile(r"[ \t]+"), " "),
]


def neutral(output: str, where: Path) -> str:
    """A block's output with the paths of the run that made it as a reader's machine would show
    them: the copy of the repository as ``~/project``, its home as ``~``, its Python's bin as
    ``~/.venv/bin``. Docs never name a path of the machine they were captured on."""
    for real, shown in (
        (where / "repo", "~/project"),
        (where / "home", "~"),
        (Path(sys.executable), "~/.venv/bin/python"),  # (python or python3, as the venv was made)
        (Path(sys.executable).parent, "~/.venv/bin"),
        (where, "~/tmp"),
    ):
        output = output.replace(str(real), shown)
    return output


def shape(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        for pattern, mask in VOLATILE:
            line = pattern.sub(mask, line)
        if line.strip():
            lines.append(line.strip())
    return sorted(lines)


BLOCKS = runnable_blocks()
# The blocks run concurrently (each in its own copy), the slowest first: the README's install.
WORKERS = max(2, min(4, os.cpu_count() or 2))


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a checkout would have it: tracked and untracked files, ignored ones left out."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return make_snapshot(tmp_path_factory.mktemp("snapshot") / "repo")


def make_snapshot(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, copy = ROOT / name, target / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the work tree
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), copy)
        else:
            shutil.copy2(source, copy)
    return target


def fresh_copy(snapshot: Path, where: Path) -> Path:
    repo = where / "repo"
    shutil.copytree(snapshot, repo, symlinks=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    # A checkout has a commit: a plan with isolation: worktree starts its worktrees from it.
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "checkout"], cwd=repo, check=True
    )
    return repo


def block_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORCHESTRATOR_", "CLAUDE_", "ANTHROPIC_")) and k not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if str(ROOT) in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        # A second checkout (a git worktree) tested with the venv of the first: the blocks run its
        # code, as its own tests do, not the code the venv was installed from.
        env["PYTHONPATH"] = str(ROOT)
    env["HOME"] = str(home)
    # A reader's machine has a git identity (an example commits an edit, as its reader would).
    for name, value in (("NAME", "Docs Reader"), ("EMAIL", "reader@example.org")):
        env[f"GIT_AUTHOR_{name}"] = env[f"GIT_COMMITTER_{name}"] = value
    home.mkdir(parents=True, exist_ok=True)
    return env


def leftovers(where: Path) -> list[tuple[int, str]]:
    """Processes whose working directory or command line is inside ``where`` (Linux only)."""
    found: list[tuple[int, str]] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    mark = str(where).rstrip(os.sep) + os.sep  # "block1/" must not match "block10/"
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cmdline and (mark in cmdline or (cwd + os.sep).startswith(mark)):
            found.append((int(entry.name), cmdline))
    return found


def run_bash(code: str, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BLOCK_TIMEOUT,
        start_new_session=True,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    exit_code: int
    output: str  # as a reader would see it: neutral()
    left: list[tuple[int, str]]  # processes the block left running (killed since)


def run_block(block: Block, snapshot: Path, where: Path) -> Outcome:
    try:
        result = run_bash(block.code, fresh_copy(snapshot, where), block_env(where / "home"))
        code, output = result.returncode, result.stdout
    except subprocess.TimeoutExpired as exc:
        code, output = -1, f"timed out after {BLOCK_TIMEOUT}s\n{exc.output or ''}"
    left = leftovers(where)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return Outcome(code, neutral(output, where), left)


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, snapshot: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Outcome]]]:
    """Every selected block, started at once on a few workers; each test waits for its own."""
    selected = {item.name for item in request.session.items}
    chosen = [b for b in BLOCKS if f"test_runnable_block[{b.name}]" in selected]
    chosen.sort(key=lambda b: "pip install" not in b.code)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        yield {b.name: pool.submit(run_block, b, snapshot, tmp_path_factory.mktemp("block")) for b in chosen}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_runnable_block(block: Block, outcomes: dict[str, Future[Outcome]]) -> None:
    outcome = outcomes[block.name].result()
    assert outcome.exit_code == block.exit_code, (
        f"{block.name} exited {outcome.exit_code}, expected {block.exit_code}:\n{outcome.output[-6000:]}"
    )
    assert not outcome.left, f"{block.name} left processes running: {outcome.left}"
    if block.captured is not None:
        assert shape(outcome.output) == shape(block.captured.body), (
            f"{block.doc}:{block.captured.line}: the output shown no longer matches what the block prints; "
            f"`python tests/capture_docs.py` captures it again. It printed:\n{outcome.output[-6000:]}"
        )


def _commands_in(code: str) -> set[str]:
    return set(re.findall(r"(?:^|[;&|(]\s*|\n\s*)(?:[A-Z_]+=\S+\s+)*orchestrator ([a-z][a-z-]*)", code, re.M))


def test_the_docs_prove_the_commands_and_examples() -> None:
    """What must be shown running: README's first command, every example, every everyday command."""
    readme = [b for b in BLOCKS if b.doc == "README.md"]
    assert readme and "orchestrator run examples/repo-analysis" in readme[0].code
    assert "pip install -e ." in readme[0].code
    # The test command sets up what the tests need: the pinned agent CLIs, as CI does (.ci/run).
    tests_command = next(b.body for b in fenced_blocks("README.md") if b.body.startswith("# Run the tests"))
    pytest_command = "python -m pytest -q -n 4"
    install = (
        'bash tools/install-test-tools.sh > /dev/null && pip install -e ".[test,dask]"'
        " && bash tools/install-claude.sh > /dev/null && bash tools/install-agents.sh > /dev/null"
    )
    assert f"{install} && {pytest_command}\n" in tests_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash tools/install-claude.sh" in ci and f"\n{pytest_command}\n" in ci  # (CI runs what README says)
    assert "bash tools/install-test-tools.sh" in ci and "export ORCHESTRATOR_EVERY_TEST=1" in ci
    assert "bash tools/install-agents.sh" in ci
    assert 'pip install -q -e ".[test,dask]"' in ci  # (and installs what README's command installs)
    code = "\n".join(b.code for b in BLOCKS)
    for name in EXAMPLES:
        assert f"orchestrator run examples/{name}\n" in code, f"no runnable block runs examples/{name}"
    used = _commands_in(code)
    wanted = {"init", "validate", "render", "run", "status", "logs", "graph", "reset", "aggregate", "install-skill"}
    assert wanted <= used, f"no runnable block uses: {sorted(wanted - used)}"
    assert {"README.md", "workflow.md", "templates.md", "cli-integration.md", "examples.md"} <= {b.doc for b in BLOCKS}


def test_ci_fails_when_distributed_is_missing_rather_than_skip_the_cluster_tests(tmp_path: Path) -> None:
    """tests/test_dask*.py skip themselves without distributed: .ci/run checks it installed, so CI
    cannot pass without the cluster tests."""
    import venv

    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    line = next((line for line in ci.splitlines() if line.startswith('python -c "import distributed"')), None)
    assert line is not None, ".ci/run does not check that distributed installed"
    assert ci.index(line) > ci.index('pip install -q -e ".[test,dask]"')  # (after the install)
    venv.create(tmp_path / "bare", with_pip=False)  # a Python without it
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{tmp_path / 'bare' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1 and "distributed did not install" in done.stderr, done.stderr
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this one has it (the dask extra)
    if subprocess.run([sys.executable, "-c", "import distributed"], capture_output=True, check=False).returncode == 0:
        done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr


def test_embedded_files_match_the_files() -> None:
    """A fenced block after ``<!-- file: PATH -->`` quotes PATH verbatim (templates, example plans)."""
    seen = 0
    for doc in DOCS:
        for block in fenced_blocks(doc):
            match = re.fullmatch(r"<!-- file: (\S+) -->", block.before)
            if match:
                seen += 1
                text = (ROOT / match.group(1)).read_text(encoding="utf-8")
                assert block.body == text, f"{doc}:{block.line} no longer matches {match.group(1)}"
    assert seen >= 10


def test_every_command_named_in_the_docs_exists() -> None:
    parser = build_parser()
    assert parser.commands is not None
    choices = parser.commands.choices
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for name in re.findall(r"python3? -m orchestrator ([a-z][a-z-]*)", text):
            assert name in choices, f"{doc}: `python -m orchestrator {name}` is not a command"
        for block in fenced_blocks(doc):
            if block.info in {"bash", "sh", "shell"}:
                for name in _commands_in(block.body):
                    assert name in choices, f"{doc}:{block.line}: `orchestrator {name}` is not a command"


def test_the_docs_install_the_distribution_not_the_other_project_named_orchestrator() -> None:
    """`orchestrator` on the package index is another project: a `pip install` names the
    distribution, `task-orchestrator` (cli-integration.md said `pip install 'orchestrator[serve]'`)."""
    for doc in (*DOCS, "docs/ARCHITECTURE.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        wrong = re.findall(r"(?:pip|pipx|uv tool) install ['\"]?orchestrator\b", text)
        assert not wrong, f"{doc}: {wrong}"
    from orchestrator.cli import serve

    assert "pip install 'task-orchestrator[serve]'" in Path(serve.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CLAUDE_PLANS)
def test_claude_plan_is_valid_and_matches_its_twin(name: str) -> None:
    """The plan for agents validates, and its offline twin has the same tasks and dependencies."""
    from orchestrator.run.checks.preflight import check_plan
    from orchestrator.state.workspace import Workspace

    workspace = Workspace.find(ROOT / "examples" / name / "claude")
    real = load_plan(workspace.plan_file)
    check_plan(real, workspace)
    assert real.settings.backend == "claude"
    twin = load_plan(ROOT / "examples" / name / ".orchestrator")
    assert twin.settings.backend == "shell"
    assert [(t.id, t.name, t.dependencies, t.priority) for t in real.tasks.values()] == [
        (t.id, t.name, t.dependencies, t.priority) for t in twin.tasks.values()
    ]
    assert (real.request, real.goal) == (twin.request, twin.goal)


def test_example_gitignores_keep_only_the_plans(snapshot: Path, tmp_path: Path) -> None:
    repo = fresh_copy(snapshot, tmp_path)

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0

    for name in EXAMPLES:
        folder = f"examples/{name}"
        assert (repo / folder / ".gitignore").is_file()
        assert not ignored(f"{folder}/.orchestrator/master_plan.md")
        assert ignored(f"{folder}/.orchestrator/results/agent-01-result.md")
        assert ignored(f"{folder}/.orchestrator/final_output.md")
        if (repo / folder / "claude").is_dir():
            assert not ignored(f"{folder}/claude/master_plan.md")
            assert ignored(f"{folder}/claude/results/agent-01-result.md")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_plan_survives_its_status_sections(name: str, tmp_path: Path) -> None:
    """Writing the status sections twice leaves one of each and the tasks as they were.

    (A fenced block left open at the end of Task Details once swallowed the sections, so every run
    appended them again and the last task's script grew by a status table.)
    """
    folder = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, folder, symlinks=True)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "example"]):  # (isolation: worktree needs one)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True)
    plan_file = folder / ".orchestrator" / "master_plan.md"
    text = plan_file.read_text(encoding="utf-8")
    assert "\nstatus_blocks: false\n" in text  # kept in git: a run leaves it alone (tested below)
    plan_file.write_text(text.replace("\nstatus_blocks: false\n", "\n"), encoding="utf-8")
    before = load_plan(folder / ".orchestrator")
    for _ in range(2):
        assert main(["render", str(folder / ".orchestrator")]) == 0
    text = (folder / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert text.count("\n## Agent Assignment\n") == 1
    assert text.count("\n## Dependency Graph\n") == 1
    after = load_plan(folder / ".orchestrator")
    assert [t.instructions for t in after.tasks.values()] == [t.instructions for t in before.tasks.values()]


@pytest.mark.timeout(300)  # (a hang guard: it runs several processes one after another, slow on a loaded machine)
def test_running_the_examples_changes_no_tracked_file(snapshot: Path, tmp_path: Path) -> None:
    """``orchestrator run examples/<name>`` from a checkout leaves ``git status`` clean: results go
    to ignored files, and the plans (``status_blocks: false``) are not rewritten."""
    repo = fresh_copy(snapshot, tmp_path)
    env = block_env(tmp_path / "home")
    for name in EXAMPLES:
        ran = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", f"examples/{name}"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT,
        )  # fmt: skip
        if ran.returncode == 4:  # (a task waits at its approval gate: a person approves it, the run goes on)
            gated = re.search(rf"orchestrator approve examples/{name} (\S+)`", ran.stdout)
            assert gated is not None, ran.stdout
            for args in (["approve", f"examples/{name}", gated[1]], ["run", f"examples/{name}"]):
                ran = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=repo, env=env,
                                     capture_output=True, text=True, timeout=BLOCK_TIMEOUT)  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        final = f"→ examples/{name}/.orchestrator/final_output.md"
        merged = "; the work is on branch orchestrator/integration: `orchestrator merge` brings it into yours"
        assert ran.stdout.rstrip().endswith((final, final + merged)), ran.stdout  # (worktrees: the branch)
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    assert changed.stdout == ""
    for plan in ROOT.glob("examples/*/*/master_plan.md"):
        assert load_plan(plan).settings.status_blocks is False, plan


@pytest.mark.parametrize(
    "plan", sorted(ROOT.glob("examples/*/*/master_plan.md")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_an_example_kept_in_git_holds_no_status_block(plan: Path) -> None:
    """A plan a run never writes to (``status_blocks: false``) holds no block a run once wrote: a
    stale status table and graph from a run would mislead its reader."""
    text = plan.read_text(encoding="utf-8")
    assert load_plan(plan).settings.status_blocks is False
    assert "orchestrator:begin" not in text and "## Agent Assignment" not in text and "## Dependency Graph" not in text


def test_plans_shown_in_the_docs_are_valid() -> None:
    """Every markdown block that shows a whole plan (SKILL.md's format example, the example plans) parses."""
    from orchestrator.plan.parser import parse_plan

    shown = 0
    for doc in DOCS:
        for block in fenced_blocks(doc):
            if block.info == "markdown" and "## Task Decomposition" in block.body and "| Task ID" in block.body:
                plan = parse_plan(block.body, f"{doc}:{block.line}")
                assert plan.tasks, f"{doc}:{block.line}"
                shown += 1
    assert shown >= 5


def test_the_settings_table_gives_the_code_defaults() -> None:
    """Every default in cli-integration.md's settings table is what ``Settings()`` holds, parsed
    the way the frontmatter would be; every setting has a row."""
    import dataclasses

    import yaml

    from orchestrator.plan.config.settings import SETTING_NAMES, Settings, parse_setting

    text = (ROOT / "cli-integration.md").read_text(encoding="utf-8")
    table = text.split("| Setting | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    defaults = Settings()
    named: set[str] = set()
    checked = 0
    for row in table.splitlines()[2:]:
        names_cell, default_cell = (cell.strip() for cell in row.strip("|").split("|")[:2])
        names = re.findall(r"`(\w+)`", names_cell)
        named.update(names)
        values = re.findall(r"`([^`]+)`", default_cell)
        if len(values) != len(names):  # prose ("the CLI's default") or none
            continue
        for name, value in zip(names, values, strict=True):
            parsed = parse_setting(name, yaml.safe_load(value))  # as frontmatter would read it
            assert parsed == getattr(defaults, name), f"cli-integration.md: {name} default {value}"
            checked += 1
    assert checked >= 10
    assert named == {f.name for f in dataclasses.fields(Settings)} == set(SETTING_NAMES)


def test_a_test_that_skips_fails_under_every_test(tmp_path: Path) -> None:
    """.ci/run sets ``ORCHESTRATOR_EVERY_TEST``: there a test skipped for a missing tool fails,
    with its reason, so CI cannot pass without it (issue 78); elsewhere it is a skip."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_tool() -> None:\n    pytest.skip('frobnicate is not installed')\n",
        encoding="utf-8",
    )
    tests = str(ROOT / "tests")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", "-c", os.devnull,
               str(tmp_path / "test_skips.py")]  # fmt: skip
    base = {**os.environ, "PYTHONPATH": tests}
    base.pop("ORCHESTRATOR_EVERY_TEST", None)
    plain = subprocess.run(command, cwd=tmp_path, env=base, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "1 skipped" in plain.stdout, plain.stdout
    every = subprocess.run(command, cwd=tmp_path, env={**base, "ORCHESTRATOR_EVERY_TEST": "1"},
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert every.returncode == 1 and "1 failed" in every.stdout, every.stdout
    assert "frobnicate is not installed" in every.stdout, every.stdout
