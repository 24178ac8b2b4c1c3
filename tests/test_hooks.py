"""Webhooks that start runs, against a real ``serve`` on loopback: GitHub's deliveries signed with
``X-Hub-Signature-256`` (the secret from a file or the environment), the plan's ``triggers``
choosing the events and giving the run its parameters, a delivery id never run twice, a
missing or wrong signature and a body over 1 MiB refused with nothing started or written, a
generic ``/hooks/NAME``, and each fired run shown by ``status``, ``check`` and the dashboard.
The ``triggers`` setting itself is checked with file:line errors by ``validate``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from dashboard_helpers import CLI, Served, http_get, served
from runner_helpers import Spec, write_plan
from test_api import wait_for
from test_hostile_input import snapshot

pytest.importorskip("starlette")

SECRET = b"it's a secret to everybody"
TRIGGERS = {
    "github": {
        "events": ["pull_request"],
        "actions": ["opened", "synchronize"],
        "params": {"pr": "{{ event.pull_request.number }}"},
    },
    "hooks": {
        "deploy": {
            "header": "X-Deploy-Signature",
            "delivery_header": "X-Deploy-Id",
            "params": {"pr": "{{ event.target | default('main') }}"},
        }
    },
}


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write_plan(
        root,
        [Spec("T-01", "echo PR={{ params.pr }}")],
        {"params": {"pr": {"default": "none"}}, "triggers": TRIGGERS},
    )
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    return root


def signed(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def deliver(server: Served, payload: Any, *, event: str = "pull_request", delivery: str = "d-1", **headers: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signed(body),
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    return http_get(server.port, "/hooks/github", sent, method="POST", body=body)


def status(root: Path) -> dict[str, Any]:
    done = subprocess.run([*CLI, "status", "--json"], cwd=root, capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def finished(root: Path) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := status(root)).get("launched", {}).get("exit_code") is not None and s, "a run"))


def output(root: Path) -> str:
    return subprocess.run([*CLI, "output", "T-01"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_a_github_delivery_starts_a_run_with_its_params_and_is_never_run_twice(tmp_path: Path) -> None:
    root = project(tmp_path)
    opened = {"action": "opened", "pull_request": {"number": 42}}
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        assert server.info["hooks"] is True
        assert deliver(server, {"zen": "hi"}, event="ping").json()["pong"] is True
        started = deliver(server, opened, delivery="first")
        assert started.status == 202, started.body
        assert started.json()["ok"] is True and isinstance(started.json()["pid"], int)
        shown = finished(root)
        assert output(root).strip() == "PR=42"
        launched = shown["launched"]
        assert (launched["source"], launched["what"], launched["delivery"]) == (
            "github",
            "pull_request opened",
            "first",
        )
        assert launched["params"] == {"pr": "42"} and launched["exit_code"] == 0
        assert "🪝 last run started by github pull_request opened (delivery first)" in "\n".join(shown["notes"])
        before = snapshot(root / ".orchestrator")
        replayed = deliver(server, opened, delivery="first")
        assert replayed.status == 409 and "not run twice" in replayed.json()["message"], replayed.body
        ignored = deliver(server, {"action": "closed", "pull_request": {"number": 42}}, delivery="second")
        assert ignored.status == 202 and "pull_request closed" in ignored.json()["ignored"]
        assert deliver(server, {"ref": "main"}, event="push", delivery="third").status == 202
        assert snapshot(root / ".orchestrator") == before  # the replay and the ignored started nothing
        state = http_get(server.port, "/api/state").json()
        assert state["launched"]["delivery"] == "first"
        again = deliver(server, {"action": "synchronize", "pull_request": {"number": 43}}, delivery="fourth")
        assert again.status == 202
        wait_for(lambda: status(root)["launched"]["delivery"] == "fourth" and output(root).strip() == "PR=43", "rerun")
    check = subprocess.run([*CLI, "check", "--json"], cwd=root, capture_output=True, text=True, check=False)
    assert json.loads(check.stdout)["workspaces"][0]["launched"]["delivery"] == "fourth"
    assert server.errors() == "", server.errors()


def test_an_unsigned_wrongly_signed_or_oversized_delivery_starts_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    body = json.dumps({"action": "opened", "pull_request": {"number": 1}}).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x"}
    with served(root, env={"ORCHESTRATOR_WEBHOOK_SECRET": SECRET.decode()}) as server:
        before = snapshot(root / ".orchestrator")
        for signature in (None, "", "sha256=", signed(body, b"another secret"), signed(body)[:-2] + "00", "md5=abc"):
            sent = dict(headers) if signature is None else {**headers, "X-Hub-Signature-256": signature}
            reply = http_get(server.port, "/hooks/github", sent, method="POST", body=body)
            assert reply.status == 401, (signature, reply.status)
            assert reply.json()["ok"] is False
        huge = b'{"a": "' + b"x" * (1024 * 1024) + b'"}'
        big = http_get(server.port, "/hooks/github", {**headers, "X-Hub-Signature-256": signed(huge)}, "POST", huge)
        assert big.status == 413
        for path, method in (
            ("/hooks/github", "GET"),
            ("/hooks/nope", "POST"),
            ("/hooks/github/x", "POST"),
            ("/hooks/../api/runs", "POST"),  # (no token asked on /hooks/: a path that leads elsewhere is no hook)
            ("/hooks/%2e%2e/api/tasks", "POST"),
        ):
            reply = http_get(server.port, path, {"X-Hub-Signature-256": signed(b"")}, method=method, body=b"")
            assert reply.status in (404, 405), (path, method, reply.status)
        bad = deliver(server, b"[1, 2]", delivery="y")
        assert bad.status == 400
        # The signature in GitHub's form alone: sha256= and 64 lower-case hex digits, nothing else.
        digest = signed(body).removeprefix("sha256=")
        for signature in (
            "SHA256=" + digest,
            "sha256=" + digest.upper(),
            digest,
            "sha256=" + digest[:-1],
            "sha256=" + digest + "0",
        ):
            reply = http_get(server.port, "/hooks/github", {**headers, "X-Hub-Signature-256": signature}, "POST", body)
            assert reply.status == 401, (signature, reply.status)
            assert "sha256= and the HMAC-SHA256 of the body as 64 lower-case hex digits" in reply.json()["message"]
        missing = deliver(server, {"action": "opened", "pull_request": {}}, delivery="z")
        assert missing.status == 422 and "pr" in missing.json()["message"]
        assert snapshot(root / ".orchestrator") == before
    assert server.errors() == "", server.errors()


def test_a_delivery_that_is_no_json_object_says_to_send_it_as_json(tmp_path: Path) -> None:
    """`curl -d BODY` sends a form (application/x-www-form-urlencoded): a JSON body sent so, or any
    body that does not read, is refused with what to send, the Content-Type header named; GitHub's
    own form encoding (its JSON in a `payload` field) and a JSON body with no Content-Type are read."""
    root = project(tmp_path)
    opened = json.dumps({"action": "opened", "pull_request": {"number": 7}}).encode()
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        before = snapshot(root / ".orchestrator")
        for content_type, body, came in (
            ("application/x-www-form-urlencoded", opened, "payload field"),
            ("text/plain", b"not json", "(this one came as text/plain)"),
            (None, b"not json", "(this one came with no Content-Type)"),
            ("application/json", b"[1]", "a JSON object, with Content-Type: application/json"),
        ):
            sent = {"Content-Type": content_type} if content_type else {}
            reply = http_get(
                server.port,
                "/hooks/github",
                {
                    **sent,
                    "X-GitHub-Event": "pull_request",
                    "X-GitHub-Delivery": "d",
                    "X-Hub-Signature-256": signed(body),
                },
                "POST",
                body,
            )
            error = reply.json()["message"]
            assert reply.status == 400 and "Content-Type: application/json" in error and came in error, error
        assert snapshot(root / ".orchestrator") == before
        form = b"payload=" + quote_plus(opened.decode()).encode()
        sent = {"Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": signed(form)}
        reply = http_get(
            server.port,
            "/hooks/github",
            {**sent, "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "f"},
            "POST",
            form,
        )
        assert reply.status == 202, reply.body
        assert finished(root)["launched"]["delivery"] == "f" and output(root).strip() == "PR=7"
    assert server.errors() == "", server.errors()


def test_hooks_are_off_without_a_secret(tmp_path: Path) -> None:
    root = project(tmp_path)
    with served(root, env={"ORCHESTRATOR_WEBHOOK_SECRET": ""}) as server:
        assert server.info["hooks"] is False
        reply = deliver(server, {"action": "opened", "pull_request": {"number": 1}})
        assert reply.status == 404 and "webhooks are off" in reply.json()["message"]
    assert not (root / ".orchestrator" / "state" / "launches.json").exists()


def test_a_generic_hook_takes_the_same_hmac_in_the_header_the_plan_names(tmp_path: Path) -> None:
    root = project(tmp_path)
    body = json.dumps({"target": "release-7"}).encode()
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        github_header = {"X-Hub-Signature-256": signed(body), "X-Deploy-Id": "a"}
        assert http_get(server.port, "/hooks/deploy", github_header, "POST", body).status == 401
        headers = {"X-Deploy-Signature": signed(body), "X-Deploy-Id": "deploy-1"}
        assert http_get(server.port, "/hooks/deploy", {"X-Deploy-Signature": signed(body)}, "POST", body).status == 400
        started = http_get(server.port, "/hooks/deploy", headers, "POST", body)
        assert started.status == 202, started.body
        shown = finished(root)
        assert shown["launched"]["source"] == "deploy" and output(root).strip() == "PR=release-7"
        assert http_get(server.port, "/hooks/deploy", headers, "POST", body).status == 409  # its id, seen


def test_a_fired_run_that_fails_is_what_check_reports(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "exit 3")], {"triggers": {"github": {"events": ["push"]}}})
    (tmp_path / "secret").write_bytes(SECRET)
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        assert deliver(server, {"ref": "refs/heads/main"}, event="push").status == 202
        assert finished(root)["launched"]["exit_code"] == 1
    check = subprocess.run([*CLI, "check", "--json"], cwd=root, capture_output=True, text=True, check=False)
    assert check.returncode == 1
    kinds = [f["kind"] for f in json.loads(check.stdout)["workspaces"][0]["findings"]]
    assert "launch_failed" in kinds
    text = subprocess.run([*CLI, "check"], cwd=root, capture_output=True, text=True, check=False).stdout
    assert "🪝" in text and "last started by github" in text


@pytest.mark.parametrize(
    ("triggers", "said"),
    [
        ({"github": {"events": []}}, "github.events: give a list of names"),
        ({"github": {"events": ["push"], "params": {"a": "{{ event.x * 99999 }}"}}}, "mul is not allowed"),
        ({"github": {"events": ["push"], "params": {"a": "{% for x in event %}{% endfor %}"}}}, "for is not allowed"),
        ({"github": {"events": ["push"], "params": {"a": "{{ event.x | join }}"}}}, "the filter 'join'"),
        ({"github": {"events": ["push"], "params": {"a": "{{ event.__class__ }}"}}}, None),
        ({"hooks": {"deploy": {"params": {}}}}, "hooks.deploy.header"),
        ({"gitlab": {}}, "unknown key 'gitlab'"),
    ],
)
def test_a_bad_triggers_setting_is_one_line_with_its_line(tmp_path: Path, triggers: Any, said: str | None) -> None:
    root = tmp_path / "project"
    root.mkdir()
    write_plan(root, [Spec("T-01", "true")], {"triggers": triggers})
    done = subprocess.run([*CLI, "validate"], cwd=root, capture_output=True, text=True, check=False)
    if said is None:  # (an attribute the sandbox refuses when rendered, not when read)
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, done.stdout
    text = (root / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.startswith("triggers:"))
    assert f"master_plan.md:{line}" in done.stderr and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_form_encoded_delivery_is_read_from_its_payload_field(tmp_path: Path) -> None:
    from urllib.parse import urlencode

    root = project(tmp_path)
    opened = json.dumps({"action": "opened", "pull_request": {"number": 9}})
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        without = b"action=opened"
        reply = deliver(server, without, delivery="f-0", **{"Content_Type": form["Content-Type"]})
        assert reply.status == 400 and "payload" in reply.json()["message"]
        body = urlencode({"payload": opened}).encode()
        started = deliver(server, body, delivery="f-1", **{"Content_Type": form["Content-Type"]})
        assert started.status == 202, started.body
        assert finished(root)["launched"]["params"] == {"pr": "9"}
