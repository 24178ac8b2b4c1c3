"""``orchestrator mcp``: the queue's commands as MCP tools over stdio, tested with the MCP SDK's own
client against ``python -m orchestrator mcp`` (a real subprocess), and with the real ``claude``
CLI (``--mcp-config``) against the fake Messages API scripted to call ``add``, ``run``, ``status``
until the task is done, then ``output``. Also: each tool's arguments are its command's options
as argparse has them; errors are tool errors with the command's one line; hostile arguments
write nothing; ``install-mcp`` writes the entry into .mcp.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import CLI, Spec, write_plan
from test_hostile_input import snapshot

pytest.importorskip("mcp")

from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters, stdio_client

from orchestrator.cli.agents import invoke

GUARD = 60.0


class Client:
    """A session of the SDK's client with ``python -m orchestrator mcp ARGS``, called from plain
    (synchronous) test code through a blocking portal."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> Any:
        return self.portal.call(lambda: self.session.call_tool(tool, arguments or {}))

    def tools(self) -> Any:
        return self.portal.call(self.session.list_tools).tools

    def resources(self) -> Any:
        return self.portal.call(self.session.list_resources).resources

    def read(self, uri: str) -> str:
        found = self.portal.call(lambda: self.session.read_resource(uri))
        return str(getattr(found.contents[0], "text", ""))


@contextmanager
def mcp_client(cwd: Path, *args: str) -> Iterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "orchestrator", "mcp", *args], env=dict(os.environ), cwd=str(cwd)
    )
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(stdio_client(params)) as streams:
        read, write = streams
        with portal.wrap_async_context_manager(ClientSession(read, write)) as session:
            portal.call(session.initialize)
            yield Client(portal, session)


def text_of(result: Any) -> str:
    return str(result.content[0].text)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "while [ ! -e release ]; do sleep 0.05; done; echo first")])
    return root


def test_each_tool_takes_its_commands_options_as_argparse_has_them(tmp_path: Path) -> None:
    from orchestrator.cli.commands import build_parser
    from orchestrator.commands.table import COMMANDS

    cli_only = {name: {o.name for o in c.options if not o.everywhere} for name, c in COMMANDS.items()}
    assert cli_only["logs"] == {"follow"} and cli_only["run"] == {"untrusted", "verbose"}
    root = project(tmp_path)
    with mcp_client(root) as client:
        tools = {tool.name: tool for tool in client.tools()}
    assert list(tools) == list(invoke.COMMANDS)
    for name, tool in tools.items():
        sub = build_parser(name).command(name)
        properties = tool.input_schema["properties"]
        for action in sub.given:
            if not action.option_strings or action.dest in ("help", "json") or action.help == argparse.SUPPRESS:
                continue
            if action.dest in cli_only.get(name, ()):
                assert action.dest not in properties
                continue
            assert action.dest in properties, (name, action.dest)
            schema = properties[action.dest]
            if action.choices is not None:
                enum = schema["items"]["enum"] if schema["type"] == "array" else schema["enum"]
                assert enum == list(action.choices), (name, action.dest)
            default = invoke.MCP_DEFAULTS.get(name, {}).get(action.dest, action.default)  # (an agent's own)
            if default not in (None, False, []) and schema["type"] != "array":
                assert schema["default"] == default, (name, action.dest)
        assert "directory" in properties
    assert tools["add"].input_schema["required"] == ["description"]
    assert tools["output"].input_schema["required"] == ["task"]
    assert tools["history"].input_schema["required"] == []
    assert tools["status"].annotations.read_only_hint is True and tools["cancel"].annotations.destructive_hint


