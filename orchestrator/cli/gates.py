"""``orchestrator approve`` and ``reject`` on the command line: a person's word at a task's Approval
gate (the work: ``commands/changing``, ``run/held/decisions``)."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "approve")
    register_command(sub, "reject")
