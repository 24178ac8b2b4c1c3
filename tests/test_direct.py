"""A one-command shell script runs without bash, and nothing a task can observe changes.

Every comparison runs the same script both ways, real processes: ``bash -e -c SCRIPT`` and the
direct launch (with bash as its fallback), and wants the same output, exit status and stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from runner_helpers import Spec, result_body, results, run, write_plan

from orchestrator.executors import process
from orchestrator.executors.direct import direct_launch, simple_command
from orchestrator.executors.process import (
    Limits,
    ProcessRun,
    keep_descriptors_from_children,
    posix_spawn_possible,
    run_process,
)

SHOW = """#!/bin/sh
printf '<%s>' "$0" "$@"; echo
env | LC_ALL=C sort
"""


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("true", ("true",)),
        ("false", ("false",)),
        ("sleep 0.05", ("sleep", "0.05")),
        ("  pytest   -q\ttests/test_x.py  ", ("pytest", "-q", "tests/test_x.py")),
        ("./build.sh --jobs=4 a,b x+y user@host 50%", ("./build.sh", "--jobs=4", "a,b", "x+y", "user@host", "50%")),
        ("tool key=value", ("tool", "key=value")),
        ("", None),
        ("true --help", None),  # the builtin ignores it, the program prints help
        ("echo hi", None),  # built-ins run in bash
        ("cd somewhere", None),
        ("[ -f x ]", None),
        ("time make", None),
        ("A=1 make", None),
        ("make; make install", None),
        ("make && make install", None),
        ("make | tee log", None),
        ("make > log", None),
        ("ls *.py", None),
        ("ls file?", None),
        ("ls [ab]", None),
        ("echo $HOME", None),
        ("cat ~/x", None),
        ("make 'a b'", None),
        ('make "a b"', None),
        ("make a\\ b", None),
        ("make x{1,2}", None),
        ("make # comment", None),
        ("make\nmake install", None),
        ("(make)", None),
        ("make `date`", None),
        ("grép x", None),
        ("%1", None),  # bash's fg
        ("%tool x", None),
    ],
)
def test_simple_command(script: str, words: tuple[str, ...] | None) -> None:
    assert simple_command(script) == words


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A project directory with ``bin/show`` (prints $0, its arguments and its environment),
    a copy at ``./local-show``, a script without a ``#!`` line and a file that is not executable."""
    project = tmp_path / "project"
    (project / "bin").mkdir(parents=True)
    for path in (project / "bin" / "show", project / "local-show"):
        path.write_text(SHOW, encoding="utf-8")
        path.chmod(0o755)
    no_shebang = project / "bin" / "no-shebang"
    no_shebang.write_text('echo "run by a shell: $# arguments"\n', encoding="utf-8")
    no_shebang.chmod(0o755)
    (project / "data.txt").write_text("not a program\n", encoding="utf-8")
    return project


