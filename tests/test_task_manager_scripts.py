"""Scripts written for the task managers the product was conceived from (their ``tm`` tool) run
with only the command renamed: an empty plan to start from, ``add`` that never leaves ``$(...)``
empty, ``share``/``sync`` with a task and a text, their status words, ``list | wc -l``.

Real bash scripts and the real CLI, in real workspaces: what each command printed, and what it
wrote in master_plan.md and context/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from runner_helpers import cli

# The orchestrator this test runs, as the script's `orchestrator` command.
SHIM = f'orchestrator() {{ "{sys.executable}" -m orchestrator "$@"; }}\n'


def bash(project: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_TASK_ID", "ORCHESTRATOR_AGENT")}
    return subprocess.run(
        ["bash", "-c", SHIM + script],
        cwd=project,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def plan_text(project: Path) -> str:
    return (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")


def row(project: Path, task_id: str) -> list[str]:
    line = next(line for line in plan_text(project).splitlines() if line.startswith(f"| {task_id} "))
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_init_empty_gives_a_table_add_fills(tmp_path: Path) -> None:
    made = cli(tmp_path, "init", "--empty")
    assert made.code == 0, made.stderr
    assert 'Next: `orchestrator add "DESCRIPTION"` for each task' in made.stdout
    text = plan_text(tmp_path)
    assert "| Task ID |" in text and "| T-01 " not in text and "### T-01" not in text  # no sample tasks
    # Read as a plan with no tasks: list lists nothing, status says none.
    shown = cli(tmp_path, "list")
    assert (shown.code, shown.stdout, shown.stderr) == (0, "", "")
    assert json.loads(cli(tmp_path, "list", "--json").stdout) == {"tasks": []}
    assert cli(tmp_path, "status").code == 0
    # What would run it says what to do, in one line naming the table.
    for command in ("validate", "run"):
        refused = cli(tmp_path, command)
        assert refused.code == 2, refused.stderr
        assert refused.stderr.splitlines()[0] == (
            ".orchestrator/master_plan.md:19: the task table has no rows — add one row per task under the header, "
            'or `orchestrator add "DESCRIPTION"` for each'
        )
    first = cli(tmp_path, "add", "Build the authentication system", "-p", "high")
    assert (first.code, first.stdout) == (0, "T-01\n"), first.stderr
    second = cli(tmp_path, "add", "Design the database", "--depends-on", "T-01")
    assert (second.code, second.stdout) == (0, "T-02\n"), second.stderr
    assert row(tmp_path, "T-02")[:4] == ["T-02", "", "Design the database", "T-01"]
    assert cli(tmp_path, "validate").code == 0
    refused = cli(tmp_path, "init", "--empty", "--template", "api-endpoints", "elsewhere")
    assert refused.code == 2 and "--empty and --template cannot be combined" in refused.stderr


def test_add_without_a_command_on_the_shell_backend_makes_a_task_that_waits_for_one(tmp_path: Path) -> None:
    done = bash(
        tmp_path,
        """
        orchestrator init --empty --backend shell > /dev/null
        LINT=$(orchestrator add "Lint the code" 2> add.err)
        echo "id: [$LINT] exit: $?"
        TEST=$(orchestrator add "Run the tests" --depends-on "$LINT" --command 'echo tests >> work.txt')
        echo "blocked: $(orchestrator list --status blocked --format ids)"
        orchestrator run > run1.log 2>&1
        echo "run 1: $?"
        orchestrator update "$LINT" --command 'echo lint >> work.txt' 2> update.err
        orchestrator run > run2.log 2>&1
        echo "run 2: $?"
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["id: [T-01] exit: 0", "blocked: T-01"], done.stdout + done.stderr
    # One warning, on stderr, saying what it waits for and what gives it.
    assert (tmp_path / "add.err").read_text(encoding="utf-8") == (
        "⚠️ T-01 added to .orchestrator/master_plan.md with no command: a shell task runs one, so it waits "
        "(Blocked: no command yet) until `orchestrator update T-01 --command 'CMD'` gives it one\n"
    )
    # The first run held it and its dependent (exit 4: waiting for a person), the second ran both.
    run1 = (tmp_path / "run1.log").read_text(encoding="utf-8")
    assert lines[2] == "run 1: 4", run1
    assert "blocked: no command yet — `orchestrator update T-01 --command 'CMD'` releases it" in run1
    assert (tmp_path / "update.err").read_text(encoding="utf-8").endswith("T-01 updated in "
                                                                          ".orchestrator/master_plan.md: command, "
                                                                          "released\n")  # fmt: skip
    assert lines[3] == "run 2: 0", (tmp_path / "run2.log").read_text(encoding="utf-8")
    assert (tmp_path / "work.txt").read_text().split() == ["lint", "tests"]
    assert row(tmp_path, "T-01")[-2:] == ["", "`echo lint >> work.txt`"] or "`echo lint >> work.txt`" in row(
        tmp_path, "T-01"
    )
    # Released without a command, it is refused in one line saying how to give it one.
    assert cli(tmp_path, "add", "Deploy").code == 0
    refused = cli(tmp_path, "update", "T-03", "--status", "pending")
    assert refused.code == 2 and refused.stderr.count("\n") == 1
    assert "`orchestrator update T-03 --command 'CMD'`" in refused.stderr
    # spawn runs its task now: with no command it is still refused, nothing written.
    before = plan_text(tmp_path)
    spawned = cli(tmp_path, "spawn", "Now")
    assert spawned.code == 2 and "--command is missing" in spawned.stderr
    assert plan_text(tmp_path) == before


