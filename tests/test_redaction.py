"""The redactor (``orchestrator/redaction.py``) on its own: each kind of secret written as its
name, values too short or in plainly named variables left alone, JSON kept JSON whatever text
surrounds a secret, a stream cut anywhere (in the middle of a secret, of a character, of a key's
block, of a line longer than a stream holds) written as the whole text would be, a claude log
redacted as it streams still read for the same answer, and the plan's own patterns (a bad one
refused in one line at its line).
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_helpers import Spec, cli, cli_in_process, run, write_plan

from orchestrator import redaction
from orchestrator.executors import attemptlog
from orchestrator.executors.attemptlog import AttemptLog
from orchestrator.redaction import Redactor, Stream

FIXTURES = Path(__file__).parent / "fixtures"
_ALNUM = string.ascii_letters + string.digits
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    + "\n".join("".join(random.Random(n).choices(_ALNUM + "+/", k=70)) for n in range(5))
    + "\nAAAAB3NzaC1yc2EAAAADAQAB==\n-----END OPENSSH PRIVATE KEY-----"
)
ENVIRONMENT = {
    "GITHUB_TOKEN": "v1.0123456789abcdefabcdef0123456789abcdef",
    "STRIPE_SECRET": 'q"uoted\\back/slash-value',
    "ORCHESTRATOR_GITHUB_TOKEN": "gh-app-installation-token-value",
    "GOOGLE_CREDENTIALS": '{\n  "type": "service_account",\n  "private_key_id": "3f1c0a9e7b"\n}',
    "DB_PASSWORD": "pw",  # under the floor: not a secret
    "HOME": "/home/someone/with/a/long/path",  # a plain name: not a secret
    "SIGNING_KEY_FILE": "/etc/hostname",  # a file's path, which is there: no secret
    "ORCHESTRATOR_ATTEMPT_KEY": "orchestrator-T-01-attempt-1-key",  # looks secret, holds none
}
SHAPES = {
    "github token": "ghp_" + "A1b2C3d4" * 4 + "Zz9Y",
    "github fine-grained token": "github_pat_11ABCDEFG0" + "x" * 72,
    "anthropic key": "sk-ant-api03-" + "AbC-dEf_123" * 8,
    "openai key": "sk-proj-" + "Q9wErTy7uIoP" * 4,
    "aws access key": "AKIAIOSFODNN7EXAMPLE",
    "slack token": "xoxb-2834-1234567890-AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "private key": PEM,
}


def redactor(patterns: tuple[str, ...] = ()) -> Redactor:
    return Redactor(redaction.secret_values(ENVIRONMENT), patterns)


def secret_lines(value: str) -> list[str]:
    return [value, *(line.strip() for line in value.splitlines() if len(line.strip()) >= redaction.FLOOR)]


def test_each_secret_is_written_as_its_variables_or_its_shapes_name() -> None:
    found = redactor()
    named = {
        **{name: value for name, value in redaction.secret_values(ENVIRONMENT).items()},
        **{name: value for name, value in SHAPES.items()},
    }
    assert set(redaction.secret_values(ENVIRONMENT)) == {
        "GITHUB_TOKEN",
        "STRIPE_SECRET",
        "ORCHESTRATOR_GITHUB_TOKEN",
        "GOOGLE_CREDENTIALS",
    }
    for name, value in named.items():
        text = found.text(f"before {value} after")
        assert text == f"before [redacted: {name}] after", (name, text)
    plain = "pw /home/someone/with/a/long/path orchestrator-T-01-attempt-1-key /etc/hostname disk-usage-2024 eyJhbGciOi"
    assert found.text(plain) == plain  # short, plainly named, not secret, and words that merely start alike


def test_a_multiline_value_printed_a_line_at_a_time_is_redacted_line_by_line() -> None:
    found = redactor()
    shuffled = "\n".join(reversed(ENVIRONMENT["GOOGLE_CREDENTIALS"].splitlines()))
    text = found.text(shuffled)
    assert '"service_account"' not in text and "3f1c0a9e7b" not in text, text


# What JSON escapes (the letters of \n, \t, \b, \f, \u001b come before a secret so) and what it does not.
AROUND = st.text(alphabet=st.sampled_from(list('\\"\n\t\b\f\r/ {}:,é\x1b\x00')), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    before=AROUND,
    after=AROUND,
    which=st.sampled_from(sorted({**ENVIRONMENT, **SHAPES})),
)
def test_a_secret_in_json_is_redacted_and_the_json_stays_json(before: str, after: str, which: str) -> None:
    """As it is in an agent's stream-json log: whatever escapes surround a secret, the line is
    still JSON once redacted, and none of the secret is left in what it reads as."""
    value = {**ENVIRONMENT, **SHAPES}[which]
    line = json.dumps({"type": "user", "content": [{"type": "tool_result", "content": before + value + after}]})
    redacted = redactor().text(line)
    read = json.loads(redacted)["content"][0]["content"]  # (a JSON line still)
    if value in redaction.secret_values(ENVIRONMENT).values() or which in SHAPES:
        assert not any(part in read for part in secret_lines(value)), (line, redacted)
        assert "[redacted: " in read


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _stream_text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


LINES = st.lists(
    st.one_of(
        st.sampled_from([*SHAPES.values(), ENVIRONMENT["GITHUB_TOKEN"], ENVIRONMENT["STRIPE_SECRET"]]).map(
            lambda secret: f"token: {secret} é"
        ),
        st.text(alphabet=st.sampled_from(list("ab cé€\t")), max_size=30),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(lines=LINES, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_a_stream_cut_anywhere_writes_what_the_whole_text_would(lines: list[str], cuts: list[int]) -> None:
    """Split in the middle of a secret, of a UTF-8 character, of a key's block: the same bytes."""
    found = redactor()
    data = _stream_text(lines)
    stream = Stream(found)
    out = b"".join(stream.feed(piece) for piece in chunked(data, cuts)) + stream.end()
    assert out == found.of_bytes(data)
    assert not any(part.encode() in out for value in SHAPES.values() for part in secret_lines(value))


