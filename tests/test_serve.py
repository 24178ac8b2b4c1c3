"""``orchestrator serve``: the dashboard over real HTTP on loopback, and in a real headless Chromium.

The server runs as a real subprocess (``python -m orchestrator serve --port 0 --json``); requests go
out over sockets with their paths exactly as written; runs are real runs of shell plans.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

import anyio
import pytest
from dashboard_helpers import (
    CLI,
    DEMO_PLAN,
    HANG_GUARD,
    Served,
    Stream,
    browser_missing,
    channel_events,
    http_get,
    serve,
    served,
    watch_a_run,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import results, wait_until

from orchestrator.plan.config.settings import format_duration
from orchestrator.state import events
from orchestrator.state.events import EventRecord

SECRET = "TOP-SECRET: never served"


def demo(tmp_path: Path) -> Path:
    """A project whose workspace holds the demo plan (T-03 released at once by its signoff file)."""
    project = tmp_path / "billing"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(DEMO_PLAN, encoding="utf-8")
    (project / "signoff").write_text("the owner\n", encoding="utf-8")
    return project


def events_file(project: Path) -> Path:
    return project / ".orchestrator" / "state" / "events.jsonl"


@pytest.mark.slow
def test_the_page_follows_a_run_in_headless_chromium(tmp_path: Path) -> None:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "billing"
    project.mkdir()
    seen = watch_a_run(project, tmp_path / "dashboard.png")
    assert seen.running_in_table and seen.running_in_graph
    assert "still waiting" in seen.log_tail
    for kind in ("discover", "share", "custom_signal"):  # kinds the page knows nothing about, shown as they are
        assert any(kind in line for line in seen.generic_events), seen.generic_events
    assert any("duplicate rounding" in line for line in seen.generic_events)
    assert any("origin: cron" in line for line in seen.generic_events)
    assert not any("{" in line for line in seen.generic_events), seen.generic_events  # words, never raw JSON
    assert any("rounding.md" in line for line in seen.context_files)
    assert seen.completed_in_table and seen.completed_in_graph
    assert not seen.reloaded, "the page was reloaded: the change must come down the stream"
    assert "run finished" in seen.run_pill
    assert seen.run_exit == 0
    ran = {meta["task"]: meta["duration"] for meta in results(project).values()}
    assert seen.durations == {task: format_duration(took) for task, took in ran.items()}  # app.js's rule is the CLI's
    assert seen.screenshot is not None and seen.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen.screenshot.stat().st_size > 20_000


def test_an_appended_event_reaches_every_open_stream_and_sigterm_ends_them(tmp_path: Path) -> None:
    project = demo(tmp_path)
    server = serve(project)
    assert isinstance(server, Served)
    try:
        assert server.info["ok"] is True and server.info["token_required"] is False
        assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")  # a fresh token: actions need it
        assert len(server.url.partition("?token=")[2]) >= 16
        streams = [Stream.open(server.port) for _ in range(3)]
        for stream in streams:
            kind, state = stream.next()
            assert kind == "state" and state["total"] == 6 and state["feed"] == []
        sent = channel_events()
        events.append(events_file(project), sent)
        for stream in streams:
            kind, data = stream.until(lambda kind, _: kind == "events")
            assert [event["event"] for event in data] == ["discover", "share", "custom_signal"]
            assert data[0]["text"] == sent[0]["text"]
            kind, state = stream.until(lambda kind, _: kind == "state")
            assert [event["event"] for event in state["notable"]] == ["discover", "share", "custom_signal"]
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.errors()
    for stream in streams:
        with pytest.raises(EOFError):
            stream.until(lambda kind, _: False)
        stream.close()


def test_a_late_client_gets_the_state_then_the_stream(tmp_path: Path) -> None:
    project = demo(tmp_path)
    finished = subprocess.run(
        [*CLI, "run", "--json"], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD, check=False
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    (project / ".orchestrator" / "state" / "pause.json").write_text(
        json.dumps({"until": 4102444800, "until_iso": "2100-01-01T00:00:00+00:00", "backend": "claude", "reason": "x"})
    )
    with served(project) as server:
        state = http_get(server.port, "/api/state").json()
        assert state["counts"]["completed"] == 6
        assert {task["id"]: task["status"] for task in state["tasks"]} == dict.fromkeys(
            ("T-01", "T-02", "T-03", "T-04", "T-05", "T-06"), "completed"
        )
        assert state["run"]["finished"] is not None and state["run"]["exit_code"] == 0
        assert state["feed"][-1]["event"] == "run_finished"
        assert state["pause"]["until_iso"] == "2100-01-01T00:00:00+00:00"
        status = json.loads(
            subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True).stdout
        )
        assert {key: state[key] for key in status} == status  # the same data as `status --json`
        stream = Stream.open(server.port)
        kind, first = stream.next()
        assert kind == "state" and first["counts"] == state["counts"]
        events.append(events_file(project), [{"event": "notice", "run": None, "message": "disk almost full"}])
        _, data = stream.until(lambda kind, _: kind == "events")
        assert isinstance(data[0].pop("prev"), str)  # (its line's link in the log's chain, as the log has it)
        assert data == [{"event": "notice", "run": None, "message": "disk almost full", "said": "ℹ️ disk almost full"}]
        stream.close()
        files = http_get(server.port, "/api/task/T-03").json()
        assert "signed off by the owner" in files["stdout"]["text"]
        assert files["result"]["path"] == ".orchestrator/results/agent-03-result.md"
        assert files["brief"]["text"].startswith("---\ntask: T-03")
        assert http_get(server.port, "/api/task/T-99").status == 404
        svg = http_get(server.port, "/api/graph.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.body.count(b'class="node ') == 6
        # The plan changed since: the page says what `status` says, which tasks `run` would do again.
        plan = project / ".orchestrator" / "master_plan.md"
        text = plan.read_text(encoding="utf-8")
        plan.write_text(text.replace('echo "published"', 'echo "published twice"'), encoding="utf-8")
        stale: list[str] = []

        def told() -> bool:  # (the state is built again at the server's next look at the files)
            nonlocal state
            state = http_get(server.port, "/api/state").json()
            stale[:] = [t["id"] for t in state["tasks"] if t["up_to_date"] is False]
            return bool(stale)

        wait_until(told, "the page to tell T-06 out of date")
        assert stale == ["T-06"]
        status = json.loads(
            subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True).stdout
        )
        assert {key: state[key] for key in status} == status


def test_a_token_is_needed_on_every_request_when_there_is_one(tmp_path: Path) -> None:
    project = demo(tmp_path)
    token = "a-token-of-enough-characters"
    with served(project, "--token", token) as server:
        assert server.info["token_required"] is True
        assert server.url.endswith(f"/?token={token}")
        for path in ("/", "/api/state", "/api/live", "/api/events", "/static/app.js", "/api/task/T-01"):
            refused = http_get(server.port, path)
            assert refused.status == 401, path
            assert b"token" in refused.body
        assert http_get(server.port, "/api/state?token=wrong-token-of-enough-chars").status == 401
        wrong = f"orchestrator_token_{server.port}=wrong-token-of-enough-chars"
        assert http_get(server.port, "/api/state", {"Cookie": wrong}).status == 401
        page = http_get(server.port, f"/?token={token}")
        assert page.status == 200 and b"<!doctype html>" in page.body
        cookie = page.headers["set-cookie"]
        assert cookie.startswith(f"orchestrator_token_{server.port}={token};") and "HttpOnly" in cookie
        jar = {"Cookie": f"orchestrator_token_{server.port}={token}"}
        assert http_get(server.port, "/static/app.js", jar).status == 200
        assert http_get(server.port, "/api/state", jar).json()["total"] == 6
        stream = Stream.open(server.port, headers=jar)
        assert stream.next()[0] == "state"
        stream.close()


def test_off_loopback_a_token_is_required_before_anything_listens(tmp_path: Path) -> None:
    project = demo(tmp_path)
    env = {"ORCHESTRATOR_SERVE_TOKEN": ""}
    refused = serve(project, "--host", "0.0.0.0", env=env, expect_start=False)
    assert isinstance(refused, subprocess.CompletedProcess)
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["ok"] is False
    assert refused.stderr.count("\n") == 1 and "a token is needed" in refused.stderr
    assert "ORCHESTRATOR_SERVE_TOKEN" in refused.stderr
    short = serve(project, "--host", "0.0.0.0", env={"ORCHESTRATOR_SERVE_TOKEN": "short"}, expect_start=False)
    assert isinstance(short, subprocess.CompletedProcess) and short.returncode == 2
    assert "at least 16" in short.stderr
    token = "from-the-environment-0123456789"
    with served(project, "--host", "0.0.0.0", env={"ORCHESTRATOR_SERVE_TOKEN": token}) as server:
        assert server.info["token_required"] is True and server.url.endswith(f"?token={token}")
        assert http_get(server.port, "/api/state").status == 401
        assert http_get(server.port, f"/api/state?token={token}").status == 200


def test_no_file_outside_the_workspace_is_served(tmp_path: Path) -> None:
    project = demo(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    workspace = project / ".orchestrator"
    (workspace / "context" / "notes").mkdir(parents=True)
    (workspace / "context" / "notes" / "fine.md").write_text("a shared note\n", encoding="utf-8")
    (workspace / "context" / "leak.md").symlink_to(secret)
    (workspace / "context" / "outside").symlink_to(tmp_path, target_is_directory=True)
    (workspace / "agent_tasks").mkdir()
    (workspace / "agent_tasks" / "agent-01.md").symlink_to(secret)
    (workspace / "state").mkdir()
    (workspace / "state" / "inside.txt").write_text("inside, but not under context/\n", encoding="utf-8")
    with served(project) as server:
        assert http_get(server.port, "/api/context/notes/fine.md").json()["text"] == "a shared note\n"
        listed = [entry["name"] for entry in http_get(server.port, "/api/state").json()["context"]]
        assert listed == ["notes/fine.md"]
        for path in (
            "/static/../../../../../secret.txt",
            "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
            "/static/..%2f..%2f..%2f..%2f..%2fsecret.txt",
            "/static/../board.py",
            "/api/context/../../secret.txt",
            "/api/context/%2e%2e/%2e%2e/secret.txt",
            "/api/context/..%2f..%2fsecret.txt",
            "/api/context/../state/inside.txt",
            "/api/context//" + str(secret).lstrip("/"),
            "/api/context/leak.md",
            "/api/context/outside/secret.txt",
            "/api/task/..%2f..%2f..%2fsecret.txt",
            "/../../secret.txt",
        ):
            reply = http_get(server.port, path)
            assert reply.status in (400, 404), (path, reply.status)
            assert SECRET.encode() not in reply.body and b"inside, but not" not in reply.body, path
        files = http_get(server.port, "/api/task/T-01").json()
        assert files["brief"] is None  # agent-01.md is a link to a file outside
        assert SECRET not in json.dumps(files)


def test_read_only_and_only_for_loopback_names(tmp_path: Path) -> None:
    project = demo(tmp_path)
    with served(project) as server:
        for method in ("PUT", "DELETE", "PATCH"):
            reply = http_get(server.port, "/api/state", method=method)
            assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD, POST"
            assert reply.json()["ok"] is False
        assert http_get(server.port, "/api/state", method="POST").status == 403  # a POST is an action: the token
        reply = http_get(server.port, "/api/state", {"X-Orchestrator-Token": server.token}, method="POST")
        assert reply.status == 405 and reply.json()["ok"] is False
        rebound = http_get(server.port, "/api/state", {"Host": f"attacker.example:{server.port}"})
        assert rebound.status == 403
        for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
            assert http_get(server.port, "/api/state", {"Host": host}).status == 200, host
        page = http_get(server.port, "/")
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["referrer-policy"] == "no-referrer"


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = demo(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        refused = serve(project, "--port", str(port), expect_start=False)
        assert isinstance(refused, subprocess.CompletedProcess)
        assert refused.returncode == 2
        assert refused.stderr == (
            f"port {port} on 127.0.0.1 is in use (another dashboard?) — pass --port N, or --port 0 for any free port\n"
        )
        text = subprocess.run(
            [*CLI, "serve", "--port", str(port)], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD
        )
        assert text.returncode == 2 and text.stderr.count("\n") == 1 and text.stdout == ""


def test_without_the_web_stack_it_says_what_to_install(tmp_path: Path) -> None:
    project = demo(tmp_path)
    code = (
        "import sys; sys.modules['uvicorn'] = None; "
        "from orchestrator.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "serve"], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD
    )
    assert done.returncode == 2
    assert done.stderr == (
        "serve needs uvicorn, which a plain install leaves out: pip install 'task-orchestrator[serve]' "
        "(in a checkout: pip install -e '.[serve]')\n"
    )


def test_one_reader_of_the_log_however_many_subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tailer reads the log once per change and fans out; a subscriber that lags is dropped."""
    from orchestrator.serve import tailer as tailing
    from orchestrator.serve.board import Board
    from orchestrator.state.workspace import Workspace

    project = demo(tmp_path)
    reads: list[int] = []
    real = events.read_new

    def counted(path: Path, cursor: Any) -> list[EventRecord]:
        reads.append(cursor.offset)
        return real(path, cursor)

    monkeypatch.setattr(tailing, "read_new", counted)

    async def scenario() -> None:
        tailer = tailing.Tailer(Board(Workspace.find(project)))
        await tailer.start()
        receivers = [tailer.subscribe() for _ in range(5)]
        laggard = tailer.subscribe()
        reads.clear()
        events.append(events_file(project), [{"event": "notice", "run": None, "message": "one"}])
        await tailer.tick()
        assert len(reads) == 1
        for receiver in receivers:
            got = [receiver.receive_nowait(), receiver.receive_nowait()]
            assert [m.kind for m in got] == ["events", "state"]
            assert json.loads(got[0].data)[0]["message"] == "one"
        await tailer.tick()  # nothing moved: nothing read, nothing sent
        assert len(reads) == 1
        for receiver in receivers:
            with pytest.raises(anyio.WouldBlock):
                receiver.receive_nowait()
        for number in range(tailing.BUFFER):  # the laggard never reads; the others keep up
            events.append(events_file(project), [{"event": "notice", "run": None, "message": str(number)}])
            await tailer.tick()
            for receiver in receivers:
                while True:
                    try:
                        receiver.receive_nowait()
                    except anyio.WouldBlock:
                        break
        assert tailer.subscribers == 5
        with pytest.raises(anyio.EndOfStream):
            while True:
                laggard.receive_nowait()
        tailer.stop()
        for receiver in [*receivers, laggard]:
            receiver.close()

    anyio.run(scenario)