def on_a_terminal(project: Path, *args: str, **env: str) -> str:
    """What ``orchestrator ARGS`` prints with its stdout a pseudo-terminal (``gh``'s rule: the
    header and colours are for a person at one)."""
    import pty

    master, slave = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**clean, "TERM": "xterm", **env},
    )
    os.close(slave)
    written = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        written += data
    os.close(master)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return written.decode("utf-8").replace("\r\n", "\n")


def test_list_prints_a_header_and_colours_on_a_terminal_and_a_task_a_line_when_piped(tmp_path: Path) -> None:
    assert cli(tmp_path, "init", "--empty").code == 0
    assert cli(tmp_path, "add", "Design\tthe schema", "--assignee", "db_specialist", "--tag", "db").code == 0
    assert cli(tmp_path, "add", "Write the API", "--depends-on", "T-01", "-p", "high").code == 0
    # Piped: no header, a task a line, its fields between tabs (a tab in a title made a space).
    piped = cli(tmp_path, "list")
    assert piped.stdout == (
        "T-01\tpending\tP2\tdb_specialist\tdb\tDesign the schema\nT-02\twaiting\tP1\t-\t-\tWrite the API\n"
    )
    assert cli(tmp_path, "list", "--format", "simple").stdout == "T-01\tDesign the schema\nT-02\tWrite the API\n"
    assert cli(tmp_path, "list", "--format", "ids").stdout == "T-01\nT-02\n"
    assert json.loads(cli(tmp_path, "list", "--format", "json").stdout) == json.loads(
        cli(tmp_path, "list", "--json").stdout
    )
    counted = bash(tmp_path, "orchestrator list | wc -l; orchestrator list --status todo --format simple | wc -l")
    assert counted.stdout.split() == ["2", "2"]
    # On a terminal: a header, columns padded, the state coloured (none with NO_COLOR).
    shown = on_a_terminal(tmp_path, "list")
    assert shown.splitlines()[0].split() == ["ID", "STATUS", "PRIORITY", "ASSIGNEE", "TAGS", "NAME"]
    assert "T-01  \x1b[33mpending\x1b[0m  P2        db_specialist  db    Design the schema" in shown, shown
    plain = on_a_terminal(tmp_path, "list", NO_COLOR="1")
    assert "\x1b" not in plain and plain.splitlines()[1] == (
        "T-01  pending  P2        db_specialist  db    Design the schema"
    )
    assert on_a_terminal(tmp_path, "list", "--format", "simple") == "T-01  Design the schema\nT-02  Write the API\n"
    grouped = on_a_terminal(tmp_path, "list", "--group-by", "status", "--format", "ids")
    assert grouped == "status: pending (1)\nT-01\n\nstatus: waiting (1)\nT-02\n"
    assert cli(tmp_path, "list", "--group-by", "status", "--format", "ids").stdout == "pending\tT-01\nwaiting\tT-02\n"


