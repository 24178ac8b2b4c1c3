"""``orchestrator output`` on the command line: what a task answered, its result's body alone (no
YAML header); ``--json`` adds what the result records of it (the work: ``commands/reading``)."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "output")
