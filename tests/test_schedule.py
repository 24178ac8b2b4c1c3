"""``orchestrator schedule``: runs started by the machine's own cron.

The real ``crontab`` program edits this user's real crontab (put back byte for byte however each
test ends, a kill -9 included: ``crontab_guard``), and one test starts Debian's real cron daemon
and waits for it to fire a schedule. Those need cron installed (``.ci/run`` installs it) and, for
the daemon, root; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import crontab_guard
import pytest
from runner_helpers import Spec, cli, cli_in_process, kill_attempts, parse_events, start, wait_until, write_plan

from orchestrator.plan.config import cron
from orchestrator.run.launch.crontab import BEGIN, END
from orchestrator.state.health import check
from orchestrator.state.workspace import Workspace

HAS_CRONTAB = shutil.which("crontab") is not None
CRON_DAEMON = shutil.which("cron") or ("/usr/sbin/cron" if os.path.exists("/usr/sbin/cron") else None)
needs_crontab = pytest.mark.skipif(not HAS_CRONTAB, reason="crontab is not installed (apt-get install cron)")


def _crontab(*args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["crontab", *args], input=text, capture_output=True, text=True, check=False, timeout=30)


def _read_crontab() -> str | None:
    done = _crontab("-l")
    return done.stdout if done.returncode == 0 else None


@pytest.fixture
def user_crontab() -> Iterator[None]:
    """This user's crontab, as it was, put back after the test however it ends, a kill -9 of the
    session by the next test that asks for it (``crontab_guard``); a crontab with a schedule of
    its own in it is left alone: the test is skipped."""
    crontab_guard.put_back_leftover()
    before = _read_crontab()
    if before is not None and BEGIN in before:
        pytest.skip("this user's crontab already has an orchestrator block: not touched by the tests")
    with crontab_guard.kept(before):
        yield


# --- the expression --------------------------------------------------------------------------------


def test_cron_expressions_fire_when_cron_fires_them() -> None:
    moment = dt.datetime(2026, 11, 25, 6, 40)  # a Wednesday
    daily = cron.parse("0 2 * * *")
    assert daily.previous(moment) == dt.datetime(2026, 11, 25, 2, 0)
    assert daily.following(moment) == dt.datetime(2026, 11, 26, 2, 0)
    office = cron.parse("*/15 9-17 * * mon-fri")
    assert office.previous(moment) == dt.datetime(2026, 11, 24, 17, 45)
    assert office.following(dt.datetime(2026, 11, 28, 12, 0)) == dt.datetime(2026, 11, 30, 9, 0)  # Sat -> Mon
    # Both day fields restricted: either one fires (the 1st, or any Sunday, given as 7).
    either = cron.parse("0 0 1 * 7")
    assert either.following(moment) == dt.datetime(2026, 11, 29, 0, 0)
    assert either.following(dt.datetime(2026, 11, 29, 1, 0)) == dt.datetime(2026, 12, 1, 0, 0)
    assert cron.parse("@daily").text == "0 0 * * *"
    assert cron.parse("0 0 29 feb *").following(moment) == dt.datetime(2028, 2, 29, 0, 0)


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("61 * * * *", "minute '61': 61 is out of range 0-59"),
        ("* * *", "3 fields where cron wants five fields"),
        ("0 2 * * * *", "6 fields"),
        ("5/15 * * * *", "write 5-59/15"),
        ("0 0 30 2 *", "it never fires"),
        ("@reboot", "@reboot is no time of day"),
        ("@nightly", "@nightly is not a cron shorthand"),
        ("0 9-5 * * *", "the range 9-5 runs backwards"),
        ("*/0 * * * *", "the step after / must be a whole number, 1 or more"),
        ("0 2 * * L", "'L' is not a number or a name such as mon"),
    ],
)
def test_a_bad_expression_says_what_is_wrong(expression: str, said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("*", r"\*").replace("(", r"\(")):
        cron.parse(expression)


# --- add, list, remove -------------------------------------------------------------------------------


@needs_crontab
def test_a_bad_cron_expression_is_refused_with_one_line_and_nothing_written(tmp_path: Path, user_crontab: None) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    before = _read_crontab()
    done = cli(tmp_path, "schedule", "add", ".orchestrator", "--cron", "0 25 * * *")
    assert done.code == 2
    assert done.stderr.strip().splitlines() == [
        "--cron '0 25 * * *': hour '25': 25 is out of range 0-23 — nothing was written"
    ]
    assert _read_crontab() == before
    assert not (tmp_path / ".orchestrator" / "state" / "schedule.json").exists()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text("## Task Decomposition\n| Task ID |\n|---|\n| T-01 |\n")
    refused = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", "--json")  # a plan that would fail nightly
    assert refused.code == 2 and json.loads(refused.stdout)["problems"]
    assert _read_crontab() == before


@needs_crontab
def test_the_users_own_crontab_lines_are_kept_byte_for_byte(tmp_path: Path, user_crontab: None) -> None:
    mine = 'MAILTO=""\n# my backups\n\n15 3 * * * tar czf /tmp/b.tgz /etc  # 100% mine\n*/5 * * * *\techo tab\n'
    assert _crontab("-", text=mine).returncode == 0
    one, two = tmp_path / "one", tmp_path / "two"
    for project in (one, two):
        write_plan(project, [Spec("T-01", "echo one")])
    added = cli(one, "schedule", "add", "--cron", "0 2 * * *", "--json")
    assert added.code == 0, added.stderr
    assert json.loads(added.stdout)["cron"] == "0 2 * * *"
    text = _read_crontab()
    assert text is not None and text.startswith(mine) and text.endswith(f"{END}\n")
    # The user writes lines of their own after the block; a second schedule keeps them, and the first.
    later = "# added after\n30 4 * * 1 echo monday\n"
    assert _crontab("-", text=text + later).returncode == 0
    assert cli(one, "schedule", "add", str(two / ".orchestrator"), "--cron", "@hourly", "--keep-done").code == 0
    listed = json.loads(cli_in_process(one, "schedule", "list", "--json").stdout)["schedules"]
    assert [(s["workspace"], s["cron"]) for s in listed] == [
        (str((one / ".orchestrator").resolve()), "0 2 * * *"),
        (str((two / ".orchestrator").resolve()), "0 * * * *"),
    ]
    line = next(line for line in (_read_crontab() or "").splitlines() if "schedule fire" in line)
    assert f"{os.path.realpath(one)} &&" in line and "HOME=" in line and "PATH=" in line
    assert "schedule fire --keep-done " in (_read_crontab() or "") and "--keep-done" not in line
    assert line.endswith(f">> {(one / '.orchestrator' / 'logs' / 'schedule.log').resolve()} 2>&1")
    assert cli(one, "schedule", "remove").code == 0
    assert cli(one, "schedule", "remove", str(two)).code == 0
    assert _read_crontab() == mine + later  # the block gone, every line of the user's as it was
    again = cli(one, "schedule", "remove")
    assert again.code == 2 and "no schedule for it" in again.stderr


@needs_crontab
def test_a_crontab_changed_while_a_schedule_is_added_loses_neither_change(tmp_path: Path, user_crontab: None) -> None:
    """Between ``schedule add``'s read and its write, the user saves a line of their own (a fake
    ``crontab`` that does the save at the moment of the second read): the line is kept."""
    assert _crontab("-", text="# mine\n").returncode == 0
    real = shutil.which("crontab")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "crontab"
    count = tmp_path / "reads"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'if [ "$1" = -l ]; then echo x >> {count}; fi\n'
        f'if [ "$1" = -l ] && [ "$(wc -l < {count})" = 2 ]; then\n'
        f'  {{ {real} -l; echo "0 5 * * * echo saved-meanwhile"; }} | {real} -\n'
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", env={"PATH": path})
    assert done.code == 0, done.stderr
    text = _read_crontab() or ""
    assert text.startswith("# mine\n0 5 * * * echo saved-meanwhile\n"), text
    assert "schedule fire" in text
    assert count.read_text().count("x") >= 3  # read, read again (changed: started over), read...


def _fake_crontab(tmp_path: Path) -> dict[str, str]:
    """A ``crontab`` on PATH that keeps the table in a file of the test's (``crontab.txt``): the
    user's real crontab is never touched, and no cron is needed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "crontab.txt"
    fake = bin_dir / "crontab"
    fake.write_text(
        "#!/bin/bash\n"
        'case "$1" in\n'
        f'  -l) if [ -f {table} ]; then cat {table}; else echo "no crontab for $USER" >&2; exit 1; fi ;;\n'
        f"  -r) rm -f {table} ;;\n"
        f"  -) cat > {table} ;;\n"
        '  *) echo "fake crontab: $*" >&2; exit 2 ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "config")}


_EDITS_THE_CRONTAB = """
import time
from pathlib import Path

from crontab_guard import read, write
from test_schedule import user_crontab  # (the fixture)


def test_edits_it(user_crontab: None) -> None:
    write((read() or "") + "# >>> orchestrator schedule\\n* * * * * true\\n# <<< orchestrator schedule\\n")
    Path("edited").touch()
    if Path("fail").exists():
        raise RuntimeError("failed mid-way")
    time.sleep(120)


def test_finds_it_as_it_was(user_crontab: None) -> None:
    assert read() == "# mine\\n"
"""


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param("failure", id="a-failure"),
        pytest.param(signal.SIGTERM, id="sigterm"),
        pytest.param(signal.SIGHUP, id="sighup"),
        pytest.param(signal.SIGKILL, id="kill-9-then-the-next-session"),
    ],
)
def test_a_test_that_edits_the_users_crontab_puts_it_back_however_it_ends(
    tmp_path: Path, ending: str | signal.Signals
) -> None:
    """A session of tests stopped in the middle of one that edits the crontab (a CI's timeout,
    a closed terminal, a kill -9) left its schedule there, firing every minute. Here a pytest
    session with the ``user_crontab`` fixture edits a crontab (a fake one) and ends each way."""
    env = {**os.environ, **_fake_crontab(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    table = tmp_path / "crontab.txt"
    table.write_text("# mine\n")
    (tmp_path / "test_child.py").write_text(_EDITS_THE_CRONTAB)
    if ending == "failure":
        (tmp_path / "fail").touch()
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_child.py"]
    child = subprocess.Popen([*argv, "-k", "edits_it"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: (tmp_path / "edited").exists() or child.poll() is not None, "the test's edit", 60)
        assert "orchestrator schedule" in table.read_text()
        if isinstance(ending, signal.Signals):
            child.send_signal(ending)
        said = child.communicate(timeout=60)[0].decode()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if ending == signal.SIGKILL:
        assert "orchestrator schedule" in table.read_text()  # nothing runs at a kill -9...
        after = subprocess.run([*argv, "-k", "as_it_was"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=60, check=False)  # fmt: skip
        assert after.returncode == 0, after.stdout + after.stderr  # ...the next session puts it back first
    assert table.read_text() == "# mine\n", said
    assert not (tmp_path / "state" / "orchestrator-tests" / "crontab.json").exists()


def test_a_crontab_whose_last_line_has_no_newline_gets_one_and_add_says_so_once(tmp_path: Path) -> None:
    """Some crontabs (cronie's, one written by hand) end without a newline; Debian's `crontab`
    refuses to install such a text, and its cron ignores such a last line. `schedule add` wrote
    one after it silently, changing a byte of the user's file: it says so, once."""
    env = _fake_crontab(tmp_path)
    table = tmp_path / "crontab.txt"
    mine = 'MAILTO=""\n15 3 * * * echo mine'  # (no newline at its end)
    table.write_text(mine)
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    said = (
        "your crontab's last line had no newline at its end: one was added (Debian's cron ignores a last line "
        "without one)"
    )
    first = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", env=env)
    assert first.code == 0, first.stderr
    assert first.stdout.count(said) == 1, first.stdout
    text = table.read_text()
    assert text.startswith(mine + "\n" + BEGIN) and text.endswith(f"{END}\n")
    again = cli(tmp_path, "schedule", "add", "--cron", "0 3 * * *", "--json", env=env)
    assert again.code == 0 and json.loads(again.stdout)["newline_added"] is False and said not in again.stderr
    # Lines of the user's after the block, the last with no newline: ended too, and said.
    table.write_text(table.read_text() + "30 4 * * 1 echo monday")
    third = cli(tmp_path, "schedule", "add", "--cron", "0 4 * * *", "--json", env=env)
    assert json.loads(third.stdout)["newline_added"] is True
    assert table.read_text().endswith("30 4 * * 1 echo monday\n")
    assert cli(tmp_path, "schedule", "remove", env=env).code == 0
    assert table.read_text() == mine + "\n30 4 * * 1 echo monday\n"


_PARAMS = """---
backend: shell
params:
  repo:
    description: the repository to audit
---
# Plan

## Task Decomposition
| Task ID | Task Name | Description | Dependencies | Command |
|---|---|---|---|---|
| T-01 | Audit | count files | None | `ls {{ params.repo }}` |
"""


def test_add_refuses_a_plan_every_firing_would_refuse_and_keeps_its_params(tmp_path: Path) -> None:
    env = _fake_crontab(tmp_path)
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(_PARAMS, encoding="utf-8")
    # A required parameter with no value: every firing would exit 2. Refused now, in one line.
    done = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", env=env)
    assert done.code == 2, done.stdout
    assert done.stderr.strip().splitlines() == [
        ".orchestrator/master_plan.md:4: parameter 'repo' (the repository to audit) has no default and no value — "
        "give one with `schedule add --param repo=…` or a default — nothing was scheduled"
    ]
    assert not (tmp_path / "crontab.txt").exists()
    assert not (tmp_path / ".orchestrator" / "state").exists()
    # What validate refuses (an unknown backend): refused too, the crontab unchanged.
    plan.write_text(_PARAMS.replace("backend: shell", "backend: nosuch"), encoding="utf-8")
    done = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", "--param", "repo=.", env=env)
    assert done.code == 2 and "unknown backend 'nosuch'" in done.stderr, done.stderr
    assert not (tmp_path / "crontab.txt").exists()
    # Given with --param: scheduled, the value kept for every firing, which runs with it.
    plan.write_text(_PARAMS, encoding="utf-8")
    done = cli(tmp_path, "schedule", "add", "--cron", "0 2 * * *", "--param", "repo=bin", env=env)
    assert done.code == 0, done.stderr
    assert "schedule fire" in (tmp_path / "crontab.txt").read_text()
    kept = json.loads((tmp_path / ".orchestrator" / "state" / "params.json").read_text())
    assert kept["params"] == {"repo": "bin"}
    # No notify target in the plan or the user's config: said, in one line, not an error.
    told = [line for line in done.stderr.splitlines() if "notify" in line]
    assert len(told) == 1 and "told only by `orchestrator check` and `orchestrator history`" in told[0]
    fired = cli(tmp_path, "schedule", "fire", env=env)
    assert fired.code == 0, fired.stdout + fired.stderr
    assert "crontab" in cli_in_process(tmp_path, "output", "T-01").stdout  # `ls bin`: the fake crontab
    # With a notify target (the user's config), nothing is said of it.
    config = tmp_path / "config" / "orchestrator" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("notify: http://127.0.0.1:9/hook\n", encoding="utf-8")
    again = cli(tmp_path, "schedule", "add", "--cron", "0 3 * * *", env=env)
    assert again.code == 0, again.stderr
    assert "notify" not in again.stderr


# --- firing, and check as the heartbeat -------------------------------------------------------------


def test_a_firing_runs_the_plan_notifies_and_notes_it_and_check_tells_a_failed_or_overdue_one(tmp_path: Path) -> None:
    notified = tmp_path / "notified.json"
    settings = {"notify": [{"command": f"cat > {notified}", "events": ["run_finished"]}]}
    write_plan(tmp_path, [Spec("T-01", "echo one; exit 1")], settings)
    ws = Workspace.find(tmp_path / ".orchestrator")
    record = ws.state_dir / "schedule.json"
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"cron": "0 2 * * *", "added": time.time() - 60, "skips": 0}))
    fired = cli(tmp_path, "schedule", "fire")
    assert fired.code == 1
    assert "scheduled run of" in fired.stdout and "the scheduled run exited 1" in fired.stdout
    kept = json.loads(record.read_text())
    assert kept["exit_code"] == 1 and kept["finished"] >= kept["fired"]
    assert json.loads(notified.read_text())["event"] == "run_finished"  # the scheduled run's end notified
    report = json.loads(cli_in_process(tmp_path, "check", "--json").stdout)["workspaces"][0]
    kinds = [f["kind"] for f in report["findings"]]
    assert "schedule_failed" in kinds and "failed" in kinds
    assert report["schedule"]["cron"] == "0 2 * * *" and report["schedule"]["exit_code"] == 1
    # Fixed, and fired again: well. Then two days with no firing: overdue, a second day's 02:00 missed.
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(
        (tmp_path / ".orchestrator" / "master_plan.md").read_text().replace("exit 1", "exit 0")
    )
    assert cli(tmp_path, "schedule", "fire").code == 0
    assert check(ws).ok
    # Each firing is a fresh run of the whole plan, as a scheduled workflow is; --keep-done runs what `run` would.
    again = cli(tmp_path, "schedule", "fire")
    assert again.code == 0 and "▶ run: 1 to run, 0 already done" in again.stdout, again.stdout
    kept = cli(tmp_path, "schedule", "fire", "--keep-done")
    assert kept.code == 0 and "▶ run: 0 to run, 1 already done" in kept.stdout, kept.stdout
    streamed = cli(
        tmp_path, "schedule", "fire", "--json"
    )  # the run's events alone on stdout; the log's lines on stderr
    assert parse_events(streamed.stdout)[-1]["event"] == "run_finished" and "scheduled run of" in streamed.stderr
    later = time.time() + 2 * 86400
    health = check(ws, now=later)
    assert [f.kind for f in health.findings] == ["schedule_overdue"]
    assert "was due at" in health.findings[0].message and "is cron running?" in health.findings[0].message
    text = cli_in_process(tmp_path, "check")
    assert text.code == 0 and "scheduled '0 2 * * *', next at" in text.stdout


def test_a_firing_that_finds_the_run_before_it_going_starts_no_second_runner(tmp_path: Path) -> None:
    """What cron runs (``schedule fire WORKSPACE``) while a run holds the workspace: exit 3, one
    line saying so, counted as a skip; the running one goes on, the only run started."""
    write_plan(tmp_path, [Spec("T-01", "sleep 120")], {"timeout": 200})
    ws = tmp_path / ".orchestrator"
    runner = start(tmp_path)
    try:
        wait_until(lambda: "task_started" in [e["event"] for e in runner.events()], "T-01 to start", timeout=60)
        fired = cli(tmp_path, "schedule", "fire", str(ws.resolve()))
        assert fired.code == 3, fired.stdout + fired.stderr
        lines = fired.stdout.strip().splitlines()
        assert len(lines) == 2 and lines[0].endswith(f"scheduled run of {ws.resolve()}"), lines
        assert lines[1].startswith("skipped: another run") and lines[1].endswith(
            "no second runner started; this firing exits 3"
        ), lines[1]
        record = json.loads((ws / "state" / "schedule.json").read_text())
        assert record["skips"] == 1 and record["skipped"] >= record["fired"]
        assert [e["event"] for e in _events(ws)].count("run_started") == 1
        assert runner.process.poll() is None, "the run going on goes on"
    finally:
        runner.stop_all()


# --- the real cron daemon ----------------------------------------------------------------------------


@pytest.fixture
def cron_daemon() -> Iterator[Callable[[], None]]:
    """Starts Debian's cron once the test has written its crontab: a daemon loads every crontab as
    it starts, where one running already may miss a change made within the second it last looked
    (it compares the spool's modification time, to the second). The machine's own, if one runs,
    is used as it is; else one is started here (as root only), and stopped after."""
    if CRON_DAEMON is None or not HAS_CRONTAB:
        pytest.skip("cron is not installed (apt-get install cron; .ci/run installs it)")
    running = any(_comm(pid) in {"cron", "crond"} for pid in os.listdir("/proc") if pid.isdigit())
    if not running and os.geteuid() != 0:
        pytest.skip("no cron daemon runs, and only root can start one here")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        if not running:
            started.append(
                subprocess.Popen([str(CRON_DAEMON), "-f"], start_new_session=True, stderr=subprocess.DEVNULL)
            )

    try:
        yield start
    finally:
        for daemon in started:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=10)


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.timeout(240)
@needs_crontab
def test_cron_fires_a_schedule_and_a_firing_while_its_run_goes_starts_no_second_runner(
    tmp_path: Path, user_crontab: None, cron_daemon: Callable[[], None]
) -> None:
    mine = '# the user\'s own\nMAILTO=""\n'
    assert _crontab("-", text=mine).returncode == 0
    script = 'echo "$$" > started; sleep 120'
    write_plan(tmp_path, [Spec("T-01", script)], {"timeout": 200})
    ws = tmp_path / ".orchestrator"
    try:
        assert cli(tmp_path, "schedule", "add", "--cron", "* * * * *").code == 0
        cron_daemon()
        wait_until(lambda: (tmp_path / "started").exists(), "cron to fire the schedule", timeout=130)
        log = ws / "logs" / "schedule.log"
        assert "scheduled run of" in log.read_text()
        # The next firing, while the run goes on: the line cron runs, run now as cron would run it.
        line = next(line for line in (_read_crontab() or "").splitlines() if "schedule fire" in line)
        command = line.split(None, 5)[5]
        done = subprocess.run(["/bin/sh", "-c", command], cwd="/", timeout=60, check=False)
        assert done.returncode == 3
        said = log.read_text()
        assert "skipped: another run" in said and "no second runner started" in said
        record = json.loads((ws / "state" / "schedule.json").read_text())
        assert record["skips"] == 1 and record["skipped"] >= record["fired"] - 1
        runners = [e for e in _events(ws) if e["event"] == "run_started"]
        assert len(runners) == 1
    finally:
        cli(tmp_path, "schedule", "remove")
        _stop_runner(ws)
        kill_attempts(tmp_path)
    assert _read_crontab() == mine


def _events(ws: Path) -> list[dict[str, object]]:
    path = ws / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _stop_runner(ws: Path) -> None:
    for event in _events(ws):
        pid = event.get("pid")
        if event["event"] == "run_started" and isinstance(pid, int):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            wait_until(functools.partial(_gone, pid), "the runner to stop", 30)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
