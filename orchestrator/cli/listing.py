"""``orchestrator list`` on the command line: its parser and handler from ``commands/table``; what it
does, ``commands/listing``."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "list")