def test_status_words_of_other_task_managers_name_states(tmp_path: Path) -> None:
    assert cli(tmp_path, "init", "--empty", "--backend", "shell").code == 0
    for args in (
        ("Done", "--command", "true"),
        ("Sleeps", "--command", "sleep 30"),
        ("After", "--depends-on", "T-02", "--command", "true"),
        ("Held",),
        ("Later", "--depends-on", "T-02", "--command", "true"),
    ):
        assert cli(tmp_path, "add", *args).code == 0
    assert cli(tmp_path, "cancel", "T-03").code == 0

    def ids(*words: str) -> list[str]:
        shown = cli(tmp_path, "list", "--format", "ids", *(part for word in words for part in ("--status", word)))
        assert shown.code == 0, shown.stderr
        return shown.stdout.split()

    # pending is what tm (and taskwarrior) mean by it: not started, a task waiting for its upstream
    # too; ready, the narrower set, is what may start now. Each task's own state is shown as it is.
    assert ids("pending") == ["T-01", "T-02", "T-05"]
    assert ids("ready") == ["T-01", "T-02"] and ids("waiting") == ["T-05"]
    assert ids("todo") == ids("pending") == ids("ready", "waiting")
    listed = json.loads(cli(tmp_path, "list", "--status", "pending", "--json").stdout)["tasks"]
    shown = {task["id"]: task["status"] for task in listed}
    assert shown == {"T-01": "pending", "T-02": "pending", "T-05": "waiting"}
    assert cli(tmp_path, "list", "--status", "pending").stdout.split("\n")[2].split("\t")[:2] == ["T-05", "waiting"]
    # open: every task not finished, the blocked one too (the cancelled one is finished).
    assert ids("open") == ["T-01", "T-02", "T-04", "T-05"]
    assert ids("cancelled") == ids("canceled") == ids("Canceled") == ["T-03"]
    assert ids("blocked") == ["T-04"]
    from runner_helpers import start, wait_until

    runner = start(tmp_path)
    try:
        wait_until(lambda: ids("in_progress") == ["T-02"], "T-02 to run")
        assert ids("in-progress") == ids("running") == ["T-02"]
        assert ids("done") == ids("completed") == ["T-01"]
        assert ids("todo,in_progress") == ["T-02", "T-05"]
        assert ids("open") == ["T-02", "T-04", "T-05"] and ids("ready") == []
        assert cli(tmp_path, "cancel", "T-02").code == 0
        runner.wait()
    finally:
        runner.cleanup()
    refused = cli(tmp_path, "list", "--status", "finished")
    assert refused.code == 2 and refused.stdout == ""
    assert refused.stderr == (
        "--status finished: not a status — use one of waiting, running, retrying, completed, failed, skipped, "
        "interrupted, cancelled, blocked, awaiting_approval, rejected, bypassed; or pending (not started, waiting "
        "included), ready (not started, nothing to wait for), todo (as pending), open (not finished), in_progress "
        "(running), done (completed), canceled (cancelled)\n"
    )
    # update --status takes them too: todo releases a held task as pending does.
    assert cli(tmp_path, "update", "T-04", "--command", "true").code == 0
    assert cli(tmp_path, "update", "T-04", "--status", "blocked", "--reason", "later").code == 0
    assert cli(tmp_path, "update", "T-04", "--status", "todo").code == 0
    assert ids("blocked") == []
    assert cli(tmp_path, "update", "T-04", "--status", "blocked", "--reason", "later").code == 0
    assert cli(tmp_path, "update", "T-04", "--status", "ready").code == 0
    assert ids("blocked") == []


