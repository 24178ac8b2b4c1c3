"""A notification's approve and reject links, against a real ``serve`` on loopback: the run that
waits at a gate notifies a command with two signed links at ``public_url``; opening one (GET)
shows what it does and changes nothing; its POST approves once, and, no run going on, starts the
run that takes it; used again, expired, for inputs that changed, or forged (1,000 tokens), a link
is refused in one line with nothing written.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dashboard_helpers import CLI, Served, http_get, served
from test_api import wait_for
from test_hostile_input import snapshot

from orchestrator.state.words import links
from orchestrator.state.workspace import Workspace

pytest.importorskip("starlette")

PUBLIC = "https://orchestrator.example.test/base"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # (what Chromium sends)
PLAN = """---
backend: shell
max_parallel: 1
retries: 0
public_url: {public}
notify: {notify}
---
# Plan

## Task Decomposition
| Task ID | Description | Command | Dependencies | Approval |
|---|---|---|---|---|
| T-01 | First | echo one | None | - |
| T-02 | {gated} | echo two > two.txt | T-01 | before |
"""


def project(tmp_path: Path, gated: str = "Ship it") -> tuple[Path, Path]:
    """A plan whose T-02 waits at a gate before it starts, notifying a command that appends each
    notification to ``notified.jsonl``."""
    root = tmp_path / "project"
    (root / ".orchestrator").mkdir(parents=True)
    notified = tmp_path / "notified.jsonl"
    sink = tmp_path / "sink.py"
    sink.write_text(
        f"import pathlib, sys\npathlib.Path({str(notified)!r}).open('a').write(sys.stdin.read().strip() + '\\n')\n",
        encoding="utf-8",
    )
    notify = json.dumps([{"command": [sys.executable, str(sink)], "events": ["approval_requested"]}])
    text = PLAN.format(public=PUBLIC, notify=notify, gated=gated)
    (root / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")
    return root, notified


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run"], cwd=root, capture_output=True, text=True, timeout=120, check=False)


def notified_links(notified: Path) -> dict[str, str]:
    """The paths of the links the last approval_requested notification carried."""
    [*_, told] = [json.loads(line) for line in notified.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert told["event"] == "approval_requested" and told["task"] == "T-02", told
    found = told["links"]
    assert set(found) == {"approve", "reject"} and all(url.startswith(PUBLIC + "/links/") for url in found.values())
    return {word: urlsplit(url).path.removeprefix("/base") for word, url in found.items()}


def post(server: Served, path: str) -> Any:
    return http_get(server.port, path, JSON, method="POST", body=b"")


def state(root: Path) -> dict[str, Any]:
    return {name: snapshot(root / ".orchestrator" / name) for name in ("state", "results")}


def test_a_link_shows_on_get_acts_once_on_post_and_starts_the_run_that_takes_it(tmp_path: Path) -> None:
    root, notified = project(tmp_path)
    waited = run(root)
    assert "✋ T-02" in waited.stdout and not (root / "two.txt").exists(), waited.stdout
    paths = notified_links(notified)
    with served(root) as server:
        before = state(root)
        page = http_get(server.port, paths["approve"])
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert b'<form method="post"><button type="submit">Approve</button></form>' in page.body, page.body
        assert b"T-02 Ship it" in page.body and page.headers["cache-control"] == "no-store"
        shown = http_get(server.port, paths["reject"], JSON).json()
        assert shown == {"ok": True, "said": "Reject: T-02 Ship it — start it (its gate before it starts)"}
        assert http_get(server.port, paths["approve"], method="HEAD").status == 200
        assert state(root) == before  # (a preview, a prefetch: nothing written)
        acted = post(server, paths["approve"])
        assert acted.status == 200, acted.body
        assert acted.json()["said"].startswith("👍 approved T-02 (before it starts)"), acted.body
        assert isinstance(acted.json()["started"]["pid"], int)  # (no run going on: one starts to take it)
        wait_for(lambda: (root / "two.txt").exists(), "T-02 to run")
        for path in paths.values():  # (the pair is spent)
            again = post(server, path)
            assert again.status == 410 and again.json()["error"] == "this link was used already: a link answers once"
        opened = http_get(server.port, paths["approve"], BROWSER)  # (opened again from the mail: a page)
        assert opened.status == 410 and opened.headers["content-type"].startswith("text/html"), opened.body
        assert b"<p>this link was used already: a link answers once</p>" in opened.body, opened.body
        assert b"<form" not in opened.body
    [word] = [json.loads(line) for line in (root / ".orchestrator/state/approvals.jsonl").read_text().splitlines()]
    assert (word["decision"], word["by"], word["via"]) == ("approved", "link", "link")
    assert server.errors() == "", server.errors()


def test_a_link_for_inputs_that_changed_or_expired_is_refused_with_nothing_written(tmp_path: Path) -> None:
    root, notified = project(tmp_path)
    run(root)
    paths = notified_links(notified)
    plan = root / ".orchestrator" / "master_plan.md"
    text = plan.read_text(encoding="utf-8")
    with served(root) as server:
        plan.write_text(text.replace("| T-02 | Ship it |", "| T-02 | Ship it now |"), encoding="utf-8")
        before = state(root)
        changed = post(server, paths["approve"])
        assert changed.status == 409, changed.body
        assert (
            changed.json()["error"]
            == "T-02's inputs changed since this link was made: it is asked again, with a new link"
        )
        assert http_get(server.port, paths["approve"], JSON).status == 409
        assert state(root) == before
        plan.write_text(text, encoding="utf-8")
        workspace = Workspace.find(str(root / ".orchestrator"))
        on = links.check(workspace, paths["approve"].removeprefix("/links/")).on
        short = links.pair(workspace, "T-02", on, 1, question=False)["approve"]
        time.sleep(1.1)
        before = state(root)
        expired = post(server, f"/links/{short}")
        assert expired.status == 410 and expired.json()["error"].startswith("this link expired at "), expired.body
        assert state(root) == before and not (root / "two.txt").exists()
    assert server.errors() == "", server.errors()


def forged(real: str, rng: random.Random) -> str:
    """A token that is not one: made up, cut, a claim changed under the real signature, its
    signature changed, or signed with another key."""
    claims, mac = real.split(".")
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        return f"{claims}.{''.join(rng.choice(alphabet) for _ in range(43))}"
    if kind == 2:
        changed = {**body, rng.choice(["t", "a", "e", "o"]): rng.choice(["T-01", "reject", 9999999999, "x"])}
        text = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).rstrip(b"=").decode()
        return f"{text}.{mac}"
    if kind == 3:
        at = rng.randrange(len(mac))
        return f"{claims}.{mac[:at]}{'A' if mac[at] != 'A' else 'B'}{mac[at + 1 :]}"
    if kind == 4:
        return real[: rng.randrange(1, len(real))]
    return f"{claims}x.{mac}" if rng.random() < 0.5 else real + "=" * rng.randrange(1, 3)


def test_a_thousand_forged_tokens_are_refused_with_nothing_written(tmp_path: Path) -> None:
    root, notified = project(tmp_path)
    run(root)
    real = notified_links(notified)["approve"].removeprefix("/links/")
    rng = random.Random(68)
    with served(root) as server:
        before = state(root)
        statuses: set[int] = set()
        for _ in range(1000):
            token = forged(real, rng)
            assert token != real
            answer = post(server, f"/links/{token}") if rng.random() < 0.7 else http_get(server.port, f"/links/{token}")
            statuses.add(answer.status)
            assert answer.status in (403, 404, 405), (token, answer.status, answer.body)
            if answer.status == 403:
                assert len(answer.body.decode().splitlines()) <= 1 or b"<html>" in answer.body
        assert 403 in statuses
        assert state(root) == before and not (root / "two.txt").exists()
        assert post(server, f"/links/{real}").status == 200  # (the real one still works, once)
    assert server.errors() == "", server.errors()


def test_a_link_made_before_its_word_was_withdrawn_or_said_elsewhere_answers_nothing(tmp_path: Path) -> None:
    """Issue 73: a link made before `reset T-02 --approvals` still approved T-02, and `serve`
    started a run for it. Withdrawing a word withdraws the links made before it: the POST (and
    the GET) is refused, 410, nothing written, no run started. So is a link whose gate a person
    answered by another door since. A link the next run sends answers, once."""
    root, notified = project(tmp_path)
    run(root)
    first = notified_links(notified)
    reset = subprocess.run([*CLI, "reset", "T-02", "--approvals"], cwd=root, capture_output=True, text=True)
    assert reset.returncode == 0, reset.stderr
    with served(root) as server:
        before = state(root)
        for path in (first["approve"], first["reject"]):
            refused = post(server, path)
            assert refused.status == 410, refused.body
            said = refused.json()["error"]
            assert said.startswith("this link was withdrawn: T-02's word was taken back after it was made, withdrawn")
            assert said.endswith("(reset --approvals) — its gate asks again, with a new link"), said
            assert http_get(server.port, path, JSON).status == 410
        assert state(root) == before and not (root / "two.txt").exists()
        assert not (root / ".orchestrator" / "state" / "launches.json").exists()  # (no run started for it)
        run(root)
        second = notified_links(notified)
        approved = subprocess.run([*CLI, "approve", "T-02"], cwd=root, capture_output=True, text=True, env=_as("ann"))
        assert approved.returncode == 0, approved.stderr
        before = state(root)
        elsewhere = post(server, second["reject"])
        assert elsewhere.status == 410, elsewhere.body
        assert elsewhere.json()["error"].startswith("this link no longer answers: T-02 was approved by ann at ")
        assert state(root) == before
        subprocess.run([*CLI, "reset", "T-02", "--approvals"], cwd=root, capture_output=True, check=True)
        run(root)
        third = notified_links(notified)
        acted = post(server, third["approve"])
        assert acted.status == 200 and acted.json()["said"].startswith("👍 approved T-02"), acted.body
        wait_for(lambda: (root / "two.txt").exists(), "T-02 to run")
    assert server.errors() == "", server.errors()


def _as(user: str) -> dict[str, str]:
    import os

    return {**os.environ, "USER": user, "LOGNAME": user}