def test_a_queue_driven_through_the_tools(tmp_path: Path) -> None:
    root = project(tmp_path)
    with mcp_client(tmp_path, "--workspace", str(root)) as client:
        assert "directory" not in {t.name: t for t in client.tools()}["add"].input_schema["properties"]
        added = client.call(
            "add", {"description": "second", "after": ["T-01"], "backend": "shell", "command": "echo 2"}
        )
        assert not added.is_error and added.structured_content["id"] == "T-02"
        assert json.loads(text_of(added))["id"] == "T-02"  # what `add --json` prints
        assert client.call("validate").structured_content["ok"] is True
        listed = client.call("list", {"status": ["ready"]})  # (pending: T-02, waiting for T-01, too)
        assert [t["id"] for t in listed.structured_content["tasks"]] == ["T-01"], listed.structured_content
        started = client.call("run", {"max_parallel": 2})
        assert not started.is_error, text_of(started)
        pid = started.structured_content["pid"]
        refused = client.call("run")
        assert refused.is_error and f"(pid {pid})" in text_of(refused) and refused.structured_content["pid"] == pid
        assert len(text_of(refused).splitlines()) == 1
        start = time.monotonic()
        running = client.call("status", {"tasks": "all"}).structured_content
        assert {t["id"]: t["status"] for t in running["tasks"]}["T-02"] == "waiting"
        # An agent's default: the counts whole, the tasks that need attention listed (T-01 running).
        attention = client.call("status").structured_content
        while [t["id"] for t in attention["tasks"]] != ["T-01"]:  # (once T-01 is running)
            assert time.monotonic() < start + GUARD, attention
            attention = client.call("status").structured_content
        assert attention["listed"]["tasks"] == "attention" and attention["counts"]["waiting"] == 1
        (root / "release").write_text("", encoding="utf-8")
        deadline = time.monotonic() + GUARD
        while client.call("status").structured_content["counts"]["completed"] < 2:
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.1)
        assert client.call("output", {"task": "T-02"}).structured_content["output"] == "2\n"
        logs = client.call("logs", {"task": "T-01"})
        assert not logs.is_error, text_of(logs)
        history = client.call("history", {"task": "T-01"}).structured_content
        assert [a["task"] for a in history["attempts"]] == ["T-01"]
        missing = client.call("output", {"task": "T-09"})
        assert missing.is_error and text_of(missing).startswith("no task T-09 in the plan")
        retried = client.call("retry", {"task": "T-01"})
        assert retried.is_error and len(text_of(retried).splitlines()) == 1
        assert client.call("update", {"task": "T-02", "priority": "high"}).structured_content["ok"] is True
        uris = [str(r.uri) for r in client.resources()]
        assert uris[:2] == ["orchestrator://plan", "orchestrator://final_output"]
        assert "orchestrator://results/agent-02-result.md" in uris
        assert client.read("orchestrator://plan") == (root / ".orchestrator" / "master_plan.md").read_text()
        assert "# " in client.read("orchestrator://final_output")
        for uri in (
            "orchestrator://results/../../master_plan.md",
            "orchestrator://results/agent-9-result.md",
            "file:///etc/passwd",
        ):
            with pytest.raises(Exception, match="no resource"):
                client.read(uri)
    launched = json.loads(subprocess.run([*CLI, "status", "--json"], cwd=root, capture_output=True, check=True).stdout)
    assert launched["launched"]["source"] == "mcp" and launched["launched"]["exit_code"] == 0


HOSTILE_VALUES = st.one_of(
    st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.text(max_size=30).map(lambda t: t + "\x00"),
)  # fmt: skip


def test_hostile_arguments_are_tool_errors_and_write_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    shapes = {command: invoke.schema(command) for command in invoke.COMMANDS}
    with mcp_client(root) as client:
        before = snapshot(root / ".orchestrator")

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(tool=st.sampled_from(invoke.COMMANDS), data=st.data())
        def sweep(tool: str, data: st.DataObject) -> None:
            properties = shapes[tool]["properties"]
            arguments: dict[str, Any] = {}
            if data.draw(st.booleans()) or not properties:
                arguments[data.draw(st.text(min_size=1, max_size=12).map(lambda t: "x_" + t))] = 1
            else:  # a known argument, of the wrong type (or a string with a NUL)
                name = data.draw(st.sampled_from(sorted(properties)))
                kind = properties[name]["type"]
                value = data.draw(HOSTILE_VALUES.filter(lambda v: _wrong(v, kind)))
                arguments[name] = value
            result = client.call(tool, arguments)
            assert result.is_error, (tool, arguments, text_of(result))
            assert len(text_of(result).splitlines()) == 1 and "Traceback" not in text_of(result)

        sweep()
        for tool, arguments in (
            ("output", {"task": "../../etc/passwd"}),
            ("logs", {"task": "T-01", "attempt": 99}),
            ("add", {"description": "x", "details_file": "/nonexistent/file"}),
            ("nope", {}),
            ("cancel", {"task": "T-99"}),
            ("run", {"only": "T-42"}),
            ("status", {"directory": str(tmp_path / "nowhere")}),
        ):
            assert client.call(tool, arguments).is_error, (tool, arguments)
        assert snapshot(root / ".orchestrator") == before