def test_the_graph_escapes_what_the_plan_says(tmp_path: Path) -> None:
    from orchestrator.plan.parser import parse_plan
    from orchestrator.serve.picture import graph_svg

    text = DEMO_PLAN.replace("| T-02 | Check the style |", "| T-02 | <script>alert(1)</script> |")
    plan = parse_plan(text, tmp_path / "master_plan.md")
    svg = graph_svg(plan)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count("<g class=") == 6 and svg.count('class="edge"') == 7


def plan_of(dependencies: list[list[int]]) -> str:
    """A shell plan whose task ``i`` (T-01 first) depends on the tasks ``dependencies[i]`` names."""
    rows = "\n".join(
        f"| T-{i + 1:02d} | Task {i + 1} | `true` | {', '.join(f'T-{d + 1:02d}' for d in deps) or 'None'} |"
        for i, deps in enumerate(dependencies)
    )
    return (
        "---\nbackend: shell\n---\n# Edges\n\n## Task Decomposition\n"
        f"| Task ID | Task Name | Command | Dependencies |\n|---|---|---|---|\n{rows}\n"
    )


Box = tuple[float, float, float, float]  # x, y, width, height


def drawn_graph(svg: str) -> tuple[dict[str, Box], list[tuple[str, str, list[tuple[float, float]]]]]:
    """The SVG's boxes (by task) and its edges (from, to, and points along the path: its lines and
    cubic curves sampled finely), read back from the markup alone."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    boxes: dict[str, Box] = {}
    for group in root.iter(f"{ns}g"):
        rect = group.find(f"{ns}rect")
        assert rect is not None
        x, y, width, height = (float(rect.attrib[key]) for key in ("x", "y", "width", "height"))
        boxes[group.attrib["data-task"]] = (x, y, width, height)
    edges = []
    for path in root.iter(f"{ns}path"):
        if path.attrib.get("class") != "edge":
            continue
        points: list[tuple[float, float]] = []
        for command, numbers in re.findall(r"([MLC])([^MLC]*)", path.attrib["d"]):
            values = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", numbers)]
            given_points = list(zip(values[::2], values[1::2], strict=True))
            if command == "M":
                points.append(given_points[0])
                continue
            start = points[-1]
            controls = [start, *given_points] if command == "C" else [start, start, given_points[0], given_points[0]]
            for step in range(1, 101):
                t = step / 100
                weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
                pairs = list(zip(weights, controls, strict=True))
                points.append((sum(w * p[0] for w, p in pairs), sum(w * p[1] for w, p in pairs)))
        edges.append((path.attrib["data-from"], path.attrib["data-to"], points))
    return boxes, edges


def assert_edges_go_around_boxes(plan_text: str, tmp_path: Path) -> None:
    """Every edge of the plan is drawn once, from the right side of its dependency's box to the
    left side of its dependent's, and no point of it lies inside any box."""
    from orchestrator.plan.parser import parse_plan
    from orchestrator.serve.picture import graph_svg

    plan = parse_plan(plan_text, tmp_path / "master_plan.md")
    boxes, edges = drawn_graph(graph_svg(plan))
    assert sorted((source, target) for source, target, _ in edges) == sorted(plan.edges())
    for source, target, points in edges:
        sx, sy, sw, sh = boxes[source]
        tx, ty, _, th = boxes[target]
        (x0, y0), (x1, y1) = points[0], points[-1]
        assert x0 == sx + sw and sy < y0 < sy + sh, (source, target, points[0])  # it leaves its dependency
        assert x1 == tx and ty < y1 < ty + th, (source, target, points[-1])  # and reaches its dependent
        for task, (bx, by, bw, bh) in boxes.items():
            inside = [(x, y) for x, y in points if bx + 0.5 < x < bx + bw - 0.5 and by + 0.5 < y < by + bh - 0.5]
            assert not inside, f"the edge {source} → {target} passes through {task}'s box at {inside[0]}"


