"""What an agent CLI is on this machine: installed where, which version, how it would log in.

    probe(cli, env, version=True) -> Installation

``doctor`` shows it for every backend a plan uses, and warns of a version outside those its
backend was tested with (``Cli.tested``); ``run`` checks only that the program is there (a lookup
on PATH, no process) before it starts anything. Login is told from what the CLI reads
(API-key variables, its credentials file, or what its own configuration names: codex's model
provider, ``codex_config``); where the login may sit where we cannot see it (the
macOS keychain), ``logged_in`` is None: the run finds out, and stops that backend's tasks with
one line if it is not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Cli:
    """How to find one agent CLI and how it logs in."""

    program: str  # as configured: "claude", or what ORCHESTRATOR_CLAUDE_BIN names
    install: str  # how to install it, in one line
    keys: tuple[str, ...]  # environment variables any one of which authenticates it
    credentials: tuple[str, ...]  # files a login leaves (``~`` and ``$VAR`` expanded)
    login: str  # how to log in, in one line
    keychain: bool = False  # on macOS the login may sit in the keychain, out of our sight
    # The login the CLI's own configuration decides for an environment (codex's model provider and
    # its key): what to say and whether it is logged in, or None where ``keys`` and ``credentials`` tell.
    configured: Callable[[Mapping[str, str]], tuple[str, bool | None] | None] | None = None
    # The versions the backend was written and tested for, oldest and newest (``tests/test_agents_*``
    # run both ends where they differ): ``doctor`` warns of one outside them.
    tested: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Installation:
    program: str
    path: str | None  # where it was found; None: not installed
    version: str | None
    login: str  # how it authenticates, or what is missing and how to fix it
    logged_in: bool | None  # None: cannot tell from here
    install: str
    untested: str | None = None  # the version is outside the one the backend was tested for: what to know

    @property
    def installed(self) -> bool:
        return self.path is not None


def probe(cli: Cli, env: Mapping[str, str], *, version: bool = True) -> Installation:
    """``cli`` as this machine has it, for a run whose agents get ``env``."""
    path = shutil.which(cli.program, path=env.get("PATH"))
    found = _version(path, env) if (version and path) else None
    login, logged_in = (cli.configured(env) if cli.configured else None) or _login(cli, env)
    return Installation(cli.program, path, found, login, logged_in, cli.install, untested(cli, found))


def _login(cli: Cli, env: Mapping[str, str]) -> tuple[str, bool | None]:
    """How ``cli`` authenticates from what it reads: a key variable, else its credentials file."""
    key = next((name for name in cli.keys if env.get(name)), None)
    if key is not None:
        return f"authenticated by ${key}", True
    file = next((p for p in (_expand(c, env) for c in cli.credentials) if p.is_file()), None)
    if file is not None:
        return f"logged in ({file})", True
    if cli.keychain and sys.platform == "darwin":
        return f"no key set; a login may be in the macOS keychain (if not: {cli.login})", None
    return f"no API key or login found: {cli.login}", False


def version_of(text: str | None) -> tuple[int, ...] | None:
    """The version number in what a CLI says of its version: ``2.1.329 (Claude Code)``,
    ``codex-cli 0.169.0``, ``0.61.0``; None when it holds none."""
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(part) for part in found.groups() if part is not None) if found else None


def untested(cli: Cli, version: str | None) -> str | None:
    """Why ``version`` of ``cli`` may not behave as its backend expects (older or newer than the
    versions it was tested with), or None."""
    number = version_of(version)
    if cli.tested is None or number is None:
        return None
    oldest, newest = cli.tested
    span = oldest if oldest == newest else f"{oldest} to {newest}"
    if number < (version_of(oldest) or ()):
        return f"older than the versions this backend was tested with ({span}): upgrade it"
    if number > (version_of(newest) or ()):
        return (
            f"newer than the versions this backend was tested with ({span}): what it prints may have changed; "
            "watch the first results"
        )
    return None


def _expand(template: str, env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or str(Path.home())
    text = template.replace("~", home, 1) if template.startswith("~") else template
    for name, value in env.items():
        text = text.replace(f"${{{name}}}", value)
    return Path(text)


def _version(path: str, env: Mapping[str, str]) -> str | None:
    """The first line ``<program> --version`` prints (within 20 s), or None."""
    try:
        done = subprocess.run(
            [path, "--version"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
            start_new_session=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def agent_environment(settings_env: Mapping[str, str]) -> dict[str, str]:
    """What an attempt's environment holds as far as a CLI's login is concerned: ours, then the
    plan's ``env``."""
    return {**os.environ, **settings_env}