def test_a_line_longer_than_a_stream_holds_is_written_in_parts_never_through_a_secret() -> None:
    found = redactor()
    secret = SHAPES["github token"]
    filler = "a" * (Stream.LONG_LINE // 3)
    # Secrets everywhere a cut may fall: every 1,000 characters over a line of 6 MB.
    line = "".join(f"{filler[: 1000 - len(secret) - 2]} {secret} " for _ in range(6 * 1024)) + "\n"
    data = line.encode()
    stream = Stream(found)
    pieces = [stream.feed(data[start : start + 65536]) for start in range(0, len(data), 65536)]
    assert any(pieces[:-1]), "a line this long is written before its end"
    out = b"".join(pieces) + stream.end()
    assert secret.encode() not in out and out.count(b"[redacted: github token]") == 6 * 1024
    assert out == found.of_bytes(data)


def test_an_attempt_log_writes_its_lines_redacted_and_hands_them_on_redacted(tmp_path: Path) -> None:
    seen: list[bytes] = []
    secret = SHAPES["slack token"]
    with AttemptLog(tmp_path / "out.log", None, redactor(), seen.append) as log:
        for piece in chunked(f"one {secret}\ntwo {secret}\nthree, no end".encode(), [7, 9, 22, 30]):
            log.write(piece)
        log.end()
    written = (tmp_path / "out.log").read_bytes()
    assert written == b"one [redacted: slack token]\ntwo [redacted: slack token]\nthree, no end"
    assert seen == [b"one [redacted: slack token]", b"two [redacted: slack token]", b"three, no end"]


@pytest.mark.parametrize("fixture", ["tool_roundtrip.jsonl", "success.jsonl", "structured_output.jsonl"])
def test_a_claude_log_redacted_as_it_streams_is_read_for_the_same_answer(tmp_path: Path, fixture: str) -> None:
    """claude's stream-json as it reaches the log, secrets in its tool results and its answer, cut
    at random: ``recover`` (and ``interpret``, the same reader) reads from the redacted log the
    answer it reads from the raw one, redacted, and everything else as it was."""
    from orchestrator.backends.claude import ClaudeBackend
    from orchestrator.plan.config.settings import Settings

    secrets = f" {SHAPES['jwt']} {ENVIRONMENT['STRIPE_SECRET']} {PEM} "
    lines = []
    for raw in (FIXTURES / "claude" / fixture).read_text(encoding="utf-8").splitlines():
        event = json.loads(raw)
        if event.get("type") == "result" and isinstance(event.get("result"), str):
            event["result"] += secrets
        for block in event.get("message", {}).get("content", []) if isinstance(event.get("message"), dict) else []:
            if isinstance(block, dict) and block.get("type") in ("tool_result", "text"):
                block["text" if block["type"] == "text" else "content"] = f"printed{secrets}"
        lines.append(json.dumps(event, separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode()
    raw_log, redacted_log = tmp_path / "raw.out", tmp_path / "agent-01.attempt-1.out"
    raw_log.write_bytes(data)
    found = redactor()
    cuts = random.Random(fixture).sample(range(len(data)), 40)
    with AttemptLog(redacted_log, None, found) as log:
        for piece in chunked(data, cuts):
            log.write(piece)
        log.end()
    assert not any(part.encode() in redacted_log.read_bytes() for part in [*secret_lines(PEM), SHAPES["jwt"]])
    before = ClaudeBackend().recover(Settings(), raw_log, tmp_path / "absent.err")
    after = ClaudeBackend().recover(Settings(), redacted_log, tmp_path / "absent.err")
    assert before is not None and after is not None
    assert after.text == found.text(before.text) and "[redacted: jwt]" in after.text
    assert (after.session_id, after.cost_usd, after.tokens, after.turns, after.structured) == (
        before.session_id, before.cost_usd, before.tokens, before.turns, before.structured,
    )  # fmt: skip


def test_a_plans_patterns_are_redacted_and_a_bad_one_is_one_line_at_its_line(tmp_path: Path) -> None:
    prints = Spec("T-01", "echo 'ticket ACME-123456 and acme-654321'")
    write_plan(tmp_path, [prints], {"redact": ["(?i:acme-[0-9]{6})"]})
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    written = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert "ticket [redacted: redact pattern 1] and [redacted: redact pattern 1]" in written
    assert "123456" not in (tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out").read_text()
    for bad, said in [
        ("'(unclosed'", "is no regular expression: missing ), unterminated subpattern"),
        ("'(?i)acme'", "a flag must hold a group, as (?i:token) does"),
        ("'x*'", "matches empty text"),
        ("'(?P<n>a)(?P=n)'", "names or refers back to a group"),
    ]:
        plan = tmp_path / ".orchestrator" / "master_plan.md"
        text = plan.read_text(encoding="utf-8")
        start = text.index("redact:")
        plan.write_text(text[:start] + f"redact: [{bad}]\n" + text[text.index("\n", start) + 1 :], encoding="utf-8")
        line = plan.read_text(encoding="utf-8").splitlines().index(f"redact: [{bad}]") + 1
        checked = cli_in_process(tmp_path, "validate")
        assert checked.code == 2, checked.stdout + checked.stderr
        assert f"master_plan.md:{line}: bad value for 'redact'" in checked.stdout + checked.stderr, checked
        assert said in checked.stdout + checked.stderr


def test_the_webhook_secrets_file_and_value_reach_no_attempt(tmp_path: Path) -> None:
    """What serve is given, the runs it starts redact by, and none of their tasks is given."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret-of-the-webhook-0123\n", encoding="utf-8")
    write_plan(tmp_path, [Spec("T-01", 'env; cat "$SECRET_AT"')])
    env = {
        redaction.SECRET_FILE_VARIABLE: str(secret_file),
        redaction.SECRET_VARIABLE: "the-webhook-secret-as-a-variable",
        "SECRET_AT": str(secret_file),
    }
    result = cli(tmp_path, "run", env=env)
    assert result.code == 0, result.stderr
    log = (tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out").read_text()
    assert redaction.SECRET_FILE_VARIABLE + "=" not in log and redaction.SECRET_VARIABLE + "=" not in log
    assert "s3cret-of-the-webhook" not in log and log.endswith("[redacted: webhook secret]\n")


@given(st.lists(st.binary(max_size=40), max_size=12))
def test_the_lines_handed_on_are_the_lines_of_the_stream_however_it_is_cut(chunks: list[bytes]) -> None:
    """An observer is handed each complete line once, in order, whatever the chunks were; the
    last, unended one at the end."""
    seen: list[bytes] = []
    lines = attemptlog.Lines(seen.append)
    for chunk in chunks:
        lines.feed(chunk)
    lines.end()
    *ended, unended = b"".join(chunks).split(b"\n")
    assert seen == ended + ([unended] if unended else [])


def test_a_line_too_long_to_hold_is_dropped_whole_and_the_next_one_handed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attemptlog, "_LONGEST_LINE", 10)
    seen: list[bytes] = []
    lines = attemptlog.Lines(seen.append)
    for chunk in (b"short\nfar too lo", b"ng a line, ", b"all of it\nnext", b" one\n"):
        lines.feed(chunk)
    lines.end()
    assert seen == [b"short", b"next one"]