def test_an_edge_that_skips_layers_goes_around_the_boxes_between(tmp_path: Path) -> None:
    # T-04 needs T-01 and T-03 (two layers on); T-07 needs T-02 and T-04; T-08 needs T-01 and T-07.
    # Drawn straight, T-01 → T-04 would pass behind T-02 and T-03, as though T-03 needed T-01.
    skips = plan_of([[], [0], [1], [0, 2], [0], [4], [1, 3], [0, 6]])
    assert_edges_go_around_boxes(skips, tmp_path)
    assert_edges_go_around_boxes(DEMO_PLAN, tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_no_edge_of_any_plan_passes_through_a_box(tmp_path: Path, data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=2, max_value=14), label="tasks")
    dependencies = [
        data.draw(st.lists(st.integers(min_value=0, max_value=i - 1), unique=True, max_size=4) if i else st.just([]))
        for i in range(size)
    ]
    assert_edges_go_around_boxes(plan_of(dependencies), tmp_path)


def test_a_log_is_sent_as_its_tail_from_a_whole_line(tmp_path: Path) -> None:
    from orchestrator.serve.board import LOG_LIMIT, Board
    from orchestrator.state.workspace import Workspace

    workspace = Workspace.find(demo(tmp_path))
    workspace.logs_dir.mkdir()
    lines = [f"line {number:05d} of the log" for number in range(5000)]
    (workspace.logs_dir / "agent-03.attempt-2.out").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (workspace.logs_dir / "agent-03.attempt-1.out").write_text("the first attempt\n", encoding="utf-8")
    files = Board(workspace).task_files("T-03")
    assert files is not None and files["attempt"] == 2 and files["attempts"] == [1, 2]
    tail = files["stdout"]
    assert tail["truncated"] is True and tail["bytes"] == len("\n".join(lines)) + 1
    assert len(tail["text"].encode()) <= LOG_LIMIT
    shown = tail["text"].splitlines()
    assert shown[-1] == lines[-1] and shown[0] in lines  # whole lines only, the last one included
    assert files["stderr"] is None and files["result"] is None