def test_what_skill_md_says_counts_what_is_left_counts_a_held_task(tmp_path: Path) -> None:
    """SKILL.md's way to count what is left, run exactly as it is written: a task held by hand, and
    one added without its command, are left (`todo` counted neither: a loop "until it is 0" stopped
    with work left)."""
    skill = (Path(__file__).resolve().parent.parent / "SKILL.md").read_text(encoding="utf-8")
    found = re.search(r"`(orchestrator list [^`]*\| wc -l)` counts what is\s+left", skill)
    assert found is not None, "SKILL.md no longer says how to count what is left"
    command = found.group(1)
    assert cli(tmp_path, "init", "--empty", "--backend", "shell").code == 0
    assert cli(tmp_path, "add", "Build", "--command", "true").code == 0
    assert cli(tmp_path, "add", "Ship", "--depends-on", "T-01", "--command", "true").code == 0
    assert cli(tmp_path, "update", "T-02", "--status", "blocked", "--reason", "waiting for the designs").code == 0
    assert bash(tmp_path, command).stdout.split() == ["2"]
    ran = bash(tmp_path, f"orchestrator run > run.log 2>&1; echo $?; {command}")
    assert ran.stdout.split() == ["4", "1"], ran.stdout + ran.stderr  # T-02, held: left
    assert cli(tmp_path, "add", "Lint").code == 0  # (no command: it waits for one)
    assert bash(tmp_path, command).stdout.split() == ["2"]
    assert cli(tmp_path, "update", "T-02", "--status", "pending").code == 0
    assert cli(tmp_path, "update", "T-03", "--command", "true").code == 0
    ran = bash(tmp_path, f"orchestrator run > run.log 2>&1; echo $?; {command}")
    assert ran.stdout.split() == ["0", "0"], ran.stdout + ran.stderr


def test_share_sync_note_and_discover_take_a_task_and_a_text_and_say_who_wrote_them(tmp_path: Path) -> None:
    assert cli(tmp_path, "init", "--empty").code == 0
    assert cli(tmp_path, "add", "Build the API").code == 0
    assert cli(tmp_path, "add", "Build the UI", "--depends-on", "T-01").code == 0
    ctx = tmp_path / ".orchestrator" / "context"
    # sync TASK "TEXT" as share TASK "TEXT": the checkpoint is T-01's (it said "no such workspace").
    synced = cli(tmp_path, "sync", "T-01", "Week 1: the API", env={"ORCHESTRATOR_AGENT": "orchestrator"})
    assert (synced.code, synced.stdout) == (0, "Synced (T-01) → .orchestrator/context/sync.md\n"), synced.stderr
    assert cli(tmp_path, "sync", "Kick-off").code == 0  # one word: a milestone no task made, as before
    assert cli(tmp_path, "sync", ".orchestrator", "In the workspace named").code == 0
    sync = (ctx / "sync.md").read_text(encoding="utf-8")
    assert "· T-01 · sync · by orchestrator\n\nWeek 1: the API\n" in sync
    assert " · sync\n\nKick-off\n" in sync and " · sync\n\nIn the workspace named\n" in sync
    # --as names who wrote it over $ORCHESTRATOR_AGENT; without either, nobody is named.
    assert cli(tmp_path, "share", "T-01", "JWT auth", "--as", "db_specialist").code == 0
    assert cli(tmp_path, "share", "T-01", "PostgreSQL").code == 0
    shared = (ctx / "shared.md").read_text(encoding="utf-8")
    assert "· T-01 · share · by db_specialist\n\nJWT auth\n" in shared and "· T-01 · share\n\nPostgreSQL\n" in shared
    data = json.loads(cli(tmp_path, "context", "T-02", "--json").stdout)
    assert [(e["text"], e["author"]) for e in data["shared"]] == [("JWT auth", "db_specialist"), ("PostgreSQL", None)]
    events_file = tmp_path / ".orchestrator" / "state" / "events.jsonl"
    logged = [json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines()]
    assert [e.get("author") for e in logged if e["event"] == "shared"] == ["db_specialist", None]
    # Inside a task ($ORCHESTRATOR_TASK_ID set, as in every attempt) the task may be left out.
    inside = {"ORCHESTRATOR_TASK_ID": "T-02", "ORCHESTRATOR_AGENT": "Agent-02"}
    for kind in ("share", "note", "discover"):
        done = cli(tmp_path, kind, f"{kind} from inside", env=inside)
        assert done.code == 0 and "(T-02)" in done.stdout, done.stderr
    assert cli(tmp_path, "share", ".orchestrator", "named workspace, task from inside", env=inside).code == 0
    data = json.loads(cli(tmp_path, "context", "T-02", "--json").stdout)
    assert [(e["task"], e["author"]) for e in data["shared"][-2:]] == [("T-02", "Agent-02")] * 2
    assert [e["text"] for e in data["notes"]] == ["note from inside"]
    assert [e["task"] for e in data["discoveries"]] == ["T-02"]
    # Outside a task, the task is needed; a name is one word: each refused in one line, nothing written.
    before = sorted((p, p.read_bytes()) for p in ctx.rglob("*.md"))
    for args, env, said in (
        (("share", "No task given"), {}, 'share takes a task and a text: orchestrator share [DIR] TASK "TEXT"'),
        (("note", "T-01", "x", "--as", "two words"), {}, "--as 'two words': a name is one word"),
        (("share", "T-01", "x"), {"ORCHESTRATOR_AGENT": "a/b"}, "$ORCHESTRATOR_AGENT 'a/b': a name is one word"),
        (("sync", "T-09", "x"), {}, "no task T-09 in the plan"),
    ):
        refused = cli(tmp_path, *args, env=env)
        assert refused.code == 2 and refused.stderr.count("\n") == 1 and said in refused.stderr, refused.stderr
    assert sorted((p, p.read_bytes()) for p in ctx.rglob("*.md")) == before


