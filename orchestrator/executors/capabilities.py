"""What an executor can do, the cluster it runs on, and what a command makes one with: the records
the registry (``executors/registry``) and the layers above read of an executor instead of its name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an executor can do: what a run, ``doctor``, recovery, ``cleanup`` and the merge queue
    read of it instead of its name."""

    #: It runs no process: every result it makes is made up, and says so (``FakeExecutor``).
    simulated: bool = False
    #: Its attempts start programs on this machine: a run first checks that the agent CLIs they
    #: need are installed here, and ``cleanup`` stops the process groups a dead runner's left.
    runs_here: bool = False
    #: Its log of an attempt is written on this machine as the output comes: a dead runner's
    #: attempt that finished is kept from it (``run/resume/recovery``), not run again.
    recoverable: bool = False
    #: Its attempts run on the workers of a cluster (its ``cluster``): a run checks the cluster
    #: before it starts, ``doctor`` surveys it, and without a shared filesystem what an attempt
    #: writes comes back only at its end (``executors/luggage``).
    cluster: bool = False


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster an executor with ``Capabilities.cluster`` sends attempts to."""

    scheduler: str  # its address
    timeout: float  # seconds it has to answer
    shared: bool  # whether its workers see the project at its path (the plan's ``shared_filesystem``)


@dataclass(frozen=True, slots=True)
class Setup:
    """What a command knows when it makes the executor of a run (``registry.make``)."""

    whole_process: bool = False  # this process starts nothing but attempts (the CLI's ``run``)
    scheduler: str | None = None  # a cluster's: ``--scheduler``, else the plan's ``scheduler`` setting
    shared: bool = True  # the plan's ``shared_filesystem``