# --- malformed input: every route answers a 4xx and a JSON error, never a 500 ------------------

HOSTILE = st.one_of(
    st.sampled_from(["%00", "a%00b", "%FF%FE", "%C0%AF", "..", "../..", "%2e%2e/%2e%2e/etc/passwd", "%", "%zz"]),
    st.sampled_from(["T-01%00", "T-01/..", "T-", "-", "%20", "T-01%0A", "\\", "%5C..%5C"]),
    st.integers(min_value=2100, max_value=6000).map(lambda n: "a" * n),
    st.binary(min_size=1, max_size=40).map(lambda raw: quote_from_bytes(raw, safe="/.")),
    st.text(min_size=1, max_size=40).map(lambda text: quote(text, safe="/.", errors="surrogatepass")),
)


def routes_of(project: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every route the application has, read from it (a new route is swept too): its path
    template, each ``{param}`` left in, and its methods."""
    from starlette.routing import Mount, Route

    from orchestrator.serve.app import build_app
    from orchestrator.state.workspace import Workspace

    found: list[tuple[str, tuple[str, ...]]] = []
    for route in build_app(Workspace.find(project), token="t" * 16).routes:
        if isinstance(route, Route):
            found.append((route.path, tuple(sorted(route.methods or ("GET",)))))
        elif isinstance(route, Mount):
            found.append((route.path + "/{path}", ("GET", "HEAD")))
    assert len(found) >= 7, found
    return found


def hostile_path(template: str, value: str) -> str:
    """``template`` with every ``{param}`` made ``value``; a route without one gets it as one more segment."""
    filled = re.sub(r"\{[^}]*\}", lambda _: value, template)
    return filled if filled != template else template.rstrip("/") + "/" + value


def test_every_route_answers_malformed_input_with_a_4xx_and_json(tmp_path: Path) -> None:
    project = demo(tmp_path)
    routes = routes_of(project)
    with served(project) as server:
        query = "?" + server.url.split("?", 1)[1] if "?" in server.url else ""

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(route=st.sampled_from(routes), value=HOSTILE, data=st.data())
        def sweep(route: tuple[str, tuple[str, ...]], value: str, data: st.DataObject) -> None:
            template, methods = route
            method = data.draw(st.sampled_from(methods))
            path = hostile_path(template, value) + query
            headers = {"X-Orchestrator-Token": server.token} if method == "POST" else {}  # (to reach the action)
            reply = http_get(server.port, path, headers, method=method)
            assert 400 <= reply.status < 500 or reply.status == 200, (method, path, reply.status, reply.body[:200])
            if reply.status >= 400 and method != "HEAD":
                body = reply.json()
                assert body["ok"] is False and isinstance(body["error"], str) and body["error"], (path, body)

        sweep()
        # (one the sweep may not draw: a trailing slash after a route's path was a 307 to the path)
        reply = http_get(server.port, "/api/state//" + query, {})
        assert reply.status == 404 and reply.json()["ok"] is False, (reply.status, reply.body[:200])
        assert http_get(server.port, "/api/context/%00" + query).status == 400  # the issue's own example
        assert http_get(server.port, "/api/task/T-01%00" + query).json()["ok"] is False
    assert server.errors() == "", server.errors()  # no traceback: nothing on stderr at all


# --- actions: cancel and retry, behind the token ------------------------------------------------


def status_of(project: Path) -> dict[str, str]:
    done = subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True)
    return {task["id"]: task["status"] for task in json.loads(done.stdout)["tasks"]}


def test_an_action_needs_the_token_and_the_page_s_own_origin(tmp_path: Path) -> None:
    project = demo(tmp_path)
    with served(project) as server:
        own = f"http://127.0.0.1:{server.port}"
        cancel = "/api/task/T-02/cancel"
        before = events_file(project).read_bytes() if events_file(project).exists() else b""
        for headers in (
            {},  # no token
            {"X-Orchestrator-Token": "wrong-token-of-enough-characters"},
            {"X-Orchestrator-Token": server.token, "Origin": "http://attacker.example"},
            {"X-Orchestrator-Token": server.token, "Origin": "null"},
            {"X-Orchestrator-Token": server.token, "Sec-Fetch-Site": "cross-site"},
            {"X-Orchestrator-Token": server.token, "Sec-Fetch-Site": "same-site"},
        ):
            reply = http_get(server.port, cancel, headers, method="POST")
            assert reply.status == 403, (headers, reply.status)
            assert reply.json()["ok"] is False and reply.json()["error"], headers
        assert http_get(server.port, f"{cancel}?token={server.token}", method="POST").status == 403  # header only
        assert (events_file(project).read_bytes() if events_file(project).exists() else b"") == before
        assert status_of(project)["T-02"] == "waiting"  # nothing was done
        got = http_get(server.port, cancel)  # a GET on an action route does nothing either
        assert got.status == 405 and got.json()["ok"] is False
        assert (
            http_get(server.port, "/api/task/T-99/cancel", {"X-Orchestrator-Token": server.token}, "POST").status == 404
        )

        token = {"X-Orchestrator-Token": server.token, "Origin": own, "Sec-Fetch-Site": "same-origin"}
        done = http_get(server.port, cancel, token, method="POST")
        assert done.status == 200, done.body
        answer = done.json()
        assert answer["ok"] is True and answer["task"] == "T-02" and answer["run"] is None
        assert answer["said"].startswith("⏹️ T-02 cancelled: no run starts it")  # the CLI's own words
        assert status_of(project)["T-02"] == "cancelled"
        again = http_get(server.port, cancel, token, method="POST").json()
        assert again["ok"] is True and again["said"] == "T-02 is cancelled already"
        held = http_get(server.port, "/api/task/T-05/retry", token, method="POST")
        assert (
            held.status == 409 and held.json()["error"] == "retry T-05: upstream T-02 was cancelled: retry T-02 first"
        )
        back = http_get(server.port, "/api/task/T-02/retry", {"X-Orchestrator-Token": server.token}, method="POST")
        assert back.status == 200 and back.json()["said"].startswith("↩️ T-02 is back in the queue")
        assert status_of(project)["T-02"] == "waiting"
    told = [json.loads(line)["event"] for line in events_file(project).read_text(encoding="utf-8").splitlines()]
    assert told == ["task_cancelled", "task_requeued"]  # what `orchestrator cancel` and `retry` append


def test_an_action_s_reason_is_a_line_of_json_or_refused_with_nothing_done(tmp_path: Path) -> None:
    project = demo(tmp_path)
    with served(project) as server:
        token = {"X-Orchestrator-Token": server.token, "Content-Type": "application/json"}
        for body, code in (
            (json.dumps({"reason": "x" * 9000}).encode(), 413),
            (b"not json", 400),
            (b'{"reason": 3}', 400),
            (b'["a reason"]', 400),
            (b"\xff\xfe", 400),
        ):
            reply = http_get(server.port, "/api/task/T-02/cancel", token, method="POST", body=body)
            assert reply.status == code, (body[:20], reply.status, reply.body)
            assert reply.json()["ok"] is False and reply.json()["error"]
        assert status_of(project)["T-02"] == "waiting"  # nothing was done
        given = json.dumps({"reason": "no longer\n needed\t\u0000\u001b[31m now"}).encode()
        done = http_get(server.port, "/api/task/T-02/cancel", token, method="POST", body=given)
        assert done.status == 200, done.body
        assert done.json()["ok"] is True
    cancelled = [json.loads(line) for line in events_file(project).read_text(encoding="utf-8").splitlines()]
    said = "no longer needed [31m now"  # on one line, as `cancel --reason` takes it; no NUL, no escape
    assert [(e["event"], e["reason"]) for e in cancelled] == [("task_cancelled", said)]


def test_with_a_given_token_reads_and_actions_both_need_it(tmp_path: Path) -> None:
    project = demo(tmp_path)
    token = "a-token-of-enough-characters"
    with served(project, "--token", token) as server:
        assert server.token == token
        cookie = {"Cookie": f"orchestrator_token_{server.port}={token}"}
        refused = http_get(server.port, "/api/task/T-02/cancel", cookie, method="POST")  # a cookie goes cross-site
        assert refused.status == 403 and status_of(project)["T-02"] == "waiting"
        done = http_get(server.port, "/api/task/T-02/cancel", {"X-Orchestrator-Token": token}, method="POST")
        assert done.status == 200 and status_of(project)["T-02"] == "cancelled"


ACT_PLAN = """\
---
backend: shell
max_parallel: 3
retries: 0
timeout: 300
inactivity_timeout: none
kill_grace: 1
---
# Act from the page

## Task Decomposition
| Task ID | Task Name | Description | Dependencies | Priority |
|---------|-----------|-------------|--------------|----------|
| T-01 | Needs a fix | Fails until the file fixed exists | None | P1 |
| T-02 | Long wait | Runs until it is cancelled | None | P1 |

## Task Details

### T-01 Needs a fix
```bash
test -f fixed || exit 1
echo "fixed now"
```

### T-02 Long wait
```bash
while true; do sleep 0.1; done
```
"""


def _shown_seconds(text: str) -> float:
    """A duration as the page shows it (``format_duration``'s forms up to minutes) in seconds."""
    minutes, _, rest = text.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.rstrip("s").lstrip("<"))


@pytest.mark.slow
def test_in_the_browser_clocks_tick_reasons_and_notices_read_as_words_and_buttons_act(tmp_path: Path) -> None:
    from dashboard_helpers import chromium, task_state

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "act"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(ACT_PLAN, encoding="utf-8")
    with served(project) as server, open(project / "run.out", "wb") as out:
        runner = subprocess.Popen(
            [*CLI, "run"], cwd=project, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:

            def state() -> dict[str, Any]:
                return {t["id"]: t for t in http_get(server.port, "/api/state").json()["tasks"]}

            wait_until(
                lambda: state()["T-01"]["status"] == "failed" and state()["T-02"]["status"] == "running",
                "T-01 failed, T-02 running",
            )
            time.sleep(4.0)  # the state the server holds is older than the page: its clock must not be
            with chromium(project / "chromium-profile") as driver:
                driver.get(server.url)
                row = "#tasks tr[data-task='{}']"

                def text(selector: str) -> str:
                    """An element's text, found again if the page redrew it meanwhile (a state came)."""
                    from selenium.common.exceptions import StaleElementReferenceException

                    for _ in range(20):
                        try:
                            return str(driver.find_element("css selector", selector).text)
                        except StaleElementReferenceException:
                            time.sleep(0.05)
                    raise AssertionError(f"{selector}: redrawn under every read")

                def cell(task: str, selector: str) -> str:
                    return text(f"{row.format(task)} {selector}")

                wait_until(lambda: bool(driver.find_elements("css selector", row.format("T-02"))), "the table", 30)
                assert "?token=" not in driver.current_url  # kept by the tab, out of the address bar
                started = datetime.fromisoformat(state()["T-02"]["started"]).timestamp()
                elapsed = "#totals .stat:last-child b"  # (the run's elapsed time, the last of the totals)
                assert text("#totals").endswith("elapsed")
                first = _shown_seconds(cell("T-02", ".duration"))
                assert first >= time.time() - started - 2.5, (first, time.time() - started)  # (a tick, and load)
                run_first = _shown_seconds(text(elapsed))
                assert run_first >= first
                time.sleep(3.0)  # no event meanwhile: the page's own clock moves them
                second = _shown_seconds(cell("T-02", ".duration"))
                assert second >= first + 1.5, (first, second)
                assert _shown_seconds(text(elapsed)) >= run_first + 1.5

                assert cell("T-01", ".why") == "exit code 1"  # as `status` and the run's line say it
                events.append(
                    events_file(project),
                    [
                        {"event": "notice", "run": None, "message": "disk almost full", "time": "2026-01-01T00:00:00"},
                        {"event": "task_added", "run": None, "task": "T-09", "name": "Final list", "after": ["T-01"]},
                    ],
                )
                wait_until(lambda: "Final list" in driver.find_element("id", "notable").text, "the notices", 30)
                notable = driver.find_element("id", "notable").text
                assert "ℹ️ disk almost full" in notable and "➕ T-09 added after T-01: Final list" in notable
                assert "{" not in notable, notable

                (project / "fixed").write_text("yes\n", encoding="utf-8")
                assert not driver.find_elements("css selector", f"{row.format('T-01')} button.cancel")
                driver.find_element("css selector", f"{row.format('T-01')} button.retry").click()
                wait_until(lambda: task_state(driver, "T-01")[0] == "completed", "T-01 completed after Retry", 30)
                # Its attempts as `status` counts them, from the events the page was sent: those of
                # the run of it that completed it (the retry's), not the number of its last attempt.
                wait_until(lambda: state()["T-01"]["status"] == "completed", "T-01 completed on disk", 30)
                counted = (state()["T-01"]["run_attempts"], state()["T-01"]["attempts"])
                assert counted[0] != counted[1], counted  # (else the column could show either)
                assert driver.find_elements("css selector", f"{row.format('T-01')} td")[4].text == str(counted[0])
                wait_until(  # (the state may come before the answer to the click: both are awaited)
                    lambda: "T-01 is back in the queue" in driver.find_element("id", "action-result").text,
                    "its word",
                    30,
                )

                assert not driver.find_elements("css selector", f"{row.format('T-02')} button.retry")
                driver.find_element("css selector", f"{row.format('T-02')} button.cancel").click()
                wait_until(lambda: task_state(driver, "T-02")[0] == "cancelled", "T-02 cancelled after Cancel", 30)
                wait_until(
                    lambda: "cancelled from the dashboard" in driver.find_element("id", "action-result").text,
                    "the answer to Cancel",
                    30,
                )
                assert driver.find_elements("css selector", f"{row.format('T-02')} button.retry")  # it may come back
                frozen = cell("T-02", ".duration")
                time.sleep(1.5)
                assert cell("T-02", ".duration") == frozen  # a finished task's duration stays
            assert runner.wait(timeout=HANG_GUARD) == 1  # a task was cancelled
        finally:
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGTERM)
                runner.wait(timeout=HANG_GUARD)
    assert server.errors() == ""


GATE_PLAN = """\
---
backend: shell
max_parallel: 4
retries: 0
timeout: 300
inactivity_timeout: none
kill_grace: 1
---
# Gates on the page

## Task Decomposition
| Task ID | Task Name | Command | Dependencies | Approval |
|---------|-----------|---------|--------------|----------|
| T-01 | Keep the run going | `while [ ! -f done ]; do sleep 0.1; done` | None | |
| T-02 | Deploy | `echo deployed > deployed.txt` | None | before |
| T-03 | Migrate | `echo migrated > migrated.txt` | None | before |
| T-04 | Announce | `echo announced > announced.txt` | T-03 | |
| T-05 | Check the disk | `echo "no space left on the device" >&2; exit 3` | None | |
| T-06 | Drop the old table | `echo dropped > dropped.txt` | None | before |
"""
REJECTED_WHY = "the schema change   needs a DBA's review first"  # (its spaces made one, as the CLI does)


@pytest.mark.slow
def test_in_the_browser_a_gate_waits_on_the_page_approve_moves_it_on_and_reject_skips_its_dependents(
    tmp_path: Path,
) -> None:
    from dashboard_helpers import chromium, hidden_actions, task_state
    from selenium.webdriver.common.keys import Keys

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "gates"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(GATE_PLAN, encoding="utf-8")
    approvals = project / ".orchestrator" / "state" / "approvals.jsonl"
    with served(project) as server, open(project / "run.out", "wb") as out:
        runner = subprocess.Popen(
            [*CLI, "run"], cwd=project, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:

            def asked() -> list[str]:
                if not events_file(project).exists():
                    return []
                lines = events_file(project).read_text(encoding="utf-8").splitlines()
                return [e["task"] for line in lines if (e := json.loads(line))["event"] == "approval_requested"]

            wait_until(
                lambda: sorted(asked()) == ["T-02", "T-03", "T-06"], "T-02, T-03, T-06 at their gates", HANG_GUARD
            )
            # Without the token, or from another site: refused, and nothing is decided.
            own = f"http://127.0.0.1:{server.port}"
            for kind in ("approve", "reject"):
                for headers in (
                    {},
                    {"X-Orchestrator-Token": "wrong-token-of-enough-characters", "Origin": own},
                    {"X-Orchestrator-Token": server.token, "Origin": "http://attacker.example"},
                    {"X-Orchestrator-Token": server.token, "Sec-Fetch-Site": "cross-site"},
                ):
                    reply = http_get(server.port, f"/api/task/T-02/{kind}", headers, method="POST")
                    assert reply.status == 403, (kind, headers, reply.status)
                    assert reply.json()["ok"] is False and reply.json()["error"]
            assert not approvals.exists()
            told = [json.loads(line)["event"] for line in events_file(project).read_text().splitlines()]
            assert "approval_given" not in told and "task_rejected" not in told
            assert status_of(project)["T-02"] == "awaiting_approval" and not (project / "deployed.txt").exists()

            with chromium(project / "chromium-profile", window=(1400, 1000)) as driver:
                driver.get(server.url)
                row = "#tasks tr[data-task='{}']"
                wait_until(
                    lambda: task_state(driver, "T-02")[0] == "awaiting_approval", "T-02 waiting on the page", HANG_GUARD
                )
                wait_until(lambda: task_state(driver, "T-05")[0] == "failed", "T-05 failed on the page", HANG_GUARD)
                assert task_state(driver, "T-03")[0] == "awaiting_approval"
                # At 1400 px every button is in sight, the table not wider than its panel: Approve
                # and Reject beside a gate's long reason, Cancel (T-01 runs), Retry (T-05 failed).
                shown = [b.get_attribute("data-action") for b in driver.find_elements("css selector", "#tasks button")]
                assert sorted(shown) == ["approve"] * 3 + ["cancel"] * 2 + ["reject"] * 3 + ["retry"], shown
                assert hidden_actions(driver) == []
                assert "awaiting_approval" in (task_state(driver, "T-02")[1] or "")  # the graph's box too
                for task in ("T-02", "T-03", "T-06"):
                    buttons = driver.find_elements("css selector", f"{row.format(task)} button")
                    assert [b.get_attribute("data-action") for b in buttons] == ["approve", "reject"], task
                assert not driver.find_elements("css selector", f"{row.format('T-01')} button.approve")

                # T-03's Reject, found before T-02 moves on: the page redraws what changed (T-02's row),
                # never the button a person is about to click on T-03's (pressed on one button and
                # released on its replacement, a click is lost; Selenium calls the old one stale).
                reject = driver.find_element("css selector", f"{row.format('T-03')} button.reject")
                driver.find_element("css selector", f"{row.format('T-02')} button.approve").click()
                wait_until(
                    lambda: task_state(driver, "T-02")[0] == "completed", "T-02 completed after Approve", HANG_GUARD
                )
                wait_until(
                    lambda: "T-02" in driver.find_element("id", "action-result").text,
                    "the answer to Approve",
                    HANG_GUARD,
                )
                assert (project / "deployed.txt").read_text() == "deployed\n"

                # Reject asks why; kept waiting, nothing is sent.
                dialog = driver.find_element("id", "reject-dialog")
                reject.click()
                wait_until(lambda: dialog.is_displayed(), "Reject asking why", HANG_GUARD)
                assert "Reject T-03" in dialog.text
                driver.find_element("id", "reject-keep").click()
                wait_until(lambda: not dialog.is_displayed(), "the question put away", HANG_GUARD)
                time.sleep(1.0)  # (a post would have been answered by now)
                assert status_of(project)["T-03"] == "awaiting_approval"
                assert [json.loads(line)["task"] for line in approvals.read_text().splitlines()] == ["T-02"]
                # Asked again, a reason given (Enter: the dialog's first button, Reject).
                reject.click()
                wait_until(lambda: dialog.is_displayed(), "Reject asking why again", HANG_GUARD)
                driver.find_element("id", "reject-reason").send_keys(REJECTED_WHY + Keys.ENTER)
                wait_until(
                    lambda: task_state(driver, "T-03")[0] == "rejected", "T-03 rejected after Reject", HANG_GUARD
                )
                wait_until(lambda: task_state(driver, "T-04")[0] == "skipped", "T-04 skipped after Reject", HANG_GUARD)
                said = " ".join(REJECTED_WHY.split())
                wait_until(
                    lambda: said in driver.find_element("css selector", f"{row.format('T-03')} .why").text,
                    "the rejection's reason",
                    HANG_GUARD,
                )
                # The same words `orchestrator reject --reason` leaves, in the same places.
                cli = subprocess.run(
                    [*CLI, "reject", "T-06", "--reason", REJECTED_WHY], cwd=project, capture_output=True, text=True
                )
                assert cli.returncode == 0, cli.stderr
                wait_until(lambda: task_state(driver, "T-06")[0] == "rejected", "T-06 rejected by the CLI", HANG_GUARD)
                reasons = {
                    t["id"]: t["reason"]
                    for t in json.loads(
                        subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True).stdout
                    )["tasks"]
                }
                assert said in reasons["T-03"] and reasons["T-03"] == reasons["T-06"], reasons
                wait_until(
                    lambda: (
                        driver.find_element("css selector", f"{row.format('T-03')} .why").text
                        == driver.find_element("css selector", f"{row.format('T-06')} .why").text
                    ),
                    "the page telling both rejections alike",
                    HANG_GUARD,
                )
                wait_until(
                    lambda: (
                        "upstream T-03 was rejected"
                        in driver.find_element("css selector", f"{row.format('T-04')} .why").text
                    ),
                    "why T-04 was skipped",
                    HANG_GUARD,
                )
                assert not (project / "migrated.txt").exists() and not (project / "announced.txt").exists()
            (project / "done").write_text("yes\n", encoding="utf-8")
            assert runner.wait(timeout=HANG_GUARD) == 1  # a task failed, one was rejected, one skipped
        finally:
            (project / "done").write_text("yes\n", encoding="utf-8")
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGTERM)
                runner.wait(timeout=HANG_GUARD)
    decisions = [json.loads(line) for line in approvals.read_text().splitlines()]
    assert [(d["task"], d["decision"], d["reason"]) for d in decisions] == [
        ("T-02", "approved", "approved from the dashboard"),
        ("T-03", "rejected", " ".join(REJECTED_WHY.split())),
        ("T-06", "rejected", " ".join(REJECTED_WHY.split())),
    ]
    assert server.errors() == ""


