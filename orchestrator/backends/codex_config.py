"""How codex logs in, as its own ``config.toml`` says: the model provider it uses, and where that
provider's key comes from; and the permission profile that keeps it out of the walls.

    provider_login(env) -> (what doctor says, logged in?) or None: OpenAI's own login applies
    walled_profile(sandbox, walls) -> its command line's ``-c`` for the profile

codex reads ``$CODEX_HOME/config.toml`` (``~/.codex/config.toml`` by default). Its
``model_provider`` (or that of the ``[profiles.NAME]`` its ``profile`` names) picks a provider;
one of the file's own ``[model_providers.NAME]`` is authenticated by the variable its
``env_key`` names, by an ``experimental_bearer_token`` or an ``auth`` command of the file, or by
nothing at all (a local model), and only one with ``requires_openai_auth = true`` by OpenAI's key
or ``codex login``. A file that does not read as TOML stops codex before it starts: that is what
``doctor`` says then.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import Any

from orchestrator.backends.codex_rollout import codex_home
from orchestrator.backends.guard import Walls

Login = tuple[str, bool | None]  # what doctor says of it, and whether it is logged in (None: cannot tell)


def provider_login(env: Mapping[str, str]) -> Login | None:
    """How codex run with ``env`` authenticates, when its config names a provider of its own;
    None when OpenAI's login applies (no config, the built-in provider, ``requires_openai_auth``)."""
    path = codex_home(env) / "config.toml"
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None  # no file (or none codex could read either): its defaults, OpenAI's login
    except tomllib.TOMLDecodeError as error:
        return f"{path} does not read as TOML ({error}): codex will not start until it is fixed", False
    name = _provider(config)
    providers = config.get("model_providers")
    provider = providers.get(name) if isinstance(providers, dict) and name else None
    if not isinstance(provider, dict) or provider.get("requires_openai_auth") is True:
        return None
    told = f"codex's model provider {name!r} ({path})"
    key = provider.get("env_key")
    if isinstance(key, str) and key:
        if env.get(key):
            return f"authenticated by ${key}, which {told} reads", True
        return f"no ${key} set: {told} reads its key from it", False
    if provider.get("experimental_bearer_token"):
        return f"authenticated by the token {told} holds", True
    if isinstance(provider.get("auth"), dict):
        return f"authenticated by the command {told} runs for a token (not run here)", None
    return f"{told} asks for no key", True


def _provider(config: Mapping[str, Any]) -> str | None:
    """The provider codex uses: its profile's, else the file's ``model_provider``."""
    profile = config.get("profile")
    profiles = config.get("profiles")
    chosen = profiles.get(profile) if isinstance(profiles, dict) and isinstance(profile, str) else None
    if isinstance(chosen, dict) and isinstance(chosen.get("model_provider"), str):
        return str(chosen["model_provider"])
    name = config.get("model_provider")
    return name if isinstance(name, str) else None


# --- the walls (``backends/guard``) -----------------------------------------------------------------

PROFILE = "orchestrator"  # the permission profile the walls are given in (codex's ``[permissions.NAME]``)


def walled_profile(sandbox: str, walls: Walls) -> list[str]:
    """The arguments that run codex's commands and patches in a permission profile of its own
    that is ``sandbox`` (``workspace-write``: codex's ``:workspace``; ``danger-full-access``: the
    whole file system and the network) but for the walls, read-only: codex's sandbox stops a write
    there, a command's or a patch's, as it stops one outside its workspace. Given on its command
    line (``-c``), the profile holds whatever the person's config.toml says (a ``sandbox_mode``
    there included). ``read-only`` needs none: it writes nothing anywhere."""
    places: dict[str, str] = {str(path): "read" for path in walls.closed()}
    places.update({str(path): "write" for path in walls.opened()})
    inside = {".": "write", ".git": "read", ".codex": "read"}
    if walls.to_project == ".":  # (the copies above the agent's directory are outside its roots)
        inside.update(dict.fromkeys(walls.copies(), "read"))
    if sandbox == "danger-full-access":
        places = {":root": "write", **places}
    roots = ", ".join(f"{_key(path)} = {_key(access)}" for path, access in inside.items())
    filesystem = ", ".join([*(f"{_key(path)} = {_key(access)}" for path, access in places.items()),
                            f'":project_roots" = {{{roots}}}'])  # fmt: skip
    found = ["-c", f'default_permissions="{PROFILE}"', "-c", f"permissions.{PROFILE}.filesystem={{{filesystem}}}"]
    if sandbox == "danger-full-access":
        return [*found, "-c", f"permissions.{PROFILE}.network={{enabled = true}}"]
    return [*found, "-c", f'permissions.{PROFILE}.extends=":workspace"']


def _key(text: str) -> str:
    """``text`` as a TOML string (a path with quotes or backslashes in it included)."""
    return json.dumps(text)
