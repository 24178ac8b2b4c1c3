"""What the system refuses to start: a command line it cannot take.

    refused_start(program, argv, env, words, remedy) -> (what, what to do) | None

Linux takes no argument, and no environment string, over ``ARGUMENT_LIMIT`` bytes
(MAX_ARG_STRLEN), and no command line and environment over ARG_MAX together (each string with
its NUL and its pointer). An agent whose command line holds text from the plan (claude's system
prompt) is checked before the run, and again as its attempt is made: exec would only say
"Argument list too long".
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Mapping, Sequence

from orchestrator.vocabulary import ARGUMENT_LIMIT

# Linux gives a command line and environment a quarter of the stack limit (what sysconf says),
# but never more than 6 MiB, however large the stack (an unlimited one included).
_KERNEL_CAP = 6 * 1024 * 1024


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def refused_start(
    program: str, argv: Sequence[str], env: Mapping[str, str], words: Mapping[str, str], remedy: str
) -> tuple[str, str] | None:
    """Why the system would refuse to start ``program`` with ``argv`` and ``env``, and what to do;
    or None. ``words``: what the value of each option that can grow long holds, in the plan's
    words (``--append-system-prompt``: the system prompt); ``remedy``: what makes the whole shorter."""
    for flag, value in itertools.pairwise(argv):
        size = _size(value)
        if size > ARGUMENT_LIMIT:
            what = words.get(flag, f"the value of {flag}")
            return (
                f"{what} is {size:,} bytes, and {program} takes it as one argument ({flag}), of at most "
                f"{ARGUMENT_LIMIT:,}",
                "shorten it: put reference material in files the agent reads",
            )
    try:
        limit = min(os.sysconf("SC_ARG_MAX"), _KERNEL_CAP)
    except (ValueError, OSError):  # not a system that says
        return None
    pointer = struct.calcsize("P")
    total = sum(_size(text) + 1 + pointer for text in [*argv, *(f"{k}={v}" for k, v in env.items())])
    if limit > 0 and total > limit:
        return (
            f"{program}'s command line and environment come to {total:,} bytes, and the system starts no "
            f"program given more than {limit:,} (ARG_MAX)",
            f"{remedy}, or unset large environment variables",
        )
    return None
