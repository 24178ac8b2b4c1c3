"""Every door gives the same answer and the same error for the same request (issue 64): each command
of ``commands/table`` called through the command line (``--json``), the MCP server (the SDK's own
client against ``orchestrator mcp``) and the HTTP API (a real ``serve``, ``POST /api/commands/NAME``)
on the same workspaces answers the same data; every hostile input answers the same error class, in
one line, and changes no file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import CLI, Spec, write_plan
from test_hostile_input import snapshot

from orchestrator.commands.options import Arguments, command_line
from orchestrator.commands.table import COMMANDS

pytest.importorskip("mcp")
pytest.importorskip("starlette")

from dashboard_helpers import served
from test_api import post
from test_mcp import mcp_client


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    write_plan(
        root,
        [
            Spec("T-01", "echo one"),
            Spec("T-02", "echo two", ["T-01"]),
            Spec("T-03", "exit 3", ["T-01"]),
        ],
        {"params": {"who": {"default": "me"}}},
    )
    subprocess.run([*CLI, "run"], cwd=root, capture_output=True, check=False)
    return root


def _cli(root: Path, name: str, arguments: dict[str, Any]) -> tuple[int, Any, str]:
    """``name`` with ``arguments`` on the command line, as the table says them, with ``--json``."""
    command = COMMANDS[name]
    values = Arguments({o.name: arguments.get(o.name) for o in command.options})
    thing = [str(v) for o in command.options if o.positional and o.name != "directory" and (v := arguments.get(o.name))]
    line = [*CLI, name, *command_line(command.options, values), "--json", "--", *thing]
    done = subprocess.run(line, cwd=root, capture_output=True, text=True, check=False)
    lines = [json.loads(text) for text in done.stdout.splitlines() if text.strip()]
    return done.returncode, lines[0] if len(lines) == 1 else lines, done.stderr


def _same(data: Any, root: Path) -> Any:
    """``data`` with the workspace's own path said alike (the copies a change is made in differ there)."""
    return json.loads(json.dumps(data).replace(str(root), "ROOT"))


# Each request, as explicit as a program writes it (the doors' defaults differ where an agent's context
# is no terminal: MCP's status lists what needs attention unless asked for all).
READS: list[tuple[str, dict[str, Any]]] = [
    ("validate", {}),
    ("validate", {"param": ["who=you"]}),
    ("status", {"tasks": "all"}),
    ("status", {"tasks": "attention", "limit": 1}),
    ("list", {"status": ["failed"], "limit": 100}),  # (MCP's list is a page of 100 unless asked)
    ("list", {"limit": 2, "offset": 1}),
    ("output", {"task": "T-01"}),
    ("logs", {"task": "T-03"}),
    ("history", {"task": "T-01"}),
    ("history", {"stats": True}),
    ("verify", {}),
]


def test_every_read_answers_the_same_through_the_cli_mcp_and_http(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    before = snapshot(root / ".orchestrator")
    answers: dict[str, list[Any]] = {"cli": [], "mcp": [], "http": []}
    for name, arguments in READS:
        code, data, _ = _cli(root, name, arguments)
        assert code == 0, (name, data)
        answers["cli"].append(data)
    with mcp_client(root, "--workspace", str(root)) as client:
        for name, arguments in READS:
            result = client.call(name, arguments)
            assert not result.is_error, (name, result.content[0].text)
            answers["mcp"].append(result.structured_content)
    with served(root) as server:
        for name, arguments in READS:
            reply = post(server, f"/api/commands/{name}", arguments)
            assert reply.status == 200, (name, reply.body)
            answers["http"].append(reply.json())
    for index, (name, arguments) in enumerate(READS):
        cli, mcp, http = (answers[door][index] for door in ("cli", "mcp", "http"))
        assert mcp == cli, (name, arguments)
        assert http == cli, (name, arguments)
    kept = {"state", "state/snapshot.shown", "state/snapshot.shown.params"}  # (what status keeps of what it read)
    after = snapshot(root / ".orchestrator")
    assert {k: v for k, v in after.items() if k not in kept} == {k: v for k, v in before.items() if k not in kept}


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("add", {"description": "four", "after": ["T-02"], "command": "echo four", "tag": ["x"]}),
    ("update", {"task": "T-02", "priority": "high", "tag": ["y"]}),
    ("update", {"task": "T-04", "status": "blocked", "reason": "a person holds it"}),
    ("retry", {"task": "T-03"}),
    ("cancel", {"task": "T-04", "reason": "not now"}),
    ("approve", {"task": "T-01"}),  # (no gate: refused, exit 1, as every door says)
]


