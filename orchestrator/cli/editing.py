"""``orchestrator update`` on the command line: a task's row changed in master_plan.md (the work:
``commands/editing``)."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "update")