HELD_PLAN = """\
---
backend: shell
retries: 0
---
# Held at a gate

## Task Decomposition
| Task ID | Task Name | Command | Dependencies | Approval | Estimate |
|---------|-----------|---------|--------------|----------|----------|
| T-01 | Build | `true` | None | | 1m |
| T-02 | Deploy | `echo deployed` | T-01 | before | 2m |
| T-03 | Announce | `echo announced` | T-02 | | 3m |
"""


@pytest.mark.slow
def test_in_the_browser_a_run_that_left_work_for_a_person_says_so_with_no_time_left(tmp_path: Path) -> None:
    from dashboard_helpers import chromium

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "held"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(HELD_PLAN, encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD)

    assert cli("run").returncode == 4  # nothing failed: T-02 waits at its gate
    status = json.loads(cli("status", "--json").stdout)
    assert status["eta"] is not None  # (an estimate the page could show, and must not)
    with served(project) as server, chromium(project / "chromium-profile") as driver:
        driver.get(server.url)
        pill = driver.find_element("id", "run-state")
        wait_until(lambda: "waiting for a person" in pill.text, "the run told as waiting for a person", HANG_GUARD)
        assert pill.text.startswith("✋ waiting for a person since "), pill.text
        assert "T-02 waits for a person's word" in str(pill.get_attribute("title"))
        failure = driver.execute_script(  # the colour of a run that failed, which this is not
            "const s = document.createElement('span'); s.className = 'pill off'; document.body.append(s);"
            "const c = getComputedStyle(s).backgroundColor; s.remove(); return c;"
        )
        assert pill.value_of_css_property("background-color") not in (failure, "rgba(0, 0, 0, 0)")
        time.sleep(1.5)  # (a tick or two of the page's clock)
        totals = driver.find_element("id", "totals")
        assert "tasks" in totals.text and " left (ends about" not in totals.text, totals.text
        # Decided: nothing waits for a person any more, and the time left is told again.
        assert cli("approve", "T-02").returncode == 0
        wait_until(lambda: "goes on" in pill.text, "the run no longer waiting for a person", HANG_GUARD)
        assert "waiting for a person" not in pill.text
        wait_until(lambda: " left (ends about" in totals.text, "the time left once decided", HANG_GUARD)
    assert server.errors() == ""