def test_every_change_answers_the_same_and_leaves_the_same_files(tmp_path: Path) -> None:
    first = _project(tmp_path / "cli")
    copies = {"cli": first}
    for door in ("mcp", "http"):
        copies[door] = tmp_path / door
        shutil.copytree(first, copies[door], symlinks=True)
    answers: dict[str, list[Any]] = {}
    answers["cli"] = [_same(_cli(copies["cli"], name, arguments)[1], copies["cli"]) for name, arguments in CHANGES]
    with mcp_client(copies["mcp"], "--workspace", str(copies["mcp"])) as client:
        answers["mcp"] = [
            _same(client.call(name, arguments).structured_content, copies["mcp"]) for name, arguments in CHANGES
        ]
    with served(copies["http"]) as server:
        answers["http"] = [
            _same(post(server, f"/api/commands/{name}", arguments).json(), copies["http"])
            for name, arguments in CHANGES
        ]
    for index, (name, _) in enumerate(CHANGES):
        assert answers["mcp"][index] == answers["cli"][index], name
        assert answers["http"][index] == answers["cli"][index], name
    plans = {door: _outside_blocks(root / ".orchestrator/master_plan.md") for door, root in copies.items()}
    assert plans["mcp"] == plans["cli"] == plans["http"]
    assert answers["cli"][-1]["ok"] is False  # approve of a task with no gate: refused alike


def _outside_blocks(path: Path) -> str:
    """The plan a person wrote: its text with the status blocks the tool writes (times of day) left out."""
    import re

    return re.sub(
        r"<!-- orchestrator:[^>]*begin[^>]*-->.*?<!-- orchestrator:[^>]*end[^>]*-->", "", path.read_text(), flags=re.S
    )


# What the soak sent: wrong types, huge strings, NUL, unknown options, non-ASCII digits.
HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("add", {"description": "x", "retries": "２"}, "UsageError"),  # (a fullwidth digit)
    ("add", {"description": "x", "nope": 1}, "UsageError"),
    ("add", {"description": "x\x00y"}, "UsageError"),
    ("add", {"description": "x" * 300_000}, "UsageError"),  # (within HTTP's 1 MiB body: the command's limit)
    ("status", {"tasks": "some"}, "UsageError"),
    ("status", {"limit": -1}, "UsageError"),
    ("list", {"status": ["nosuch"]}, "UsageError"),
    ("update", {"task": "T-99", "priority": "high"}, "UsageError"),
    ("update", {"task": "T-01"}, "UsageError"),
    ("output", {"task": "T-03"}, "NoOutputError"),
    ("logs", {"task": "T-01", "attempt": 9}, "UsageError"),
    ("run", {"max_parallel": 0}, "UsageError"),
    ("run", {"param": ["nope=1"]}, "UsageError"),
    ("cancel", {"task": "../../etc/passwd"}, "UsageError"),
]


def test_every_hostile_request_is_the_same_error_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    before = snapshot(root / ".orchestrator")
    errors: dict[str, list[tuple[str, str]]] = {"mcp": [], "http": []}
    with mcp_client(root, "--workspace", str(root)) as client:
        for name, arguments, _ in HOSTILE:
            result = client.call(name, arguments)
            assert result.is_error, (name, arguments)
            text = result.content[0].text
            assert len(text.splitlines()) == 1 and "Traceback" not in text, text
            errors["mcp"].append((result.structured_content["error"], text))
    with served(root) as server:
        for name, arguments, _ in HOSTILE:
            reply = post(server, f"/api/commands/{name}", arguments)
            body = reply.json()
            assert 400 <= reply.status < 500 and body["ok"] is False, (name, reply.status, body)
            assert "\n" not in body["message"].strip(), body
            errors["http"].append((body["error"], body["message"]))
        assert server.errors() == "", server.errors()
    assert snapshot(root / ".orchestrator") == before
    for index, (name, arguments, kind) in enumerate(HOSTILE):
        assert errors["mcp"][index][0] == errors["http"][index][0] == kind, (name, arguments, errors["mcp"][index])
        assert errors["mcp"][index][1] == errors["http"][index][1], (name, arguments)
    _contents_before = _contents(root)
    for name, arguments, kind in HOSTILE:  # what a command line can say at all: the same class
        said = json.dumps(arguments)
        if "\\u0000" in said or len(said) > 100_000 or not all(isinstance(v, str | list) for v in arguments.values()):
            continue
        code, data, stderr = _cli(root, name, arguments)
        assert code == 2 if kind == "UsageError" else code == 1, (name, code, stderr)
        assert data["error"] == kind and len(stderr.strip().splitlines()) == 1, (name, data, stderr)
    assert _contents(root) == _contents_before  # (a refused run leaves its lock file, empty: nothing else)


