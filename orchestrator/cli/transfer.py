"""A plan in and out: ``export``, ``import`` (``plan/transfer.py``), and ``templates`` to start
from (``plan/library.py``; ``init --template`` writes one)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.output import Commands, add_command, add_directory, emit_json
from orchestrator.errors import PlanError, UsageError, shown
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan


def cmd_export(args: argparse.Namespace) -> int:
    from orchestrator.plan.parser import read_plan
    from orchestrator.plan.transfer import export

    workspace = Workspace.find(args.directory)
    document = export(read_plan(workspace.plan_file))  # as written: its parameters not filled in
    if args.format == "yaml":
        sys.stdout.write(to_yaml(document))
    else:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return ExitCode.OK


def to_yaml(document: dict[str, Any]) -> str:
    """YAML to read: a text of several lines as a ``|`` block."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        lines = value.split("\n")
        block = len(lines) > 1 and value == value.strip(" \t") and all(line == line.rstrip() for line in lines)
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=10_000)


def _read_document(name: str) -> object:
    """The document of ``FILE`` (``-``: standard input): JSON, or YAML. Refused in one line: a
    file larger than the export of the largest plan (``READ_LIMIT``), one nested too deep."""
    from orchestrator import yamlio
    from orchestrator.documents import TooLarge, read_regular
    from orchestrator.plan.model import PLAN_LIMIT, READ_LIMIT

    too_large = f"more than the {READ_LIMIT:,} bytes an export of a plan may be (a plan holds at most {PLAN_LIMIT:,})"
    try:
        data = sys.stdin.buffer.read(READ_LIMIT + 1) if name == "-" else read_regular(Path(name), READ_LIMIT)
        if len(data) > READ_LIMIT:
            raise TooLarge(name, len(data), READ_LIMIT)
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file — give the file `orchestrator export` wrote, or - for stdin") from None
    except TooLarge as exc:
        size = f"{exc.size:,} bytes, " if name != "-" else ""  # (what stdin holds beyond is not read)
        raise UsageError(f"{name}: {size}{too_large} — nothing was written") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: cannot be read ({exc}) — give a UTF-8 JSON or YAML file") from None
    nested = f"too deeply nested: lists or mappings more than {yamlio.MAX_DEPTH} deep"
    try:
        document = json.loads(text) if name.endswith(".json") else yamlio.safe_load(text)
    except RecursionError:  # (json's parser recurses: it meets Python's limit first)
        raise UsageError(f"{name}: {nested} — give the file `orchestrator export` wrote") from None
    except ValueError as exc:
        raise UsageError(f"{name}: not JSON ({exc}) — give the file `orchestrator export` wrote") from None
    except Exception as exc:  # yaml.YAMLError: its message is several lines
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or (str(exc) if type(exc).__name__ == "YAMLError" else "not YAML")
        if "nested more than" in what:
            what = nested
        fix = "give the JSON or YAML file `orchestrator export` wrote"
        if "characters of YAML" in what:  # (yamlio.MAX_TEXT: a large plan's export goes as JSON)
            fix = f"give it as JSON (`orchestrator export`'s default), read up to {READ_LIMIT:,} bytes"
        raise UsageError(f"{name}{where}: {what} — {fix}") from None
    if _depth(document) > yamlio.MAX_DEPTH:  # (JSON within Python's limit, deeper than a plan ever is)
        raise UsageError(f"{name}: {nested} — give the file `orchestrator export` wrote")
    return document


def _depth(document: object) -> int:
    """How deeply lists and mappings nest in ``document`` (walked without recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def cmd_import(args: argparse.Namespace) -> int:
    from orchestrator.plan.transfer import ImportProblem, check, write
    from orchestrator.state import store
    from orchestrator.state.lock import replacing_plan

    root = Workspace.find(args.directory, must_exist=False).root
    plan_file = root / "master_plan.md"
    if plan_file.exists() and not args.force:
        raise UsageError(f"{shown(plan_file)} already exists — pass --force to replace it; nothing was written")
    source = "stdin" if args.file == "-" else args.file
    document = _read_document(args.file)
    try:
        written = write(document)
        plan = check(written, plan_file, functools.partial(_validated, Workspace(root)))
    except ImportProblem as exc:
        raise UsageError(f"{source}: {exc} — nothing was written") from None
    with replacing_plan(root):
        for sub in ("agent_tasks", "results", "logs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        store.write_text(plan_file, written.text)
    if args.json:
        emit_json({"ok": True, "plan": str(plan_file), "tasks": len(plan.tasks)})
    else:
        print(f"Wrote {shown(plan_file)}: {len(plan.tasks)} tasks from {source}")
    return ExitCode.OK


def _validated(workspace: Workspace, plan: Plan) -> None:
    """What ``validate`` checks of a plan beyond its parsing (``PlanError``), the very check it
    calls (``commands/reading.checked``): its backends and what each needs, profiles, commands,
    ``cwd``, fallbacks, the status blocks' markers, its rows run per item; checked against the
    workspace it is written to. Not whether git's HEAD merges into the integration branch (the
    repository's state at ``run`` time, not the plan's)."""
    from orchestrator.commands.reading import checked

    checked(plan, workspace)


def cmd_templates(args: argparse.Namespace) -> int:
    from orchestrator.plan.library import templates, user_directories

    listed = [_described(t.name, t.path, t.bundled) for t in templates().values()]
    if args.json:
        emit_json({"templates": listed, "user_directories": [str(d) for d in user_directories()]})
        return ExitCode.OK
    width = max([len(item["name"]) for item in listed] + [4])
    for item in listed:
        params = ", ".join(n + ("" if p["default"] is not None else " (required)") for n, p in item["params"].items())
        source = "bundled" if item["bundled"] else item["path"]
        if "problem" in item:  # a template of the user's that does not read as a plan
            print(f"{item['name']:<{width}}  (not a valid plan: {item['problem']}) [{source}]")
            continue
        print(f"{item['name']:<{width}}  {item['title']}" + (f" — params: {params}" if params else "") + f" [{source}]")
    print(f"Yours go in {', '.join(str(d) for d in user_directories())}/NAME/master_plan.md")
    return ExitCode.OK


def _described(name: str, path: Path, bundled: bool) -> dict[str, Any]:
    from orchestrator.plan.config.params import as_json
    from orchestrator.plan.parser import read_plan
    from orchestrator.plan.transfer import export

    item: dict[str, Any] = {"name": name, "bundled": bundled, "path": str(path), "title": "", "params": {}}
    try:
        plan = read_plan(path)
    except (PlanError, OSError) as exc:  # a user's broken template is listed, with why
        item["problem"] = str(exc).splitlines()[0]
        return item
    item["title"] = export(plan)["title"]
    item["params"] = {name: as_json(param) for name, param in plan.settings.params.items()}
    return item


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "export", cmd_export, "print the plan as JSON or YAML: settings, tasks, details, notes")
    add_directory(p)
    p.add_argument("--format", choices=("json", "yaml"), default="json", help="default json")
    p = add_command(sub, "import", cmd_import, "write master_plan.md from a plan `export` printed (JSON or YAML)")
    p.add_argument("file", metavar="FILE", help="the exported plan; - reads standard input")
    add_directory(p)
    p.add_argument("--force", action="store_true", help="replace an existing master_plan.md")
    p = add_command(sub, "templates", cmd_templates, "list the plans `init --template` starts from")
    p.add_argument("action", nargs="?", choices=("list",), default="list", help="list (the default)")
