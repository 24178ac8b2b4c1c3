"""The sandbox a run from outside runs its shell and command tasks in: bubblewrap, as Claude Code's
own sandbox on Linux.

A run whose values came from outside (a webhook's delivery, the HTTP API, MCP, ``run --untrusted``)
runs the plan's own scripts, its values as data (``plan/config/allowlist``). The sandbox is the
layer under that one, for what the allow-list cannot see (a program that runs a data argument, a
bug of ours): the attempt's process sees the filesystem read-only, the project included, except
its own worktree (``isolation: worktree``) and a ``/tmp`` of its own; an empty home directory in
place of the person's (no ``~/.ssh``, no CLI credentials); no network unless the plan or the
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

    def argv(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, writable: bool) -> list[str]:
        """``argv`` as bubblewrap runs it in ``cwd`` (which it may write when ``writable``: a worktree)."""
        home = env.get("HOME", "")
        words = [program(), "--die-with-parent", "--unshare-all", *(("--share-net",) if self.network else ())]
        words += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        hides = bool(home) and Path(home) not in (Path("/"), Path("/tmp")) and Path(home).is_dir()
        hidden = ["--tmpfs", home] if hides else []  # (a home that is not there hides nothing)
        shown = ["--ro-bind", str(self.project), str(self.project)]
        # An empty home (none of the person's files, keys or logins), the project seen in it if it
        # is under it; a home under the project stays hidden: the later mount wins.
        inside = bool(hidden) and Path(home).is_relative_to(self.project)
        words += [*shown, *hidden] if inside else [*hidden, *shown]
        if writable:
            words += ["--bind", str(cwd), str(cwd)]
        return [*words, "--chdir", str(cwd), "--", *argv]


def for_run(settings: Settings, source: str | None, project: Path) -> Sandbox | None:
    """The sandbox of a run whose values came from ``source`` (``None``: from the person who runs
    it, and no sandbox): the trigger's ``sandbox`` if it says, else the plan's."""
    if source is None:
        return None
    mode = settings.triggers.sandbox(source) or settings.sandbox
    return None if mode == "off" else Sandbox(project, network=mode == "network")


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
