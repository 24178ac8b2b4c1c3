"""The sandbox a run from outside runs its shell and command tasks in: bubblewrap, as Claude Code's
own sandbox on Linux.

A run whose values came from outside (a webhook's delivery, the HTTP API, MCP, ``run --untrusted``)
runs the plan's own scripts, its values as data (``plan/config/allowlist``). The sandbox is the
layer under that one, for what the allow-list cannot see (a program that runs a data argument, a
bug of ours): the attempt's process sees the filesystem read-only, the project included, except
its own worktree (``isolation: worktree``), the channels' ``context/`` and a ``/tmp`` of its own;
an empty home directory in place of the person's (no ``~/.ssh``, no CLI credentials; the folders
of programs there, on the PATH, seen read-only); no network unless the plan or the
trigger says ``sandbox: network``; its own process, IPC and hostname namespaces, dying with its
runner. ``bwrap`` is Debian's ``bubblewrap`` (``$ORCHESTRATOR_BWRAP_BIN`` names another); where there
is none, the task is refused with what to install (``missing``), never run without it.

What it does not hold: the attempt's environment is its own as any run's (give a run from outside
no secret it does not need), and a file the script writes into its worktree is the script's.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.plan.config.settings import Settings

INSTALL = "install Debian's bubblewrap (apt install bubblewrap)"
MODES = ("on", "network", "off")


def program() -> str:
    """The bubblewrap this machine runs: ``$ORCHESTRATOR_BWRAP_BIN``, else ``bwrap`` on the PATH
    (the one program both the sandbox of a run from outside and the agents' walls, ``backends/guard``, use)."""
    return os.environ.get("ORCHESTRATOR_BWRAP_BIN") or "bwrap"


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How an attempt's process is closed in: the project it sees read-only, whether it has the
    network. Its worktree, when it has one, is the one place of the project it may write."""

    project: Path
    network: bool = False
    channels: Path | None = None  # the workspace's ``context/``: the channels write it (``share``), as an agent's may

    def argv(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, writable: bool) -> list[str]:
        """``argv`` as bubblewrap runs it in ``cwd`` (which it may write when ``writable``: a worktree)."""
        home = env.get("HOME", "")
        words = [program(), "--die-with-parent", "--unshare-all", *(("--share-net",) if self.network else ())]
        words += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for place in _programs(env, Path("/tmp")):  # (a venv or a PATH folder under /tmp: its programs stay)
            words += ["--ro-bind", str(place), str(place)]
        hides = bool(home) and Path(home) not in (Path("/"), Path("/tmp")) and Path(home).is_dir()
        hidden = ["--tmpfs", home] if hides else []  # (a home that is not there hides nothing)
        if hides:  # (its programs stay: what PATH finds there, and the interpreter that runs the channels)
            for place in _programs(env, Path(home)):
                hidden += ["--ro-bind", str(place), str(place)]
        shown = ["--ro-bind", str(self.project), str(self.project)]
        # An empty home (none of the person's files, keys or logins), the project seen in it if it
        # is under it; a home under the project stays hidden: the later mount wins.
        inside = bool(hidden) and Path(home).is_relative_to(self.project)
        words += [*shown, *hidden] if inside else [*hidden, *shown]
        if self.channels is not None:  # (made here, outside: a read-only filesystem makes no place to bind)
            self.channels.mkdir(parents=True, exist_ok=True)
            words += ["--bind", str(self.channels), str(self.channels)]
        if writable:
            words += ["--bind", str(cwd), str(cwd)]
        return [*words, "--chdir", str(cwd), "--", *argv]


def _programs(env: Mapping[str, str], home: Path) -> list[Path]:
    """The places under ``home`` (or ``/tmp``: what the sandbox hides) that hold programs, not the
    person's files: the PATH's folders there (``~/.local/bin``, pyenv's shims, cargo's, a venv in a
    clone under /tmp), the prefix of the interpreter that runs the orchestrator
    (``$ORCHESTRATOR_PYTHON``, the channels) and the orchestrator's package, each as written and
    as it resolves."""
    import sys

    wanted = [Path(p) for p in env.get("PATH", "").split(os.pathsep) if p]
    wanted += [Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent]
    wanted.append(Path(__file__).resolve().parents[1])  # (the package itself: an editable install's is its clone's)
    found: list[Path] = []
    for place in wanted:
        for each in (place, Path(os.path.realpath(place))):
            if each.is_relative_to(home) and each != home and each.is_dir() and each not in found:
                found.append(each)
    return sorted(found, key=lambda p: len(p.parts))


def for_run(settings: Settings, source: str | None, project: Path, channels: Path | None = None) -> Sandbox | None:
    """The sandbox of a run whose values came from ``source`` (``None``: from the person who runs
    it, and no sandbox): the trigger's ``sandbox`` if it says, else the plan's; ``channels``, the
    workspace's ``context/``, the one place of it a task may write."""
    if source is None:
        return None
    mode = settings.triggers.sandbox(source) or settings.sandbox
    return None if mode == "off" else Sandbox(project, network=mode == "network", channels=channels)


@functools.cache
def _probe(bwrap: str) -> str | None:
    found = shutil.which(bwrap)
    if found is None:
        return f"{bwrap} is not installed"
    try:
        done = subprocess.run(
            [found, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--", "true"],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{found} cannot start: {exc}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{found} cannot make a sandbox here: {said[-1] if said else f'exit {done.returncode}'}"
    return None


def missing() -> str | None:
    """Why no sandbox can be made on this machine (``None``: one can), once a process."""
    return _probe(program())


def version() -> str | None:
    """bubblewrap's version, for ``doctor``."""
    found = shutil.which(program())
    if found is None:
        return None
    try:
        done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