def _wrong(value: Any, kind: str) -> bool:
    """Whether ``value`` is not of JSON type ``kind`` (a string holding a NUL is wrong for any)."""
    if isinstance(value, str):
        return True
    if kind == "boolean":
        return not isinstance(value, bool)
    if kind in ("integer", "number"):
        return (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind == "integer" and isinstance(value, float))
        )
    if kind == "array":
        return not isinstance(value, list) or (any(not isinstance(item, str) for item in value) and bool(value))
    return True


def _path(*first: Path) -> dict[str, str]:
    """An environment whose PATH finds ``first``, then this Python's own bin (its `orchestrator`,
    with the mcp extra), then the system's."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([*map(str, first), str(Path(sys.executable).parent), "/usr/bin:/bin"]),
    }


def without_the_sdk(tmp_path: Path) -> Path:
    """A bin directory whose `orchestrator` is the real CLI run by a Python that cannot import the
    MCP SDK: what `pipx install task-orchestrator` (no extra) puts on PATH."""
    bin_dir = tmp_path / "plain-bin"
    bin_dir.mkdir()
    script = bin_dir / "orchestrator"
    code = "import sys; sys.modules['mcp'] = None; from orchestrator.cli.main import main; sys.exit(main(sys.argv[1:]))"
    script.write_text(f'#!/bin/sh\nexec \'{sys.executable}\' -c "{code}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return bin_dir


def test_install_mcp_refuses_an_entry_claude_code_could_not_start_and_doctor_checks_it(tmp_path: Path) -> None:
    """The README's plain `pipx install` gave a command without the mcp extra: the entry install-mcp
    wrote for it could not start ("Failed to connect" in Claude Code). install-mcp starts the entry
    as Claude Code would (MCP's initialize) and refuses, in one line saying what to install, with
    nothing written; doctor checks the entries .mcp.json has the same way."""
    root = project(tmp_path)
    plain = without_the_sdk(tmp_path)
    config = root / ".mcp.json"
    for env, said in (
        (_path(plain), "(" + str(plain / "orchestrator") + ") was installed without the mcp extra"),
        ({**os.environ, "PATH": "/usr/bin:/bin"}, "`orchestrator` is not on PATH"),
    ):
        refused = subprocess.run([*CLI, "install-mcp"], cwd=root, env=env, capture_output=True, text=True, check=False)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith(".mcp.json not written: Claude Code could not start this entry — ")
        assert (
            said in refused.stderr and "pipx install" in refused.stderr and "task-orchestrator[mcp]" in refused.stderr
        )
        assert "Traceback" not in refused.stderr and not config.exists()
    # This Python has the SDK: --python names it; --no-check writes an entry for other machines.
    python = subprocess.run(
        [*CLI, "install-mcp", "--python"], cwd=root, env=_path(plain), capture_output=True, text=True
    )
    assert python.returncode == 0, python.stderr
    config.unlink()
    written = subprocess.run(
        [*CLI, "install-mcp", "--no-check"], cwd=root, env=_path(plain), capture_output=True, text=True, check=False
    )
    assert written.returncode == 0 and json.loads(config.read_text())["mcpServers"]["orchestrator"]["command"] == (
        "orchestrator"
    )
    doctor = subprocess.run([*CLI, "doctor", "--json"], cwd=root, env=_path(plain), capture_output=True, text=True)
    assert doctor.returncode == 1
    [server] = json.loads(doctor.stdout)["mcp"]
    assert server["name"] == "orchestrator" and "installed without the mcp extra" in server["problem"]
    text = subprocess.run([*CLI, "doctor"], cwd=root, env=_path(plain), capture_output=True, text=True).stdout
    assert "mcp: .mcp.json's server 'orchestrator' (orchestrator mcp): ❌ `orchestrator` (" in text, text
    fine = subprocess.run([*CLI, "doctor"], cwd=root, env=_path(), capture_output=True, text=True)
    assert "mcp: .mcp.json's server 'orchestrator' (orchestrator mcp): ✅ starts" in fine.stdout, fine.stdout


def test_install_mcp_writes_the_entry_and_keeps_the_other_servers(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}), encoding="utf-8")
    done = subprocess.run(
        [*CLI, "install-mcp", "--json"], cwd=root, env=_path(), capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["unchanged"] is False
    config = json.loads((root / ".mcp.json").read_text(encoding="utf-8"))
    assert config["mcpServers"]["other"] == {"command": "x"}
    assert config["mcpServers"]["orchestrator"] == {
        "type": "stdio",
        "command": "orchestrator",
        "args": ["mcp"],
        "env": {},
    }
    again = subprocess.run(
        [*CLI, "install-mcp", "--json"], cwd=root, env=_path(), capture_output=True, text=True, check=True
    )
    assert json.loads(again.stdout)["unchanged"] is True
    differs = subprocess.run([*CLI, "install-mcp", "--python"], cwd=root, capture_output=True, text=True, check=False)
    assert differs.returncode == 2 and "--force" in differs.stderr
    printed = subprocess.run(
        [*CLI, "install-mcp", "--print", "--python", "--workspace", ".orchestrator"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(printed.stdout)["args"] == ["-m", "orchestrator", "mcp", "--workspace", ".orchestrator"]
    (root / ".mcp.json").write_text("{broken", encoding="utf-8")
    broken = subprocess.run([*CLI, "install-mcp"], cwd=root, capture_output=True, text=True, check=False)
    assert broken.returncode == 2 and "nothing was written" in broken.stderr
    assert (root / ".mcp.json").read_text(encoding="utf-8") == "{broken"


@pytest.mark.claude
def test_the_real_claude_cli_drives_the_queue_through_the_mcp_tools(tmp_path: Path) -> None:
    from fakeapi import FakeAnthropic, Reply, claude_missing, find_claude, mcp_tool, run_claude

    claude = find_claude()
    if claude is None:
        pytest.skip(claude_missing())
    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "echo first")])
    printed = subprocess.run(
        [*CLI, "install-mcp", "--print", "--python", "--workspace", str(root / ".orchestrator")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"queue": json.loads(printed.stdout)}}), encoding="utf-8")
    calls: list[str] = []

    def script(body: dict[str, Any]) -> Reply:
        said = _last_tool_result(body)
        if not calls:
            calls.append("add")
            greet = {"description": "greet", "backend": "shell", "command": "echo hello-from-claude", "after": ["T-01"]}
            return Reply.tool(mcp_tool("queue", "add"), greet)
        if calls[-1] == "add":
            calls.append("run")
            return Reply.tool(mcp_tool("queue", "run"), {})
        if calls[-1] in ("run", "status") and '"completed": 2' not in said.replace('":', '": '):
            if calls.count("status") > 200:
                return Reply.say("gave up")
            time.sleep(0.1)
            calls.append("status")
            return Reply.tool(mcp_tool("queue", "status"), {})
        if calls[-1] == "status":
            calls.append("output")
            return Reply.tool(mcp_tool("queue", "output"), {"task": "T-02"})
        calls.append("done")
        return Reply.say("done: " + said)

    with FakeAnthropic(script) as api:
        ran = run_claude(
            api,
            "queue a greeting and run it",
            args=["--mcp-config", str(config), "--strict-mcp-config", "--allowedTools", "mcp__queue"],
            config_dir=tmp_path / "claude",
            cwd=root,
            claude=claude,
            timeout=120,
        )
    assert ran.returncode == 0, ran.stderr
    assert calls[:2] == ["add", "run"] and calls[-2:] == ["output", "done"] and "status" in calls, calls
    results = [
        block
        for event in ran.events
        if event.get("type") == "user"
        for block in event["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    assert len(results) == len(calls) - 1 and not any(block.get("is_error") for block in results), results
    answer = json.loads(_text(results[-1]["content"]))
    assert answer["task"] == "T-02" and answer["output"] == "hello-from-claude\n"
    status = json.loads(subprocess.run([*CLI, "status", "--json"], cwd=root, capture_output=True, check=True).stdout)
    assert status["launched"]["source"] == "mcp" and status["launched"]["exit_code"] == 0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


def _last_tool_result(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    return _text(block.get("content"))
    return ""
