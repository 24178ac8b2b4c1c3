"""Secrets never written, end to end: a run that ``serve`` started (its webhook secret given in a
file) runs real shell tasks that print every kind of secret: the values of variables named
``*TOKEN*``, ``*SECRET*``, ``*KEY*``, ``*PASSWORD*``, ``ANTHROPIC_API_KEY`` and the webhook
secret, and the shapes of GitHub's, Anthropic's, OpenAI's, AWS's and Slack's keys, a JWT and a
private key's block; on stdout and stderr, one split across two reads, one at the end of a line
longer than a megabyte, through ``env``, ``share`` and a failing task's last words that a webhook
and a command are notified of. Then every byte of every file of the project, what the
notifications carried and what the API answers is searched for each secret: none is there, each
``[redacted: NAME]`` is, and ``verify`` finds the event log's chain whole.

The same with the real ``claude`` CLI against the fake Messages API: its Bash tool prints the
secrets, the model's answer quotes them, and its stream-json log, result and final output hold
none of them (and the task's answer is still read from that log).
"""

from __future__ import annotations

import json
import random
import string
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import http_get, served
from runner_helpers import CLI, Spec, timing_text, write_plan
from test_api import post, status, wait_for
from test_notify import Hook

pytest.importorskip("starlette")

GUARD = 90.0
_ALNUM = string.ascii_letters + string.digits


def _random(count: int, alphabet: str = _ALNUM) -> str:
    return "".join(random.choices(alphabet, k=count))


