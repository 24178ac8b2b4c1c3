"""``orchestrator install-skill``: put SKILL.md and the docs it points to where Claude Code finds skills.

A user install (``~/.claude/skills/``) is this machine's: its SKILL.md and the docs beside it call
the CLI as ``<this python> -m orchestrator``, so it works whether or not the console script is on
PATH, and every call is within SKILL.md's ``allowed-tools``. A
project install (``.claude/skills/`` of the project) is committed with the project and used on
other machines: its files are the package's own, word for word, with no path of this one, and
its SKILL.md calls the ``orchestrator`` command its user's shell finds on PATH (installed with
``pipx`` or ``uv tool``; SKILL.md says so in one line for the agent to pass on). A manifest of hashes tells a
copy someone modified from one we wrote; a modified copy is only replaced with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator import documents
from orchestrator.cli.output import Commands, add_command, emit_json
from orchestrator.errors import UsageError
from orchestrator.state import store
from orchestrator.vocabulary import ExitCode

SKILL_FILES = ("SKILL.md", "workflow.md", "templates.md", "cli-integration.md", "examples.md")
MANIFEST = ".orchestrator-skill.json"


def source_dir() -> Path:
    """Where the skill's files are: packaged with the module, or the repository's top level."""
    packaged = Path(__file__).parents[2] / "skill"
    if (packaged / "SKILL.md").is_file():
        return packaged
    return Path(__file__).parents[3]


def skill_name(text: str) -> str:
    match = re.search(r"^name:\s*([A-Za-z0-9-]+)\s*$", text, re.M)
    if not match:
        raise UsageError("SKILL.md has no 'name:' in its frontmatter")
    return match.group(1)


# Where a line of a shell block runs a command: its start, after `&&`, `||`, `;`, `|`, `$(`, or
# after a variable set for it (`NAP=0 orchestrator run`).
_COMMAND_AT = re.compile(r"(^\s*|&&\s*|\|\|\s*|;\s*|\|\s*|\$\(|\b[A-Z_][A-Z0-9_]*=\S*\s+)orchestrator(?= )")
_SHELL_BLOCKS = {"", "bash", "sh", "shell", "console", "zsh"}


_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def _in_span(span: re.Match[str], command: str) -> str:
    """A code span with each command a shell line would run in it (after ``$(``, ``&&``...) made ``command``."""
    ticks, inside = span.group(1), span.group(2)
    return ticks + _COMMAND_AT.sub(lambda found: found.group(1) + command, inside) + ticks


def localize(text: str, python: str) -> str:
    """Point every call of the ``orchestrator`` command in a skill file at the interpreter that
    has the package installed: the allowed tool, a command in a code span (at its start, or where
    a shell line runs one: ``API=$(orchestrator add ...)``, ``a && orchestrator run``), and a
    command in a shell code block (not a block of output, where ``orchestrator run: ...`` is what
    argparse printed). A project's copy keeps the plain command, found on PATH as its user's
    shell finds it."""
    from orchestrator.plan.markdown import fence_closes, fence_opening

    command = f"{python} -m orchestrator"
    text = text.replace("Bash(orchestrator:*)", f"Bash({command}:*)")
    lines = text.split("\n")
    fence: str | None = None
    shell = False
    for index, line in enumerate(lines):
        if fence is None and (opened := fence_opening(line)) is not None:
            fence, shell = opened, line.strip().lstrip("`~").strip().split(" ")[0].lower() in _SHELL_BLOCKS
        elif fence is not None and fence_closes(line, fence):
            fence = None
        elif fence is None:  # a code span that starts with it (its end maybe on a later line), or runs it
            line = re.sub(r"(?<=`)orchestrator(?= )", lambda _: command, line)
            lines[index] = _CODE_SPAN.sub(lambda span: _in_span(span, command), line)
        elif shell:
            lines[index] = _COMMAND_AT.sub(lambda found: found.group(1) + command, line)
    return "\n".join(lines)


@dataclass(slots=True)
class Installed:
    path: Path
    name: str
    files: list[str]
    unchanged: bool


def install(*, user: bool, force: bool, project_dir: Path | None = None, home: Path | None = None) -> Installed:
    source = source_dir()
    texts: dict[str, str] = {}
    for name in SKILL_FILES:
        path = source / name
        if not path.is_file():
            raise UsageError(f"{path} is missing: this installation of orchestrator is incomplete")
        text = path.read_text(encoding="utf-8")
        # On this machine, every file calls the Python that has the package (the one its allowed
        # tool names), the reference docs as SKILL.md: a project's copy keeps the plain command.
        texts[name] = localize(text, sys.executable) if user else text
    name = skill_name(texts["SKILL.md"])
    if user:
        # Claude Code reads user skills from $CLAUDE_CONFIG_DIR/skills when that is set, else ~/.claude/skills.
        config = os.environ.get("CLAUDE_CONFIG_DIR") if home is None else None
        claude_dir = Path(config).expanduser() if config else (home or Path.home()) / ".claude"
        base = claude_dir / "skills"
    else:
        base = (project_dir or Path.cwd()) / ".claude" / "skills"
    target = base / name
    manifest_path = target / MANIFEST
    wanted = {file: documents.sha256(text) for file, text in texts.items()}
    if target.exists():
        try:
            recorded = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            recorded = None
        current = {
            file: documents.sha256((target / file).read_text(encoding="utf-8"))
            for file in SKILL_FILES
            if (target / file).is_file()
        }
        if current == wanted:
            return Installed(target, name, list(SKILL_FILES), unchanged=True)
        modified = recorded is None or current != recorded
        if modified and not force:
            raise UsageError(_refusal(target, current, recorded, wanted))
    store.write_many([(target / file, text) for file, text in texts.items()])
    manifest = {"files": wanted, **({"python": sys.executable} if user else {})}  # no machine path in a project
    store.write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return Installed(target, name, list(SKILL_FILES), unchanged=False)


def _refusal(target: Path, current: dict[str, str], recorded: dict[str, str] | None, wanted: dict[str, str]) -> str:
    """Why ``target`` is not written over, naming each file: a copy edited or deleted since it
    was installed, or a directory orchestrator did not install (no manifest: its files are
    compared with the package's own, so one that still matches is not called modified)."""
    if recorded is None and not current:
        return f"{target} exists, and holds no skill orchestrator installed — move it aside, or pass --force"
    reference = recorded if recorded is not None else wanted
    edited = [f for f in SKILL_FILES if f in current and current[f] != reference.get(f)]
    deleted = [f for f in SKILL_FILES if f not in current and (recorded is None or f in recorded)]
    said = ", ".join([f"{f} edited" for f in edited] + [f"{f} deleted" for f in deleted])
    since = (
        "since it was installed" if recorded is not None else f"(no readable {MANIFEST}: compared with this version's)"
    )
    return f"{target}: {said} {since} — pass --force to replace it"


def cmd_install_skill(args: argparse.Namespace) -> int:
    if args.user and args.project:
        raise UsageError("choose one of --user and --project")
    installed = install(user=not args.project, force=args.force)
    if args.json:
        emit_json({"ok": True, "path": str(installed.path), "name": installed.name, "unchanged": installed.unchanged})
    elif installed.unchanged:
        print(f"Skill '{installed.name}' is already installed and up to date in {installed.path}")
    else:
        print(f"Installed skill '{installed.name}' into {installed.path}")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "install-skill", cmd_install_skill, "install the Claude Code skill (SKILL.md and its docs)")
    p.add_argument(
        "--user", action="store_true", help="into ~/.claude/skills/, or $CLAUDE_CONFIG_DIR/skills/ (the default)"
    )
    p.add_argument(
        "--project",
        action="store_true",
        help="into ./.claude/skills/ of the current directory, to commit with the project: no path of this machine",
    )
    p.add_argument("--force", action="store_true", help="replace a copy that was modified after it was installed")