ETA_PLAN = """\
---
backend: shell
max_parallel: 2
retries: 0
---
# The end, as the page tells it

## Task Decomposition
| Task ID | Task Name | Command | Dependencies |{head}
|---------|-----------|---------|--------------|{rule}
| T-01 | First | `sleep 0.4` | None |{one}
| T-02 | Second | `sleep 0.4` | T-01 |{two}
"""


@pytest.mark.slow
def test_in_the_browser_the_runs_end_shows_once_an_estimate_is_learned_or_given(tmp_path: Path) -> None:
    from dashboard_helpers import chromium

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "eta"
    plan = project / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(ETA_PLAN.format(head="", rule="", one="", two=""), encoding="utf-8")

    def eta() -> Any:
        done = subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)["eta"]

    with served(project) as server, chromium(project / "chromium-profile") as driver:
        driver.get(server.url)

        def totals() -> str:
            return str(driver.find_element("id", "totals").text)

        wait_until(lambda: "tasks" in totals(), "the totals", HANG_GUARD)
        time.sleep(1.5)  # (a tick or two: nothing comes to say an end)
        assert eta() is None and " left" not in totals(), totals()  # nothing learned, no Estimate cell
        # A person's Estimate cell is an estimate: the page shows it, as `status` does.
        plan.write_text(ETA_PLAN.format(head=" Estimate |", rule="---|", one=" - |", two=" 2m |"), encoding="utf-8")
        wait_until(lambda: eta() is not None, "status to give an eta", HANG_GUARD)
        assert eta()["given"] == 1 and eta()["seconds_left"] == 180
        wait_until(lambda: "3m00s left (ends about " in totals(), "the end from the Estimate cell", HANG_GUARD)
        # Learned: a run, then a reset that forgets its results and keeps what the tasks took.
        plan.write_text(ETA_PLAN.format(head="", rule="", one="", two=""), encoding="utf-8")
        finished = subprocess.run([*CLI, "run"], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert (
            subprocess.run([*CLI, "reset", "--all"], cwd=project, capture_output=True, timeout=HANG_GUARD).returncode
            == 0
        )
        wait_until(lambda: eta() is not None, "status to give an eta", HANG_GUARD)
        learned = eta()
        assert learned["learned"] == 2 and 0.8 <= learned["seconds_left"] < 5, learned
        shown = f"{format_duration(learned['seconds_left'])} left (ends about "  # (the minute: when each was built)
        wait_until(lambda: shown in totals(), f"{shown!r} in the totals", HANG_GUARD)
    assert server.errors() == ""


@pytest.mark.slow
def test_in_the_browser_a_restored_checkpoint_is_told_until_the_next_run(tmp_path: Path) -> None:
    from dashboard_helpers import chromium

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "restored"
    plan = project / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(ETA_PLAN.format(head="", rule="", one="", two="").replace("sleep 0.4", "true"), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD)

    assert cli("run").returncode == 0
    assert cli("checkpoint", "save", "v1").returncode == 0
    with served(project) as server, chromium(project / "chromium-profile") as driver:
        driver.get(server.url)
        banner = driver.find_element("id", "restored-line")
        wait_until(lambda: driver.find_elements("css selector", "#tasks tr[data-task]"), "the table", HANG_GUARD)
        assert not banner.is_displayed()
        assert cli("checkpoint", "restore", "v1").returncode == 0
        status = json.loads(cli("status", "--json").stdout)
        note = next(line for line in status["notes"] if line.startswith("⏪"))
        assert "checkpoint v1" in note and status["restored"]["before"] in note
        wait_until(
            lambda: banner.is_displayed() and banner.text == note, "the restore told as status tells it", HANG_GUARD
        )
        state = http_get(server.port, "/api/state").json()
        assert state["restored"] == status["restored"] and note in state["notes"]
        assert cli("run").returncode == 0  # the next run: no longer said
        wait_until(lambda: not banner.is_displayed(), "the banner gone once a run started", HANG_GUARD)
        assert "restored" not in http_get(server.port, "/api/state").json()
    assert server.errors() == ""


REUSE_PLAN = """\
---
backend: shell
cache: true
---
# Reused

## Task Decomposition
| Task ID | Task Name | Command | Dependencies |
|---------|-----------|---------|--------------|
| T-01 | First | `echo {output}` | None |
"""


def reused(tmp_path: Path) -> tuple[Path, str]:
    """A project whose T-01 printed v1, v2, then v1 again: its result taken from the cache. And why."""
    project = tmp_path / "reused"
    plan = project / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    for output in ("v1", "v2", "v1"):
        plan.write_text(REUSE_PLAN.format(output=output), encoding="utf-8")
        done = subprocess.run([*CLI, "run"], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD)
        assert done.returncode == 0, done.stderr
    status = subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True)
    why = json.loads(status.stdout)["tasks"][0]["reused"]
    assert why and why.startswith("same inputs as the run of ")
    return project, why