def _pem() -> str:
    lines = [_random(64, _ALNUM + "+/") for _ in range(6)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\nq8Zr4B7mXy2Tk==\n-----END RSA PRIVATE KEY-----"


def secrets() -> dict[str, tuple[str, str]]:
    """The variable each secret is given in, its value and the NAME it is written as: by its
    variable's name for those named secret, by its shape for those in variables named plainly."""
    return {
        "DEPLOY_TOKEN": (_random(40), "DEPLOY_TOKEN"),
        "APP_SECRET": (_random(32), "APP_SECRET"),
        "SIGNING_KEY": (_random(48), "SIGNING_KEY"),
        "DB_PASSWORD": ("correct-horse-" + _random(12), "DB_PASSWORD"),
        "ANTHROPIC_API_KEY": (_random(44), "ANTHROPIC_API_KEY"),
        "SAMPLE_GITHUB": ("ghp_" + _random(36), "github token"),
        "SAMPLE_GITHUB_PAT": ("github_pat_11A" + _random(79, _ALNUM + "_"), "github fine-grained token"),
        "SAMPLE_ANTHROPIC": ("sk-ant-api03-" + _random(93, _ALNUM + "_-"), "anthropic key"),
        "SAMPLE_OPENAI": ("sk-proj-" + _random(40) + "A1", "openai key"),
        "SAMPLE_AWS": ("AKIA" + _random(16, string.ascii_uppercase + string.digits), "aws access key"),
        "SAMPLE_SLACK": (f"xoxb-{random.randrange(10**11, 10**12)}-{_random(24)}", "slack token"),
        "SAMPLE_JWT": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcmNoZXN0cmF0b3IifQ." + _random(43, _ALNUM + "_-"), "jwt"),
        "SAMPLE_PEM": (_pem(), "private key"),
    }


def needles(value: str) -> list[bytes]:
    """What of ``value`` must be found nowhere: the value, and each line of a key's block."""
    lines = [line for line in value.splitlines() if len(line) >= 12 and not line.startswith("-----")]
    return [value.encode(), *(line.encode() for line in lines)]


def files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def leaks(
    blobs: Mapping[str, bytes], found: Mapping[str, tuple[str, str]], hook_secret: str | None = None
) -> list[str]:
    """Each secret found in a blob, as ``VARIABLE in WHERE``."""
    wanted = {name: needles(value) for name, (value, _) in found.items()}
    if hook_secret is not None:
        wanted["webhook"] = needles(hook_secret)
    found_in = (
        (name, where) for where, data in blobs.items() for name, ns in wanted.items() if any(n in data for n in ns)
    )
    return [f"{name} in {where}" for name, where in found_in]


SHELL_PRINTS = r"""
printf '%s\n' "$DEPLOY_TOKEN" "$APP_SECRET" "$SIGNING_KEY" "$DB_PASSWORD" "$ANTHROPIC_API_KEY"
printf 'webhook: %s\n' "$(cat "$SAMPLE_HOOK_FILE")"
printf 'shape: %s\n' "$SAMPLE_GITHUB" "$SAMPLE_GITHUB_PAT" "$SAMPLE_ANTHROPIC" "$SAMPLE_OPENAI" "$SAMPLE_AWS"
printf 'shape: %s\n' "$SAMPLE_SLACK" "$SAMPLE_JWT"
printf '%s\n' "$SAMPLE_PEM"
printf 'Authorization: Bearer %s\n' "$SAMPLE_GITHUB" >&2
printf 'split: %s' "${DEPLOY_TOKEN:0:17}"; sleep 0.4; printf '%s end\n' "${DEPLOY_TOKEN:17}"
printf 'key: %s' "${SAMPLE_PEM:0:90}"; sleep 0.4; printf '%s\n' "${SAMPLE_PEM:90}"
env
"$ORCHESTRATOR_PYTHON" -m orchestrator share "$ORCHESTRATOR_TASK_ID" "the signing key is $SIGNING_KEY, $SAMPLE_AWS"
"""
LONG_LINE = r"""
{ head -c 1100000 /dev/zero | tr '\0' a; printf '%s %s\n' "$APP_SECRET" "$SAMPLE_SLACK"; } >&2
echo done
"""
FAILS = r"""
printf 'curl: (22) 401 with Authorization: token %s (%s)\n' "$DB_PASSWORD" "$SAMPLE_OPENAI" >&2
exit 3
"""
READS_UPSTREAM = r"""
cat "$(head -n 1 "$ORCHESTRATOR_INPUTS_FILE")"
"""


def test_no_secret_a_run_prints_is_written_anywhere_and_the_chain_still_verifies(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    hook_secret = _random(36)
    secret_file = outside / "webhook-secret"
    secret_file.write_text(hook_secret + "\n", encoding="utf-8")
    found = secrets()
    project = tmp_path / "project"
    project.mkdir()
    notified = outside / "notified"
    command = f'cat >> "{notified}.json"; printf "\\n%s\\n" "$ORCHESTRATOR_NOTIFY_TEXT" >> "{notified}.txt"'
    specs = [
        Spec("T-01", SHELL_PRINTS),
        Spec("T-02", FAILS),
        Spec("T-03", READS_UPSTREAM, ["T-01"]),
        Spec("T-04", LONG_LINE),
    ]
    env = {
        **{name: value for name, (value, _) in found.items()},
        "SAMPLE_HOOK_FILE": str(secret_file),
        "XDG_CONFIG_HOME": str(outside / "config"),
        "ORCHESTRATOR_TIMING": timing_text(),
    }
    with Hook() as hook:
        # (sandbox: off: the run the API starts is one from outside, whose sandbox hides what is under
        # /tmp but the project, and T-01 prints the webhook secret's file, kept outside the project)
        write_plan(project, specs, {"notify": [hook.url + "/hook", {"command": command}], "fail_fast": False,
                                    "sandbox": "off"})  # fmt: skip
        with served(project, "--webhook-secret-file", str(secret_file), env=env) as server:
            started = post(server, "/api/runs", {})
            assert started.status == 202, started.body
            done = wait_for(lambda: (s := status(project))["launched"]["exit_code"] is not None and s, "the run's end")
            assert done["launched"]["exit_code"] == 1, done  # T-02 failed, as it should
            states = {task["id"]: task["status"] for task in done["tasks"]}
            assert states == {"T-01": "completed", "T-02": "failed", "T-03": "completed", "T-04": "completed"}
            answers = {
                "GET /api/state": http_get(server.port, "/api/state").body,
                **{f"GET /api/task/{t}": http_get(server.port, f"/api/task/{t}").body for t in ("T-01", "T-02")},
                **{
                    f"POST /api/commands/{c} {t}": post(server, f"/api/commands/{c}", {"task": t}).body
                    for c in ("output", "logs")
                    for t in ("T-01", "T-02")
                },
            }
        bodies = json.dumps(hook.bodies, ensure_ascii=False).encode()
        assert "task_failed" in hook.kinds(), hook.bodies
    verified = subprocess.run([*CLI, "verify"], cwd=project, capture_output=True, text=True, timeout=GUARD)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    blobs = {str(path.relative_to(tmp_path)): path.read_bytes() for path in files_under(project)}
    assert any(name.endswith("final_output.md") for name in blobs) and any("/logs/" in name for name in blobs)
    blobs |= {f"notified {path.name}": path.read_bytes() for path in outside.glob("notified.*")}
    blobs |= {"webhook bodies": bodies, **answers}
    assert leaks(blobs, found, hook_secret) == [], leaks(blobs, found, hook_secret)
    everything = b"\n".join(blobs.values())
    names = {name for _, name in found.values()} | {"webhook secret"}
    assert {name for name in names if f"[redacted: {name}]".encode() not in everything} == set()
    # What a task printed as it printed it, but for its secrets: the log of T-01 and its result.
    log = (project / ".orchestrator/logs/agent-01.attempt-1.out").read_bytes()
    assert b"split: [redacted: DEPLOY_TOKEN] end\n" in log and b"key: [redacted: private key]\n" in log
    assert b"shape: [redacted: github token]\n" in log
    failed = [e for e in map(json.loads, (project / ".orchestrator/state/events.jsonl").read_text().splitlines())
              if e["event"] == "task_failed"]  # fmt: skip
    assert failed and "token [redacted: DB_PASSWORD] ([redacted: openai key])" in failed[0]["stderr_tail"][-1]
    assert b"token [redacted: DB_PASSWORD] ([redacted: openai key])" in bodies  # as the webhook was told


CLAUDE_PRINTS = (
    'printf "%s\\n" "$DEPLOY_TOKEN" "$SIGNING_KEY" "$SAMPLE_GITHUB" "$SAMPLE_ANTHROPIC" "$SAMPLE_AWS" "$SAMPLE_JWT"'
    ' && printf "%s\\n" "$SAMPLE_PEM"'
)


def _tool_result(body: Mapping[str, Any]) -> str:
    """The text of the last tool result the agent's request carries: what its Bash tool printed."""
    for message in reversed(body["messages"]):
        for block in message["content"] if isinstance(message["content"], list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
                return str(content)
    return ""


@pytest.mark.claude
def test_no_secret_a_claude_agent_prints_or_quotes_is_written_and_its_answer_is_still_read(tmp_path: Path) -> None:
    """Its Bash tool prints the secrets (the fake API is sent them: they were printed), the model
    quotes them in its answer; claude's stream-json log, the result, the events and final_output.md
    hold none, and the task's answer is read from that log all the same."""
    from fakeapi import FakeAnthropic, Reply, claude_missing, find_claude
    from test_channels_claude import environment

    if find_claude() is None:
        pytest.skip(claude_missing())
    found = secrets()
    project = tmp_path / "project"
    workspace = project / ".orchestrator"
    workspace.mkdir(parents=True)
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nmax_parallel: 1\nretries: 0\ntimeout: 90\ninactivity_timeout: 60\n"
        "allowed_tools: [Bash]\n---\n# Plan\n\n## Original Request\n> Print the secrets\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | Print the environment's secrets | None |\n",
        encoding="utf-8",
    )
    printed: list[str] = []

    def script(body: dict[str, Any]) -> Reply:
        if not any(message["role"] == "assistant" for message in body["messages"]):
            return Reply.tool("Bash", {"command": CLAUDE_PRINTS})
        printed.append(_tool_result(body))
        return Reply.say(f"Here is what the environment holds:\n\n{printed[-1]}\n\nDone.")

    with FakeAnthropic(script) as api:
        env = {**environment(api, tmp_path), **{name: value for name, (value, _) in found.items()}}
        env["ORCHESTRATOR_TIMING"] = timing_text()
        proc = subprocess.run(
            [*CLI, "run", str(workspace), "--json"], env=env, capture_output=True, text=True, timeout=150, check=False
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    quoted = {"DEPLOY_TOKEN", "SIGNING_KEY", "SAMPLE_GITHUB", "SAMPLE_ANTHROPIC", "SAMPLE_AWS", "SAMPLE_JWT"}
    quoted.add("SAMPLE_PEM")
    assert printed and all(found[name][0] in printed[0] for name in quoted), printed  # (it printed them all)
    blobs = {str(path.relative_to(tmp_path)): path.read_bytes() for path in files_under(workspace)}
    blobs["run --json"] = proc.stdout.encode()
    assert leaks(blobs, found) == []
    result = (workspace / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert "Here is what the environment holds:" in result and result.rstrip().endswith("Done.")
    for name in quoted:
        assert f"[redacted: {found[name][1]}]" in result, name
    log = (workspace / "logs" / "agent-01.attempt-1.out").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # (every line still JSON)
    assert lines[-1]["type"] == "result" and "[redacted: DEPLOY_TOKEN]" in lines[-1]["result"]
    verified = subprocess.run([*CLI, "verify"], cwd=project, capture_output=True, text=True, timeout=GUARD)
    assert verified.returncode == 0, verified.stdout + verified.stderr
