"""One validator for every write (issue 73): ``add``, ``update`` and ``import`` refuse, on every
door, every row ``validate`` would refuse, in ``validate``'s own words, and write nothing.

``add`` took a row with ``{{ params.x }}`` inside ``sh -c`` (or ``{{ item }}`` in ``eval``) that
``validate`` refused: every ``run`` then exited 2, and with the parameter form ``status``, ``list``,
``update``, ``cancel`` and further ``add``s failed too, until the plan was edited by hand. Each
refused row here goes through the command line (``--json``), the HTTP API of a real ``serve`` on
loopback and the MCP server over stdio (the SDK's own client); what each door says is held to the
words ``validate`` says of the same row written by hand, the plan file stays byte for byte what it
was, no event is written, and ``run`` and ``status`` work after.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import CLI, Spec, cli, write_plan

pytest.importorskip("mcp")
pytest.importorskip("starlette")

from dashboard_helpers import served
from test_api import post
from test_mcp import mcp_client

from orchestrator.plan.edit import NewTask, add_task, update_task

PLAN = ".orchestrator/master_plan.md"
EVENTS = ".orchestrator/state/events.jsonl"


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    write_plan(root, [Spec("T-01", "echo one", inline=True), Spec("T-02", "echo two", ["T-01"], inline=True)],
               {"params": {"x": {"default": "hi"}}})  # fmt: skip
    assert cli(root, "run").code == 0  # (a run's events: a refusal adds none)
    return root


# Each refused write: the command, its arguments as a program gives them, and the same change made by
# hand to the plan's text (``None``: a refusal of the option itself, before any row is written).
REFUSED: list[tuple[str, str, dict[str, Any], Any]] = [
    (
        "a value in sh -c",
        "add",
        {"description": "run it", "backend": "shell", "command": 'sh -c "echo {{ params.x }}"'},
        NewTask("run it", backend="shell", command='sh -c "echo {{ params.x }}"'),
    ),
    (
        "a value in bash -c, by update",
        "update",
        {"task": "T-02", "command": 'bash -c "ls {{ params.x }}"'},
        ("T-02", {"command": '`bash -c "ls {{ params.x }}"`'}),
    ),
    (
        "an item in eval",
        "add",
        {"description": "each", "backend": "shell", "each": "a, b", "command": 'eval "{{ item }}"'},
        NewTask("each", backend="shell", each="a, b", command='eval "{{ item }}"'),
    ),
    (
        "an item with a filter",
        "add",
        {"description": "each", "backend": "shell", "each": "a, b", "command": "echo {{ item | upper }}"},
        NewTask("each", backend="shell", each="a, b", command="echo {{ item | upper }}"),
    ),
    (
        "an unknown parameter",
        "add",
        {"description": "say", "backend": "shell", "command": "echo {{ params.nope }}"},
        NewTask("say", backend="shell", command="echo {{ params.nope }}"),
    ),
    (
        "an unknown parameter, by update",
        "update",
        {"task": "T-01", "title": "for {{ params.nope }}"},
        ("T-01", {"name": "for {{ params.nope }}"}),
    ),
    (
        "a dependency cycle",
        "update",
        {"task": "T-01", "depends_on": ["T-02"]},
        ("T-01", {"deps": "T-02"}),
    ),
    ("an unknown dependency", "add", {"description": "late", "command": "true", "after": ["T-99"]}, None),
]


def _validates(root: Path, tmp: Path, change: Any) -> str:
    """What ``validate`` says of the plan with ``change`` made by hand: its first problem's words and
    what to do (a copy of the plan, in a workspace of its own)."""
    text = (root / PLAN).read_text(encoding="utf-8")
    text = add_task(text, change)[0] if isinstance(change, NewTask) else update_task(text, *change)
    copy = tmp / "by-hand"
    (copy / ".orchestrator").mkdir(parents=True, exist_ok=True)
    (copy / PLAN).write_text(text, encoding="utf-8")
    done = subprocess.run([*CLI, "validate", "--json"], cwd=copy, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stdout
    problem = json.loads(done.stdout)["problems"][0]
    return f"{problem['message']} — {problem['hint']}"


def _cli(root: Path, command: str, arguments: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    words: list[str] = [command]
    for name, value in arguments.items():
        if name in ("description", "task"):
            continue
        for one in value if isinstance(value, list) else [value]:
            words += [f"--{name.replace('_', '-')}", one]
    words += ["--json", "--", arguments.get("description") or arguments["task"]]
    done = subprocess.run([*CLI, *words], cwd=root, capture_output=True, text=True, check=False)
    assert len(done.stderr.strip().splitlines()) <= 1 and "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _unchanged(root: Path, plan: bytes, log: bytes) -> None:
    assert (root / PLAN).read_bytes() == plan
    assert (root / EVENTS).read_bytes() == log


def test_every_door_refuses_what_validate_refuses_in_its_words_and_writes_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    plan, log = (root / PLAN).read_bytes(), (root / EVENTS).read_bytes()
    said: dict[str, str] = {}
    for case, command, arguments, change in REFUSED:
        code, answer = _cli(root, command, arguments)
        assert code == 2 and answer["ok"] is False and answer["exit_code"] == 2, (case, answer)
        if change is not None:
            words = _validates(root, tmp_path, change)
            assert words in answer["message"], (case, answer["message"], words)
            assert "\n" not in answer["message"] and "master_plan.md:" not in answer["message"], answer
        said[case] = answer["message"]
        _unchanged(root, plan, log)
    assert "T-99" in said["an unknown dependency"]
    with served(root) as server:
        for case, command, arguments, _ in REFUSED:
            reply = post(server, f"/api/commands/{command}", arguments)
            assert reply.status == 400 and reply.json()["message"] == said[case], (case, reply.status, reply.body)
            if command == "add":  # (the dashboard's own route: the same function)
                reply = post(server, "/api/tasks", arguments)
                assert reply.status == 400 and reply.json()["message"] == said[case], (case, reply.body)
            _unchanged(root, plan, log)
        assert server.errors() == "", server.errors()
    with mcp_client(root, "--workspace", str(root)) as client:
        for case, command, arguments, _ in REFUSED:
            result = client.call(command, arguments)
            assert result.is_error, case
            assert result.structured_content["message"] == said[case], (case, result.structured_content)
            assert result.structured_content["exit_code"] == 2
            _unchanged(root, plan, log)
    for name in ("run", "status", "list", "validate"):
        done = cli(root, name)
        assert done.code == 0, (name, done.stderr)


def test_a_refused_row_leaves_every_command_working_where_it_used_to_break_them(tmp_path: Path) -> None:
    """The issue's repro: after the refused ``add``, ``status``, ``list``, ``update``, ``cancel`` and a
    further ``add`` all work, as the plan is the one they read before."""
    root = _project(tmp_path / "project")
    refused = cli(root, "add", "x", "--backend", "shell", "--command", 'sh -c "echo {{ params.x }}"')
    assert refused.code == 2 and "sh -c" in refused.stderr, refused.stderr
    for words in (("status",), ("list",), ("update", "T-02", "--priority", "high"),
                  ("add", "say", "--command", "echo {{ params.x }}"), ("run",), ("add", "later", "--command", "true"),
                  ("cancel", "T-04"), ("validate",), ("status",)):  # fmt: skip
        done = cli(root, *words)
        assert done.code == 0, (words, done.stderr)
    assert cli(root, "output", "T-03").stdout == "hi\n"


def test_import_refuses_what_validate_refuses_and_writes_nothing(tmp_path: Path) -> None:
    """``import --force`` over a plan: a document whose row validate would refuse (an item in ``eval``,
    a value in ``sh -c``) is refused at that row's key, the plan there unchanged."""
    root = _project(tmp_path / "project")
    exported = subprocess.run([*CLI, "export", "--format", "json"], cwd=root, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
    plan = (root / PLAN).read_bytes()
    for command, each in (('eval "{{ item }}"', "a, b"), ('sh -c "echo {{ params.x }}"', None)):
        document = json.loads(exported)
        document["columns"] = [*document["columns"], "Each"]
        document["tasks"].append({"Task ID": "T-03", "Description": "bad", "Dependencies": "None",
                                  "Command": f"`{command}`", "Each": each or ""})  # fmt: skip
        (tmp_path / "doc.json").write_text(json.dumps(document))
        done = subprocess.run([*CLI, "import", "--force", str(tmp_path / "doc.json")], cwd=root, capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 2, done.stdout
        assert done.stderr.startswith(f"{tmp_path / 'doc.json'}: tasks[2]: ") and "nothing was written" in done.stderr
        message, hint = _validates(root, tmp_path, NewTask("bad", command=command, each=each)).split(" — ", 1)
        assert message in done.stderr and hint in done.stderr, (done.stderr, message)
        assert (root / PLAN).read_bytes() == plan
    assert cli(root, "status").code == 0
