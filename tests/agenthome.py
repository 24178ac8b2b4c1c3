"""Nothing of the shell set-up of the person who runs the tests reaches a process a test starts,
and a real agent CLI gets a home of its own.

An agent CLI's shell tool starts shells as that CLI does (cli-integration.md, "What an agent's
shell tool inherits from yours"): claude and codex run a login shell of ``$HOME`` once a session
(claude reads ``~/.bashrc`` too), and every bash reads the file ``$BASH_ENV`` names. A developer's
``~/.bashrc`` whose ``pyenv init`` waited on a stale lock once held test_fakeapi's Bash round trip
till its 60 s timeout. So:

- ``without_shell_start_up(env)``: ``env`` without what makes a shell read or run something of
  the person's, or behave otherwise (``SHELL_START_UP``, exported functions ``BASH_FUNC_*``);
  ``conftest.py`` takes them out of the session's environment, which every process inherits.
- ``hostile_start_up(user, marker, monkeypatch)``: a person's set-up every start-up file of which
  writes to ``marker``, for the tests that show none of it reaches an agent's shell tool.
- ``agent_environment(env, home)``: that, with ``HOME`` a directory of the test's own (made
  here) and ``SHELL`` bash: what every real agent CLI a test starts runs with
  (``fakeapi.claude_env``, ``agentclis.Vendor.environment``), so that neither the person's start-up
  files nor their configuration can hang or change it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

# What a shell reads as it starts (BASH_ENV: every non-interactive bash; ENV: sh, bash --posix;
# ZDOTDIR: zsh's files), and what changes what it then does (its options, cd's and globbing's
# ways, GNU tools' POSIX mode, a prompt's command).
SHELL_START_UP = frozenset(
    {"BASH_ENV", "ENV", "ZDOTDIR", "SHELLOPTS", "BASHOPTS", "CDPATH", "GLOBIGNORE", "PROMPT_COMMAND", "POSIXLY_CORRECT"}
)


def is_shell_start_up(name: str) -> bool:
    return name in SHELL_START_UP or name.startswith("BASH_FUNC_")


def without_shell_start_up(env: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if not is_shell_start_up(name)}


def agent_environment(env: Mapping[str, str], home: Path) -> dict[str, str]:
    """``env`` for a real agent CLI: no shell start-up of the person's, ``home`` as ``HOME``."""
    home.mkdir(parents=True, exist_ok=True)
    found = without_shell_start_up(env)
    found["HOME"] = str(home)
    found["SHELL"] = shutil.which("bash") or "/bin/bash"
    return found


def hostile_start_up(user: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person's shell set-up every file of which leaves a line in ``marker`` (as a ``pyenv
    init`` waiting on a stale lock would have hung): ``user`` as their HOME, with the start-up
    files of bash, sh and zsh, and ``BASH_ENV``, ``ENV`` and an exported function set."""
    user.mkdir(parents=True, exist_ok=True)
    for name in (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshenv", ".zshrc", "bash_env", "env"):
        (user / name).write_text(f'echo "{name} $$" >> {marker}\n', encoding="utf-8")
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("BASH_ENV", str(user / "bash_env"))
    monkeypatch.setenv("ENV", str(user / "env"))
    monkeypatch.setenv("BASH_FUNC_echo%%", f'() {{ builtin echo exported-echo >> {marker}; builtin echo "$@"; }}')