def cli_status(project: Path) -> str:
    return subprocess.run([*CLI, "status"], cwd=project, capture_output=True, text=True, check=True).stdout


def test_the_state_says_a_result_was_reused_as_status_does(tmp_path: Path) -> None:
    project, why = reused(tmp_path)
    with served(project) as server:
        state = http_get(server.port, "/api/state").json()
    assert {t["id"]: t["reused"] for t in state["tasks"]} == {"T-01": why}
    status = json.loads(subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, check=True).stdout)
    assert [t["reused_said"] for t in state["tasks"]] == [t["reused_said"] for t in status["tasks"]]
    assert server.errors() == ""


@pytest.mark.slow
def test_in_the_browser_a_reused_result_is_marked_with_why(tmp_path: Path) -> None:
    from dashboard_helpers import chromium

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project, why = reused(tmp_path)
    with served(project) as server, chromium(project / "chromium-profile") as driver:
        driver.get(server.url)
        wait_until(lambda: driver.find_elements("css selector", "#tasks tr[data-task]"), "the table", HANG_GUARD)
        row = driver.find_element("css selector", '#tasks tr[data-task="T-01"]')
        # Said as people read time, in the words `status` prints (one formatter); the exact moment on hover.
        line = next(line for line in cli_status(project).splitlines() if line.startswith("T-01 "))
        said = line.partition("♻️ reused: ")[2]
        assert re.fullmatch(r"same inputs as the run of \d{1,2} [A-Z][a-z]{2} \d\d:\d\d", said), line
        assert f"♻️ reused: {said}" in row.text, row.text
        assert not re.search(r"\d{4}-\d\d-\d\dT", row.text), row.text  # no raw ISO time
        assert row.find_element("css selector", ".why.reused").get_attribute("title") == why
        # Attempts as `status` counts them: none made by the run that reused it (not its first's 1).
        attempts = row.find_elements("css selector", "td")[4].text
    shown = subprocess.run([*CLI, "status", "--json"], cwd=project, capture_output=True, text=True, check=True)
    (task,) = json.loads(shown.stdout)["tasks"]
    assert (attempts, task["run_attempts"], task["attempts"]) == ("0", 0, 1)
    assert server.errors() == ""


