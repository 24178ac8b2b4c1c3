"""What redacting a task's output costs (issue 73: secrets never written), per MB, side by side with
redaction off.

    python bench/redact.py [--mb 32] [--rounds 5] [--write]

Two measures, each median (min–max) over ``--rounds``:

- **the redactor alone**: ``redaction.Stream`` fed 64 KiB chunks of four kinds of output (log prose,
  claude's stream-json, base64 and hex dumps, output made of nothing but the characters it looks
  at twice: its worst case short of secrets),
  with the environment of an agent's run (its API key, a GitHub token, two more secret-named
  variables) and a secret every 256 KiB, against the same chunks copied as they come (off);
- **a real task**: ``LocalExecutor.run`` of ``cat`` of ``--mb`` MB of log prose, its stdout into its
  log and every line to an observer as a run reads it, with redaction on and off (the attempt's
  logs given a stream that hands bytes on as they come): the runner's CPU time (user + system of
  this process, which the pipe, the log and the redactor all cost) and wall.

The figure of record is the runner's CPU a MB above redaction off. ``--write`` puts the section in
bench/RESULTS.md (``bench/run.py`` keeps it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import statistics
import string
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from benchlib import WORK, fresh_dir, machine_line, marked_section, put_marked_section, say, table

if TYPE_CHECKING:  # (imported where measured: bench/run.py imports this module for its section alone)
    from orchestrator.redaction import Redactor, Stream

BEGIN = "<!-- redact: written by bench/redact.py -->"
END = "<!-- /redact -->"
MB = 1024 * 1024
CHUNK = 64 * 1024
ENVIRONMENT = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "Xy7_Kq2-Lm9" * 8,
    "GITHUB_TOKEN": "ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8",
    "DATABASE_PASSWORD": "correct-horse-battery-staple-42",
    "STRIPE_SECRET_KEY": "rk_live_" + "51HxYzAbCdEfGh" * 2,
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/home/someone",
}


def _prose(size: int, rng: random.Random) -> bytes:
    words = ["the", "run", "started", "task", "agent", "completed", "failed", "retry", "merge", "status", "result"]
    lines = []
    total = 0
    while total < size:
        line = f"2026-11-27 10:{rng.randrange(60):02d} INFO {' '.join(rng.choices(words, k=12))} ({rng.random():.4f}s)"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def _stream_json(size: int, rng: random.Random) -> bytes:
    out, total = [], 0
    while total < size:
        text = " ".join(rng.choices(string.ascii_lowercase, k=rng.randrange(40, 400)))
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": text}
        event = {"type": "user", "message": {"content": [result]}}
        line = json.dumps(event)
        out.append(line)
        total += len(line) + 1
    return ("\n".join(out) + "\n").encode()


def _dumps(size: int, rng: random.Random) -> bytes:
    raw = rng.randbytes(size // 2)
    text = base64.b64encode(raw[: len(raw) // 2]).decode() + raw[len(raw) // 2 :].hex()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76)).encode()[:size] + b"\n"


def _dense(size: int, rng: random.Random) -> bytes:
    """Output made of the characters the redactor looks at twice (each shape's anchor, each
    value's), a word of them between two spaces: its worst case short of a secret."""
    from orchestrator import redaction

    values = redaction.secret_values(ENVIRONMENT).values()
    anchors = "B_kKSxJ" + "".join({value[redaction._anchor(value)] for value in values})
    words = (" ".join("".join(rng.choices(anchors, k=5)) for _ in range(16)) for _ in range(size // 96 + 1))
    return "\n".join(words).encode()[:size] + b"\n"


KINDS: dict[str, Callable[[int, random.Random], bytes]] = {
    "log prose": _prose,
    "claude stream-json": _stream_json,
    "base64 and hex dumps": _dumps,
    "only the characters it looks at twice": _dense,
}


def with_secrets(data: bytes, rng: random.Random) -> bytes:
    """``data`` with a secret put at a line's start every 256 KiB."""
    secrets = [value.encode() for value in ENVIRONMENT.values() if len(value) > 20]
    pieces, start = [], 0
    for at in range(256 * 1024, len(data), 256 * 1024):
        cut = data.find(b"\n", at) + 1 or len(data)
        pieces += [data[start:cut], rng.choice(secrets), b"\n"]
        start = cut
    return b"".join([*pieces, data[start:]])


def redactor() -> Redactor:
    from orchestrator import redaction

    return redaction.Redactor(redaction.secret_values(ENVIRONMENT), ())


def passthrough(redactor: Redactor) -> Stream:
    """Redaction off: a stream that hands on what comes as it comes."""
    from orchestrator.redaction import Stream

    class Passthrough(Stream):
        def feed(self, data: bytes) -> bytes:
            return data

        def end(self) -> bytes:
            return b""

    return Passthrough(redactor)


def alone(data: bytes, on: bool) -> float:
    """Seconds of CPU to stream ``data`` through the redactor (``on``), or to copy it."""
    stream = redactor().stream() if on else passthrough(redactor())
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    began = time.process_time()
    out = [stream.feed(chunk) for chunk in chunks]
    out.append(stream.end())
    spent = time.process_time() - began
    assert on or b"".join(out) == data
    return spent


@contextmanager
def redaction_off(off: bool) -> Iterator[None]:
    """An attempt's logs given a stream that hands bytes on as they come (``off``)."""
    from orchestrator import redaction

    if not off:
        yield
        return
    made = redaction.Redactor.stream
    redaction.Redactor.stream = passthrough  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        redaction.Redactor.stream = made  # type: ignore[method-assign]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def task(source: Path, directory: Path, on: bool) -> tuple[float, float]:
    """CPU and wall seconds of the runner for one real attempt that prints ``source``."""
    import anyio

    from orchestrator.executors.base import Launch, Limits
    from orchestrator.executors.local import LocalExecutor

    lines = 0

    def seen(_: bytes) -> None:
        nonlocal lines
        lines += 1

    launch = Launch(
        "T-01", 1, ("cat", str(source)), directory, {**os.environ, **ENVIRONMENT}, None,
        directory / "agent-01.attempt-1.out", directory / "agent-01.attempt-1.err", Limits(grace=1.0),
    )  # fmt: skip
    with redaction_off(not on):
        cpu, began = _cpu(), time.perf_counter()
        ended = anyio.run(lambda: LocalExecutor().run(launch, on_line=seen))
        spent, wall = _cpu() - cpu, time.perf_counter() - began
    assert ended.exit_code == 0 and lines > 0
    return spent, wall


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def _row(what: str, on: list[float], off: list[float]) -> list[str]:
    return [what, _stats(off), _stats(on), _stats([a - b for a, b in zip(on, off, strict=True)])]


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def measure(mb: int, rounds: int) -> str:
    before = _load()
    rng = random.Random(73)
    rows = []
    for name, make in KINDS.items():
        data = with_secrets(make(4 * MB, rng), rng)
        per = len(data) / MB
        redacted = [alone(data, True) * 1000 / per for _ in range(rounds)]
        copied = [alone(data, False) * 1000 / per for _ in range(rounds)]
        rows.append(_row(f"the redactor alone: {name}", redacted, copied))
        say(f"  {name}: {statistics.median(redacted):.1f} ms/MB on, {statistics.median(copied):.2f} off")
    directory = fresh_dir(WORK / "redact")
    source = directory / "output.txt"
    source.write_bytes(with_secrets(_prose(mb * MB, rng), rng))
    per = source.stat().st_size / MB
    cpu: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for on in random.sample([True, False], 2):
            spent, took = task(source, directory, on)
            cpu[on].append(spent * 1000 / per)
            wall[on].append(took * 1000 / per)
    rows.append(_row(f"a real task, the runner's CPU ({mb} MB of log prose)", cpu[True], cpu[False]))
    rows.append(_row(f"a real task, wall ({mb} MB)", wall[True], wall[False]))
    return "\n".join(
        [
            "## Redaction: what secrets never written cost (issue 73)",
            "",
            f"Written by `python bench/redact.py --mb {mb} --rounds {rounds} --write` on {machine_line()}; "
            f"ms per MB of a task's output, median (min–max) over {rounds} rounds; the environment of an agent's "
            "run (4 secret-named variables besides PATH and HOME), a secret every 256 KiB. "
            f"Load average (1/5/15 min) before: {before}, after: {_load()}.",
            "",
            table(["output", "ms / MB, redaction off", "ms / MB, on", "ms / MB added"], rows),
            "",
            "Off: the attempt's logs are given a stream that hands the bytes on as they come (the "
            "pipe, the log file and the lines to the observer still cost what they cost). The redactor "
            "is one compiled alternation (`orchestrator/redaction.py`); its cost grows with how often a "
            "character that may start a secret comes, not with the number of secrets.",
        ]
    )


def section_of(path: Path) -> str | None:
    """This benchmark's section of the report at ``path``, markers included (``run.py`` keeps it)."""
    return marked_section(path, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=32, help="MB the real task prints (default 32)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = measure(args.mb, args.rounds)
    print(text)
    if args.write:
        put_marked_section(Path(__file__).resolve().parent / "RESULTS.md", BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