def _env(project: Path, **changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASH_FUNC_") and k not in {"BASH_ENV", "ENV"}}
    env["PATH"] = f"{project / 'bin'}:/usr/bin:/bin"
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture(params=["popen", "posix_spawn"])
def spawn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the direct launch is started: ``subprocess.Popen``, or ``os.posix_spawn`` (which needs
    the runner in the task's directory and none of its descriptors inheritable)."""
    if request.param == "posix_spawn":
        keep_descriptors_from_children()  # what the CLI does; pytest's own children see no change
        assert posix_spawn_possible()
    return str(request.param)


@contextlib.contextmanager
def _posix_spawns(directory: Path | None) -> Iterator[list[str]]:
    """The programs posix_spawn starts meanwhile, with ``directory`` as the runner's own (none:
    the runner stays where it is, and nothing is recorded)."""
    spawned: list[str] = []
    real = process._posix_spawn

    def spy(program: str, *args: Any) -> int | None:
        spawned.append(program)
        return real(program, *args)

    with pytest.MonkeyPatch.context() as patch:
        if directory is not None:
            patch.chdir(directory)
            patch.setattr(process, "_posix_spawn", spy)
        yield spawned


def _run(
    directory: Path,
    argv: tuple[str, ...],
    env: dict[str, str],
    fallback: tuple[str, ...] | None,
    name: str,
    executable: str | None = None,
    spawn: str = "popen",
) -> tuple[int | None, str, str]:
    out, err = directory / f"{name}.out", directory / f"{name}.err"
    with _posix_spawns(directory if spawn == "posix_spawn" else None) as spawned:
        run = anyio.run(
            partial(
                run_process,
                argv,
                cwd=directory,
                env=env,
                stdin=None,
                stdout=out,
                stderr=err,
                limits=Limits(timeout=30),
                fallback=fallback,
                executable=executable,
                posix_spawn=spawn == "posix_spawn",
            )
        )
    assert run.start_error is None
    assert spawned == ([executable] if spawn == "posix_spawn" else []), "posix_spawn was used as asked"
    return run.exit_code, _text(out), _text(err)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""  # a log exists once written to


def _both(
    project: Path, script: str, env: dict[str, str], spawn: str = "popen"
) -> tuple[tuple[int | None, str, str], ...]:
    """(via bash, direct): exit code, stdout, stderr; the direct one started as ``spawn`` says."""
    words = simple_command(script)
    assert words is not None, script
    direct = direct_launch(words, env, project)
    assert direct is not None, script
    program, direct_env = direct
    bash = ("bash", "-e", "-c", script)
    return (
        _run(project, bash, env, None, "bash"),
        _run(project, words, direct_env, bash, "direct", program, spawn),
    )


@pytest.mark.parametrize(
    "script",
    [
        "show",
        "show a b -x --y=z",
        "./local-show 1 2",
        "env -0",
        "cat /proc/self/cmdline",
        "ls /proc/self/fd",  # no descriptor of ours reaches the command
        "grep Sig /proc/self/status",  # nor a signal we ignore or block
    ],
)
@pytest.mark.parametrize(
    "shell_env",
    ["as is", "no SHLVL", "SHLVL 0", "PWD elsewhere", "PWD through a symlink", "OLDPWD gone", "PATH entry with /"],
)
def test_a_direct_command_sees_what_it_would_under_bash(tools: Path, script: str, shell_env: str, spawn: str) -> None:
    changes: dict[str, str | None] = {}
    if shell_env == "no SHLVL":
        changes["SHLVL"] = None
    elif shell_env == "SHLVL 0":
        changes["SHLVL"] = "0"
    elif shell_env == "OLDPWD gone":
        changes["OLDPWD"] = str(tools / "no-such-directory")
    elif shell_env == "PATH entry with /":
        changes["PATH"] = f"{tools / 'bin'}/:/usr/bin/:/bin"
    elif shell_env == "PWD elsewhere":
        changes["PWD"] = "/"
    elif shell_env == "PWD through a symlink":
        link = tools.parent / "link"
        link.symlink_to(tools)
        changes["PWD"] = str(link)
    via_bash, direct = _both(tools, script, _env(tools, **changes), spawn)
    assert via_bash[0] == 0 and via_bash[1].strip()
    if script.startswith("env"):  # the same variables; bash lists them in another order
        via_bash, direct = ((c, "\0".join(sorted(out.split("\0"))), err) for c, out, err in (via_bash, direct))
    if script.startswith("grep Sig") and spawn == "posix_spawn":
        direct = (direct[0], _without_glibc_internal_signals(direct[1]), direct[2])
    assert direct == via_bash


def _without_glibc_internal_signals(status: str) -> str:
    """glibc's posix_spawn leaves its two internal signals (32 and 33) ignored in the child and
    Python cannot ask otherwise; every glibc program installs its own handlers for them at start
    (and cannot even ask about them), so this is the one difference allowed."""
    lines = []
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16) & ~((1 << 31) | (1 << 32))
            line = f"SigIgn:\t{mask:016x}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("script", ["no-shebang a b", "./data.txt", "bin/no-shebang"])
def test_what_cannot_be_executed_falls_back_to_bash(tools: Path, script: str, spawn: str) -> None:
    via_bash, direct = _both(tools, script, _env(tools), spawn)
    assert direct == via_bash
    if script == "./data.txt":
        assert via_bash[0] == 126 and "Permission denied" in via_bash[2]
    else:
        assert via_bash[0] == 0 and "run by a shell" in via_bash[1]


@pytest.mark.parametrize(
    "changes",
    [
        {"BASH_ENV": "/dev/null"},
        {"ENV": "/dev/null"},
        {"SHELLOPTS": "xtrace"},
        {"BASHOPTS": "extglob"},
        {"POSIXLY_CORRECT": "1"},
        {"EXECIGNORE": "*/show"},
        {"POSIX_PEDANTIC": "1"},
        {"IFS": ":"},
        {"PPID": "1"},
        {"OPTIND": "3"},
        {"BASH_VERSION": "0"},
        {"PS4": "> "},
        {"SHLVL": "abc"},
        {"SHLVL": ""},
        {"SHLVL": "-1"},
        {"SHLVL": "007"},
        {"SHLVL": "999"},
        {"BASH_FUNC_show%%": "() {  echo function; }"},
        {"PATH": "bin:/usr/bin:/bin"},  # relative: bash's search, not ours
        {"PATH": ""},
        {"PATH": None},
    ],
)
def test_bash_runs_it_when_the_environment_could_change_what_bash_does(
    tools: Path, changes: dict[str, str | None]
) -> None:
    assert direct_launch(("show",), _env(tools, **changes), tools) is None


@pytest.mark.parametrize("value", ["weird value 42", "1", ""])
def test_no_variable_of_bash_s_own_makes_a_difference(tools: Path, value: str) -> None:
    """Each variable bash knows (``compgen -v``, and a few it reads at start), set to an odd
    value: either bash runs the command, or the command sees just what it would under bash."""
    own = subprocess.run(["env", "-i", "bash", "-c", "compgen -v"], capture_output=True, text=True, check=True)
    names = [*own.stdout.split(), "OLDPWD", "POSIX_PEDANTIC", "LC_ALL", "LANG", "PS0", "PS1", "PS2", "PS3"]
    direct_for = []
    for name in sorted(set(names) - {"PATH", "PWD", "_"}):
        env = _env(tools, **{name: value})
        if direct_launch(("printenv",), env, tools) is None:
            continue
        direct_for.append(name)
        via_bash, direct = _both(tools, "printenv", env)
        assert direct[0] == via_bash[0] and direct[2] == via_bash[2], name
        assert sorted(direct[1].splitlines()) == sorted(via_bash[1].splitlines()), name
    assert "PS1" in direct_for and len(direct_for) > 20  # the direct launch was tried, and often


def test_an_lc_all_bash_may_warn_about_leaves_the_command_to_bash(tools: Path) -> None:
    assert direct_launch(("show",), _env(tools, LC_ALL="xx_YY.nonexistent"), tools) is None
    assert direct_launch(("show",), _env(tools, LC_ALL="C.UTF-8"), tools) is not None


def test_true_and_false_are_exec_d_only_as_the_system_s_own(tools: Path) -> None:
    """bash runs its built-in whatever PATH holds; only /bin's or /usr/bin's program stands in."""
    for name in ("true", "false"):
        (tools / "bin" / name).write_text("#!/bin/sh\necho not the built-in\n", encoding="utf-8")
        (tools / "bin" / name).chmod(0o755)
        assert direct_launch((name,), _env(tools), tools) is None
        found = direct_launch((name,), _env(tools, PATH="/usr/bin:/bin"), tools)
        assert found is not None and os.path.dirname(found[0]) in {"/usr/bin", "/bin"}


def test_a_program_that_is_not_there_is_left_to_bash(tools: Path) -> None:
    assert direct_launch(("no-such-program-here",), _env(tools), tools) is None
    assert direct_launch(("data.txt",), _env(tools, PATH=str(tools)), tools) is None  # not executable


def test_shell_tasks_run_directly_get_their_arguments_and_environment(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    show = tmp_path / "bin" / "show"
    show.write_text(SHOW, encoding="utf-8")
    show.chmod(0o755)
    specs = [Spec("T-01", f"{show} one two"), Spec("T-02", "true", deps=["T-01"]), Spec("T-03", "false")]
    write_plan(tmp_path, specs)
    outcome = run(tmp_path)
    assert outcome.code == 1, outcome.stderr
    found = results(tmp_path)
    assert found["T-01"]["status"] == "completed" and found["T-02"]["status"] == "completed"
    assert found["T-03"]["status"] == "failed" and found["T-03"]["exit_code"] == 1
    body = result_body(tmp_path, "T-01")
    assert f"<{show}><one><two>" in body
    assert "ORCHESTRATOR_TASK_ID=T-01" in body and f"PWD={tmp_path}" in body


def test_posix_spawn_is_not_possible_with_an_inheritable_descriptor() -> None:
    keep_descriptors_from_children()
    assert posix_spawn_possible()
    read, write = os.pipe()
    try:
        os.set_inheritable(write, True)  # a child started by posix_spawn would get it: Popen then
        assert not posix_spawn_possible()
        keep_descriptors_from_children()
        assert posix_spawn_possible() and not os.get_inheritable(write)
    finally:
        os.close(read)
        os.close(write)


def _spawned(
    tmp_path: Path,
    argv: tuple[str, ...],
    executable: str,
    *,
    cwd: Path,
    stdin: Path | None = None,
    limits: Limits | None = None,
) -> tuple[list[str], ProcessRun]:
    """Run ``argv`` in ``cwd`` from ``tmp_path`` (the runner's directory) with posix_spawn allowed:
    which programs posix_spawn started, and how the run ended."""
    keep_descriptors_from_children()
    with _posix_spawns(tmp_path) as spawned:
        run = anyio.run(
            partial(
                run_process,
                argv,
                cwd=cwd,
                env=dict(os.environ),
                stdin=stdin,
                stdout=tmp_path / "out",
                stderr=tmp_path / "err",
                limits=limits or Limits(timeout=30),
                executable=executable,
                posix_spawn=True,
            )
        )
    return spawned, run


def test_posix_spawn_only_in_the_runner_s_own_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _spawned(tmp_path, ("pwd",), "/bin/pwd", cwd=elsewhere)[0] == []  # cannot change directory: Popen
    assert _text(tmp_path / "out") == f"{elsewhere}\n"
    assert _spawned(tmp_path, ("pwd",), "/bin/pwd", cwd=tmp_path)[0] == ["/bin/pwd"]
    assert _text(tmp_path / "out") == f"{tmp_path}\n"


def test_posix_spawn_gives_stdin_a_new_session_and_reports_signals(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("on stdin\n", encoding="utf-8")
    assert _spawned(tmp_path, ("cat",), "/bin/cat", cwd=tmp_path, stdin=source)[0] == ["/bin/cat"]
    assert _text(tmp_path / "out") == "on stdin\n"
    script = "import os; print(os.getpid() == os.getpgid(0) == os.getsid(0), os.read(0, 10))"
    assert _spawned(tmp_path, ("python3", "-c", script), sys.executable, cwd=tmp_path)[0] == [sys.executable]
    assert _text(tmp_path / "out") == "True b''\n"  # its own session; stdin /dev/null
    started = time.monotonic()
    spawned, run = _spawned(tmp_path, ("sleep", "30"), "/bin/sleep", cwd=tmp_path, limits=Limits(timeout=0.5, grace=1))
    assert spawned == ["/bin/sleep"] and run.timed_out == "timeout" and run.signal == signal.SIGTERM
    assert time.monotonic() - started < 20  # stopped, and reaped


def test_a_descriptor_the_runner_inherited_reaches_no_task(tmp_path: Path) -> None:
    """The CLI may start tasks by posix_spawn, which closes only close-on-exec descriptors: the
    ones it inherited are marked so first, and a task sees just its three."""
    specs = [
        Spec("T-01", "ls /proc/self/fd"),
        Spec("T-02", "ls /proc/self/fd; true"),
        Spec("T-03", "grep SigIgn /proc/self/status"),
    ]
    write_plan(tmp_path, specs)
    read, write = os.pipe()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", "--json"],
            cwd=tmp_path,
            pass_fds=(write,),  # inheritable in the runner
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(read)
        os.close(write)
    assert completed.returncode == 0, completed.stderr
    for task in ("T-01", "T-02"):  # direct (posix_spawn), and through bash
        assert result_body(tmp_path, task).split() == ["0", "1", "2", "3"]  # 3: ls's own listing
    # And posix_spawn was used all the same: only glibc's posix_spawn leaves its internal signals
    # (32 and 33) ignored in the child (see _without_glibc_internal_signals).
    ignored = int(result_body(tmp_path, "T-03").split()[-1], 16)
    assert ignored & (1 << 31) and ignored & (1 << 32)
