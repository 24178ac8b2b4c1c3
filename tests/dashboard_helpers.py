"""Shared by the dashboard tests, and the tool that makes README's screenshot.

``Served`` starts ``python -m orchestrator serve --port 0 --json`` as a real subprocess and reads
the URL it prints; ``http_get`` and ``Stream`` talk to it over real HTTP on loopback (the raw
path goes out as written: ``..`` is not tidied away by the client); ``chromium`` opens the
system's headless Chromium (Debian ``chromium`` and ``chromium-driver``) through selenium; and
``watch_a_run`` is the whole story the browser test tells: a real run of a small shell plan, one
task waiting for a file, the page loaded while it runs, a screenshot, the file released, the page
turning the task completed without a reload.

    python tests/dashboard_helpers.py docs/dashboard.png

runs ``watch_a_run`` in a temporary directory and keeps its screenshot: docs/dashboard.png is made
by exactly the code the test runs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLI = (sys.executable, "-m", "orchestrator")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HANG_GUARD = 60.0  # seconds any one wait may take before the test fails as hung
# Without the background-networking flags, Chromium here opens connections to Google's services
# that are refused many at a time; a fresh profile keeps one run from seeing another's.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
WINDOW = (1360, 1060)  # the screenshot's size


# --- the server -------------------------------------------------------------------------------


@dataclass(slots=True)
class Served:
    """A running ``orchestrator serve``: the JSON line it printed once listening."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]
    stderr: Path

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def port(self) -> int:
        return int(self.info["port"])

    @property
    def token(self) -> str:
        """The token its URL carries (actions need it)."""
        return self.url.partition("?token=")[2]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal it and wait for its exit code (killed, and the test failed, if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("orchestrator serve did not stop on its signal") from None
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def errors(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def serve(
    project: Path, *args: str, env: Mapping[str, str] | None = None, expect_start: bool = True
) -> Served | subprocess.CompletedProcess[str]:
    """``orchestrator serve --port 0 --json ARGS`` in ``project``: a ``Served`` once it printed its
    URL, or (``expect_start=False``) the finished process of a serve that refused to start."""
    command = [*CLI, "serve", "--json", *args]
    if "--port" not in args:
        command[4:4] = ["--port", "0"]
    environment = {**os.environ, **(env or {})}
    if not expect_start:
        return subprocess.run(
            command, cwd=project, env=environment, capture_output=True, text=True, timeout=HANG_GUARD, check=False
        )
    stderr = project / f"serve-{time.monotonic_ns()}.err"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            command, cwd=project, env=environment, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], HANG_GUARD)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        process.wait()
        raise AssertionError(f"orchestrator serve printed no URL: {stderr.read_text(errors='replace')}")
    return Served(process, json.loads(line), stderr)


@contextlib.contextmanager
def served(project: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    """``serve``, stopped (SIGTERM) on the way out; it must exit 0."""
    found = serve(project, *args, env=env)
    assert isinstance(found, Served)
    try:
        yield found
    finally:
        code = found.stop()
        assert code == 0, f"serve exited {code}: {found.errors()}"


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, method: str = "GET", body: bytes | None = None
) -> Reply:
    """One request to 127.0.0.1:``port``, ``path`` sent exactly as written (with ``body``, if given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD)
    try:
        named = {name.lower() for name in (headers or {})}
        connection.putrequest(method, path, skip_host="host" in named, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and "content-length" not in named:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@dataclass(slots=True)
class Stream:
    """A reader of the server-sent events of ``/api/live`` (the page's stream), over a real socket."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    pending: list[tuple[str, str]] = field(default_factory=list)
    last_id: str | None = None  # the ``id:`` of the last message read (the event log's stream gives one)

    @classmethod
    def open(cls, port: int, path: str = "/api/live", headers: Mapping[str, str] | None = None) -> Stream:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD)
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        assert response.status == 200, (response.status, response.read())
        assert response.getheader("content-type", "").startswith("text/event-stream")
        return cls(connection, response)

    def next(self) -> tuple[str, Any]:
        """The next message: its event name and its data, parsed (comments and ``retry`` skipped)."""
        kind = "message"
        data: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode("utf-8").rstrip("\n")
            if not line:
                if data and kind != "clock":  # (the server's clock, sent as a stream opens: for the page)
                    return kind, json.loads("\n".join(data))
                kind, data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "id":
                self.last_id = value
            elif name == "data":
                data.append(value)

    def until(self, wanted: Callable[[str, Any], bool]) -> tuple[str, Any]:
        """Messages are read until one is ``wanted`` (bounded by the socket's timeout)."""
        while True:
            kind, data = self.next()
            if wanted(kind, data):
                return kind, data

    def close(self) -> None:
        self.connection.close()