def _contents(root: Path) -> dict[str, bytes]:
    """Every file's bytes under the workspace, but the lock files a command takes (empty when let go)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted((root / ".orchestrator").rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


def test_a_change_past_the_plans_size_limit_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """``add`` and ``update`` wrote a plan over the 2,621,440-byte limit, which every command then
    refused until someone edited it by hand; over the API the call answered 400 after the row was
    written. Now the plan the change would make is checked against the limit first."""
    from orchestrator.plan.model import PLAN_LIMIT

    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "echo one")])
    plan = root / ".orchestrator/master_plan.md"
    plan.write_text(plan.read_text() + "\n## Notes\n\n" + "x" * (PLAN_LIMIT - plan.stat().st_size - 2_000) + "\n")
    before = _contents(root)  # (the lock files an edit takes aside: empty, held by nobody once let go)
    code, data, _ = _cli(root, "add", {"description": "y" * 3_000, "command": "true"})
    assert code == 2 and data["error"] == "PlanError" and "more than the 2,621,440" in data["message"], data
    code, data, _ = _cli(root, "update", {"task": "T-01", "title": "z" * 3_000})
    assert code == 2 and "more than the 2,621,440" in data["message"], data
    with served(root) as server:
        reply = post(server, "/api/commands/add", {"description": "y" * 3_000, "command": "true"})
        assert reply.status == 400 and "more than the 2,621,440" in reply.json()["message"], reply.body
        reply = post(server, "/api/tasks", {"description": "y" * 3_000, "command": "true"})
        assert reply.status == 400, reply.body
    with mcp_client(root, "--workspace", str(root)) as client:
        result = client.call("update", {"task": "T-01", "title": "z" * 3_000})
        assert result.is_error and "more than the 2,621,440" in result.content[0].text
    assert _contents(root) == before
    assert subprocess.run([*CLI, "status"], cwd=root, capture_output=True, check=False).returncode == 0


def test_a_defect_of_ours_is_one_line_and_its_traceback_a_log_entry_on_every_surface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No traceback reaches a user: the CLI says one line and exits 70; MCP and HTTP answer
    ``InternalError`` in the one shape; the traceback is in ``errors.log``."""
    import anyio
    from runner_helpers import cli_in_process

    from orchestrator.cli.agents import invoke
    from orchestrator.commands import reading
    from orchestrator.serve.app import Defects

    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "echo one")])
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def broken(_: object) -> object:
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(reading, "status", broken)
    done = cli_in_process(root, "status")
    assert done.code == 70 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("internal error (a defect of orchestrator's, not yours): ZeroDivisionError: a defect")
    log = tmp_path / "state/orchestrator/errors.log"
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()
    as_json = json.loads(cli_in_process(root, "status", "--json").stdout)
    assert as_json["error"] == "InternalError" and as_json["exit_code"] == 70
    outcome = invoke.call("status", {}, fixed=str(root), source="mcp")
    assert outcome.data["error"] == "InternalError" and outcome.exc is not None and outcome.http_status == 500

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise ZeroDivisionError("in a route")

    sent: list[MutableMapping[str, Any]] = []

    async def ask() -> None:  # (the middleware as the server calls it: one request, what it sends kept)
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/api/state", "headers": [], "query_string": b""}
        await Defects(failing, tmp_path / "logs")(scope, receive, send)

    anyio.run(ask)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 500
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["error"] == "InternalError" and "Traceback" not in json.dumps(body)
    assert "in a route" in (tmp_path / "logs/errors.log").read_text()


# What only a command may do to a workspace: a person's word said, a request made, the budget raised.
_WRITERS = {
    "orchestrator.run.inflight.decisions": {"decide"},
    "orchestrator.run.inflight.asking": {"answer"},
    "orchestrator.run.inflight.requests": {"request"},
    "orchestrator.run.inflight.budgeting": {"ask"},
}


def test_the_dashboard_links_and_comments_change_a_workspace_only_through_the_commands() -> None:
    """serve/ (the dashboard's buttons, a notification's links, a GitHub comment's word) reaches
    what a command writes only through the command (``commands/``): no module of it imports the
    writers the commands call, so a word said through a link is the one ``approve`` says, looked
    up, refused and recorded as the command does it."""
    import ast

    import orchestrator.serve

    modules = sorted(Path(orchestrator.serve.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    reached: list[str] = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in _WRITERS:
                reached += [
                    f"{module.name}: {node.module}.{a.name}" for a in node.names if a.name in _WRITERS[node.module]
                ]
            if isinstance(node, ast.ImportFrom) and node.module == "orchestrator.run.inflight":
                reached += [
                    f"{module.name}: run.inflight.{a.name}"
                    for a in node.names
                    if f"orchestrator.run.inflight.{a.name}" in _WRITERS
                ]
    assert reached == []