EACH_PLAN = """---
backend: shell
retries: 0
on_item_failure: continue
---
# Plan

## Tasks
| Task ID | Task Name | Command | Dependencies | Each |
|---------|-----------|---------|--------------|------|
| T-01 | Per item | `test {{ item }} != b` | None | a, b, c |
"""


@pytest.mark.slow
def test_in_the_browser_a_row_run_per_item_says_its_counts_as_status_does(tmp_path: Path) -> None:
    from dashboard_helpers import chromium

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "each"
    plan = project / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(EACH_PLAN, encoding="utf-8")
    subprocess.run([*CLI, "run"], cwd=project, capture_output=True, text=True, timeout=HANG_GUARD)
    line = next(line for line in cli_status(project).splitlines() if line.startswith("T-01 "))
    said = line.rpartition(" — ")[2]
    assert said == "📦 2 of 3 done, 1 failed", line
    with served(project) as server, chromium(project / "chromium-profile") as driver:
        driver.get(server.url)
        wait_until(lambda: driver.find_elements("css selector", "#tasks tr[data-task]"), "the table", HANG_GUARD)
        rows = driver.find_elements("css selector", "#tasks tr[data-task]")
        assert [row.get_attribute("data-task") for row in rows] == ["T-01"]  # (its instances are not rows)
        assert rows[0].find_element("css selector", ".why.items").text == said