# --- the browser -----------------------------------------------------------------------------


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (
            f"no headless Chromium here ({', '.join(missing)} missing): install the Debian packages "
            "chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


@contextlib.contextmanager
def chromium(profile: Path, window: tuple[int, int] = WINDOW) -> Iterator[Any]:
    """The system's headless Chromium driven by its chromedriver (selenium downloads nothing: both
    paths are given), with a fresh profile in ``profile``, its window ``window`` (width, height) big."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(HANG_GUARD)
        yield driver
    finally:
        driver.quit()


# --- the story the browser test tells ----------------------------------------------------------

DEMO_PLAN = """\
---
backend: shell
max_parallel: 3
retries: 0
timeout: 300
inactivity_timeout: none
---
# Tidy the billing service

## Original Request
> Survey the billing service, check its style and dependencies, get the owner's sign-off, then
> write one report and publish it.

## Task Decomposition
| Task ID | Task Name | Description | Dependencies | Priority |
|---------|-----------|-------------|--------------|----------|
| T-01 | Survey the code | List the modules and their size | None | P1 |
| T-02 | Check the style | Lint every module | T-01 | P2 |
| T-03 | Wait for sign-off | Wait until the owner signs off | T-01 | P1 |
| T-04 | Audit dependencies | List outdated packages | T-01 | P2 |
| T-05 | Write the report | One report of every finding | T-02, T-03, T-04 | P1 |
| T-06 | Publish | Put the report where the team reads it | T-05 | P3 |

## Task Details

### T-01 Survey the code
```bash
echo "billing/: 14 modules, 3,208 lines"
```

### T-02 Check the style
```bash
echo "billing/invoice.py:88: line too long"
echo "billing/tax.py:12: unused import"
```

### T-03 Wait for sign-off
```bash
echo "asked the owner for a sign-off; waiting for the file signoff"
for step in 1 2 3; do echo "step $step: still waiting"; done
while [ ! -f signoff ]; do sleep 0.1; done
echo "signed off by $(cat signoff)"
```

### T-04 Audit dependencies
```bash
echo "requests 2.25 -> 2.32"
```

### T-05 Write the report
```bash
echo "# Billing report: 2 style findings, 1 outdated package, signed off"
```

### T-06 Publish
```bash
echo "published"
```
"""

# What another command (the channels an agent uses to tell the others something) appends to the
# event log while the run goes on: kinds the dashboard knows nothing about, shown as they come.
CHANNEL_EVENTS: list[dict[str, Any]] = [
    {"event": "discover", "run": None, "task": "T-02", "text": "billing/tax.py and billing/vat.py duplicate rounding"},
    {
        "event": "share",
        "run": None,
        "task": "T-04",
        "message": "requests is pinned in two places: setup.cfg, Dockerfile",
    },
    {"event": "custom_signal", "run": None, "level": 3, "origin": "cron"},
]


def channel_events() -> list[dict[str, Any]]:
    """``CHANNEL_EVENTS``, stamped with the time now, as their writers would."""
    from datetime import datetime

    now = datetime.now().astimezone().isoformat(timespec="milliseconds")
    return [{**event, "time": now} for event in CHANNEL_EVENTS]


CONTEXT_NOTE = "# Rounding\n\nbilling/tax.py and billing/vat.py round half-up in two different ways.\n"


@dataclass(slots=True)
class Watched:
    """What the browser saw, step by step."""

    running_in_table: bool = False
    running_in_graph: bool = False
    generic_events: list[str] = field(default_factory=list)
    context_files: list[str] = field(default_factory=list)
    log_tail: str = ""
    completed_in_table: bool = False
    completed_in_graph: bool = False
    reloaded: bool = True
    run_pill: str = ""
    run_exit: int | None = None
    serve_exit: int | None = None
    screenshot: Path | None = None
    durations: dict[str, str] = field(default_factory=dict)  # each task's Duration cell at the end


def _wait(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, HANG_GUARD, poll_frequency=0.1).until(condition, f"the page never showed {what}")


def task_state(driver: Any, task: str) -> tuple[str | None, str | None]:
    """A task's state as the table row and the graph box show it."""
    found = driver.execute_script(
        "const row = document.querySelector(`#tasks tr[data-task='${arguments[0]}']`);"
        "const node = document.querySelector(`#graph g.node[data-task='${arguments[0]}']`);"
        "return [row ? row.dataset.state : null, node ? node.getAttribute('class') : null];",
        task,
    )
    return found[0], found[1]


def hidden_actions(driver: Any) -> list[str]:
    """The task table's buttons a person cannot see without scrolling sideways: each one whose
    box lies outside the window or outside the table's own scrolling panel, and the panel itself
    when it is wider than it shows (``"scrolls sideways"``)."""
    found: list[str] = driver.execute_script(
        """
        const panel = document.querySelector('.table-panel .scroll');
        const box = panel.getBoundingClientRect();
        const hidden = panel.scrollWidth > panel.clientWidth
            ? [`the table scrolls sideways: ${panel.scrollWidth} px in ${panel.clientWidth}`] : [];
        for (const button of document.querySelectorAll('#tasks button.action')) {
          const r = button.getBoundingClientRect();
          if (r.width === 0 || r.left < Math.max(0, box.left) || r.right > Math.min(window.innerWidth, box.right)) {
            hidden.push(`${button.closest('tr').dataset.task} ${button.textContent} at ${r.left}-${r.right}`);
          }
        }
        return hidden;
        """
    )
    return found


def _graph_shows_running_or_over(task: str) -> Callable[[Any], str | None]:
    """``"graph"`` once the graph's box shows ``task`` running, ``"over"`` once its row says it
    runs no more; None meanwhile."""

    def look(driver: Any) -> str | None:
        row, node = task_state(driver, task)
        if "state-running" in (node or ""):
            return "graph"
        return "over" if row != "running" else None

    return look


def _shows(task: str, state: str) -> Callable[[Any], bool]:
    return lambda driver: task_state(driver, task)[0] == state


def watch_a_run(project: Path, screenshot: Path) -> Watched:
    """Serve ``project``, run its plan (``DEMO_PLAN``), watch it in headless Chromium; the
    screenshot is taken while T-03 waits for its sign-off."""
    from orchestrator.state import events

    seen = Watched()
    workspace = project / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "master_plan.md").write_text(DEMO_PLAN, encoding="utf-8")
    with served(project) as server, open(project / "run.out", "wb") as out:
        runner = subprocess.Popen(
            [*CLI, "run", "--json"], cwd=project, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            with chromium(project / "chromium-profile") as driver:
                driver.get(server.url)
                _wait(driver, lambda d: task_state(d, "T-03")[0] == "running", "T-03 running in the table")
                seen.running_in_table = True
                # The graph's box is drawn apart from the table's row: it must show T-03 running
                # before T-03 ends, not in the very instant the row did (a loaded machine's page
                # draws the two a moment apart).
                shown = _wait(driver, _graph_shows_running_or_over("T-03"), "T-03 in the graph")
                seen.running_in_graph = shown == "graph"
                for task in ("T-01", "T-02", "T-04"):
                    _wait(driver, _shows(task, "completed"), f"{task} completed")
                events.append(workspace / "state" / "events.jsonl", channel_events())
                (workspace / "context").mkdir(exist_ok=True)
                (workspace / "context" / "rounding.md").write_text(CONTEXT_NOTE, encoding="utf-8")
                _wait(
                    driver,
                    lambda d: all(e["event"] in d.find_element("id", "notable").text for e in CHANNEL_EVENTS),
                    "the channels' events",
                )
                seen.generic_events = driver.find_element("id", "notable").text.splitlines()
                _wait(driver, lambda d: "rounding.md" in d.find_element("id", "context").text, "context/rounding.md")
                seen.context_files = driver.find_element("id", "context").text.splitlines()
                driver.find_element("css selector", "#tasks tr[data-task='T-03']").click()
                _wait(driver, lambda d: "still waiting" in d.find_element("id", "detail-text").text, "T-03's log")
                seen.log_tail = driver.find_element("id", "detail-text").text
                driver.execute_script("window.sameDocument = true;")
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(screenshot))
                seen.screenshot = screenshot
                (project / "signoff").write_text("the billing owner\n", encoding="utf-8")
                _wait(driver, lambda d: task_state(d, "T-03")[0] == "completed", "T-03 completed")
                seen.completed_in_graph = "state-completed" in (task_state(driver, "T-03")[1] or "")
                seen.completed_in_table = True
                _wait(driver, lambda d: task_state(d, "T-06")[0] == "completed", "T-06 completed")
                _wait(driver, lambda d: "finished" in d.find_element("id", "run-state").text, "the run finished")
                seen.run_pill = driver.find_element("id", "run-state").text
                for row in driver.find_elements("css selector", "#tasks tr[data-task]"):
                    seen.durations[row.get_attribute("data-task")] = row.find_element("css selector", ".duration").text
                seen.reloaded = driver.execute_script("return window.sameDocument !== true;")
            seen.run_exit = runner.wait(timeout=HANG_GUARD)
        finally:
            if not (project / "signoff").exists():
                (project / "signoff").write_text("nobody: the test stopped\n", encoding="utf-8")
            if runner.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(runner.pid, signal.SIGTERM)
                runner.wait(timeout=HANG_GUARD)
    return seen


def main(argv: Sequence[str]) -> int:
    """Make the screenshot README shows: ``python tests/dashboard_helpers.py docs/dashboard.png``."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    reason = browser_missing()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    target = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "billing"
        project.mkdir()
        seen = watch_a_run(project, Path(tmp) / "dashboard.png")
        assert seen.screenshot is not None and not seen.reloaded and seen.run_exit == 0, seen
        shutil.copyfile(seen.screenshot, target)
    print(f"Wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