# The seeds' orchestrator guide (orchestrate_auth.sh, monitor.sh, its patterns), with `./tm` made
# `orchestrator`, `TM_AGENT_ID` made `ORCHESTRATOR_AGENT`, and an `init --empty` first (tm made
# its database on first use). Every other word is the guide's.
TM_SCRIPT = r"""
orchestrator init --empty > /dev/null
export ORCHESTRATOR_AGENT="orchestrator"

AUTH=$(orchestrator add "Implement secure authentication system" -p critical)
orchestrator share $AUTH "Requirements Document:"
orchestrator share $AUTH "- JWT-based authentication"
orchestrator share $AUTH "- 2FA support (TOTP)"

PHASE1=$(orchestrator add "Phase 1: Database Schema" --depends-on $AUTH)
DB_USERS=$(orchestrator add "Design users table" \
    --depends-on $PHASE1 \
    --assignee db_specialist \
    --tag phase1)
DB_SESSIONS=$(orchestrator add "Design sessions table" \
    --depends-on $PHASE1 \
    --assignee db_specialist \
    --tag phase1)

PHASE2=$(orchestrator add "Phase 2: API Development" --depends-on $PHASE1)
API_JWT=$(orchestrator add "Implement JWT generation/validation" \
    --depends-on $PHASE2 \
    --assignee backend_specialist \
    --tag phase2)
API_2FA=$(orchestrator add "Implement 2FA with TOTP" \
    --depends-on $API_JWT \
    --assignee security_specialist \
    --tag phase2)

orchestrator discover $AUTH "Found 2 API endpoints needed"
for endpoint in users sessions; do
    orchestrator add "Create $endpoint endpoint" --assignee backend_specialist
done

PRIMARY=$(orchestrator add "Try approach A" --assignee specialist_1)
FALLBACK=$(orchestrator add "Fallback to approach B" --assignee specialist_2)
orchestrator update $FALLBACK --status blocked  # Manually manage based on PRIMARY outcome

orchestrator sync $AUTH "Milestone 1: Database complete (Day 3)"
orchestrator sync $AUTH "Milestone 2: API complete (Day 7)"

echo "ids: $AUTH $PHASE1 $DB_USERS $DB_SESSIONS $PHASE2 $API_JWT $API_2FA $PRIMARY $FALLBACK"
echo "Total tasks created: $(orchestrator list | wc -l)"

overview() {
    echo "  Total tasks: $(orchestrator list | wc -l)"
    echo "  Pending: $(orchestrator list --status pending | wc -l)"
    echo "  In Progress: $(orchestrator list --status in_progress | wc -l)"
    echo "  Blocked: $(orchestrator list --status blocked | wc -l)"
    echo "  Completed: $(orchestrator list --status completed | wc -l)"
    for specialist in db_specialist backend_specialist; do
        count=$(orchestrator list --assignee $specialist --status in_progress | wc -l)
        echo "  $specialist: $count active tasks"
    done
    echo "  backend_specialist workload: $(orchestrator list --assignee backend_specialist --status pending | wc -l)"
}
overview
echo "Blocked Tasks:"
orchestrator list --status blocked --format simple | head -5
echo "Phase 1:"
orchestrator list --tag phase1 --format simple

# The agents work; the monitor loop watches until nothing is left to do.
orchestrator run --executor fake > run.log 2>&1 &
RUN=$!
rounds=0
while [ "$(orchestrator list --status todo,in_progress | wc -l)" -gt 0 ] && [ $rounds -lt 600 ]; do
    rounds=$((rounds + 1))
    sleep 0.1
done
wait $RUN
echo "run: $?"
overview
"""


