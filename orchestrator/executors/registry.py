"""Every executor by name: the one table ``run --executor``, the ``executor`` setting, ``doctor``,
recovery, ``cleanup``, the merge queue and the runner read (doit's ``Task.valid_attr``).

    Kind("local", "local:LocalExecutor", ...)  ──make(name, Setup)──▶ the executor of a run
                                               ──named(name)──────▶ one that settles a dead runner's attempts
                                               ──can(name)────────▶ its ``Capabilities``

A new executor is a module implementing ``Executor`` (its ``name``, what it ``can`` do) and a line
in ``KINDS``. Nothing outside ``executors/`` compares an executor's name: the layers above ask
what it can do. Each module is imported when its executor is first made or asked about (``dask``
and ``local`` import anyio: ``validate`` never pays for them); the plan layer learns the names a
plan may give from ``plan/config/kinds``, which this module registers them with.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.executors.capabilities import Capabilities, Setup
from orchestrator.plan.config import kinds

if TYPE_CHECKING:
    from orchestrator.executors.base import Executor


@dataclass(frozen=True, slots=True)
class Kind:
    """One executor, as the command line and the plan know it before its module is imported."""

    name: str
    home: str  # its module in ``executors/`` and its class: "local:LocalExecutor"
    help: str  # what ``run --executor``'s help says it does
    in_plan: bool = True  # the plan's ``executor`` setting and ``doctor --executor`` may name it

    def load(self) -> type[Executor]:
        module, _, attribute = self.home.partition(":")
        found: type[Executor] = getattr(importlib.import_module(f"orchestrator.executors.{module}"), attribute)
        return found


KINDS = (
    Kind("local", "local:LocalExecutor", "processes on this machine (the default, or the plan's `executor`)"),
    Kind("dask", "dask:DaskExecutor", "on the workers of a Dask cluster"),
    Kind("fake", "fake:FakeExecutor", "nothing runs and every result says so", in_plan=False),
)
DEFAULT = "local"  # where a run's attempts go when nothing says, and what a journal line naming none meant
_BY_NAME = {kind.name: kind for kind in KINDS}
for _kind in KINDS:
    kinds.register_executor(_kind.name, in_plan=_kind.in_plan)


def names(*, in_plan: bool = False) -> list[str]:
    """The executors' names, in the table's order (``in_plan``: those a plan may name)."""
    return [kind.name for kind in KINDS if kind.in_plan or not in_plan]


def described() -> str:
    """Each executor and what it does, for ``run --executor``'s help."""
    return ", ".join(f"{kind.name}: {kind.help}" for kind in KINDS)


def can(name: str | None) -> Capabilities:
    """What the executor called ``name`` can do (``None``: a journal line naming none, the
    default's); an executor this version does not know can do nothing here."""
    kind = _BY_NAME.get(name or DEFAULT)
    return kind.load().can if kind is not None else Capabilities()


def make(name: str, setup: Setup | None = None) -> Executor:
    """The executor of a run called ``name``, made with what the command knows; ``KeyError`` for
    an unknown name, ``UsageError`` when ``setup`` is not enough for it."""
    return _BY_NAME[name].load().made(setup or Setup())


def named(name: str) -> Executor:
    """The executor called ``name``, to settle what a dead runner's attempts left (a cluster's
    finds its scheduler in ``$ORCHESTRATOR_DASK_SCHEDULER``, else in the attempts' handles);
    ``KeyError`` for another."""
    return _BY_NAME[name].load()()


def settler(name: str | None, current: Executor) -> Executor:
    """The executor that settles the attempts a journal says ``name`` started: ``current`` (this
    run's) when it is that one, else one ``named`` so; ``KeyError`` for an unknown name."""
    name = name or DEFAULT
    return current if name == current.name else named(name)
