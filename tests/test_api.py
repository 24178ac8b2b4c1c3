"""``orchestrator serve`` as an API for other programs, over real HTTP on loopback against a real
``serve`` process: its OpenAPI document (the served one, the one in docs/ and ``serve --openapi``
the same, every route in it), tasks added and updated, a run started with parameters and refused
while one goes on (with its pid), the event log as server-sent events resumed by
``Last-Event-ID``, and each refusal a 4xx that writes nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import CLI, Served, Stream, http_get, served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import Spec, write_plan
from test_hostile_input import snapshot

pytest.importorskip("starlette")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
GUARD = 60.0


def project_with(tmp_path: Path, specs: list[Spec], settings: dict[str, Any] | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    write_plan(project, specs, settings)
    return project


def post(server: Served, path: str, body: Any = None, *, raw: bytes | None = None, token: bool = True) -> Any:
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {server.token}"} if token else {})}
    return http_get(server.port, path, headers, method="POST", body=data)


def status(project: Path) -> dict[str, Any]:
    done = subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_openapi_document_served_is_the_one_in_docs_and_names_every_route(tmp_path: Path) -> None:
    from starlette.routing import Mount, Route

    from orchestrator.cli.serve import CliCommands
    from orchestrator.serve.app import build_app
    from orchestrator.state.workspace import Workspace

    project = project_with(tmp_path, [Spec("T-01", "true")])
    printed = subprocess.run([*CLI, "serve", "--openapi"], cwd=project, capture_output=True, text=True, check=True)
    kept = json.loads(DOCS.read_text(encoding="utf-8"))
    assert json.loads(printed.stdout) == kept, "docs/openapi.json is out of date: orchestrator serve --openapi > it"
    with served(project) as server:
        reply = http_get(server.port, "/api/openapi.json")
        assert reply.status == 200 and reply.json() == kept
    workspace = Workspace.find(project)
    app = build_app(workspace, token="t" * 16, commands=CliCommands(workspace), webhook_secret=b"s")
    for route in app.routes:
        if isinstance(route, Mount):
            path, methods = route.path + "/{path}", {"GET"}
        else:
            assert isinstance(route, Route)
            path, methods = route.path.replace(":path", ""), set(route.methods or {"GET"}) - {"HEAD"}
        assert path in kept["paths"], f"{path} is not in docs/openapi.json"
        assert {m.lower() for m in methods} <= set(kept["paths"][path]), path
    run_options = kept["components"]["schemas"]["RunOptions"]["properties"]
    assert {"max_parallel", "only", "param", "fail_fast"} <= set(run_options)  # read from run's parser


def test_a_task_added_and_a_run_started_through_the_api_refused_while_it_goes_on(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        [Spec("T-01", "while [ ! -e release ]; do sleep 0.05; done; echo released")],
        {"params": {"who": {"default": "nobody"}}},
    )
    with served(project) as server:
        assert post(server, "/api/runs", token=False).status == 403  # the token, always, for a POST
        added = post(
            server, "/api/tasks", {"description": "greet", "backend": "shell", "command": "echo hi {{ params.who }}"}
        )
        assert added.status == 201, added.body
        assert added.json()["ok"] is True and added.json()["id"] == "T-02"
        updated = post(server, "/api/task/T-02/update", {"priority": "high", "tag": ["api"]})
        assert updated.status == 200, updated.body
        started = post(server, "/api/runs", {"param": ["who=api"], "max_parallel": 2})
        assert started.status == 202, started.body
        launch = started.json()
        assert launch["ok"] is True and launch["running"] is True and isinstance(launch["pid"], int)
        again = post(server, "/api/runs", {})
        assert again.status == 409 and again.json()["pid"] == launch["pid"], again.body
        assert "a run is going on" in again.json()["message"] and again.json()["error"] == "RunGoingOn"
        (project / "release").write_text("", encoding="utf-8")
        done = wait_for(lambda: (s := status(project))["launched"]["exit_code"] is not None and s, "the run's end")
        assert done["launched"]["exit_code"] == 0 and done["launched"]["source"] == "api"
        assert done["launched"]["params"] == {"who": "api"} and done["launched"]["pid"] == launch["pid"]
        assert {t["id"]: t["status"] for t in done["tasks"]} == {"T-01": "completed", "T-02": "completed"}
        assert any(note.startswith("🪝 last run started by api") for note in done["notes"])
        state = wait_for(
            lambda: (r := http_get(server.port, "/api/state").json()).get("launched", {}).get("exit_code") == 0 and r,
            "state",
        )
        assert state["launched"]["id"] == launch["launch"]
    output = subprocess.run([*CLI, "output", "T-02"], cwd=project, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "hi api"
    plan = (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "| P1 |" in plan and "api" in plan  # update's priority and tag, written in the row


def test_a_run_started_through_the_api_whose_runner_was_killed_is_said_so_not_exit_none(tmp_path: Path) -> None:
    """`check` said `(exit None)` of an API-started run whose runner was killed: no exit code was
    given, and it says what is true, that the runner is gone without a word (its log named)."""
    import os
    import signal

    project = project_with(tmp_path, [Spec("T-01", "sleep 60")])
    with served(project) as server:
        started = post(server, "/api/runs", {})
        assert started.status == 202, started.body
        pid = started.json()["pid"]
        wait_for(lambda: any(t["status"] == "running" for t in status(project)["tasks"]), "T-01 to run")
        os.kill(pid, signal.SIGKILL)  # (the runner this test started, through the API)
        wait_for(lambda: status(project)["launched"]["running"] is False, "the runner to be gone")
    try:
        shown = status(project)
        assert shown["launched"]["exit_code"] is None
        checked = subprocess.run([*CLI, "check"], cwd=project, capture_output=True, text=True, check=False)
        assert "exit None" not in checked.stdout, checked.stdout
        assert (
            "last started by api at " in checked.stdout
            and "its runner is gone without a word (killed?)" in checked.stdout
        )
        said = subprocess.run([*CLI, "status"], cwd=project, capture_output=True, text=True, check=True).stdout
        assert "exit None" not in said and "its runner is gone without a word (killed?)" in said, said
    finally:
        subprocess.run([*CLI, "cleanup"], cwd=project, capture_output=True, check=False)  # (its attempt's group)


def test_a_run_that_cannot_start_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    project = project_with(tmp_path, [Spec("T-01", "true")])
    with served(project) as server:
        before = snapshot(project / ".orchestrator")
        for body, said in (
            ({"param": ["nope=1"]}, "declares no parameter"),
            ({"only": "T-09"}, "no task T-09"),
            ({"max_parallel": 0}, "--max-parallel must be at least 1"),
            ({"max_parallel": "4"}, "'max_parallel' must be an integer"),
            ({"executor": "moon"}, "'executor' must be one of"),
            ({"directory": "/etc"}, "no argument 'directory'"),
        ):
            reply = post(server, "/api/runs", body)
            assert reply.status == 400, (body, reply.body)
            assert said in reply.json()["message"], (body, reply.json())
        assert snapshot(project / ".orchestrator") == before


def test_the_event_log_streams_as_on_disk_and_resumes_after_last_event_id(tmp_path: Path) -> None:
    project = project_with(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    subprocess.run([*CLI, "run"], cwd=project, capture_output=True, check=True, timeout=GUARD)
    log = project / ".orchestrator" / "state" / "events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    ends = [sum(len(line) for line in lines[: i + 1]) for i in range(len(lines))]
    with served(project) as server:
        stream = Stream.open(server.port, "/api/events")
        seen = [stream.next() for _ in lines]
        assert [data for _, data in seen] == [json.loads(line) for line in lines]
        assert stream.last_id == str(ends[-1])
        stream.close()
        resumed = Stream.open(server.port, "/api/events", {"Last-Event-ID": str(ends[1])})
        assert resumed.next()[1] == json.loads(lines[2])
        assert resumed.last_id == str(ends[2])
        resumed.close()
        tail = Stream.open(server.port, "/api/events?from=end")
        subprocess.run([*CLI, "add", "later", "--command", "true"], cwd=project, capture_output=True, check=True)
        _, data = tail.next()
        assert data["event"] == "task_added" and data["task"] == "T-03"
        assert tail.last_id == str(log.stat().st_size)
        tail.close()
        for given in (str(ends[0] - 3), "x1", str(ends[-1] + 10_000), "²"):  # (² is a digit to str.isdigit)
            refused = http_get(server.port, "/api/events", {"Last-Event-ID": given})
            assert refused.status == 400 and refused.json()["ok"] is False, given
            assert refused.json()["error"] == "Refused" and "\n" not in refused.json()["message"]
        assert server.errors() == "", server.errors()  # (never a 500, nor a traceback)


def test_bad_bodies_are_refused_with_a_4xx_and_write_nothing(tmp_path: Path) -> None:
    project = project_with(tmp_path, [Spec("T-01", "true")])
    with served(project) as server:
        before = snapshot(project / ".orchestrator")
        cases: list[tuple[str, bytes, int]] = [
            ("/api/tasks", b"{not json", 400),
            ("/api/tasks", b"[1, 2]", 400),
            ("/api/tasks", b'{"description": 7}', 400),
            ("/api/tasks", b'{"description": "x", "bogus": true}', 400),
            ("/api/tasks", b"{}", 400),
            ("/api/tasks", b'{"description": "x", "after": ["T-99"]}', 400),
            ("/api/tasks", b'{"description": "' + b"x" * (1024 * 1024 + 10) + b'"}', 413),
            ("/api/task/T-77/update", b'{"priority": "high"}', 404),
            ("/api/task/T-01/update", b'{"task": "T-02"}', 400),
            ("/api/task/T-01/update", b'{"priority": 3}', 400),
            ("/api/runs", b"\xff\xfe", 400),
            ("/api/runs", b'{"only": ["T-01"]}', 400),
        ]
        for path, body, code in cases:
            reply = post(server, path, raw=body)
            assert reply.status == code, (path, body[:60], reply.status, reply.body[:300])
            assert reply.json()["ok"] is False and reply.json()["error"], (path, reply.json())
        assert snapshot(project / ".orchestrator") == before
    assert server.errors() == "", server.errors()


def _signed(secret: bytes, body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
HOSTILE_BODIES = st.one_of(
    st.binary(max_size=200),  # whatever bytes
    st.text(max_size=50).map(lambda text: text.encode("utf-8", errors="surrogatepass")),
    st.lists(JSON_SCALARS, max_size=4).map(lambda items: json.dumps(items).encode()),  # JSON, not an object
    JSON_SCALARS.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.text(max_size=10).map(lambda k: "x_" + k), JSON_SCALARS, min_size=1, max_size=3).map(
        lambda d: json.dumps(d).encode()
    ),  # options no command takes
    st.sampled_from(
        [
            b'{"description": 1}',
            b'{"description": "x", "after": "T-01"}',
            b'{"description": "x\\u0000"}',
            b'{"priority": ["high"]}',
            b'{"max_parallel": true}',
            b'{"param": "a=b"}',
            b'{"fail_fast": "yes"}',
            b'{"task": "T-01"}',
            b"[" * 100_000,
            b'{"a": ' * 50_000,
        ]
    ),
)


def test_hostile_bodies_to_every_route_that_takes_one_are_4xx_and_write_nothing(tmp_path: Path) -> None:
    """The routes that take a body, swept: bodies that are not JSON, not an object, options no command
    takes, values of the wrong type, nesting without end; hooks signed and not. Every answer is a
    4xx with ``{"ok": false, "error": ...}``, never a 500, and the workspace is the same bytes after. (An empty body is
    ``{}``: for ``/api/runs``, a run with the plan's settings.)"""
    trigger = {"events": ["pull_request"], "params": {"pr": "{{ event.pull_request.number }}"}}
    project = project_with(
        tmp_path, [Spec("T-01", "true")], {"params": {"pr": {"default": "0"}}, "triggers": {"github": trigger}}
    )
    secret = b"sweep-secret"
    (tmp_path / "secret").write_bytes(secret)
    routes = ["/api/tasks", "/api/task/T-01/update", "/api/runs", "/hooks/github"]
    with served(project, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        before = snapshot(project / ".orchestrator")

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(route=st.sampled_from(routes), body=HOSTILE_BODIES.filter(bytes.strip), sign=st.booleans())
        def sweep(route: str, body: bytes, sign: bool) -> None:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"}
            if route.startswith("/hooks/"):
                headers.update({"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "sweep"})
                if sign:
                    headers["X-Hub-Signature-256"] = _signed(secret, body)
            reply = http_get(server.port, route, headers, method="POST", body=body)
            assert 400 <= reply.status < 500, (route, body[:80], reply.status, reply.body[:200])
            answer = reply.json()
            assert answer["ok"] is False and isinstance(answer["error"], str) and answer["error"], answer

        sweep()
        assert snapshot(project / ".orchestrator") == before
    assert server.errors() == "", server.errors()


def test_with_a_token_given_a_program_reads_with_it_as_a_bearer_or_header(tmp_path: Path) -> None:
    project = project_with(tmp_path, [Spec("T-01", "true")])
    token = "a-token-of-enough-characters"
    with served(project, "--token", token) as server:
        assert http_get(server.port, "/api/state").status == 401
        assert (
            http_get(server.port, "/api/state", {"Authorization": "Bearer wrong-token-of-enough-chars"}).status == 401
        )
        assert http_get(server.port, "/api/state", {"Authorization": f"Bearer {token}"}).json()["total"] == 1
        assert http_get(server.port, "/api/openapi.json", {"X-Orchestrator-Token": token}).status == 200
        refused = post(server, "/api/tasks", {"description": "x"}, token=False)
        assert refused.status == 403 and "Bearer" in refused.json()["message"]


def test_a_row_run_per_item_is_added_through_the_api_and_a_bad_each_refused(tmp_path: Path) -> None:
    project = project_with(tmp_path, [Spec("T-01", "echo one")])
    with served(project) as server:
        bad = post(server, "/api/tasks", {"description": "x", "each": "glob: /etc/*"})
        assert bad.status == 400 and "leads outside the project" in bad.json()["message"], bad.body
        added = post(
            server,
            "/api/tasks",
            {"description": "per item", "backend": "shell", "command": "echo {{ item }}", "each": "en, fr"},
        )
        assert added.status == 201, added.body
    plan = (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "| en, fr |" in plan
    assert subprocess.run([*CLI, "run"], cwd=project, capture_output=True, check=False).returncode == 0
    said = subprocess.run([*CLI, "output", "T-02[2]"], cwd=project, capture_output=True, text=True, check=True)
    assert said.stdout.strip() == "fr"


def test_a_relative_details_file_is_the_projects_wherever_serve_was_started(tmp_path: Path) -> None:
    """``details_file: notes.md`` through the API is the project's notes.md, not one in the folder
    ``serve`` happened to be started in (issue 78)."""
    project = project_with(tmp_path, [Spec("T-01", "echo one")])
    (project / "notes.md").write_text("Read the notes, then act.\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text("not these\n", encoding="utf-8")
    with served(elsewhere, str(project)) as server:
        added = post(server, "/api/tasks", {"description": "noted", "details_file": "notes.md"})
        assert added.status == 201, added.body
    plan = (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "Read the notes, then act." in plan and "not these" not in plan


def test_the_state_read_right_after_a_write_has_it_on_every_read(tmp_path: Path) -> None:
    """Issue 74: ``GET /api/state`` right after ``POST /api/tasks`` lacked tasks just added (it
    answered the state the dashboard's last look built). Adds one after another and six at once:
    each read after them has every one, and the CLI's ``status`` the same ids."""
    from concurrent.futures import ThreadPoolExecutor

    project = project_with(tmp_path, [Spec("T-01", "echo one")])
    with served(project) as server:

        def add(name: str) -> str:
            added = post(server, "/api/tasks", {"description": name, "backend": "shell", "command": "echo hi"})
            assert added.status == 201, added.body
            return str(added.json()["id"])

        ids = {"T-01"}
        for n in range(4):
            ids.add(add(f"one after another {n}"))
            assert {t["id"] for t in http_get(server.port, "/api/state").json()["tasks"]} == ids
        with ThreadPoolExecutor(6) as pool:
            ids |= set(pool.map(add, [f"at once {n}" for n in range(6)]))
        assert len(ids) == 11
        assert {t["id"] for t in http_get(server.port, "/api/state").json()["tasks"]} == ids
    assert {t["id"] for t in status(project)["tasks"]} == ids