def test_a_task_manager_script_runs_with_only_its_command_renamed(tmp_path: Path) -> None:
    done = bash(tmp_path, TM_SCRIPT)
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout.splitlines()
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    # What the commands not captured printed: share, discover, the loop's adds, sync.
    at = next(n for n, line in enumerate(said) if line.startswith("ids: "))
    assert said[:at] == [
        *["Shared (T-01) → .orchestrator/context/shared.md"] * 3,
        "Discovered (T-01) → .orchestrator/context/discoveries.md",
        "T-08",
        "T-09",
        *["Synced (T-01) → .orchestrator/context/sync.md"] * 2,
    ]
    out = said[at:]
    # Each add printed its id alone, for $(...): nine named, and two in the loop (T-08, T-09).
    assert out[0] == "ids: T-01 T-02 T-03 T-04 T-05 T-06 T-07 T-10 T-11"
    assert out[1] == "Total tasks created: 11"  # `list | wc -l` counts the tasks
    assert out[2:10] == [
        "  Total tasks: 11",
        # Not started, as tm means it: the four ready to start and the six that wait for their upstream
        # (the fallback, held by hand, is blocked).
        "  Pending: 10",
        "  In Progress: 0",
        "  Blocked: 1",  # the fallback, held by hand
        "  Completed: 0",
        "  db_specialist: 0 active tasks",
        "  backend_specialist: 0 active tasks",
        "  backend_specialist workload: 3",  # the two endpoints, and the JWT task that waits for phase 2
    ]
    assert out[10:14] == ["Blocked Tasks:", "T-11\tFallback to approach B", "Phase 1:", "T-03\tDesign users table"]
    assert out[14] == "T-04\tDesign sessions table"
    # The run held the blocked fallback (exit 4: it waits for a person) and did the rest.
    assert out[15] == "run: 4", (tmp_path / "run.log").read_text(encoding="utf-8")
    assert out[16:] == [
        "  Total tasks: 11",
        "  Pending: 0",
        "  In Progress: 0",
        "  Blocked: 1",
        "  Completed: 10",
        "  db_specialist: 0 active tasks",
        "  backend_specialist: 0 active tasks",
        "  backend_specialist workload: 0",
    ]
    # The rows say what the options said: priority, dependencies, assignee, tags, the hold.
    assert row(tmp_path, "T-01")[2:5] == ["Implement secure authentication system", "", "P0"]
    assert row(tmp_path, "T-03")[2:] == ["Design users table", "T-02", "", "db_specialist", "phase1", ""]
    assert row(tmp_path, "T-07")[3] == "T-06" and row(tmp_path, "T-07")[5:7] == ["security_specialist", "phase2"]
    assert row(tmp_path, "T-08")[2] == "Create users endpoint" and row(tmp_path, "T-11")[-1] == "yes"
    # What was shared, discovered and synced is the project's, written by the orchestrator.
    data = json.loads(cli(tmp_path, "context", "T-07", "--json").stdout)
    assert [(e["task"], e["text"], e["author"]) for e in data["shared"]] == [
        ("T-01", "Requirements Document:", "orchestrator"),
        ("T-01", "- JWT-based authentication", "orchestrator"),
        ("T-01", "- 2FA support (TOTP)", "orchestrator"),
    ]
    assert [(e["task"], e["text"]) for e in data["discoveries"]] == [("T-01", "Found 2 API endpoints needed")]
    sync = (tmp_path / ".orchestrator" / "context" / "sync.md").read_text(encoding="utf-8")
    assert sync.count("· T-01 · sync · by orchestrator\n") == 2 and "Milestone 2: API complete (Day 7)" in sync
